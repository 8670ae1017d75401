//! Hashing of ids and keys: pure functions, no interpreter needed, tested by `cargo test`.
//!
//! [`IdHasher`] hashes site ids for the profiler's and the call tree's maps;
//! [`module_key`] makes the key that prefixes every site id of a module, which the bytecode
//! cache stores, so it must not change between processes or versions.

use std::ffi::OsStr;
use std::hash::Hasher;

/// Site ids are already well spread in their low bits; one multiply mixes the high bits in.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ (n >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n) ^ self.0.rotate_left(32));
    }
}

/// FNV-1a: stable across processes and versions, unlike Python's `hash`.
///
/// 31 bits, so every site id (`key << 32 | index`) is below 2**63: CPython's compiler turns
/// a decimal literal that fits a C `long` into an int directly, and sends a larger one
/// through `PyLong_FromString`. On the 38-module cold-import benchmark (3.11,
/// `benches/bench_cold_import.py --variants`, with and without `--callgrind`), every id at
/// 2**63 or more made `compile()` of the rewritten text cost 0.9% more instructions (and
/// about 1% more time) than the same text with ids below it (`benches/README.md`): a little,
/// for nothing. Two keys clash twice as often as with 32 bits: one pair of modules in
/// 2 * 10**9, about one process in 4,000 that instruments 1,000 modules; a clash is caught
/// at registration (`sites.rs`), and the loader transforms the module again under another
/// salt.
pub(crate) fn module_key(filename: &OsStr, data: &[u8], salt: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(filename.as_encoded_bytes());
    feed(&[0]);
    feed(data);
    feed(&salt.to_le_bytes());
    (((h >> 32) ^ h) as u32) & KEY_MASK
}

/// The bits a module key may have (see [`module_key`]).
const KEY_MASK: u32 = 0x7FFF_FFFF;

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, BuildHasherDefault};

    use super::*;

    #[test]
    fn module_key_is_stable() {
        // Cache files store keys made by earlier processes: the function must never change.
        let key = module_key(OsStr::new("/src/pkg/mod.py"), b"print(1)\n", 0);
        assert_eq!(
            key,
            module_key(OsStr::new("/src/pkg/mod.py"), b"print(1)\n", 0)
        );
        assert_eq!(key, EXPECTED_KEY);
    }

    /// FNV-1a of `"/src/pkg/mod.py" NUL "print(1)\n" 0u32-LE`, folded to 32 bits, top bit
    /// cleared (computed apart from this code).
    const EXPECTED_KEY: u32 = 0x51e8_b153;

    #[test]
    fn module_key_depends_on_every_input() {
        let base = module_key(OsStr::new("a.py"), b"x", 0);
        assert_ne!(base, module_key(OsStr::new("b.py"), b"x", 0));
        assert_ne!(base, module_key(OsStr::new("a.py"), b"y", 0));
        assert_ne!(base, module_key(OsStr::new("a.py"), b"x", 1));
        // Every key leaves the site id below 2**63 (a C long to CPython's compiler).
        for salt in 0..64 {
            let key = module_key(OsStr::new("a.py"), b"x", salt);
            assert!(recompyle_transform::site_id(key, u32::MAX) <= i64::MAX as u64);
        }
        // The separator keeps the file name and the data apart.
        assert_ne!(
            module_key(OsStr::new("ab"), b"c", 0),
            module_key(OsStr::new("a"), b"bc", 0)
        );
    }

    #[test]
    fn id_hasher_spreads_neighbouring_ids() {
        let build = BuildHasherDefault::<IdHasher>::default();
        let hashes: std::collections::HashSet<u64> = (0..1000u64)
            .map(|i| build.hash_one((7u64 << 32) | i))
            .collect();
        assert_eq!(hashes.len(), 1000);
        // Neighbouring ids land in different buckets of a small table.
        let buckets: std::collections::HashSet<u64> =
            (0..64u64).map(|i| build.hash_one(i) >> 58).collect();
        assert!(buckets.len() > 32, "{}", buckets.len());
    }
}
