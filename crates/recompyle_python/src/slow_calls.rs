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
//! per stack beside the frames they belong to (an awaited call's by the call, since its
//! frame comes and goes with the steps of its work): each is handed back when its call
//! ends, which happens through [`ended`] too, since a call is never shorter than a call it
//! contains.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::ffi;
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
    /// Its site is the operand of `await`: on a stack only during each step of the awaited
    /// work (with the call's own start).
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
    /// Per stack (its address), the spans of its open calls, outermost first (awaited
    /// calls apart).
    spanned: HashMap<usize, Vec<Spanned>>,
    /// The spans of open awaited calls, by node and start: such a call is on a stack only
    /// during each step of its work, at whatever depth the step runs, and the steps of
    /// other tasks come between.
    awaited: HashMap<(NodeId, u64), Spanned>,
}

static LISTENER: GilCell<Option<Listener>> = GilCell::new(None);

thread_local! {
    /// The callback is running on this thread: calls it makes are not reported. Per thread,
    /// as the callback may release the GIL (an exporter's lock or I/O), and a slow call
    /// another thread ends meanwhile is reported then, not lost.
    static REPORTING: Cell<bool> = const { Cell::new(false) };
}

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
    /// The object called (a function, a method's function, a class, ...), or `None`.
    pub callee: Option<Py<PyAny>>,
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
/// `callback=None` stops. The profiler must be recording its tree for calls to be seen. A
/// new callback (or minimum) keeps the spans of the calls still running: they are handed
/// to it when those calls end.
#[pyfunction]
#[pyo3(signature = (callback, min_ns = 0))]
pub fn slow_calls_listen(py: Python<'_>, callback: Option<Py<PyAny>>, min_ns: u64) {
    let mut old = std::mem::take(LISTENER.get_mut(py));
    match callback {
        None => MIN_TICKS.store(u64::MAX, Ordering::Relaxed),
        Some(callback) => {
            clock::start();
            let scale = clock::ns_per_tick_cached();
            let ticks = ((min_ns as f64 / scale) as u64).min(u64::MAX - 1);
            let (spanned, awaited) = match old.as_mut() {
                Some(l) => (
                    std::mem::take(&mut l.spanned),
                    std::mem::take(&mut l.awaited),
                ),
                None => (HashMap::new(), HashMap::new()),
            };
            *LISTENER.get_mut(py) = Some(Listener {
                callback,
                spanned,
                awaited,
            });
            MIN_TICKS.store(ticks, Ordering::Relaxed);
        }
    }
    // Dropped last: a span's finalizer may run Python code.
    drop(old);
}

/// Ticks to epoch nanoseconds, from a tick and the epoch time read together just now: the
/// error of the tick rate's estimate grows with the distance from that anchor, which is a
/// call's length, not the time since recording began.
struct Anchor {
    tick: u64,
    ns: i64,
    scale: f64,
}

impl Anchor {
    fn now() -> Anchor {
        let scale = clock::ns_per_tick_cached();
        Anchor {
            tick: clock::ticks(),
            ns: epoch_ns(),
            scale,
        }
    }

    fn ns(&self, tick: u64) -> i64 {
        let delta = tick.wrapping_sub(self.tick) as i64 as f64 * self.scale;
        self.ns + delta.round() as i64
    }
}

/// The call `call` ended at `end` (tick) on the stack keyed `stack` (popped from it), with
/// `open` the frames still on that stack (root excluded, outermost first).
///
/// If `raised`, the call's exception is the one set; it is set again afterwards.
///
/// # Safety
/// `callee` is NULL or a live object for the length of this call (borrowed).
#[cold]
#[inline(never)]
pub unsafe fn ended(
    py: Python<'_>,
    stack: usize,
    call: OpenFrame,
    open: Vec<OpenFrame>,
    end: u64,
    raised: bool,
    callee: *mut ffi::PyObject,
) {
    if REPORTING.get() {
        return;
    }
    let Some(l) = LISTENER.get_mut(py).as_mut() else {
        return;
    };
    // From here on, Python code that runs on this thread (a span's finalizer, the callback)
    // and makes calls of its own does not come back in.
    REPORTING.set(true);
    let anchor = Anchor::now();
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
    let span = if call.awaited {
        l.awaited.remove(&(call.node, call.start)).map(|s| s.span)
    } else {
        let own = rest
            .first()
            .is_some_and(|s| s.depth == call.depth && s.node == call.node && s.start == call.start);
        own.then(|| rest.remove(0).span)
    };
    // The nearest enclosing call with a span, and the calls inside it without one.
    let mut parent = None;
    let mut parent_start_ns = 0;
    let mut deepest = 0;
    for f in open.iter().rev() {
        let found = if f.awaited {
            l.awaited.get(&(f.node, f.start))
        } else {
            list.iter().find(|s| s.depth == f.depth)
        };
        if let Some(s) = found {
            parent = Some(s.span.clone_ref(py));
            parent_start_ns = s.start_ns;
            deepest = f.depth;
            break;
        }
    }
    // Dropped once `list` is no longer used: a span's finalizer may run Python code, which
    // may release the GIL to another thread reporting its own calls.
    drop(rest);
    let fresh: Vec<&OpenFrame> = open.iter().filter(|f| f.depth > deepest).collect();
    let mut opened = Vec::with_capacity(fresh.len());
    for f in &fresh {
        let o = OpenCall {
            site: f.site,
            start_ns: anchor.ns(f.start),
        };
        match Py::new(py, o) {
            Ok(o) => opened.push(o),
            Err(err) => {
                REPORTING.set(false);
                return err.write_unraisable(py, None);
            }
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
        start_ns: anchor.ns(call.start),
        end_ns: anchor.ns(end),
        // SAFETY: `callee` is live or NULL for the length of this call (the caller's
        // contract); the record takes its own reference.
        callee: unsafe { Bound::from_borrowed_ptr_or_opt(py, callee) }.map(Bound::unbind),
        exception,
        span,
        parent,
        parent_start_ns,
        opened,
    };
    let answer = callback.call1(py, (slow,));
    REPORTING.set(false);
    // Looked up again: while the callback ran, other threads may have reported theirs or
    // stopped listening.
    if let Some(l) = LISTENER.get_mut(py).as_mut() {
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
    for (i, f) in fresh.iter().enumerate() {
        let Ok(span) = spans.get_item(i) else {
            // Fewer answers than calls: the rest keep no span.
            let _ = PyErr::take(py);
            break;
        };
        if span.is_none() {
            continue;
        }
        let kept = Spanned {
            depth: f.depth,
            node: f.node,
            start: f.start,
            start_ns: starts[i],
            span: span.unbind(),
        };
        if f.awaited {
            l.awaited.insert((f.node, f.start), kept);
        } else {
            l.spanned.entry(stack).or_default().push(kept);
        }
    }
}
