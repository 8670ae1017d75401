//! Slow calls: the instrumented calls that last at least a minimum duration, handed to one
//! Python callback (`recompyle.otel`, which turns them into OpenTelemetry spans).
//!
//! The decision is made where the profiler's tree already ends each call
//! ([`crate::profiler::leave`]): one atomic load and a compare against the call's length,
//! so a call under the minimum costs what the tree profiler costs. A call at least that
//! long goes to [`ended`] with the calls still open under it on the thread's stack. The
//! callback gets a [`SlowCall`]: the call's site and times (epoch nanoseconds), its
//! exception, its own span if it already has one (made earlier as an ancestor of a slow
//! call), the nearest enclosing call's span, and the enclosing calls that have none yet
//! (outermost first). It returns one span (or `None`) for each of those, which are kept here
//! per stack beside the frames they belong to: each is handed back when its call ends,
//! which happens through [`ended`] too, since a call is never shorter than a call it
//! contains.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::prelude::*;

use crate::call_tree::NodeId;
use crate::clock;
use crate::gil::GilCell;

/// Calls lasting at least this many ticks are slow; `u64::MAX` when nobody listens.
static MIN_TICKS: AtomicU64 = AtomicU64::new(u64::MAX);

/// The minimum in ticks (`u64::MAX`: off), read by the profiler as each call ends.
#[inline(always)]
pub fn min_ticks() -> u64 {
    MIN_TICKS.load(Ordering::Relaxed)
}

/// A call on the stack (or just popped from it): where it sits and where it was made.
pub struct OpenFrame {
    /// Index in the stack's frames (the root frame is 0).
    pub depth: usize,
    pub node: NodeId,
    /// Clock tick it started at.
    pub start: u64,
    pub site: u64,
    /// Its site is the operand of `await`: on the stack only for one step of the awaited
    /// work, with that step's start; such a frame never gets a span as an ancestor.
    pub awaited: bool,
}

/// A span the callback made for a call still running.
struct Spanned {
    depth: usize,
    node: NodeId,
    start: u64,
    start_ns: i64,
    span: Py<PyAny>,
}

struct Listener {
    callback: Py<PyAny>,
    /// The clock's tick and the epoch time (ns) taken together, to convert ticks.
    anchor_tick: u64,
    anchor_ns: i64,
    /// Per stack (its address), the spans of its open calls, outermost first.
    spanned: HashMap<usize, Vec<Spanned>>,
    /// A callback is running: calls it makes are not reported.
    busy: bool,
}

static LISTENER: GilCell<Option<Listener>> = GilCell::new(None);

/// One enclosing call that has no span yet.
#[pyclass(module = "recompyle._core", frozen, get_all)]
pub struct OpenCall {
    pub site: u64,
    pub start_ns: i64,
}

/// A call that lasted at least the minimum.
#[pyclass(module = "recompyle._core", frozen, get_all)]
pub struct SlowCall {
    pub site: u64,
    pub start_ns: i64,
    pub end_ns: i64,
    /// The exception it raised, or `None`.
    pub exception: Option<Py<PyAny>>,
    /// The span made for it earlier (as an ancestor of another slow call), or `None`.
    pub span: Option<Py<PyAny>>,
    /// The span of the nearest enclosing call that has one, or `None`, and its start.
    pub parent: Option<Py<PyAny>>,
    pub parent_start_ns: i64,
    /// The enclosing calls still running without a span, outermost first; the callback
    /// returns a span or `None` for each.
    pub opened: Vec<Py<OpenCall>>,
}

fn epoch_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Hand every call lasting at least `min_ns` to `callback` (a `SlowCall` → list of spans);
/// `callback=None` stops. The profiler must be recording its tree for calls to be seen.
#[pyfunction]
#[pyo3(signature = (callback, min_ns = 0))]
pub fn slow_calls_listen(py: Python<'_>, callback: Option<Py<PyAny>>, min_ns: u64) {
    let old = std::mem::take(LISTENER.get_mut(py));
    match callback {
        None => MIN_TICKS.store(u64::MAX, Ordering::Relaxed),
        Some(callback) => {
            clock::start();
            let scale = clock::ns_per_tick_cached();
            let ticks = ((min_ns as f64 / scale) as u64).min(u64::MAX - 1);
            *LISTENER.get_mut(py) = Some(Listener {
                callback,
                anchor_tick: clock::ticks(),
                anchor_ns: epoch_ns(),
                spanned: HashMap::new(),
                busy: false,
            });
            MIN_TICKS.store(ticks, Ordering::Relaxed);
        }
    }
    drop(old);
}

fn to_ns(l: &Listener, scale: f64, tick: u64) -> i64 {
    let delta = tick.wrapping_sub(l.anchor_tick) as i64 as f64 * scale;
    l.anchor_ns + delta.round() as i64
}

/// The call `call` ended at `end` (tick) on the stack keyed `stack` (popped from it), with
/// `open` the frames still on that stack (root excluded, outermost first).
///
/// If `raised`, the call's exception is the one set; it is set again afterwards.
#[cold]
#[inline(never)]
pub fn ended(
    py: Python<'_>,
    stack: usize,
    call: OpenFrame,
    open: Vec<OpenFrame>,
    end: u64,
    raised: bool,
) {
    let Some(l) = LISTENER.get_mut(py).as_mut() else {
        return;
    };
    if l.busy {
        return;
    }
    let scale = clock::ns_per_tick_cached();
    // The spans still belonging to open frames: a prefix of the list (calls end in order).
    let list = l.spanned.entry(stack).or_default();
    let valid = list
        .iter()
        .take_while(|s| {
            open.iter()
                .find(|f| f.depth == s.depth)
                .is_some_and(|f| f.node == s.node && f.start == s.start)
        })
        .count();
    let mut rest = list.split_off(valid);
    let own = rest
        .first()
        .filter(|s| s.depth == call.depth && s.node == call.node && s.start == call.start)
        .is_some();
    let span = if own { Some(rest.remove(0).span) } else { None };
    drop(rest);
    let (parent, parent_start_ns, deepest) = match list.last() {
        Some(s) => (Some(s.span.clone_ref(py)), s.start_ns, s.depth),
        None => (None, 0, 0),
    };
    let fresh: Vec<&OpenFrame> = open
        .iter()
        .filter(|f| f.depth > deepest && !f.awaited)
        .collect();
    let mut opened = Vec::with_capacity(fresh.len());
    for f in &fresh {
        let o = OpenCall {
            site: f.site,
            start_ns: to_ns(l, scale, f.start),
        };
        match Py::new(py, o) {
            Ok(o) => opened.push(o),
            Err(err) => return err.write_unraisable(py, None),
        }
    }
    let starts: Vec<i64> = opened.iter().map(|o| o.get().start_ns).collect();
    let callback = l.callback.clone_ref(py);
    let pending = PyErr::take(py);
    let exception = match &pending {
        Some(err) if raised => Some(err.value(py).clone().into_any().unbind()),
        _ => None,
    };
    let slow = SlowCall {
        site: call.site,
        start_ns: to_ns(l, scale, call.start),
        end_ns: to_ns(l, scale, end),
        exception,
        span,
        parent,
        parent_start_ns,
        opened,
    };
    l.busy = true;
    let answer = callback.call1(py, (slow,));
    if let Some(l) = LISTENER.get_mut(py).as_mut() {
        l.busy = false;
        match answer {
            Ok(spans) => keep(py, l, stack, &fresh, &starts, spans.bind(py)),
            Err(err) => err.write_unraisable(py, None),
        }
    }
    if let Some(err) = pending {
        err.restore(py);
    }
}

/// Keep the spans the callback made for the calls in `fresh` (one answer per call; `None`
/// for a call it left without a span).
fn keep(
    py: Python<'_>,
    l: &mut Listener,
    stack: usize,
    fresh: &[&OpenFrame],
    starts: &[i64],
    spans: &Bound<'_, PyAny>,
) {
    let list = l.spanned.entry(stack).or_default();
    for (i, f) in fresh.iter().enumerate() {
        let Ok(span) = spans.get_item(i) else {
            // Fewer answers than calls: the rest keep no span.
            let _ = PyErr::take(py);
            break;
        };
        if span.is_none() {
            continue;
        }
        list.push(Spanned {
            depth: f.depth,
            node: f.node,
            start: f.start,
            start_ns: starts[i],
            span: span.unbind(),
        });
    }
}
