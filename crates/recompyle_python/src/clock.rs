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
    ORIGIN.get_or_init(|| {
        // The tick in the middle of two reads around the clock's, as at the other end; the
        // clock read once before, as its first read in a process is slower (the vDSO's
        // page faulted in).
        let _ = Instant::now();
        paired()
    })
}

/// The monotonic clock and the tick in the middle of two TSC reads around it: of a few
/// tries, the one whose reads lie closest (a thread preempted between them would put the
/// tick far from the clock's instant).
fn paired() -> (Instant, u64) {
    let mut best: Option<(u64, Instant, u64)> = None;
    for _ in 0..8 {
        let before = ticks_raw();
        let at = Instant::now();
        let after = ticks_raw();
        let gap = after.wrapping_sub(before);
        let mid = before / 2 + after / 2 + (before % 2 + after % 2) / 2;
        if best.is_none_or(|(g, _, _)| gap < g) {
            best = Some((gap, at, mid));
        }
        if gap < 2000 {
            break;
        }
    }
    best.map_or_else(|| (Instant::now(), ticks_raw()), |(_, at, mid)| (at, mid))
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

/// Calibrations over a shorter span than this are not cached: a later one is better.
const SETTLED: Duration = Duration::from_millis(5);

/// Nanoseconds per tick, measured against the monotonic clock over everything since
/// [`start`] (at least 0.2 ms, waiting out the rest if needed: a short-lived process that
/// reports at once waits that long, not more). Each end of the span is a pair of reads a
/// few tens of nanoseconds apart ([`paired`]), so the ratio is off by a few thousandths of
/// a percent at 0.2 ms (measured: at most 0.005% against 50 ms), less as the span grows.
pub fn ns_per_tick() -> f64 {
    measure().0
}

/// [`ns_per_tick`] and the span it was measured over.
fn measure() -> (f64, Duration) {
    if cfg!(not(target_arch = "x86_64")) {
        return (1.0, SETTLED);
    }
    let (t0, k0) = *origin();
    let min = Duration::from_micros(200);
    while t0.elapsed() < min {
        std::hint::spin_loop();
    }
    let (at, end) = paired();
    let span = at.duration_since(t0);
    let ticks = end.wrapping_sub(k0) as f64;
    let value = if ticks <= 0.0 {
        1.0
    } else {
        span.as_nanos() as f64 / ticks
    };
    (value, span)
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
    let (value, span) = measure();
    if span >= SETTLED {
        if let Ok(mut cached) = CACHED.lock() {
            *cached = (value, now);
        }
    }
    value
}
