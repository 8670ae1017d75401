//! Ending an awaited call (`await f(x)`) when its result is ready, not when it returns.
//!
//! A call the rewrite marked as the operand of `await` whose result is awaitable returns an
//! [`Awaited`] around that result instead of ending there, when the profiler keeps the tree
//! (the call's record, [`Pending`]) or when handlers with an `after` callback want the call
//! (their [`After`]). `await` asks it for its iterator (itself, having asked the result for
//! its own, with CPython's checks and messages), and every step the awaiting coroutine takes
//! through it (`send`, `__next__`, `throw`, `close`) is forwarded unchanged, with the call's
//! node pushed on the running task's stack for the step: calls the awaited work makes are its
//! children, whichever other tasks run meanwhile (they have stacks of their own). When a step
//! returns the result or raises, the call ends: its time is from the call to then, the wall
//! time the caller waited, suspensions included, and the after-handlers see what the `await`
//! gives: the value, or the exception (`CancelledError` included; `GeneratorExit` when the
//! awaiting coroutine is closed before the result).
//!
//! The program sees the same values, exceptions and cancellation; introspection of the
//! awaiting coroutine's `cr_await` shows this object rather than the awaited one.

use std::ffi::{c_int, c_void, CStr};
use std::ptr::null_mut;
use std::sync::OnceLock;

use pyo3::exceptions::{PyGeneratorExit, PyStopIteration};
use pyo3::ffi;
use pyo3::prelude::*;

use super::{finish_awaited, resume, suspend, Pending};
use crate::cpython::{slot, TypePtr};
use crate::gil::GilCell;
use crate::handlers::After;

/// An awaited call in progress: the awaitable it returned and who waits for its end.
#[repr(C)]
pub struct Awaited {
    ob_base: ffi::PyObject,
    /// Owned: what the call returned.
    inner: *mut ffi::PyObject,
    /// Owned: `inner`'s iterator, once `await` asked for it; NULL before.
    iter: *mut ffi::PyObject,
    /// The profiler's record of the call, when the tree is kept; taken when the call ends.
    pending: Option<Pending>,
    /// The after-handlers waiting for the call's outcome; taken when the call ends.
    after: Option<After>,
}

static TYPE: OnceLock<TypePtr> = OnceLock::new();

/// Create the type (once, at module init).
pub fn init(py: Python<'_>) -> PyResult<()> {
    if TYPE.get().is_some() {
        return Ok(());
    }
    let methods = Box::leak(Box::new([
        method(c"send", awaited_send as *mut c_void, ffi::METH_O),
        method(c"throw", awaited_throw as *mut c_void, ffi::METH_VARARGS),
        method(c"close", awaited_close as *mut c_void, ffi::METH_NOARGS),
        ffi::PyMethodDef::zeroed(),
    ]));
    let mut slots = vec![
        slot(ffi::Py_tp_dealloc, awaited_dealloc as *mut c_void),
        slot(ffi::Py_tp_traverse, awaited_traverse as *mut c_void),
        slot(ffi::Py_tp_clear, awaited_clear as *mut c_void),
        slot(ffi::Py_tp_iter, awaited_iter as *mut c_void),
        slot(ffi::Py_tp_iternext, awaited_next as *mut c_void),
        slot(ffi::Py_tp_methods, methods.as_mut_ptr().cast()),
        slot(ffi::Py_tp_repr, awaited_repr as *mut c_void),
        slot(ffi::Py_am_await, awaited_await as *mut c_void),
    ];
    #[cfg(Py_3_10)]
    slots.push(slot(ffi::Py_am_send, awaited_am_send as *mut c_void));
    slots.push(slot(0, null_mut()));
    let slots = Box::leak(slots.into_boxed_slice());
    let spec = Box::leak(Box::new(ffi::PyType_Spec {
        name: c"recompyle._core.AwaitedCall".as_ptr(),
        basicsize: std::mem::size_of::<Awaited>() as c_int,
        itemsize: 0,
        // Collected: the awaiting coroutine's frame holds this object, which holds the
        // awaited coroutine, whose frame may hold the task that runs the first.
        flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_HAVE_GC) as std::ffi::c_uint,
        slots: slots.as_mut_ptr(),
    }));
    // SAFETY: the spec and everything it points to are leaked, so live forever.
    let t = unsafe { ffi::PyType_FromSpec(spec) };
    if t.is_null() {
        return Err(PyErr::fetch(py));
    }
    let _ = TYPE.set(TypePtr(t.cast()));
    Ok(())
}

fn method(name: &'static CStr, f: *mut c_void, flags: c_int) -> ffi::PyMethodDef {
    ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        // SAFETY: every function here has the C signature its flags say.
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunction: unsafe { std::mem::transmute::<*mut c_void, ffi::PyCFunction>(f) },
        },
        ml_flags: flags,
        ml_doc: std::ptr::null(),
    }
}

/// Whether `obj` can be awaited: through its type's `__await__` slot (coroutines, futures,
/// tasks, objects defining `__await__`), or a generator-based coroutine
/// (`types.coroutine`). Those are the results wrapped.
///
/// # Safety
/// The GIL is held, no error is set, and `obj` is a live object.
#[inline(always)]
pub unsafe fn awaitable(obj: *mut ffi::PyObject) -> bool {
    // SAFETY: as this function's contract.
    unsafe { awaitable_if(obj, || true) }
}

/// [`awaitable`] `&& at_await()`, asking the generator's code (an attribute lookup) only
/// when `at_await()` holds: calls that create generators pay one type check.
///
/// # Safety
/// The GIL is held, no error is set, and `obj` is a live object.
#[inline(always)]
pub unsafe fn awaitable_if(obj: *mut ffi::PyObject, at_await: impl FnOnce() -> bool) -> bool {
    // SAFETY: a live object's type is a live type object, its `tp_as_async` NULL or valid.
    unsafe {
        let asy = (*ffi::Py_TYPE(obj)).tp_as_async;
        if !asy.is_null() && (*asy).am_await.is_some() {
            return at_await();
        }
        ffi::PyGen_CheckExact(obj) != 0 && at_await() && iterable_coroutine(obj)
    }
}

/// Whether the site `site` is the operand of `await` (`Site::awaited`), for callers that
/// have no profiler entry to ask: the site table's answer, remembered by site id in a small
/// direct-mapped cache, as calls returning generators ask it at every site.
pub fn site_is_awaited(py: Python<'_>, site: u64) -> bool {
    const SLOTS: usize = 256;
    /// `(site id, awaited)`; `u64::MAX` marks an empty slot.
    static CACHE: GilCell<[(u64, bool); SLOTS]> = GilCell::new([(u64::MAX, false); SLOTS]);
    let slot = ((site ^ (site >> 32)) as usize) % SLOTS;
    let (id, awaited) = CACHE.get(py)[slot];
    if id == site {
        return awaited;
    }
    let Some((module, index)) = crate::sites::lookup(site) else {
        return false;
    };
    let awaited = module.sites[index].awaited;
    CACHE.get_mut(py)[slot] = (site, awaited);
    awaited
}

/// Whether the generator `obj` is a coroutine (`types.coroutine`'s
/// `CO_ITERABLE_COROUTINE`), which `await` takes as its own iterator.
///
/// # Safety
/// The GIL is held, no error is set, and `obj` is a live generator.
#[cold]
#[inline(never)]
unsafe fn iterable_coroutine(obj: *mut ffi::PyObject) -> bool {
    // SAFETY: as the contract says; a generator's and a code object's attributes run no
    // Python code.
    let gen = unsafe { Bound::from_borrowed_ptr(Python::assume_attached(), obj) };
    let flags = gen
        .getattr(pyo3::intern!(gen.py(), "gi_code"))
        .and_then(|code| code.getattr(pyo3::intern!(gen.py(), "co_flags")))
        .and_then(|flags| flags.extract::<c_int>());
    flags.is_ok_and(|flags| flags & ffi::CO_ITERABLE_COROUTINE != 0)
}

/// What the caller of an awaited call gets for `inner` (a new reference, taken over, to an
/// [`awaitable`] result): an `AwaitedCall` that ends the call for `pending` and `after` when
/// the awaited result is ready. If that object cannot be made, the call ends now with
/// `inner` as its result, which is returned (NULL, `inner` released, if an after-handler
/// raised a `BaseException`, then set as the error).
///
/// # Safety
/// The GIL must be held, no exception set, and `inner` a live, [`awaitable`] object.
pub unsafe fn wrap(
    py: Python<'_>,
    inner: *mut ffi::PyObject,
    pending: Option<Pending>,
    after: Option<After>,
) -> *mut ffi::PyObject {
    // SAFETY: the GIL is held; the allocation is of our own type, zeroed and GC-tracked by
    // `PyType_GenericAlloc`, and each field is written once before anyone reads it.
    unsafe {
        let obj = match TYPE.get() {
            Some(tp) => ffi::PyType_GenericAlloc(tp.0, 0),
            None => null_mut(),
        };
        if obj.is_null() {
            ffi::PyErr_Clear();
            if end(py, pending, after, inner, false) {
                return inner;
            }
            ffi::Py_DECREF(inner);
            return null_mut();
        }
        let a = obj.cast::<Awaited>();
        std::ptr::write(&raw mut (*a).inner, inner);
        std::ptr::write(&raw mut (*a).iter, null_mut());
        std::ptr::write(&raw mut (*a).pending, pending);
        std::ptr::write(&raw mut (*a).after, after);
        obj
    }
}

/// The call is over: the profiler's record ends, then the after-handlers run with what the
/// `await` gave: `returned` (borrowed) when not NULL, else what the error state holds
/// (`StopIteration`'s value, no error: None, another exception); `closed` when the awaiting
/// coroutine closed it first (`GeneratorExit`, unless closing raised). The error state is
/// left as it was. `false`: an after-handler raised a `BaseException`, now the error state
/// in place of the outcome, which the caller must give instead (releasing its result).
///
/// # Safety
/// The GIL is held; `returned` is NULL or a live object.
unsafe fn end(
    py: Python<'_>,
    pending: Option<Pending>,
    after: Option<After>,
    returned: *mut ffi::PyObject,
    closed: bool,
) -> bool {
    if let Some(pending) = &pending {
        // SAFETY: the GIL is held.
        let raised = closed || (returned.is_null() && unsafe { ended_by_error() });
        finish_awaited(py, pending, raised);
    }
    let Some(after) = after else {
        return true;
    };
    if !returned.is_null() && !closed {
        // SAFETY: a live object, borrowed for the call.
        let value = unsafe { Bound::from_borrowed_ptr(py, returned) };
        return after
            .run(py, Ok(Some(value)))
            .map_err(|e| e.restore(py))
            .is_ok();
    }
    // The handlers run without the error set, which is put back as it was after them.
    let err = PyErr::take(py);
    let outcome = match &err {
        None if closed => Err(PyGeneratorExit::new_err(()).into_value(py).into_bound(py)),
        None => Ok(None),
        Some(e) if !closed && e.is_instance_of::<PyStopIteration>(py) => {
            Ok(e.value(py).getattr(pyo3::intern!(py, "value")).ok())
        }
        Some(e) => Err(e.value(py).clone()),
    };
    let outcome = outcome.map_err(Bound::into_any);
    match after.run(py, outcome) {
        Ok(()) => {
            if let Some(err) = err {
                err.restore(py);
            }
            true
        }
        Err(escaped) => {
            escaped.restore(py);
            false
        }
    }
}

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_traverse(
    obj: *mut ffi::PyObject,
    visit: ffi::visitproc,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: as the contract says; every pointer visited is a reference this object owns.
    unsafe {
        let a = obj.cast::<Awaited>();
        for o in [(*a).inner, (*a).iter] {
            if !o.is_null() {
                let r = visit(o, arg);
                if r != 0 {
                    return r;
                }
            }
        }
        if let Some(after) = &(*a).after {
            let r = after.traverse(|o| visit(o, arg));
            if r != 0 {
                return r;
            }
        }
        // Heap types' instances own a reference to their type (3.9+).
        visit(ffi::Py_TYPE(obj).cast(), arg)
    }
}

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_clear(obj: *mut ffi::PyObject) -> c_int {
    // SAFETY: as the contract says; each field is taken out before its reference is
    // released, so code run by a release sees the object cleared.
    unsafe {
        let a = obj.cast::<Awaited>();
        for field in [&mut (*a).inner, &mut (*a).iter] {
            let o = std::mem::replace(field, null_mut());
            if !o.is_null() {
                ffi::Py_DECREF(o);
            }
        }
        // A call that never ended (its awaiting coroutine was dropped without being
        // closed) gets no after-event: no Python code runs from the collector here.
        if let Some(after) = (*a).after.take() {
            after.release(Python::assume_attached());
        }
        (*a).pending = None;
    }
    0
}

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_dealloc(obj: *mut ffi::PyObject) {
    // SAFETY: as the contract says; the object is untracked before it is cleared, and its
    // memory freed by its type's `tp_free`.
    unsafe {
        let tp = ffi::Py_TYPE(obj);
        ffi::PyObject_GC_UnTrack(obj.cast());
        awaited_clear(obj);
        if let Some(free) = (*tp).tp_free {
            free(obj.cast());
        }
        ffi::Py_DECREF(tp.cast());
    }
}

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_repr(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: as the contract says; `inner` is NULL or a live reference the object owns.
    unsafe {
        let inner = (*obj.cast::<Awaited>()).inner;
        if inner.is_null() {
            return ffi::PyUnicode_FromString(c"<recompyle awaited call (cleared)>".as_ptr());
        }
        ffi::PyObject_Repr(inner)
    }
}

/// Set when the collector cleared the object while something still steps it.
///
/// # Safety
/// The GIL is held.
#[cold]
unsafe fn cleared() {
    // SAFETY: the GIL is held; the arguments are a static type and string.
    unsafe {
        ffi::PyErr_SetString(
            ffi::PyExc_RuntimeError,
            c"recompyle: awaited call used after it was collected".as_ptr(),
        );
    }
}

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_iter(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: a live object.
    unsafe { ffi::Py_INCREF(obj) };
    obj
}

/// A type's name as CPython's `%T` formats it (`module.Qualname`, the module left out for
/// builtins and `__main__`); an empty string if it cannot be had.
///
/// # Safety
/// The GIL is held and `tp` is a live type object.
#[cfg(Py_3_15)]
unsafe fn fully_qualified_name(tp: *mut ffi::PyTypeObject) -> String {
    // SAFETY: the GIL is held and `tp` live; the UTF-8 buffer is the string's, read while
    // the string is alive.
    unsafe {
        let name = ffi::PyType_GetFullyQualifiedName(tp);
        if name.is_null() {
            ffi::PyErr_Clear();
            return String::new();
        }
        let mut size: ffi::Py_ssize_t = 0;
        let utf8 = ffi::PyUnicode_AsUTF8AndSize(name, &mut size);
        let text = if utf8.is_null() {
            ffi::PyErr_Clear();
            String::new()
        } else {
            String::from_utf8_lossy(std::slice::from_raw_parts(utf8.cast::<u8>(), size as usize))
                .into_owned()
        };
        ffi::Py_DECREF(name);
        text
    }
}

/// # Safety
/// The GIL is held.
unsafe fn set_type_error(message: &str) {
    let text = std::ffi::CString::new(message).unwrap_or_default();
    // SAFETY: the GIL is held; `text` outlives the call, which copies it.
    unsafe { ffi::PyErr_SetString(ffi::PyExc_TypeError, text.as_ptr()) };
}

/// `inner`'s iterator as `await` would get it (a coroutine is its own; CPython's errors
/// otherwise): a new reference, or NULL with the error set.
///
/// # Safety
/// The GIL is held and `inner` is a live, [`awaitable`] object.
unsafe fn await_iter(inner: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: the GIL is held and `inner` live; every object made here is released or
    // returned.
    unsafe {
        if ffi::PyGen_CheckExact(inner) != 0 {
            // A generator-based coroutine (only those are wrapped) is its own iterator.
            ffi::Py_INCREF(inner);
            return inner;
        }
        if ffi::PyCoro_CheckExact(inner) != 0 {
            let yf = ffi::PyObject_GetAttrString(inner, c"cr_await".as_ptr());
            if yf.is_null() {
                ffi::PyErr_Clear();
            } else {
                let busy = yf != ffi::Py_None();
                ffi::Py_DECREF(yf);
                if busy {
                    ffi::PyErr_SetString(
                        ffi::PyExc_RuntimeError,
                        c"coroutine is being awaited already".as_ptr(),
                    );
                    return null_mut();
                }
            }
            ffi::Py_INCREF(inner);
            return inner;
        }
        let asy = (*ffi::Py_TYPE(inner)).tp_as_async;
        let Some(get) = (if asy.is_null() { None } else { (*asy).am_await }) else {
            set_type_error("recompyle: the awaited object lost its __await__");
            return null_mut();
        };
        let res = get(inner);
        if res.is_null() {
            return null_mut();
        }
        let is_coro = ffi::PyCoro_CheckExact(res) != 0;
        if is_coro || ffi::PyIter_Check(res) == 0 {
            // CPython's own wording, which 3.15 changed.
            #[cfg(Py_3_15)]
            {
                let _ = is_coro;
                let owner = fully_qualified_name(ffi::Py_TYPE(inner));
                let got = fully_qualified_name(ffi::Py_TYPE(res));
                ffi::Py_DECREF(res);
                set_type_error(&format!(
                    "{owner}.__await__() must return an iterator, not {got}"
                ));
            }
            #[cfg(not(Py_3_15))]
            {
                let name = CStr::from_ptr((*ffi::Py_TYPE(res)).tp_name).to_string_lossy();
                let name: String = name.chars().take(100).collect();
                ffi::Py_DECREF(res);
                if is_coro {
                    set_type_error("__await__() returned a coroutine");
                } else {
                    set_type_error(&format!(
                        "__await__() returned non-iterator of type '{name}'"
                    ));
                }
            }
            return null_mut();
        }
        res
    }
}

/// `__await__`: the inner object's iterator, then this object, which forwards to it. If
/// getting the iterator raises, the `await` raised: the call ends with that error.
///
/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_await(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: as the contract says; `inner` is NULL or a live reference the object owns.
    unsafe {
        let a = obj.cast::<Awaited>();
        if (*a).iter.is_null() {
            let inner = (*a).inner;
            if inner.is_null() {
                cleared();
                return null_mut();
            }
            let iter = await_iter(inner);
            if iter.is_null() {
                finish(obj, null_mut(), false);
                return null_mut();
            }
            (*a).iter = iter;
        }
        ffi::Py_INCREF(obj);
        obj
    }
}

/// End the call of `obj` if it has not ended yet (see [`end`]); `false` if an
/// after-handler's `BaseException` replaced the outcome (now the error state).
///
/// # Safety
/// The GIL is held, `obj` is a live `AwaitedCall` and `returned` NULL or a live object.
unsafe fn finish(obj: *mut ffi::PyObject, returned: *mut ffi::PyObject, closed: bool) -> bool {
    // SAFETY: as the contract says; the record and the handlers are taken out before any
    // Python code runs, so a step made by that code finds the call ended.
    unsafe {
        let a = obj.cast::<Awaited>();
        let pending = (*a).pending.take();
        let after = (*a).after.take();
        if pending.is_none() && after.is_none() {
            return true;
        }
        end(Python::assume_attached(), pending, after, returned, closed)
    }
}

/// Run one step of the awaited work (`run` gets the object stepped: the iterator, or the
/// awaitable itself before `await` asked for one; NULL if cleared) with the call's node on
/// the stack while the call has not ended.
///
/// # Safety
/// The GIL is held and `obj` is a live `AwaitedCall`.
#[inline]
unsafe fn step<R>(obj: *mut ffi::PyObject, run: impl FnOnce(*mut ffi::PyObject) -> R) -> R {
    // SAFETY: as the contract says; `inner` and `iter` are NULL or references the object
    // owns, and the record is read again after the step (which may run any Python code).
    unsafe {
        let a = obj.cast::<Awaited>();
        let iter = if (*a).iter.is_null() {
            (*a).inner
        } else {
            (*a).iter
        };
        let py = Python::assume_attached();
        let resumed = match &(*a).pending {
            Some(pending) if !iter.is_null() => resume(py, pending),
            _ => None,
        };
        let res = run(iter);
        if let Some(pending) = &mut (*a).pending {
            suspend(py, pending, resumed);
        }
        res
    }
}

/// [`step`] for a step that returns an object: NULL ends the call (with its value as
/// `StopIteration`, or raising).
///
/// # Safety
/// The GIL is held and `obj` is a live `AwaitedCall`.
#[inline]
unsafe fn step_object(
    obj: *mut ffi::PyObject,
    run: impl FnOnce(*mut ffi::PyObject) -> *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as the contract says.
    unsafe {
        let res = step(obj, |iter| {
            if iter.is_null() {
                cleared();
                return null_mut();
            }
            run(iter)
        });
        if res.is_null() {
            finish(obj, null_mut(), false);
        }
        res
    }
}

/// `obj.name(arg)`.
///
/// # Safety
/// The GIL is held; `obj` and `arg` are live objects.
unsafe fn call_method1(
    obj: *mut ffi::PyObject,
    name: &CStr,
    arg: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as the contract says; the method is released after the call.
    unsafe {
        let meth = ffi::PyObject_GetAttrString(obj, name.as_ptr());
        if meth.is_null() {
            return null_mut();
        }
        let res = ffi::PyObject_CallFunctionObjArgs(meth, arg, null_mut::<ffi::PyObject>());
        ffi::Py_DECREF(meth);
        res
    }
}

/// A NULL result ended the call: raised unless the error is `StopIteration` (or none).
///
/// # Safety
/// The GIL is held.
unsafe fn ended_by_error() -> bool {
    // SAFETY: the GIL is held; the error, if any, is a live type.
    unsafe {
        let err = ffi::PyErr_Occurred();
        !err.is_null() && ffi::PyErr_GivenExceptionMatches(err, ffi::PyExc_StopIteration) == 0
    }
}

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_next(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: as the contract says; `iter` is live (checked by `step_object`).
    unsafe {
        step_object(obj, |iter| match (*ffi::Py_TYPE(iter)).tp_iternext {
            Some(next) => next(iter),
            // A coroutine is not an iterator (no `__next__`): `send(None)` is its next step.
            None => call_method1(iter, c"send", ffi::Py_None()),
        })
    }
}

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
#[cfg(Py_3_10)]
unsafe extern "C" fn awaited_am_send(
    obj: *mut ffi::PyObject,
    arg: *mut ffi::PyObject,
    presult: *mut *mut ffi::PyObject,
) -> ffi::PySendResult {
    // SAFETY: as the contract says; `*presult` holds the step's new reference (or NULL).
    unsafe {
        let res = step(obj, |iter| {
            if iter.is_null() {
                cleared();
                *presult = null_mut();
                return ffi::PySendResult::PYGEN_ERROR;
            }
            ffi::PyIter_Send(iter, arg, presult)
        });
        match res {
            ffi::PySendResult::PYGEN_NEXT => res,
            ffi::PySendResult::PYGEN_RETURN => {
                if finish(obj, *presult, false) {
                    return res;
                }
                ffi::Py_XDECREF(*presult);
                *presult = null_mut();
                ffi::PySendResult::PYGEN_ERROR
            }
            ffi::PySendResult::PYGEN_ERROR => {
                finish(obj, null_mut(), false);
                res
            }
        }
    }
}

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_send(
    obj: *mut ffi::PyObject,
    value: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as the contract says; `iter` is live (checked by `step_object`).
    unsafe {
        step_object(obj, |iter| {
            if value == ffi::Py_None() {
                if let Some(next) = (*ffi::Py_TYPE(iter)).tp_iternext {
                    let res = next(iter);
                    if res.is_null() && ffi::PyErr_Occurred().is_null() {
                        ffi::PyErr_SetNone(ffi::PyExc_StopIteration);
                    }
                    return res;
                }
            }
            call_method1(iter, c"send", value)
        })
    }
}

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_throw(
    obj: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as the contract says; `iter` is live (checked by `step_object`) and `args`
    // is the call's tuple.
    unsafe {
        step_object(obj, |iter| {
            let meth = ffi::PyObject_GetAttrString(iter, c"throw".as_ptr());
            if meth.is_null() {
                // Like a generator delegating to an iterator without `throw`: the exception
                // is raised where the awaiting code is.
                ffi::PyErr_Clear();
                let first = ffi::PyTuple_GetItem(args, 0);
                if first.is_null() {
                    return null_mut();
                }
                if ffi::PyExceptionInstance_Check(first) != 0 {
                    ffi::PyErr_SetObject(ffi::Py_TYPE(first).cast(), first);
                } else {
                    ffi::PyErr_SetNone(first);
                }
                return null_mut();
            }
            let res = ffi::PyObject_Call(meth, args, null_mut());
            ffi::Py_DECREF(meth);
            res
        })
    }
}

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_close(
    obj: *mut ffi::PyObject,
    _: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as the contract says; `iter` is NULL or live.
    unsafe {
        let res = step(obj, |iter| {
            let meth = if iter.is_null() {
                null_mut()
            } else {
                ffi::PyObject_GetAttrString(iter, c"close".as_ptr())
            };
            if meth.is_null() {
                ffi::PyErr_Clear();
                ffi::Py_INCREF(ffi::Py_None());
                return ffi::Py_None();
            }
            let res = ffi::PyObject_CallNoArgs(meth);
            ffi::Py_DECREF(meth);
            res
        });
        // Closed before its result: the wait ended by `GeneratorExit`.
        if finish(obj, res, true) {
            return res;
        }
        ffi::Py_XDECREF(res);
        null_mut()
    }
}
