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
//! A bound method per call would cost an allocation of a GC object; a few carriers are
//! reused instead, each free when this module holds the only reference. A selection takes
//! the first free one; when the proxy's call starts, the interpreter has unpacked the
//! carrier (it holds the function and self itself), and [`called`] empties it. A carrier
//! free but not empty was abandoned: its call never came (an argument raised, and the
//! interpreter dropped it), or a holder that called it as a bound method (`f(*args)`, a C
//! caller) has let go. The selection that finds it empties it first, and when the last
//! listener leaves [`release_idle`] empties them all, so an abandoned call's callee (or
//! object) lives until the next listened call or the end of listening, not longer.

use std::ptr::null_mut;

use pyo3::ffi;
use pyo3::prelude::*;

use crate::cpython;
use crate::gil::GilCell;

/// Carriers made so far (owned references; NULL: not yet made). Selections whose calls are
/// all waiting (arguments nested this deep) get the bare proxy, as before carriers.
struct Pool([*mut ffi::PyObject; POOL_SIZE]);
// SAFETY: only touched with the GIL held (GilCell).
unsafe impl Send for Pool {}
const POOL_SIZE: usize = 8;
static POOL: GilCell<Pool> = GilCell::new(Pool([null_mut(); POOL_SIZE]));

/// `proxy` bound to `first`, as a new reference the interpreter calls (it calls `proxy` with
/// `first` prepended); `proxy` itself when no carrier is free or can be made.
///
/// # Safety
/// The GIL is held; `proxy` is a new reference, taken over; `first` is live (a reference is
/// taken).
#[inline(always)]
pub(crate) unsafe fn carry(
    py: Python<'_>,
    proxy: *mut ffi::PyObject,
    first: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        // The usual case: no other listened call is waiting for its arguments.
        let m = POOL.get(py).0[0];
        if !m.is_null() && ffi::Py_REFCNT(m) == 1 && cpython::carrier_is_empty(m) {
            return filled(m, proxy, first);
        }
        carry_searching(py, proxy, first)
    }
}

/// `m`, free and empty, carrying `proxy` bound to `first`, as [`carry`] returns it.
///
/// # Safety
/// As [`carry`]; `m` is a free, empty carrier of the pool.
#[inline(always)]
unsafe fn filled(
    m: *mut ffi::PyObject,
    proxy: *mut ffi::PyObject,
    first: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        ffi::Py_INCREF(first);
        cpython::carrier_fill(m, proxy, first);
        ffi::Py_INCREF(m); // the interpreter's; the pool keeps its own
        m
    }
}

/// [`carry`] when the first carrier is taken, abandoned or not made yet.
///
/// # Safety
/// As [`carry`].
#[cold]
#[inline(never)]
unsafe fn carry_searching(
    py: Python<'_>,
    proxy: *mut ffi::PyObject,
    first: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        loop {
            let mut found = null_mut();
            for slot in POOL.get_mut(py).0.iter_mut() {
                let m = *slot;
                if m.is_null() {
                    found = made(slot);
                    break;
                }
                if ffi::Py_REFCNT(m) == 1 {
                    found = m;
                    break;
                }
            }
            if found.is_null() {
                return proxy;
            }
            if !cpython::carrier_is_empty(found) {
                release(found); // may run Python code, selections too: look again after
                continue;
            }
            return filled(found, proxy, first);
        }
    }
}

/// A new carrier for the empty `slot`, or NULL (no memory: the proxy goes alone).
///
/// # Safety
/// The GIL is held.
#[cold]
#[inline(never)]
unsafe fn made(slot: &mut *mut ffi::PyObject) -> *mut ffi::PyObject {
    unsafe {
        let m = cpython::carrier_new();
        if m.is_null() {
            ffi::PyErr_Clear();
        }
        *slot = m;
        m
    }
}

/// The proxy that `carrier` carried is being called. Unpacked by the interpreter (only the
/// pool holds it now), it is emptied: the call holds the proxy and the self it prepended,
/// so this frees nothing. Still held (called as a bound method), it is left as it is: the
/// holder reads its fields; abandoned once the holder lets go, a later selection empties it.
///
/// # Safety
/// The GIL is held; `carrier` was returned by [`carry`] for the proxy being called.
#[inline(always)]
pub(crate) unsafe fn called(carrier: *mut ffi::PyObject) {
    unsafe {
        if ffi::Py_REFCNT(carrier) == 1 {
            let (func, first) = cpython::carrier_empty(carrier);
            ffi::Py_DECREF(func);
            ffi::Py_DECREF(first);
        }
    }
}

/// Empty the abandoned carrier `m`.
///
/// # Safety
/// The GIL is held; only the pool holds `m`, and no borrow of the pool is alive: releasing
/// the last references to a proxy and its callee may run Python code.
#[cold]
#[inline(never)]
unsafe fn release(m: *mut ffi::PyObject) {
    unsafe {
        let (func, first) = cpython::carrier_empty(m);
        ffi::Py_DECREF(func);
        ffi::Py_DECREF(first);
    }
}

/// Nothing listens any more: empty every abandoned carrier, so none keeps a callee alive
/// while the program runs idle.
pub(crate) fn release_idle(py: Python<'_>) {
    if !cpython::CALL_CARRIERS {
        return;
    }
    for i in 0..POOL_SIZE {
        let m = POOL.get(py).0[i];
        // SAFETY: a carrier in the pool is live (the pool holds it); when only the pool
        // holds it and it is not empty it is abandoned, and no borrow of the pool is alive.
        unsafe {
            if !m.is_null() && ffi::Py_REFCNT(m) == 1 && !cpython::carrier_is_empty(m) {
                release(m);
            }
        }
    }
}
