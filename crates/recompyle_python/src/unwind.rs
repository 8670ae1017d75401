//! Calls into Python that a thread's exit may unwind through.
//!
//! At interpreter exit CPython 3.9-3.13 ends a daemon thread that tries to take the GIL
//! with `pthread_exit`, a *forced unwind* of that thread's stack (3.14 hangs the thread
//! instead, python/cpython#87135). A daemon thread inside an instrumented call has our
//! frames on that stack, and Rust aborts the whole process (SIGABRT, exit 134) when an
//! unwind reaches a function that may not unwind: any `extern "C"` function, or a frame
//! whose call into C was declared `extern "C"` and which has cleanups of its own.
//!
//! So every native entry point that can run Python code is `extern "C-unwind"`, which lets
//! the unwind pass through as it passes through CPython's own C frames, and the calls that
//! forward a call or run a handler go through [`vectorcall`] below: declared `"C-unwind"`,
//! with a guard that *hangs* the thread if the unwind reaches it, as 3.14 and pyo3's own GIL
//! functions do. Hanging there, before any frame of ours is torn down, means no reference
//! we hold is released without the GIL while the main thread finalizes; the thread is a
//! daemon, so the process exits all the same. Whatever else the unwind passes (a getter, a
//! repr) holds nothing that needs dropping.

use pyo3::ffi;

/// The vectorcall slot's type, as a function that may unwind.
pub(crate) type Vectorcall = unsafe extern "C-unwind" fn(
    *mut ffi::PyObject,
    *const *mut ffi::PyObject,
    usize,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;

/// `METH_FASTCALL`'s function type, as a function that may unwind.
pub(crate) type FastCall = unsafe extern "C-unwind" fn(
    *mut ffi::PyObject,
    *mut *mut ffi::PyObject,
    ffi::Py_ssize_t,
) -> *mut ffi::PyObject;

/// `METH_FASTCALL | METH_KEYWORDS`'s function type, as a function that may unwind.
pub(crate) type FastCallKeywords = unsafe extern "C-unwind" fn(
    *mut ffi::PyObject,
    *const *mut ffi::PyObject,
    ffi::Py_ssize_t,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;

/// A getter's type, as a function that may unwind.
pub(crate) type Getter =
    unsafe extern "C-unwind" fn(*mut ffi::PyObject, *mut std::ffi::c_void) -> *mut ffi::PyObject;

/// pyo3 declares CPython's slot types `extern "C"`; the functions we put in them are
/// `"C-unwind"`, which has the same calling convention and only differs in what Rust
/// allows an unwind to do.
pub(crate) fn fast_call(f: FastCall) -> ffi::PyCFunctionFast {
    // SAFETY: same signature and calling convention; see above.
    unsafe { std::mem::transmute::<FastCall, ffi::PyCFunctionFast>(f) }
}

/// As [`fast_call`], for `METH_FASTCALL | METH_KEYWORDS`.
pub(crate) fn fast_call_keywords(f: FastCallKeywords) -> ffi::PyCFunctionFastWithKeywords {
    // SAFETY: same signature and calling convention; see [`fast_call`].
    unsafe { std::mem::transmute::<FastCallKeywords, ffi::PyCFunctionFastWithKeywords>(f) }
}

/// As [`fast_call`], for getters.
pub(crate) fn getter(f: Getter) -> ffi::getter {
    // SAFETY: same signature and calling convention; see [`fast_call`].
    unsafe { std::mem::transmute::<Getter, ffi::getter>(f) }
}

// Our own declarations, `"C-unwind"`. pyo3 declares some of the same symbols `extern "C"`,
// and with link-time optimisation one declaration's `nounwind` can win for every call of
// the symbol; each call below goes through `black_box`, so the call is indirect and only
// its pointer type, which may unwind, counts.
#[cfg(Py_3_11)]
extern "C-unwind" {
    #[link_name = "PyObject_Vectorcall"]
    fn object_vectorcall_decl(
        callable: *mut ffi::PyObject,
        args: *const *mut ffi::PyObject,
        nargsf: usize,
        kwnames: *mut ffi::PyObject,
    ) -> *mut ffi::PyObject;
}

/// # Safety
/// As `PyObject_Vectorcall`: the GIL is held and the arguments are a valid vector call.
#[cfg(Py_3_11)]
#[inline(always)]
unsafe fn object_vectorcall(
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        let call = std::hint::black_box(object_vectorcall_decl as Vectorcall);
        call(callable, args, nargsf, kwnames)
    }
}

/// `_PyObject_MakeTpCall`'s type, as a function that may unwind.
#[cfg(not(Py_3_11))]
type TpCall = unsafe extern "C-unwind" fn(
    *mut ffi::PyThreadState,
    *mut ffi::PyObject,
    *const *mut ffi::PyObject,
    ffi::Py_ssize_t,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;

#[cfg(not(Py_3_11))]
extern "C-unwind" {
    // Before 3.11 `PyObject_Vectorcall` is an inline function of the headers: these are
    // the exported functions it is made of.
    #[link_name = "_PyObject_MakeTpCall"]
    fn make_tp_call_decl(
        tstate: *mut ffi::PyThreadState,
        callable: *mut ffi::PyObject,
        args: *const *mut ffi::PyObject,
        nargs: ffi::Py_ssize_t,
        kwnames: *mut ffi::PyObject,
    ) -> *mut ffi::PyObject;
}

#[cfg(not(Py_3_11))]
extern "C" {
    // Only checks a result against the error indicator: runs no Python code.
    fn _Py_CheckFunctionResult(
        tstate: *mut ffi::PyThreadState,
        callable: *mut ffi::PyObject,
        result: *mut ffi::PyObject,
        where_: *const std::ffi::c_char,
    ) -> *mut ffi::PyObject;
}

/// `PyObject_Vectorcall`'s body before 3.11 (`Include/cpython/abstract.h`).
///
/// # Safety
/// As `PyObject_Vectorcall`: the GIL is held and the arguments are a valid vector call.
#[cfg(not(Py_3_11))]
#[inline(always)]
unsafe fn object_vectorcall(
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        let tstate = ffi::PyThreadState_Get();
        match ffi::PyVectorcall_Function(callable) {
            None => {
                let make = std::hint::black_box(make_tp_call_decl as TpCall);
                make(
                    tstate,
                    callable,
                    args,
                    ffi::PyVectorcall_NARGS(nargsf),
                    kwnames,
                )
            }
            Some(func) => {
                // SAFETY: as `fast_call`: only the unwind rules differ.
                let func = std::mem::transmute::<ffi::vectorcallfunc, Vectorcall>(func);
                let res = func(callable, args, nargsf, kwnames);
                _Py_CheckFunctionResult(tstate, callable, res, std::ptr::null())
            }
        }
    }
}

/// Hangs the thread if dropped, which only an unwind does (it is forgotten otherwise).
struct HangThread;

impl Drop for HangThread {
    fn drop(&mut self) {
        loop {
            std::thread::park();
        }
    }
}

/// `PyObject_Vectorcall`, which a thread exit may unwind: the thread then hangs here.
///
/// # Safety
/// As `PyObject_Vectorcall`: the GIL is held and the arguments are a valid vector call.
#[inline(always)]
pub(crate) unsafe fn vectorcall(
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        let guard = HangThread;
        let res = match function_vectorcall(callable) {
            // A Python function (exactly): its own vectorcall, as `PyObject_Vectorcall`
            // makes it, without `_Py_CheckFunctionResult` after it, which only checks a
            // result against the error indicator (a function's always agree). The profiler
            // forwards every reported call here, so this is on its per-call path.
            Some(func) => func(callable, args, nargsf, kwnames),
            None => object_vectorcall(callable, args, nargsf, kwnames),
        };
        std::mem::forget(guard);
        res
    }
}

/// The vectorcall of `callable` when it is exactly a Python function.
///
/// # Safety
/// `callable` is live; the GIL is held.
#[inline(always)]
unsafe fn function_vectorcall(callable: *mut ffi::PyObject) -> Option<Vectorcall> {
    unsafe {
        if ffi::PyFunction_Check(callable) == 0 {
            return None;
        }
        // The field `PyVectorcall_Function` reads for a function (its type's
        // `tp_vectorcall_offset`), read in place rather than through a call into libpython.
        let func = (*callable.cast::<ffi::PyFunctionObject>()).vectorcall?;
        // SAFETY: same signature and calling convention; only the unwind rules differ
        // (see the module's documentation).
        Some(std::mem::transmute::<ffi::vectorcallfunc, Vectorcall>(func))
    }
}
