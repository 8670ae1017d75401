//! The bytecode cache's payload checksum (`recompyle/cache.py`).
//!
//! A warm import checks every cache file's payload before unmarshalling it, so that a file
//! cut short or damaged on disk is a miss rather than damaged bytecode. The check used to be
//! the SipHash `importlib.util.source_hash` computes: about 3 instructions per byte, 4 of the
//! 10 million instructions a warm import of 38 stdlib modules added to a plain one
//! (`benches/README.md`). This one is a damage check, not a defence against forgery (whoever
//! can write the cache file can write the code in it), so it needs two properties only:
//!
//! * **speed**: four independent lanes take a 32-byte block per round, one multiply per
//!   8 bytes, about 0.6 instructions per byte;
//! * **no blind spot for a single damaged word**: every step is a bijection of a lane's state
//!   for a given word and of the word for a given state (xor, multiply by an odd constant,
//!   rotate), and the lanes and the length are folded the same way, so changing any one
//!   8-byte word of the data always changes the result. Other damage goes unseen with the
//!   odds of a 64-bit collision.
//!
//! The value is stored in the cache file of the build that computed it (the file name holds
//! the build's identity), so it need not be stable across versions.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Odd multipliers (the 64-bit golden ratio and xxHash's second prime).
const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;

/// One word into one lane: a bijection in `lane` for a given `word` and in `word` for a
/// given `lane`.
#[inline(always)]
fn step(lane: u64, word: u64) -> u64 {
    (lane ^ word).wrapping_mul(K1).rotate_left(31)
}

/// Word `i` of a block, little-endian: one load (the range is 8 bytes of a 32-byte array,
/// so the conversion cannot fail; `copy_from_slice` would be an out-of-line call without
/// LTO).
#[inline(always)]
fn word(block: &[u8; 32], i: usize) -> u64 {
    u64::from_le_bytes(<[u8; 8]>::try_from(&block[i * 8..i * 8 + 8]).unwrap_or([0; 8]))
}

/// The checksum of `data`.
pub fn checksum(data: &[u8]) -> u64 {
    let [mut l0, mut l1, mut l2, mut l3] = [
        K2,
        K2.rotate_left(16),
        K2.rotate_left(32),
        K2.rotate_left(48),
    ];
    let mut blocks = data.chunks_exact(32);
    for block in &mut blocks {
        // Always 32 bytes (`chunks_exact`); as an array, its words load without bounds checks.
        let Ok(block) = <&[u8; 32]>::try_from(block) else {
            continue;
        };
        l0 = step(l0, word(block, 0));
        l1 = step(l1, word(block, 1));
        l2 = step(l2, word(block, 2));
        l3 = step(l3, word(block, 3));
    }
    // The last 0-31 bytes, zero-padded to a block (the length is folded in below).
    let rest = blocks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 32];
        last[..rest.len()].copy_from_slice(rest);
        l0 = step(l0, word(&last, 0));
        l1 = step(l1, word(&last, 1));
        l2 = step(l2, word(&last, 2));
        l3 = step(l3, word(&last, 3));
    }
    let mut h = data.len() as u64;
    for lane in [l0, l1, l2, l3] {
        h = step(h, lane);
    }
    // Murmur3's finalizer (a bijection): every bit of the result depends on every lane.
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

/// The checksum of `data[start:end]` (`end` None: to the end), without copying the slice
/// out of the cache file's bytes. A range outside `data` raises `ValueError`.
#[pyfunction]
#[pyo3(signature = (data, start = 0, end = None))]
pub fn cache_checksum(data: &[u8], start: usize, end: Option<usize>) -> PyResult<u64> {
    let end = end.unwrap_or(data.len());
    let part = data
        .get(start..end)
        .ok_or_else(|| PyValueError::new_err("checksum range outside the data"))?;
    Ok(checksum(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_single_byte_change_is_seen() {
        let data: Vec<u8> = (0..100u32).map(|i| (i * 7 + 3) as u8).collect();
        let good = checksum(&data);
        for pos in 0..data.len() {
            for flip in [0x01u8, 0x5A, 0xFF] {
                let mut bad = data.clone();
                bad[pos] ^= flip;
                assert_ne!(checksum(&bad), good, "byte {pos} ^ {flip:#x}");
            }
        }
    }

    #[test]
    fn length_counts_even_for_zero_bytes() {
        let zeros = [0u8; 70];
        let all: Vec<u64> = (0..zeros.len()).map(|n| checksum(&zeros[..n])).collect();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn swapped_words_are_seen() {
        let mut data = [0u8; 64];
        data[..8].copy_from_slice(&1u64.to_le_bytes());
        data[32..40].copy_from_slice(&2u64.to_le_bytes());
        let mut swapped = data;
        swapped[..8].copy_from_slice(&2u64.to_le_bytes());
        swapped[32..40].copy_from_slice(&1u64.to_le_bytes());
        assert_ne!(checksum(&data), checksum(&swapped));
    }
}
