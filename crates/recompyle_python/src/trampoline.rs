//! The native trampoline every rewritten call goes through:
//! `__recompyle__(site_id, callee, *args, **kwargs)`.
//!
//! It is a builtin function (METH_FASTCALL | METH_KEYWORDS), so it pushes no Python frame:
//! `eval`, `locals()`, zero-argument `super()`, `sys._getframe()` and `warnings`' stack
//! levels, called through it, see the caller's own frame. Arguments are forwarded in
//! vectorcall layout, without building a tuple or dict. With nothing listening it costs one
//! load and one indirect call.

use std::ffi::CStr;
use std::sync::atomic::Ordering;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::events::CallEvent;
use crate::{clock, handlers, profiler, ACTIVE, HANDLERS, PROFILING};

const NAME: &CStr = c"__recompyle__";
const DOC: &CStr = c"__recompyle__(site_id, callee, /, *args, **kwargs)\n--\n\n\
Call callee(*args, **kwargs) on behalf of an instrumented call site, reporting it to the \
profiler and handlers. Inserted by recompyle's rewrite; not meant to be called by hand.";

/// Create the trampoline function object.
pub fn create(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let def = Box::leak(Box::new(ffi::PyMethodDef {
        ml_name: NAME.as_ptr(),
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunctionFastWithKeywords: trampoline,
        },
        ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
        ml_doc: DOC.as_ptr(),
    }));
    // SAFETY: `def` lives for the rest of the process; NULL self and module are allowed.
    unsafe {
        let f = ffi::PyCFunction_NewEx(def, std::ptr::null_mut(), std::ptr::null_mut());
        Bound::from_owned_ptr_or_err(py, f)
    }
}

unsafe extern "C" fn trampoline(
    _slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    if nargs < 2 {
        return bad_call();
    }
    let callee = *args.add(1);
    let rest = args.add(2);
    let n = (nargs - 2) as usize;
    let active = ACTIVE.load(Ordering::Relaxed);
    if active == 0 {
        return ffi::PyObject_Vectorcall(callee, rest, n, kwnames);
    }
    let site = ffi::PyLong_AsUnsignedLongLong(*args);
    if site == u64::MAX && !ffi::PyErr_Occurred().is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: a builtin function is only ever called with the GIL held.
    let py = Python::assume_attached();
    if active == PROFILING {
        let t0 = clock::ticks();
        let res = ffi::PyObject_Vectorcall(callee, rest, n, kwnames);
        let dt = clock::ticks().wrapping_sub(t0);
        profiler::record(py, site, dt, res.is_null());
        return res;
    }
    with_handlers(py, active, site, callee, rest, n, kwnames)
}

#[cold]
#[inline(never)]
unsafe fn bad_call() -> *mut ffi::PyObject {
    ffi::PyErr_SetString(
        ffi::PyExc_TypeError,
        c"__recompyle__() takes a site id and a callee, then the call's arguments".as_ptr(),
    );
    std::ptr::null_mut()
}

#[inline(never)]
unsafe fn with_handlers(
    py: Python<'_>,
    active: u8,
    site: u64,
    callee: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    n: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let profiling = active & PROFILING != 0;
    let registered = if active & HANDLERS != 0 && !handlers::in_handler() {
        handlers::snapshot(py)
    } else {
        None
    };
    let Some(registered) = registered else {
        // A handler is running on this thread: its own calls are neither reported nor timed.
        if handlers::in_handler() || !profiling {
            return ffi::PyObject_Vectorcall(callee, args, n, kwnames);
        }
        let t0 = clock::ticks();
        let res = ffi::PyObject_Vectorcall(callee, args, n, kwnames);
        profiler::record(py, site, clock::ticks().wrapping_sub(t0), res.is_null());
        return res;
    };
    let registered = registered.bind(py);
    let event = match make_event(py, site, callee, args, n, kwnames) {
        Ok(e) => e,
        Err(err) => {
            // Building the event failed (out of memory): report, and still make the call.
            err.write_unraisable(py, None);
            return ffi::PyObject_Vectorcall(callee, args, n, kwnames);
        }
    };
    handlers::run(py, registered, &event, false);
    let t0 = clock::ticks();
    let res = ffi::PyObject_Vectorcall(callee, args, n, kwnames);
    if profiling {
        profiler::record(py, site, clock::ticks().wrapping_sub(t0), res.is_null());
    }
    if res.is_null() {
        let Some(err) = PyErr::take(py) else {
            return res;
        };
        event
            .borrow_mut()
            .finish(None, Some(err.value(py).clone().into_any().unbind()));
        handlers::run(py, registered, &event, true);
        err.restore(py);
        res
    } else {
        event
            .borrow_mut()
            .finish(Some(Bound::from_borrowed_ptr(py, res).unbind()), None);
        handlers::run(py, registered, &event, true);
        res
    }
}

unsafe fn make_event<'py>(
    py: Python<'py>,
    site: u64,
    callee: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    n: usize,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Bound<'py, CallEvent>> {
    // Vectorcall layout: `n` positional values, then one value per name in `kwnames`.
    let nkw = if kwnames.is_null() {
        0
    } else {
        ffi::PyTuple_GET_SIZE(kwnames) as usize
    };
    let npos = n;
    let positional = (0..npos).map(|i| Bound::from_borrowed_ptr(py, *args.add(i)));
    let args_tuple = PyTuple::new(py, positional)?;
    let kwargs = PyDict::new(py);
    for i in 0..nkw {
        let key =
            Bound::from_borrowed_ptr(py, ffi::PyTuple_GET_ITEM(kwnames, i as ffi::Py_ssize_t));
        let value = Bound::from_borrowed_ptr(py, *args.add(npos + i));
        kwargs.set_item(key, value)?;
    }
    Bound::new(
        py,
        CallEvent::new(
            site,
            Bound::from_borrowed_ptr(py, callee).unbind(),
            args_tuple.unbind(),
            kwargs.unbind(),
        ),
    )
}
