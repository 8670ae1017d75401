//! Python handlers: registration, and calling them so that no handler can break the program.
//!
//! A handler that raises an `Exception` is reported once (a `HandlerWarning`, or the
//! unraisable hook when warnings are errors) and keeps being called. Any other
//! `BaseException` (`KeyboardInterrupt` from a signal handler that ran inside the handler,
//! `SystemExit` from `sys.exit()`, `GeneratorExit`) is the program's: it stops the dispatch and
//! the caller raises it at the call, as if the call had raised it. While a handler runs, instrumented calls it
//! makes on its thread go straight through, so a handler never sees its own calls.

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pyo3::exceptions::{PyException, PyRuntimeWarning};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::events::{CallEvent, GlobalEvent};
use crate::filter::CallFilter;
use crate::gil::GilCell;
use crate::listeners::{in_handler, set_in_handler, GLOBALS_LISTENING, HANDLERS};

pyo3::create_exception!(
    recompyle._core,
    HandlerWarning,
    PyRuntimeWarning,
    "A recompyle event handler raised; the program went on."
);

/// Registered callbacks: `before`/`after` around calls, `globals` for global reads and
/// writes of tracked modules. `remove()` unregisters it.
#[pyclass(module = "recompyle._core", frozen)]
pub struct Handler {
    before: Option<Py<PyAny>>,
    after: Option<Py<PyAny>>,
    globals: Option<Py<PyAny>>,
    /// Which calls `before`/`after` see (`callee=`, `module=`); all when `None`.
    filter: Option<CallFilter>,
    reported: AtomicBool,
    errors: AtomicU64,
}

/// Whether every registered handler with call callbacks has a filter (`set_registered`).
static ALL_FILTERED: AtomicBool = AtomicBool::new(false);

/// Whether a call selected at `site` (of `callee`, NULL when not known yet) with handlers
/// listening and the profiler not must be reported: false only when every handler has a
/// filter and none passes it, so the selector hands out the callee itself and the call
/// costs what it costs with nothing listening, plus the filters.
///
/// # Safety
/// The GIL is held, `callee` is NULL or a live object, and no exception is set.
#[inline(always)]
pub unsafe fn wants_selected(
    py: Python<'_>,
    site: *mut ffi::PyObject,
    callee: *mut ffi::PyObject,
) -> bool {
    unsafe {
        if !ALL_FILTERED.load(Ordering::Relaxed) {
            return true;
        }
        filtered_wants(py, site, callee)
    }
}

/// # Safety
/// The GIL is held, `site` is a live object, `callee` is NULL or a live object, and no
/// exception is set.
#[cold]
#[inline(never)]
unsafe fn filtered_wants(
    py: Python<'_>,
    site: *mut ffi::PyObject,
    callee: *mut ffi::PyObject,
) -> bool {
    unsafe {
        let Some(site) = crate::sites::id_of(site) else {
            ffi::PyErr_Clear();
            return true; // the proxy reports the bad id
        };
        match snapshot(py) {
            Some(registered) => wanted(py, &registered, site, callee).any(),
            None => false,
        }
    }
}

/// The registered handlers, replaced (never mutated) on change so a dispatch in progress
/// keeps the tuple it started with even if a handler adds or removes handlers.
static REGISTERED: GilCell<Option<Py<PyTuple>>> = GilCell::new(None);

fn set_registered(py: Python<'_>, handlers: Vec<Py<Handler>>) -> PyResult<()> {
    // Call sites pay for handlers with call callbacks only, global reads for those with a
    // `globals` callback only.
    let calls = handlers.iter().any(|h| {
        let h = h.get();
        h.before.is_some() || h.after.is_some()
    });
    let globals = handlers.iter().any(|h| h.get().globals.is_some());
    // Every call handler filtered: the selectors may skip the proxy for calls none wants.
    let filtered = handlers.iter().all(|h| {
        let h = h.get();
        h.filter.is_some() || (h.before.is_none() && h.after.is_none())
    });
    if handlers.is_empty() {
        *REGISTERED.get_mut(py) = None;
    } else {
        *REGISTERED.get_mut(py) = Some(PyTuple::new(py, handlers)?.unbind());
    }
    ALL_FILTERED.store(calls && filtered, Ordering::Relaxed);
    if calls {
        crate::listeners::switch(py, HANDLERS, 0);
    } else {
        crate::listeners::switch(py, 0, HANDLERS);
    }
    GLOBALS_LISTENING.store(globals, Ordering::Relaxed);
    Ok(())
}

fn registered(py: Python<'_>) -> Vec<Py<Handler>> {
    match REGISTERED.get(py) {
        Some(t) => t
            .bind(py)
            .iter()
            .filter_map(|h| h.cast_into::<Handler>().ok().map(Bound::unbind))
            .collect(),
        None => Vec::new(),
    }
}

#[pymethods]
impl Handler {
    /// Stop calling this handler. Removing twice is harmless.
    fn remove(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let kept = registered(py)
            .into_iter()
            .filter(|h| !h.bind(py).is(slf))
            .collect();
        set_registered(py, kept)
    }

    /// Whether the handler is registered.
    #[getter]
    fn active(slf: &Bound<'_, Self>) -> bool {
        registered(slf.py())
            .iter()
            .any(|h| h.bind(slf.py()).is(slf))
    }

    /// How many times a callback of this handler raised.
    #[getter]
    fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    #[getter]
    fn before(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.before.as_ref().map(|b| b.clone_ref(py))
    }

    #[getter]
    fn after(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.after.as_ref().map(|a| a.clone_ref(py))
    }

    #[getter]
    fn globals(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.globals.as_ref().map(|g| g.clone_ref(py))
    }
}

/// Handlers with a filter are the first this many registered: `Wanted` has a bit for each.
const MAX_FILTERED: usize = 64;

/// Register callbacks called as `before(event)` and `after(event)` around every
/// instrumented call, and `globals(event)` for every global read, write and deletion of a
/// tracked module. With `callee` (a callable, or a qualified name) and/or `module`
/// (patterns over the call site's module), `before`/`after` see only those calls.
/// Returns the `Handler`.
#[pyfunction]
#[pyo3(signature = (before = None, after = None, *, globals = None, callee = None, module = None))]
pub fn add_handler(
    py: Python<'_>,
    before: Option<Py<PyAny>>,
    after: Option<Py<PyAny>>,
    globals: Option<Py<PyAny>>,
    callee: Option<Bound<'_, PyAny>>,
    module: Option<&str>,
) -> PyResult<Py<Handler>> {
    for (name, cb) in [
        ("before", &before),
        ("after", &after),
        ("globals", &globals),
    ] {
        if let Some(cb) = cb {
            if !cb.bind(py).is_callable() {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "{name} must be callable, not {}",
                    cb.bind(py).get_type().name()?
                )));
            }
        }
    }
    if before.is_none() && after.is_none() && globals.is_none() {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "a handler needs a before, after or globals callback",
        ));
    }
    let filter = CallFilter::new(py, callee, module)?;
    let mut all = registered(py);
    if filter.is_some() && all.len() >= MAX_FILTERED {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "at most {MAX_FILTERED} handlers can be registered when one with a filter is added"
        )));
    }
    let handler = Py::new(
        py,
        Handler {
            before,
            after,
            globals,
            filter,
            reported: AtomicBool::new(false),
            errors: AtomicU64::new(0),
        },
    )?;
    all.push(handler.clone_ref(py));
    set_registered(py, all)?;
    Ok(handler)
}

/// The handlers registered now, in call order.
#[pyfunction]
pub fn handlers(py: Python<'_>) -> Vec<Py<Handler>> {
    registered(py)
}

/// The current handler tuple, if any. A `Bound`, not a `Py`: the per-call path runs without
/// pyo3's GIL count, where dropping a `Py` would queue its decref in pyo3's pool.
pub fn snapshot(py: Python<'_>) -> Option<Bound<'_, PyTuple>> {
    REGISTERED.get(py).as_ref().map(|t| t.bind(py).clone())
}

/// Which of the registered handlers want a call: bit `i` for handler `i`, which has a
/// `before` or `after` callback and whose filter (if any) passes the call; handlers past
/// `MAX_FILTERED` have no filter and want every call.
#[derive(Clone, Copy)]
pub struct Wanted {
    mask: u64,
    beyond: bool,
}

impl Wanted {
    pub const NONE: Wanted = Wanted {
        mask: 0,
        beyond: false,
    };

    /// Whether any handler wants the call (else it is made as if none were registered).
    pub fn any(self) -> bool {
        self.mask != 0 || self.beyond
    }

    fn has(self, i: usize) -> bool {
        i >= MAX_FILTERED || self.mask & (1 << i) != 0
    }
}

/// The handlers of `handlers` that want the call of `callee` at `site`.
///
/// # Safety
/// The GIL is held, `callee` is a live object and no exception is set.
pub unsafe fn wanted(
    py: Python<'_>,
    handlers: &Bound<'_, PyTuple>,
    site: u64,
    callee: *mut ffi::PyObject,
) -> Wanted {
    unsafe {
        let mut w = Wanted::NONE;
        for (i, item) in handlers.iter().enumerate() {
            let Ok(handler) = item.cast::<Handler>() else {
                continue;
            };
            let h = handler.get();
            if h.before.is_none() && h.after.is_none() {
                continue;
            }
            if i >= MAX_FILTERED {
                w.beyond = true;
            } else if h
                .filter
                .as_ref()
                .is_none_or(|f| f.selects(py, site, callee))
            {
                w.mask |= 1 << i;
            }
        }
        w
    }
}

/// Whether a handler `wanted` names has an `after` callback.
fn wants_after(handlers: &Bound<'_, PyTuple>, wanted: Wanted) -> bool {
    handlers.iter().enumerate().any(|(i, item)| {
        wanted.has(i)
            && item
                .cast::<Handler>()
                .is_ok_and(|h| h.get().after.is_some())
    })
}

/// The call is over: `event` gets its outcome (`Ok` the result, `Err` the exception it
/// raised), every `after` callback of the handlers `wanted` names runs, and the event is
/// released. Returns a callback's `BaseException` that is not an `Exception`, for the
/// caller to raise instead of the outcome.
pub fn finish_call(
    py: Python<'_>,
    handlers: &Bound<'_, PyTuple>,
    event: Bound<'_, CallEvent>,
    outcome: Result<Option<Bound<'_, PyAny>>, Bound<'_, PyAny>>,
    wanted: Wanted,
) -> PyResult<()> {
    let (result, exception) = match outcome {
        Ok(result) => (result.map(Bound::unbind), None),
        Err(exception) => (None, Some(exception.unbind())),
    };
    event.borrow_mut().finish(result, exception);
    let escaped = run(py, handlers, &event, true, wanted);
    CallEvent::release(event);
    escaped
}

/// The after-callbacks of a call whose outcome comes later than its return: an awaited
/// call, whose outcome is what its `await` gives (`crate::profiler::awaited` runs them
/// then).
pub struct After {
    /// Owned: the handlers registered when the call was made (those that saw `before`).
    handlers: Py<PyTuple>,
    /// Owned: the call's event, which no longer borrows the call's arguments.
    event: Py<CallEvent>,
    wanted: Wanted,
}

impl After {
    /// Keep `event` for the end of its call, when a handler `wanted` names has an `after`
    /// callback or a handler kept the event (it would see the result); else give it back.
    /// The event copies the call's arguments out of the interpreter's vector, which the
    /// call's return frees.
    pub fn defer<'py>(
        handlers: &Bound<'py, PyTuple>,
        event: Bound<'py, CallEvent>,
        wanted: Wanted,
    ) -> Result<After, Bound<'py, CallEvent>> {
        // SAFETY: a live object.
        let kept = unsafe { ffi::Py_REFCNT(event.as_ptr()) } > 1;
        if !kept && !wants_after(handlers, wanted) {
            return Err(event);
        }
        CallEvent::detach(&event);
        Ok(After {
            handlers: handlers.clone().unbind(),
            event: event.unbind(),
            wanted,
        })
    }

    /// The call is over with `outcome`: as [`finish_call`].
    pub fn run(
        self,
        py: Python<'_>,
        outcome: Result<Option<Bound<'_, PyAny>>, Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        // The await may end inside a handler (the collector closing an abandoned coroutine
        // while the handler allocates): its own calls stay unreported after these run.
        let was = in_handler();
        let handlers = self.handlers.into_bound(py);
        let event = self.event.into_bound(py);
        let escaped = finish_call(py, &handlers, event, outcome, self.wanted);
        set_in_handler(was);
        escaped
    }

    /// Drop the references now (the call never ended: no after-event).
    pub fn release(self, py: Python<'_>) {
        drop(self.handlers.into_bound(py));
        drop(self.event.into_bound(py));
    }

    /// Visit the objects held, for the collector's `tp_traverse`; stops at the first
    /// non-zero `visit` result and returns it.
    pub fn traverse(&self, mut visit: impl FnMut(*mut ffi::PyObject) -> c_int) -> c_int {
        for obj in [self.handlers.as_ptr(), self.event.as_ptr()] {
            let r = visit(obj);
            if r != 0 {
                return r;
            }
        }
        0
    }
}

/// Call the `before` (or `after`) callback of every handler `wanted` names with `event`.
/// An `Exception` is contained (the exception state of the caller is whatever it was
/// before); any other `BaseException` stops the dispatch and is returned, for the caller to
/// raise at the call.
pub fn run(
    py: Python<'_>,
    handlers: &Bound<'_, PyTuple>,
    event: &Bound<'_, CallEvent>,
    after: bool,
    wanted: Wanted,
) -> PyResult<()> {
    dispatch(py, handlers, event.as_any(), |i, h| {
        if !wanted.has(i) {
            None
        } else if after {
            h.after.as_ref()
        } else {
            h.before.as_ref()
        }
    })
}

/// Call every handler's `globals` callback with `event`; returns only a `BaseException`
/// that is not an `Exception`, as [`run`].
pub fn run_globals(
    py: Python<'_>,
    handlers: &Bound<'_, PyTuple>,
    event: &Bound<'_, GlobalEvent>,
) -> PyResult<()> {
    dispatch(py, handlers, event.as_any(), |_, h| h.globals.as_ref())
}

/// Call the callback `pick` chooses of every handler with `event`, with the thread's own
/// calls unreported meanwhile; a callback that raises an `Exception` is reported, not
/// propagated, and one that raises any other `BaseException` ends the dispatch with it.
fn dispatch(
    py: Python<'_>,
    handlers: &Bound<'_, PyTuple>,
    event: &Bound<'_, PyAny>,
    pick: impl Fn(usize, &Handler) -> Option<&Py<PyAny>>,
) -> PyResult<()> {
    set_in_handler(true);
    for (i, item) in handlers.iter().enumerate() {
        let Ok(handler) = item.cast::<Handler>() else {
            continue;
        };
        let h = handler.get();
        let Some(cb) = pick(i, h) else {
            continue;
        };
        // One positional argument; the slot before it is ours to lend (ARGUMENTS_OFFSET),
        // which lets a bound-method callback prepend its self without copying.
        let mut argv = [std::ptr::null_mut(), event.as_ptr()];
        // SAFETY: GIL held; `argv[1]` is a live object for the duration of the call.
        let res = unsafe {
            crate::unwind::vectorcall(
                cb.as_ptr(),
                argv.as_mut_ptr().add(1),
                1 | ffi::PY_VECTORCALL_ARGUMENTS_OFFSET,
                std::ptr::null_mut(),
            )
        };
        if res.is_null() {
            let err = PyErr::fetch(py);
            if !err.is_instance_of::<PyException>(py) {
                set_in_handler(false);
                return Err(err);
            }
            report(py, h, cb.bind(py), err);
        } else {
            // SAFETY: a new reference we do not need.
            unsafe { ffi::Py_DECREF(res) };
        }
    }
    set_in_handler(false);
    Ok(())
}

fn report(py: Python<'_>, handler: &Handler, cb: &Bound<'_, PyAny>, err: PyErr) {
    handler.errors.fetch_add(1, Ordering::Relaxed);
    if handler.reported.swap(true, Ordering::Relaxed) {
        return;
    }
    let message = format!(
        "recompyle: event handler {} raised {}{}; the program goes on, the handler stays \
         registered, and its further errors are not reported",
        cb.repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| "?".into()),
        err.value(py)
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| "?".into()),
        raised_at(py, &err),
    );
    let message = std::ffi::CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    let category = py.get_type::<HandlerWarning>();
    if let Err(warn_err) = PyErr::warn(py, &category, &message, 1) {
        // Warnings are errors here (-W error): the handler's error still must not escape.
        warn_err.write_unraisable(py, Some(cb));
    }
}

/// `" at FILE:LINE in FUNCTION"`, the innermost frame of `err`'s traceback (where the
/// handler's typo is), or nothing when there is no traceback to read.
fn raised_at(py: Python<'_>, err: &PyErr) -> String {
    let innermost = || -> PyResult<String> {
        let Some(mut tb) = err.traceback(py).map(Bound::into_any) else {
            return Ok(String::new());
        };
        loop {
            let next = tb.getattr("tb_next")?;
            if next.is_none() {
                break;
            }
            tb = next;
        }
        let code = tb.getattr("tb_frame")?.getattr("f_code")?;
        Ok(format!(
            " at {}:{} in {}",
            code.getattr("co_filename")?,
            tb.getattr("tb_lineno")?,
            code.getattr("co_name")?
        ))
    };
    innermost().unwrap_or_default()
}
