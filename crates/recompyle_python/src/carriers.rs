//! Bound methods that hand a listened call's proxy to the interpreter (CPython 3.13+, issue
//! 20 item 2), so that a call site of a builtin gets its own specialisation back once
//! listening ends.
//!
//! A call site's `CALL` instruction sees the proxy while something listens. 3.13's
//! specialiser turns it into `CALL_NON_PY_GENERAL`, which a builtin such as `len` passes
//! too, so the idle site kept the generic call for good (+3 to +6 ns per call on 3.13-3.15).
//! Handed `proxy.__get__(first)` instead, a bound method whose function is not a Python
//! function, the specialiser fails and backs off, and the plain `CALL` unpacks the method
//! itself and calls the proxy with `first` prepended, which the proxy drops
//! (`cpython::CALL_CARRIERS` has the details). Only callees that would lose a specialisation
//! of their own are carried (`cpython::specialised_natively`).
//!
//! A bound method per call would cost an allocation of a GC object; carriers are reused
//! instead. One is *out* from its selection until its proxy's call starts: then
//! [`called`] empties it (the interpreter holds the function and self by then) and keeps it
//! for the next call. One whose call never comes (an argument raised) is found out by its
//! reference count (only this module holds it) at the next selection, or when the last
//! listener leaves ([`release_idle`]), and emptied then. One called by something that keeps
//! holding it (a C caller calling it as a bound method) is left to that holder, which frees
//! it with its contents.

use pyo3::ffi;
use pyo3::prelude::*;

use crate::cpython;
use crate::gil::GilCell;

/// Owned references to carriers: `free` are empty, `out` were handed to the interpreter
/// (selection order; a call takes its own out, usually the last).
struct Carriers {
    free: Vec<*mut ffi::PyObject>,
    out: Vec<*mut ffi::PyObject>,
}
// SAFETY: only touched with the GIL held (GilCell).
unsafe impl Send for Carriers {}
static CARRIERS: GilCell<Carriers> = GilCell::new(Carriers {
    free: Vec::new(),
    out: Vec::new(),
});
/// Empty carriers kept; more are freed.
const FREE_MAX: usize = 64;

/// `proxy` bound to `first`, as a new reference the interpreter calls (it calls `proxy` with
/// `first` prepended); `proxy` itself when no carrier can be made. The carrier is what the
/// caller records as the proxy's carrier, to hand to [`called`].
///
/// # Safety
/// The GIL is held; `proxy` is a new reference, taken over; `first` is live (a reference is
/// taken).
pub(crate) unsafe fn carry(
    py: Python<'_>,
    proxy: *mut ffi::PyObject,
    first: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        release_abandoned(py);
        let m = match CARRIERS.get_mut(py).free.pop() {
            Some(m) => m,
            None => {
                let m = cpython::carrier_new();
                if m.is_null() {
                    // Out of memory: the proxy alone still makes the call right.
                    ffi::PyErr_Clear();
                    return proxy;
                }
                m
            }
        };
        ffi::Py_INCREF(first);
        cpython::carrier_fill(m, proxy, first);
        CARRIERS.get_mut(py).out.push(m);
        ffi::Py_INCREF(m); // the interpreter's reference; `out` keeps this module's
        m
    }
}

/// The proxy that `carrier` carried is being called: take the carrier back. The
/// interpreter unpacked it (it holds the proxy and the self it prepended, so emptying the
/// carrier frees nothing), unless someone still holds the carrier, who then frees it.
///
/// # Safety
/// The GIL is held; `carrier` was returned by [`carry`] for the proxy being called.
#[inline(always)]
pub(crate) unsafe fn called(py: Python<'_>, carrier: *mut ffi::PyObject) {
    unsafe {
        let carriers = CARRIERS.get_mut(py);
        let out = &mut carriers.out;
        let at = match out.last() {
            Some(&m) if m == carrier => out.len() - 1,
            _ => match out.iter().rposition(|&m| m == carrier) {
                Some(at) => at,
                None => return,
            },
        };
        out.remove(at);
        if ffi::Py_REFCNT(carrier) != 1 {
            // Called as a bound method by a holder (`f(*args)`, a C caller): the holder keeps
            // the proxy alive through it and frees both; this is not the last reference.
            ffi::Py_DECREF(carrier);
            return;
        }
        let (func, first) = cpython::carrier_empty(carrier);
        let keep = carriers.free.len() < FREE_MAX;
        if keep {
            carriers.free.push(carrier);
        }
        // The call holds its own references to both: these are not the last.
        ffi::Py_DECREF(func);
        ffi::Py_DECREF(first);
        if !keep {
            ffi::Py_DECREF(carrier);
        }
    }
}

/// Empty the carriers out whose call will never come (only this module holds them: the
/// interpreter dropped them when an argument raised), last selected first, down to one still
/// waiting for its call.
///
/// # Safety
/// The GIL is held.
#[inline(always)]
unsafe fn release_abandoned(py: Python<'_>) {
    unsafe {
        while let Some(&m) = CARRIERS.get(py).out.last() {
            if ffi::Py_REFCNT(m) != 1 {
                return;
            }
            CARRIERS.get_mut(py).out.pop();
            release(py, m);
        }
    }
}

/// Empty the abandoned carrier `m`, no longer in `out`, and keep or free it.
///
/// # Safety
/// The GIL is held; `m` is a carrier only this module holds, taken out of `out`.
#[cold]
#[inline(never)]
unsafe fn release(py: Python<'_>, m: *mut ffi::PyObject) {
    unsafe {
        let (func, first) = cpython::carrier_empty(m);
        let free = &mut CARRIERS.get_mut(py).free;
        let keep = free.len() < FREE_MAX;
        if keep {
            free.push(m);
        } else {
            ffi::Py_DECREF(m);
        }
        // The last references to the proxy and its callee may be these: Python code may run,
        // selections too, so nothing of this module is borrowed any more.
        ffi::Py_DECREF(func);
        ffi::Py_DECREF(first);
    }
}

/// Nothing listens any more: empty every abandoned carrier, wherever it sits among those
/// out, so none keeps a callee alive while the program runs idle.
pub(crate) fn release_idle(py: Python<'_>) {
    if !cpython::CALL_CARRIERS {
        return;
    }
    loop {
        let carriers = CARRIERS.get_mut(py);
        // SAFETY: every carrier out is a live object this module holds a reference to.
        let Some(at) = carriers
            .out
            .iter()
            .rposition(|&m| unsafe { ffi::Py_REFCNT(m) } == 1)
        else {
            return;
        };
        let m = carriers.out.remove(at);
        // SAFETY: the GIL is held and `m` is abandoned (only `out` held it), now taken out.
        unsafe { release(py, m) };
    }
}
