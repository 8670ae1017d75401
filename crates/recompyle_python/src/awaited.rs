//! Timing an awaited call (`await f(x)`) until its result is ready.
//!
//! When the profiler keeps the tree, a call the rewrite marked as the operand of `await`
//! whose result is awaitable returns an [`Awaited`] around that result instead of ending
//! there. `await` asks it for its iterator (itself, having asked the result for its own,
//! with CPython's checks and messages), and every step the awaiting coroutine takes through
//! it (`send`, `__next__`, `throw`, `close`) is forwarded unchanged, with the call's node
//! pushed on the running task's stack for the step: calls the awaited work makes are its
//! children, whichever other tasks run meanwhile (they have stacks of their own). When a step
//! returns the result or raises, the call ends: its time is from the call to then, the wall
//! time the caller waited, suspensions included.
//!
//! The program sees the same values, exceptions and cancellation; introspection of the
//! awaiting coroutine's `cr_await` shows this object rather than the awaited one.

// `unsafe_op_in_unsafe_fn` (the workspace lint policy) is allowed here until this file's
// owners give each unsafe operation its own block; every `unsafe fn` states its contract.
#![allow(unsafe_op_in_unsafe_fn)]

use std::ffi::{c_int, c_void, CStr};
use std::ptr::null_mut;
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;

use crate::cpython::{slot, TypePtr};
use crate::profiler;

/// An awaited call in progress: the awaitable it returned and the profiler's record.
#[repr(C)]
pub struct Awaited {
    ob_base: ffi::PyObject,
    /// Owned: what the call returned.
    inner: *mut ffi::PyObject,
    /// Owned: `inner`'s iterator, once `await` asked for it; NULL before.
    iter: *mut ffi::PyObject,
    pending: profiler::Pending,
    done: bool,
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

/// Whether `obj` can be awaited through its type's `__await__` slot (coroutines, futures,
/// tasks, objects defining `__await__`): those are the results wrapped.
///
/// # Safety
/// `obj` must be a live object.
#[inline(always)]
pub unsafe fn awaitable(obj: *mut ffi::PyObject) -> bool {
    let asy = (*ffi::Py_TYPE(obj)).tp_as_async;
    !asy.is_null() && (*asy).am_await.is_some()
}

/// Wrap `inner` (a new reference, taken over) for the pending call; `None` (with `inner`
/// handed back) if the object could not be made.
///
/// # Safety
/// The GIL must be held and `inner` a live, [`awaitable`] object.
pub unsafe fn wrap(
    inner: *mut ffi::PyObject,
    pending: profiler::Pending,
) -> Result<*mut ffi::PyObject, *mut ffi::PyObject> {
    let Some(tp) = TYPE.get() else {
        return Err(inner);
    };
    let obj = ffi::PyType_GenericAlloc(tp.0, 0);
    if obj.is_null() {
        ffi::PyErr_Clear();
        return Err(inner);
    }
    let a = obj.cast::<Awaited>();
    std::ptr::write(&raw mut (*a).inner, inner);
    std::ptr::write(&raw mut (*a).iter, null_mut());
    std::ptr::write(&raw mut (*a).pending, pending);
    (*a).done = false;
    // PyType_GenericAlloc zeroed the object and tracked it already.
    Ok(obj)
}

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_traverse(
    obj: *mut ffi::PyObject,
    visit: ffi::visitproc,
    arg: *mut c_void,
) -> c_int {
    let a = obj.cast::<Awaited>();
    for o in [(*a).inner, (*a).iter] {
        if !o.is_null() {
            let r = visit(o, arg);
            if r != 0 {
                return r;
            }
        }
    }
    // Heap types' instances own a reference to their type (3.9+).
    visit(ffi::Py_TYPE(obj).cast(), arg)
}

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_clear(obj: *mut ffi::PyObject) -> c_int {
    let a = obj.cast::<Awaited>();
    for field in [&mut (*a).inner, &mut (*a).iter] {
        let o = std::mem::replace(field, null_mut());
        if !o.is_null() {
            ffi::Py_DECREF(o);
        }
    }
    0
}

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_dealloc(obj: *mut ffi::PyObject) {
    let tp = ffi::Py_TYPE(obj);
    ffi::PyObject_GC_UnTrack(obj.cast());
    awaited_clear(obj);
    if let Some(free) = (*tp).tp_free {
        free(obj.cast());
    }
    ffi::Py_DECREF(tp.cast());
}

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_repr(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let inner = (*obj.cast::<Awaited>()).inner;
    if inner.is_null() {
        return ffi::PyUnicode_FromString(c"<recompyle awaited call (cleared)>".as_ptr());
    }
    ffi::PyObject_Repr(inner)
}

/// Set when the collector cleared the object while something still steps it.
///
/// # Safety
/// The GIL is held.
#[cold]
unsafe fn cleared() {
    ffi::PyErr_SetString(
        ffi::PyExc_RuntimeError,
        c"recompyle: awaited call used after it was collected".as_ptr(),
    );
}

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_iter(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    ffi::Py_INCREF(obj);
    obj
}

/// A type's name as CPython's `%T` formats it (`module.Qualname`, the module left out for
/// builtins and `__main__`); an empty string if it cannot be had.
///
/// # Safety
/// The GIL is held and `tp` is a live type object.
#[cfg(Py_3_15)]
unsafe fn fully_qualified_name(tp: *mut ffi::PyTypeObject) -> String {
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

/// # Safety
/// The GIL is held.
unsafe fn set_type_error(message: &str) {
    let text = std::ffi::CString::new(message).unwrap_or_default();
    ffi::PyErr_SetString(ffi::PyExc_TypeError, text.as_ptr());
}

/// `__await__`: the inner object's iterator as `await` would get it (a coroutine is its
/// own; CPython's errors otherwise), then this object, which forwards to it.
///
/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_await(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let a = obj.cast::<Awaited>();
    if (*a).iter.is_null() {
        let inner = (*a).inner;
        if inner.is_null() {
            cleared();
            return null_mut();
        }
        let iter = if ffi::PyCoro_CheckExact(inner) != 0 {
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
            inner
        } else {
            let Some(get) = (*(*ffi::Py_TYPE(inner)).tp_as_async).am_await else {
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
        };
        (*a).iter = iter;
    }
    ffi::Py_INCREF(obj);
    obj
}

/// Run one step of the awaited work with the call's node on the stack; end the call when
/// the step returns its result (`finished`) or raises.
///
/// # Safety
/// The GIL is held and `obj` is a live `AwaitedCall`.
#[inline]
unsafe fn step<R>(
    obj: *mut ffi::PyObject,
    run: impl FnOnce(*mut ffi::PyObject) -> R,
    finished: impl FnOnce(&R) -> Option<bool>,
) -> R {
    let a = obj.cast::<Awaited>();
    let py = Python::assume_attached();
    let iter = if (*a).iter.is_null() {
        (*a).inner
    } else {
        (*a).iter
    };
    if (*a).done || iter.is_null() {
        return run(iter);
    }
    let resumed = profiler::resume(py, &(*a).pending);
    let res = run(iter);
    profiler::suspend(py, &mut (*a).pending, resumed);
    if let Some(raised) = finished(&res) {
        (*a).done = true;
        profiler::finish_awaited(py, &(*a).pending, raised);
    }
    res
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
    step(
        obj,
        |iter| {
            if iter.is_null() {
                cleared();
                return null_mut();
            }
            run(iter)
        },
        |res| res.is_null().then(|| ended_by_null()),
    )
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
    let meth = ffi::PyObject_GetAttrString(obj, name.as_ptr());
    if meth.is_null() {
        return null_mut();
    }
    let res = ffi::PyObject_CallFunctionObjArgs(meth, arg, null_mut::<ffi::PyObject>());
    ffi::Py_DECREF(meth);
    res
}

/// A NULL result ended the call: raised unless the error is `StopIteration` (or none).
///
/// # Safety
/// The GIL is held.
unsafe fn ended_by_null() -> bool {
    let err = ffi::PyErr_Occurred();
    !err.is_null() && ffi::PyErr_GivenExceptionMatches(err, ffi::PyExc_StopIteration) == 0
}

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_next(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    step_object(obj, |iter| match (*ffi::Py_TYPE(iter)).tp_iternext {
        Some(next) => next(iter),
        // A coroutine is not an iterator (no `__next__`): `send(None)` is its next step.
        None => call_method1(iter, c"send", ffi::Py_None()),
    })
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
    step(
        obj,
        |iter| {
            if iter.is_null() {
                cleared();
                return ffi::PySendResult::PYGEN_ERROR;
            }
            ffi::PyIter_Send(iter, arg, presult)
        },
        |res| match res {
            ffi::PySendResult::PYGEN_NEXT => None,
            ffi::PySendResult::PYGEN_RETURN => Some(false),
            ffi::PySendResult::PYGEN_ERROR => Some(ended_by_null()),
        },
    )
}

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_send(
    obj: *mut ffi::PyObject,
    value: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
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

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_throw(
    obj: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    step_object(obj, |iter| {
        let meth = ffi::PyObject_GetAttrString(iter, c"throw".as_ptr());
        if meth.is_null() {
            // Like a generator delegating to an iterator without `throw`: the exception is
            // raised where the awaiting code is.
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

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `AwaitedCall`; the other arguments
/// are as the slot's contract says.
unsafe extern "C" fn awaited_close(
    obj: *mut ffi::PyObject,
    _: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    step(
        obj,
        |iter| {
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
        },
        // Closed before its result: the wait ended by `GeneratorExit`.
        |_| Some(true),
    )
}
