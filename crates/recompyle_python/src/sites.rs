//! The process-wide table of instrumented call sites, keyed by site id.
//!
//! A module's sites are registered by the loader when its code is created or read from the
//! cache. Concurrent imports in several threads register at once, and the report reads while
//! threads still run, so this is a concurrent map; the per-call path never reads it.
//!
//! A module read from the cache registers its site table as the bytes the cache holds and
//! decodes them on the first lookup of one of its sites (a listener's event, a report): a
//! warm import of a program nobody listens to never pays for the decoding (two strings
//! allocated per site, about half a millisecond for 38 stdlib modules).

use std::ffi::OsString;
use std::sync::{Arc, LazyLock, OnceLock};

use dashmap::DashMap;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use recompyle_transform::{site_table, split_site_id, Site};

#[derive(Debug)]
pub struct ModuleSites {
    /// The file's path: `os.fsencode` data, not necessarily UTF-8 (pyo3 converts it with
    /// `os.fsencode`/`os.fsdecode`, so a `str` with surrogate escapes round-trips).
    pub filename: OsString,
    pub module: String,
    pub sites: Vec<Site>,
}

/// One registered module: its sites, decoded now or on the first lookup.
struct Entry {
    filename: OsString,
    /// How many sites the module has (known before decoding: the key-clash check needs it).
    count: usize,
    /// The module name and the site table's bytes, for a module read from the cache; `None`
    /// when the sites came decoded (a transform in this process).
    pending: Option<(String, Box<[u8]>)>,
    /// The decoded sites; `None` inside when the pending bytes did not decode (the cache
    /// file's payload checksum makes that a forged file: its sites are unknown, never wrong).
    decoded: OnceLock<Option<Arc<ModuleSites>>>,
}

impl Entry {
    fn sites(&self) -> Option<&Arc<ModuleSites>> {
        self.decoded
            .get_or_init(|| {
                let (module, table) = self.pending.as_ref()?;
                let sites = site_table::decode(table).ok()?;
                Some(Arc::new(ModuleSites {
                    filename: self.filename.clone(),
                    module: module.clone(),
                    sites,
                }))
            })
            .as_ref()
    }
}

/// A fixed number of shards: `DashMap::new` sizes itself from
/// `std::thread::available_parallelism`, which on Linux reads the cgroup files under
/// `/proc` (about 0.1 ms, paid by the first import of every instrumented process).
/// Registrations come one per module import and lookups one per site at most, so a few
/// shards are plenty.
const SHARDS: usize = 8;

static REGISTRY: LazyLock<DashMap<u32, Arc<Entry>>> =
    LazyLock::new(|| DashMap::with_shard_amount(SHARDS));

/// The value of a site-id int, or `None` with an exception set.
///
/// # Safety
/// `obj` must be a live object and the GIL held.
#[inline(always)]
pub unsafe fn id_of(obj: *mut pyo3::ffi::PyObject) -> Option<u64> {
    use pyo3::ffi;
    // Site ids need two or three 30-bit digits. `PyLong_AsUnsignedLongLong` converts those
    // through a byte array (~200 instructions); `PyLong_AsUnsignedLong`, 64-bit wherever
    // `c_ulong` is, runs a short digit loop.
    let id = if std::mem::size_of::<std::ffi::c_ulong>() == 8 {
        // SAFETY: `obj` is live and the GIL held (this function's contract); a non-int
        // gives -1 (u64::MAX) with an exception set, told apart below.
        unsafe { ffi::PyLong_AsUnsignedLong(obj) as u64 }
    } else {
        // SAFETY: as above.
        unsafe { ffi::PyLong_AsUnsignedLongLong(obj) }
    };
    // SAFETY: the GIL is held (this function's contract).
    if id == u64::MAX && !unsafe { ffi::PyErr_Occurred() }.is_null() {
        None
    } else {
        Some(id)
    }
}

/// The module and site of `site_id`, if registered.
pub fn lookup(site_id: u64) -> Option<(Arc<ModuleSites>, usize)> {
    let (key, index) = split_site_id(site_id);
    // The map's guard is dropped before decoding, which may take a while.
    let entry = REGISTRY.get(&key)?.value().clone();
    let module = entry.sites()?.clone();
    let index = index as usize;
    if index < module.sites.len() {
        Some((module, index))
    } else {
        None
    }
}

/// Put `entry` under `module_key` unless the key belongs to another file (or to another
/// version of this one, with another number of sites): then false, and nothing changes.
fn insert(module_key: u32, entry: Entry) -> bool {
    if let Some(existing) = REGISTRY.get(&module_key) {
        if existing.filename != entry.filename || existing.count != entry.count {
            return false;
        }
    }
    REGISTRY.insert(module_key, Arc::new(entry));
    true
}

/// Register a module's sites under `module_key`.
///
/// Returns false, registering nothing, when the key already belongs to another file: the
/// caller then rewrites the module again under another key.
pub fn register(module_key: u32, filename: OsString, module: String, sites: Vec<Site>) -> bool {
    let count = sites.len();
    let decoded = OnceLock::new();
    let _ = decoded.set(Some(Arc::new(ModuleSites {
        filename: filename.clone(),
        module,
        sites,
    })));
    insert(
        module_key,
        Entry {
            filename,
            count,
            pending: None,
            decoded,
        },
    )
}

/// Register the site table a cache file stored (`Transformed.site_table`'s bytes) under
/// `module_key`; false if the key belongs to another file. Bytes of the wrong shape raise
/// `ValueError`; the table is decoded on the first lookup of one of its sites.
#[pyfunction]
pub fn register_site_table(
    module_key: u32,
    filename: OsString,
    module: String,
    table: &[u8],
) -> PyResult<bool> {
    let count = site_table::site_count(table)
        .ok_or_else(|| PyValueError::new_err("malformed site table: wrong shape"))?;
    Ok(insert(
        module_key,
        Entry {
            filename,
            count,
            pending: Some((module, table.into())),
            decoded: OnceLock::new(),
        },
    ))
}

/// `(filename, module, line, col, end_line, end_col, callee, qualname)` of a site id.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub fn site_info(site_id: u64) -> PyResult<(OsString, String, u32, u32, u32, u32, String, String)> {
    let (module, index) =
        lookup(site_id).ok_or_else(|| PyValueError::new_err(format!("unknown site {site_id}")))?;
    let s = &module.sites[index];
    Ok((
        module.filename.clone(),
        module.module.clone(),
        s.line,
        s.col,
        s.end_line,
        s.end_col,
        s.callee.clone(),
        s.qualname.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(callee: &str) -> Site {
        Site {
            line: 1,
            col: 0,
            end_line: 1,
            end_col: 3,
            callee: callee.to_owned(),
            qualname: "<module>".to_owned(),
            awaited: false,
            names: Vec::new(),
        }
    }

    #[test]
    fn site_count_reads_the_shape_only() {
        let table = site_table::encode(&[site("f"), site("g"), site("f")]);
        assert_eq!(site_table::site_count(&table), Some(3));
        assert_eq!(site_table::site_count(&table[..table.len() - 1]), None);
        assert_eq!(site_table::site_count(&[]), None);
        let mut longer = table.clone();
        longer.extend_from_slice(&[0; site_table::ROW]);
        assert_eq!(site_table::site_count(&longer), None);
    }

    #[test]
    fn a_cached_table_is_decoded_on_first_lookup() {
        let table = site_table::encode(&[site("f"), site("g")]);
        let key = 0x5eed_0001;
        assert!(register_site_table(key, "a.py".into(), "a".into(), &table).unwrap());
        let id = (u64::from(key) << 32) | 1;
        let (module, index) = lookup(id).unwrap();
        assert_eq!(module.sites[index].callee, "g");
        assert_eq!(module.module, "a");
        // Same file, same count: accepted; another file under the key: refused.
        assert!(register_site_table(key, "a.py".into(), "a".into(), &table).unwrap());
        assert!(!register(
            key,
            "b.py".into(),
            "b".into(),
            vec![site("f"), site("g")]
        ));
        assert!(lookup((u64::from(key) << 32) | 2).is_none());
    }
}
