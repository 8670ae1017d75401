//! The flat profiler: per call site, how many calls, their total and longest time.
//!
//! Times are inclusive (a call's time includes the calls it makes) and kept in clock ticks
//! in one GIL-guarded table; a snapshot converts them to nanoseconds.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::Ordering;

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

type Table = HashMap<u64, Stats, BuildHasherDefault<IdHasher>>;

static STATS: GilCell<Option<Table>> = GilCell::new(None);

#[inline(always)]
pub fn record(py: Python<'_>, site: u64, ticks: u64, raised: bool) {
    let table = STATS.get_mut(py).get_or_insert_with(Table::default);
    let s = table.entry(site).or_default();
    s.calls += 1;
    s.ticks += ticks;
    if ticks > s.max_ticks {
        s.max_ticks = ticks;
    }
    s.raised += u64::from(raised);
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
    *STATS.get_mut(py) = None;
}

/// `(site_id, calls, total_ns, max_ns, raised)` for every site called so far.
#[pyfunction]
pub fn profiler_snapshot(py: Python<'_>) -> Vec<(u64, u64, u64, u64, u64)> {
    let rows: Vec<(u64, Stats)> = match STATS.get(py) {
        Some(table) => table.iter().map(|(k, v)| (*k, *v)).collect(),
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
