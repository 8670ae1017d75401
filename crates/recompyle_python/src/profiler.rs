//! The flat profiler: per call site, how many calls, their total and longest time.
//!
//! Times are inclusive (a call's time includes the calls it makes) and kept in clock ticks
//! in one GIL-guarded table; a snapshot converts them to nanoseconds.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::Ordering;

use pyo3::ffi;
use pyo3::prelude::*;

use crate::gil::GilCell;
use crate::{clock, ACTIVE, PROFILING};

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
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub calls: u64,
    pub ticks: u64,
    pub max_ticks: u64,
    pub raised: u64,
}

/// Boxed so a `Stats` never moves while the cache below points at it.
type Table = HashMap<u64, Box<Stats>, BuildHasherDefault<IdHasher>>;

static STATS: GilCell<Option<Table>> = GilCell::new(None);

/// Site-id objects (the int constants in the rewritten code) to their `Stats`, direct-mapped
/// by address: a hit costs one compare instead of converting the int and hashing it. Each
/// entry holds a reference to its int, so the address cannot be reused by another object
/// while cached.
const CACHE_SLOTS: usize = 1024;

struct Cache(Vec<(*mut ffi::PyObject, *mut Stats)>);
// SAFETY: only touched with the GIL held (GilCell).
unsafe impl Send for Cache {}

static CACHE: GilCell<Cache> = GilCell::new(Cache(Vec::new()));

#[inline(always)]
fn add(s: &mut Stats, ticks: u64, raised: bool) {
    s.calls += 1;
    s.ticks += ticks;
    if ticks > s.max_ticks {
        s.max_ticks = ticks;
    }
    s.raised += u64::from(raised);
}

/// Record one call of the site whose id is `site` (a site id already converted).
pub fn record(py: Python<'_>, site: u64, ticks: u64, raised: bool) {
    let table = STATS.get_mut(py).get_or_insert_with(Table::default);
    add(table.entry(site).or_default(), ticks, raised);
}

/// Record one call of the site whose id object is `site_obj` (an exact int).
///
/// # Safety
/// `site_obj` must be a live int object and the GIL held.
#[inline(always)]
pub unsafe fn record_obj(py: Python<'_>, site_obj: *mut ffi::PyObject, ticks: u64, raised: bool) {
    let cache = &mut CACHE.get_mut(py).0;
    let slot = (site_obj as usize >> 4) % CACHE_SLOTS;
    if let Some(&(key, stats)) = cache.get(slot) {
        if key == site_obj {
            add(&mut *stats, ticks, raised);
            return;
        }
    }
    record_miss(py, site_obj, slot, ticks, raised);
}

#[cold]
#[inline(never)]
unsafe fn record_miss(
    py: Python<'_>,
    site_obj: *mut ffi::PyObject,
    slot: usize,
    ticks: u64,
    raised: bool,
) {
    let Some(site) = crate::sites::id_of(site_obj) else {
        // Not a site id (someone called the builtin by hand): nothing to record.
        ffi::PyErr_Clear();
        return;
    };
    let table = STATS.get_mut(py).get_or_insert_with(Table::default);
    let stats: *mut Stats = &mut **table.entry(site).or_default();
    add(&mut *stats, ticks, raised);
    let cache = &mut CACHE.get_mut(py).0;
    if cache.is_empty() {
        cache.resize(CACHE_SLOTS, (std::ptr::null_mut(), std::ptr::null_mut()));
    }
    ffi::Py_INCREF(site_obj);
    let (old, _) = std::mem::replace(&mut cache[slot], (site_obj, stats));
    if !old.is_null() {
        ffi::Py_DECREF(old);
    }
}

fn clear_cache(py: Python<'_>) {
    let entries = std::mem::take(&mut CACHE.get_mut(py).0);
    for (key, _) in entries {
        if !key.is_null() {
            // SAFETY: the cache held a reference to `key`; the GIL is held.
            unsafe { ffi::Py_DECREF(key) };
        }
    }
}

/// Start timing every instrumented call.
#[pyfunction]
pub fn profiler_start() {
    clock::start();
    ACTIVE.fetch_or(PROFILING, Ordering::Relaxed);
}

/// Stop timing; what was recorded is kept.
#[pyfunction]
pub fn profiler_stop() {
    ACTIVE.fetch_and(!PROFILING, Ordering::Relaxed);
}

/// Whether the profiler is timing calls.
#[pyfunction]
pub fn profiler_running() -> bool {
    ACTIVE.load(Ordering::Relaxed) & PROFILING != 0
}

/// Forget everything recorded.
#[pyfunction]
pub fn profiler_reset(py: Python<'_>) {
    clear_cache(py);
    *STATS.get_mut(py) = None;
}

/// `(site_id, calls, total_ns, max_ns, raised)` for every site called so far.
#[pyfunction]
pub fn profiler_snapshot(py: Python<'_>) -> Vec<(u64, u64, u64, u64, u64)> {
    let rows: Vec<(u64, Stats)> = match STATS.get(py) {
        Some(table) => table.iter().map(|(k, v)| (*k, **v)).collect(),
        None => return Vec::new(),
    };
    let scale = clock::ns_per_tick();
    rows.into_iter()
        .map(|(site, s)| {
            (
                site,
                s.calls,
                (s.ticks as f64 * scale).round() as u64,
                (s.max_ticks as f64 * scale).round() as u64,
                s.raised,
            )
        })
        .collect()
}
