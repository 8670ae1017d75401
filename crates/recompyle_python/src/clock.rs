//! The profiler's clock: the CPU's time-stamp counter where it is invariant (x86-64), a
//! monotonic clock elsewhere. Reading the TSC costs a few nanoseconds against ~20 for
//! `clock_gettime`, which matters when two reads bracket every call.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static ORIGIN: OnceLock<(Instant, u64)> = OnceLock::new();

#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn ticks() -> u64 {
    // SAFETY: rdtsc has no preconditions on x86-64.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub fn ticks() -> u64 {
    origin().0.elapsed().as_nanos() as u64
}

fn origin() -> &'static (Instant, u64) {
    ORIGIN.get_or_init(|| (Instant::now(), ticks_raw()))
}

#[cfg(target_arch = "x86_64")]
fn ticks_raw() -> u64 {
    ticks()
}

#[cfg(not(target_arch = "x86_64"))]
fn ticks_raw() -> u64 {
    0
}

/// Start the calibration period (cheap; call when profiling starts).
pub fn start() {
    origin();
}

/// Nanoseconds per tick, measured against the monotonic clock over everything since
/// [`start`] (at least 5 ms, waiting out the rest if needed).
pub fn ns_per_tick() -> f64 {
    if cfg!(not(target_arch = "x86_64")) {
        return 1.0;
    }
    let (t0, k0) = *origin();
    let min = Duration::from_millis(5);
    while t0.elapsed() < min {
        std::hint::spin_loop();
    }
    let elapsed = t0.elapsed().as_nanos() as f64;
    let ticks = ticks().wrapping_sub(k0) as f64;
    if ticks <= 0.0 {
        1.0
    } else {
        elapsed / ticks
    }
}

/// (ns per tick, the tick it was measured at); refreshed by [`ns_per_tick_cached`].
static CACHED: std::sync::Mutex<(f64, u64)> = std::sync::Mutex::new((0.0, 0));

/// [`ns_per_tick`] measured at most about once every 2^30 ticks (a fraction of a second):
/// reading the monotonic clock on every call would cost more than the ticks save.
pub fn ns_per_tick_cached() -> f64 {
    let now = ticks();
    if let Ok(cached) = CACHED.lock() {
        if cached.0 > 0.0 && now.wrapping_sub(cached.1) < (1 << 30) {
            return cached.0;
        }
    }
    let value = ns_per_tick();
    if let Ok(mut cached) = CACHED.lock() {
        *cached = (value, now);
    }
    value
}
