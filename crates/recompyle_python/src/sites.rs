//! The process-wide table of instrumented call sites, keyed by site id.
//!
//! A module's sites are registered by the loader when its code is created or read from the
//! cache. Concurrent imports in several threads register at once, and the report reads while
//! threads still run, so this is a concurrent map; the per-call path never reads it.

// `unsafe_op_in_unsafe_fn` (the workspace lint policy) is allowed here until this file's
// owners give each unsafe operation its own block; every `unsafe fn` states its contract.
#![allow(unsafe_op_in_unsafe_fn)]

use std::ffi::OsString;
use std::sync::{Arc, LazyLock};

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

static REGISTRY: LazyLock<DashMap<u32, Arc<ModuleSites>>> = LazyLock::new(DashMap::new);

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
        ffi::PyLong_AsUnsignedLong(obj) as u64
    } else {
        ffi::PyLong_AsUnsignedLongLong(obj)
    };
    if id == u64::MAX && !ffi::PyErr_Occurred().is_null() {
        None
    } else {
        Some(id)
    }
}

/// The module and site of `site_id`, if registered.
pub fn lookup(site_id: u64) -> Option<(Arc<ModuleSites>, usize)> {
    let (key, index) = split_site_id(site_id);
    let module = REGISTRY.get(&key)?.value().clone();
    let index = index as usize;
    if index < module.sites.len() {
        Some((module, index))
    } else {
        None
    }
}

/// Register a module's sites under `module_key`.
///
/// Returns false, registering nothing, when the key already belongs to another file: the
/// caller then rewrites the module again under another key.
pub fn register(module_key: u32, filename: OsString, module: String, sites: Vec<Site>) -> bool {
    if let Some(existing) = REGISTRY.get(&module_key) {
        if existing.filename != filename || existing.sites.len() != sites.len() {
            return false;
        }
    }
    REGISTRY.insert(
        module_key,
        Arc::new(ModuleSites {
            filename,
            module,
            sites,
        }),
    );
    true
}

/// Register the site table a cache file stored (`Transformed.site_table`'s bytes) under
/// `module_key`; false if the key belongs to another file. Malformed bytes raise
/// `ValueError`.
#[pyfunction]
pub fn register_site_table(
    module_key: u32,
    filename: OsString,
    module: String,
    table: &[u8],
) -> PyResult<bool> {
    let sites = site_table::decode(table).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(register(module_key, filename, module, sites))
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
