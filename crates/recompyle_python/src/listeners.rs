//! Who listens, in one place: the flags the per-call paths read to decide whether anything
//! but the call itself has to happen, the thread's "a handler is running" flag, and the
//! bounds on how deep calls through native code may nest.
//!
//! The flags are written where listeners come and go (`handlers.rs` registers handlers,
//! `profiler.rs` starts and stops the recording) and read, one relaxed atomic load each, by
//! the selectors (`selector.rs`) and the tracked namespaces (`tracked_globals.rs`). [`ACTIVE`]
//! changes only through [`switch`], which then mirrors "anything listens" into the builtin
//! the rewritten call sites test before calling a selector (`names::LISTENING`,
//! `__recompyle_on__`), and "the profiler alone listens, reported calls may nest deeper"
//! into the one that sites whose call `__recompyle_c__` makes test next
//! (`names::DIRECT_CALLS`, `__recompyle_c_on__`).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString};

use crate::gil::GilCell;

/// What the call-site selectors have to do besides calling: one load decides the fast path.
pub(crate) static ACTIVE: AtomicU8 = AtomicU8::new(0);
/// In [`ACTIVE`]: some handler has a `before` or `after` callback.
pub(crate) const HANDLERS: u8 = 1;
/// In [`ACTIVE`]: the profiler records.
pub(crate) const PROFILING: u8 = 2;
/// In [`ACTIVE`], with [`PROFILING`]: also the calling-context tree.
pub(crate) const TREE: u8 = 4;

/// The builtins dict and the interned names the flags are published under
/// (`names::LISTENING`, `names::DIRECT_CALLS`).
struct Flags {
    builtins: Py<PyDict>,
    names: [Py<PyString>; 2],
}

static FLAG: GilCell<Option<Flags>> = GilCell::new(None);

/// Whether a call site has to ask its selector: something may listen. Per-thread reasons
/// not to report (a handler running, the nesting bound) are the selector's to check.
#[inline(always)]
pub(crate) fn sites_on() -> bool {
    ACTIVE.load(Ordering::Relaxed) != 0
}

/// Whether `__recompyle_c__` may make the calls of the sites written for it
/// (`names::DIRECT_CALLS`): only the profiler listens, and reported calls may nest deeper.
/// Otherwise a handler listens (its own calls, unreported, must not each add a native
/// frame) or reported calls nest as deep as they may, and those sites ask their selector,
/// which decides per call and leaves an unreported call to the interpreter.
pub(crate) fn direct_calls_on(py: Python<'_>) -> bool {
    let active = ACTIVE.load(Ordering::Relaxed);
    active != 0 && active & HANDLERS == 0 && REPORTED_CALLS.has_room(py)
}

/// Put the flags into `builtins` (the interpreter's builtins dict) and keep them current.
pub(crate) fn install_flag(py: Python<'_>, builtins: &Bound<'_, PyDict>) {
    let names = [
        PyString::intern(py, recompyle_transform::names::LISTENING).unbind(),
        PyString::intern(py, recompyle_transform::names::DIRECT_CALLS).unbind(),
    ];
    *FLAG.get_mut(py) = Some(Flags {
        builtins: builtins.clone().unbind(),
        names,
    });
    publish(py);
}

/// Turn the `on` bits of [`ACTIVE`] on and its `off` bits off, then [`publish`] the flag: the
/// one way listeners come and go, so the call sites' flag never lags behind `ACTIVE`.
pub(crate) fn switch(py: Python<'_>, on: u8, off: u8) {
    ACTIVE.fetch_and(!off, Ordering::Relaxed);
    ACTIVE.fetch_or(on, Ordering::Relaxed);
    publish(py);
}

/// Make the builtin flags say what [`sites_on`] and [`direct_calls_on`] say; [`switch`]
/// calls this, with the GIL held, before any call site may run again, and so do reported
/// calls whose nesting reaches or leaves the bound. Rewritten code runs the selector only
/// while the flag is `True`: a flag left `False` while something listens would lose calls,
/// so it is written whenever it differs from the builtins' current value (a program or
/// finalization's restore of the builtins may have replaced it).
///
/// The value is replaced in place (the key stays): CPython 3.11+'s specialised
/// LOAD_GLOBAL_BUILTIN reads the value through its cached index, which a value change keeps
/// valid; 3.9/3.10's opcache misses once, on the dict's new version.
fn publish(py: Python<'_>) {
    let Some((builtins, names)) = FLAG.get(py).as_ref().map(|f| {
        let names = f.names.each_ref().map(|n| n.clone_ref(py));
        (f.builtins.clone_ref(py), names)
    }) else {
        return;
    };
    let builtins = builtins.bind(py);
    for (name, on) in names.iter().zip([sites_on(), direct_calls_on(py)]) {
        let (name, value) = (name.bind(py), PyBool::new(py, on));
        if let Ok(Some(current)) = builtins.get_item(name) {
            if current.is(&*value) {
                continue;
            }
        }
        // Replacing the value of a key the dict holds allocates nothing; should it fail all
        // the same, the error is reported, not raised into the listener's set-up.
        if let Err(err) = builtins.set_item(name, value) {
            err.write_unraisable(py, None);
        }
    }
}

/// Set while some handler has a `globals` callback: tracked namespaces report reads and
/// writes.
pub(crate) static GLOBALS_LISTENING: AtomicBool = AtomicBool::new(false);

thread_local! {
    static IN_HANDLER: Cell<bool> = const { Cell::new(false) };
}

/// Whether a handler is running on this thread (its own calls are not reported).
pub(crate) fn in_handler() -> bool {
    IN_HANDLER.with(Cell::get)
}

/// Mark this thread as running handlers (`true`) or not.
pub(crate) fn set_in_handler(running: bool) {
    IN_HANDLER.with(|flag| flag.set(running));
}

/// Run `f` with this thread's calls unreported, as a handler's are: for Python code that
/// recompyle itself runs (a callee's `__qualname__` property, asked by a filter).
pub(crate) fn unreported<T>(f: impl FnOnce() -> T) -> T {
    let was = IN_HANDLER.with(|flag| flag.replace(true));
    let result = f();
    set_in_handler(was);
    result
}

/// How deep calls of one native path may nest. One count for all threads (GIL-guarded, no
/// thread-local lookup on the per-call path): it is never less than any one thread's
/// nesting, so the bound holds per thread too.
pub(crate) struct DepthLimit {
    depth: GilCell<Cell<u32>>,
    limit: u32,
    /// Reaching the limit and leaving it again changes a flag ([`direct_calls_on`]).
    publishes: bool,
}

/// Reported calls in progress (`selector.rs`), each a native frame on some thread's C
/// stack. A proxy calls its callee from C, so each nested reported call also nests a C call
/// of the interpreter; plain 3.11+ code recurses without using the C stack, and a program
/// that works under a raised recursion limit must not overflow it because it is profiled.
/// 3.12 also counts each such C call against its C recursion limit (1500 units, two per
/// call; 500 in debug builds). Deeper calls run unreported and untimed, exactly as without
/// listeners, but the profiler still counts them (`profiler::count_untimed`): a report
/// never undercounts.
pub(crate) static REPORTED_CALLS: DepthLimit = DepthLimit::new(200, true);

/// Calls through rewritten functions' selectors (`function_sites.rs`): each is a native
/// call, where plain 3.11+ code recurses without one; deeper ones raise `RecursionError`.
pub(crate) static WRAPPED_CALLS: DepthLimit = DepthLimit::new(4000, false);

impl DepthLimit {
    const fn new(limit: u32, publishes: bool) -> Self {
        DepthLimit {
            depth: GilCell::new(Cell::new(0)),
            limit,
            publishes,
        }
    }

    /// Whether another call may nest.
    #[inline(always)]
    pub(crate) fn has_room(&self, py: Python<'_>) -> bool {
        self.depth.get(py).get() < self.limit
    }

    /// Count a call in until the guard is dropped.
    #[inline(always)]
    pub(crate) fn enter<'a>(&'a self, py: Python<'a>) -> CallDepth<'a> {
        let depth = self.depth.get(py);
        let now = depth.get() + 1;
        depth.set(now);
        if self.publishes && now == self.limit {
            publish_keeping_error(py);
        }
        CallDepth { limit: self, py }
    }
}

/// [`publish`] while the caller may have an exception set (a call that raised is counted
/// out): the flag's lookups and store neither see nor lose it.
#[cold]
#[inline(never)]
fn publish_keeping_error(py: Python<'_>) {
    let pending = PyErr::take(py);
    publish(py);
    if let Some(err) = pending {
        err.restore(py);
    }
}

/// A call counted in its [`DepthLimit`], counted out when dropped.
#[must_use]
pub(crate) struct CallDepth<'a> {
    limit: &'a DepthLimit,
    py: Python<'a>,
}

impl Drop for CallDepth<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        let depth = self.limit.depth.get(self.py);
        let was = depth.get();
        depth.set(was - 1);
        if self.limit.publishes && was == self.limit.limit {
            publish_keeping_error(self.py);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreported_restores_the_flag() {
        assert!(!in_handler());
        unreported(|| {
            assert!(in_handler());
            unreported(|| assert!(in_handler()));
            assert!(in_handler());
        });
        assert!(!in_handler());
    }
}
