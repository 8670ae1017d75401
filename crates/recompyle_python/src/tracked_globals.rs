//! Tracked module globals: a native `dict` subclass that is a tracked module's `__dict__`.
//!
//! The loader creates the module object normally and, before any code sees it, swaps its
//! dictionary slot for a `TrackedGlobals` holding the same items ([`track_module`]). The
//! module stays a real `types.ModuleType`; `vars(m)`, every function's `__globals__` and the
//! frames running the module all share that one dictionary, whose storage is the inherited
//! `dict` itself (no second dictionary to keep in step).
//!
//! CPython reads such a namespace through `PyObject_GetItem` wherever it is not an exact
//! dict (LOAD_GLOBAL in functions, LOAD_NAME at module level), which reaches
//! [`subscript`]: a hit is a *global read*. A miss is answered by `dict`'s own subscript
//! (KeyError, or `__missing__`), so the interpreter then looks in the builtins as always
//! and a missing name keeps CPython's own `NameError`; a builtin is not a global read.
//! Module-level assignments and deletions (STORE_NAME, DELETE_NAME, `import`) go through
//! [`ass_subscript`]. What CPython does with `PyDict_*` directly (STORE_GLOBAL and
//! DELETE_GLOBAL under a `global` statement, LOAD_NAME's fallback to the globals from a
//! class body) is reported by the code the transform adds: `__recompyle_gw__(ID)` after a
//! statement that stores a declared global, `__recompyle_gr__(ID, name)` around a name a
//! class body loads.
//!
//! With nothing listening a read costs the dictionary lookup and one atomic load; the
//! events ([`GlobalEvent`], `events.rs`) are built only for handlers with a `globals`
//! callback ([`crate::handlers`]).

use std::ffi::{c_int, c_void, CStr};
use std::ptr::null_mut;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use recompyle_transform::names;

use crate::cpython::{fast_call_builtin, slot, type_error, BuiltinInfo};
use crate::events::{GlobalEvent, GlobalKind};
use crate::handlers;
use crate::listeners::{self, GLOBALS_LISTENING};
use crate::sites;

struct Ptrs {
    /// Owned (immortal): the `TrackedGlobals` type.
    tp: *mut ffi::PyTypeObject,
    dict_subscript: ffi::binaryfunc,
    dict_ass_subscript: ffi::objobjargproc,
    /// Owned (never released): the interned `"__name__"`.
    name_key: *mut ffi::PyObject,
}
// SAFETY: the type and the interned string live for the process; used with the GIL held.
unsafe impl Send for Ptrs {}
unsafe impl Sync for Ptrs {}

static PTRS: OnceLock<Ptrs> = OnceLock::new();

const DOC: &CStr = c"The __dict__ of a module whose globals recompyle tracks: a dict in every \
respect, whose reads (by the module's own code) and module-level writes are reported to the \
handlers' globals callbacks.";

/// Create the `TrackedGlobals` type (once).
pub fn create_type(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    if let Some(p) = PTRS.get() {
        // SAFETY: the type object lives for the process.
        return Ok(unsafe { Bound::from_borrowed_ptr(py, p.tp.cast()) });
    }
    // SAFETY: PyDict_Type is a static type with a mapping table; the spec and its slots are
    // leaked, so live as long as the type.
    unsafe {
        let dict_type = std::ptr::addr_of_mut!(ffi::PyDict_Type);
        let mapping = (*dict_type).tp_as_mapping;
        let (Some(dict_subscript), Some(dict_ass_subscript)) = (
            mapping.as_ref().and_then(|m| m.mp_subscript),
            mapping.as_ref().and_then(|m| m.mp_ass_subscript),
        ) else {
            return Err(PyTypeError::new_err("dict has no mapping slots"));
        };
        let slots = Box::leak(Box::new([
            slot(ffi::Py_mp_subscript, subscript as *mut c_void),
            slot(ffi::Py_mp_ass_subscript, ass_subscript as *mut c_void),
            slot(ffi::Py_tp_doc, DOC.as_ptr() as *mut c_void),
            slot(0, null_mut()),
        ]));
        let spec = Box::leak(Box::new(ffi::PyType_Spec {
            name: c"recompyle._core.TrackedGlobals".as_ptr(),
            basicsize: 0,
            itemsize: 0,
            flags: ffi::Py_TPFLAGS_DEFAULT as std::ffi::c_uint,
            slots: slots.as_mut_ptr(),
        }));
        let bases = ffi::PyTuple_Pack(1, dict_type.cast::<ffi::PyObject>());
        if bases.is_null() {
            return Err(PyErr::fetch(py));
        }
        let tp = ffi::PyType_FromSpecWithBases(spec, bases);
        ffi::Py_DECREF(bases);
        if tp.is_null() {
            return Err(PyErr::fetch(py));
        }
        let name_key = ffi::PyUnicode_InternFromString(c"__name__".as_ptr());
        if name_key.is_null() {
            return Err(PyErr::fetch(py));
        }
        let _ = PTRS.set(Ptrs {
            tp: tp.cast(),
            dict_subscript,
            dict_ass_subscript,
            name_key,
        });
        // The type lives for the process: this reference is never released (instances,
        // whose dealloc is dict's, keep theirs too).
        Ok(Bound::from_borrowed_ptr(py, tp))
    }
}

#[inline(always)]
fn ptrs() -> &'static Ptrs {
    // The type's slots only run after create_type stored the pointers.
    PTRS.get()
        .expect("TrackedGlobals slots before the type exists")
}

/// Whether `obj` is a tracked namespace.
///
/// # Safety
/// `obj` is NULL or a live object; the GIL is held.
#[inline(always)]
unsafe fn is_tracked(obj: *mut ffi::PyObject) -> bool {
    unsafe {
        match PTRS.get() {
            Some(p) => !obj.is_null() && ffi::Py_TYPE(obj) == p.tp,
            None => false,
        }
    }
}

#[inline(always)]
fn listening() -> bool {
    GLOBALS_LISTENING.load(Ordering::Relaxed) && !listeners::in_handler()
}

/// # Safety
/// CPython calls it with the GIL held and `d` a live `TrackedGlobals`; the other arguments
/// are as the slot's contract says.
unsafe extern "C-unwind" fn subscript(
    d: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        let value = ffi::PyDict_GetItemWithError(d, key);
        if value.is_null() {
            if !ffi::PyErr_Occurred().is_null() {
                return null_mut();
            }
            if ffi::PyUnicode_CheckExact(key) != 0 {
                if let Some(own) = own_builtin(key) {
                    return own;
                }
                // A builtin, or a NameError to be: CPython goes on to the builtins. The error
                // is dict's own for a str key (the type has no `__missing__`), without dict's
                // second lookup and tuple.
                raise_missing(key);
                return null_mut();
            }
            // dict's own answer to a miss: KeyError (or __missing__), exactly as for a dict.
            return (ptrs().dict_subscript)(d, key);
        }
        ffi::Py_INCREF(value);
        if listening() && report(GlobalKind::Read, d, key, value, None) {
            ffi::Py_DECREF(value);
            return null_mut();
        }
        value
    }
}

/// # Safety
/// CPython calls it with the GIL held and `d` a live `TrackedGlobals`; the other arguments
/// are as the slot's contract says.
unsafe extern "C-unwind" fn ass_subscript(
    d: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
    value: *mut ffi::PyObject,
) -> c_int {
    unsafe {
        let status = (ptrs().dict_ass_subscript)(d, key, value);
        if status == 0 && listening() {
            let kind = if value.is_null() {
                GlobalKind::Delete
            } else {
                GlobalKind::Write
            };
            if report(kind, d, key, value, None) {
                return -1;
            }
        }
        status
    }
}

/// recompyle's own builtins (the call-site selectors, the reporters): interned name and
/// object, both owned (references held for the process); and the interned name of the
/// listening flags (`names::LISTENING`, `names::DIRECT_CALLS`), owned, whose values change.
struct OwnBuiltins {
    objects: Vec<(*mut ffi::PyObject, *mut ffi::PyObject)>,
    flag: *mut ffi::PyObject,
    direct_flag: *mut ffi::PyObject,
}
// SAFETY: immortal for the process (references are held), read with the GIL held.
unsafe impl Send for OwnBuiltins {}
unsafe impl Sync for OwnBuiltins {}

static OWN_BUILTINS: OnceLock<OwnBuiltins> = OnceLock::new();

/// Remember the builtins recompyle's rewritten code calls. Every instrumented call of a
/// tracked module looks its selector up as a global first: answering here spares it the
/// miss (a KeyError raised and cleared). The names are recompyle's own (double-underscore,
/// `__recompyle`-prefixed), which no program defines; the answer is the very object the
/// builtins hold, as CPython's next lookup would give.
pub fn remember_own_builtins(py: Python<'_>, items: &[(&str, &Bound<'_, PyAny>)]) -> PyResult<()> {
    // A new interned str, kept for the process.
    let intern = |name: &std::ffi::CStr| {
        // SAFETY: `name` is a valid C string; the GIL is held.
        let key = unsafe { ffi::PyUnicode_InternFromString(name.as_ptr()) };
        if key.is_null() {
            Err(PyErr::fetch(py))
        } else {
            Ok(key)
        }
    };
    let flag = intern(names::LISTENING_C)?;
    let direct_flag = intern(names::DIRECT_CALLS_C)?;
    let mut own = Vec::new();
    for (name, obj) in items {
        let name =
            std::ffi::CString::new(*name).map_err(|e| PyTypeError::new_err(e.to_string()))?;
        // The object's reference is kept for the process, as the name is.
        own.push((intern(&name)?, (*obj).clone().into_ptr()));
    }
    let _ = OWN_BUILTINS.set(OwnBuiltins {
        objects: own,
        flag,
        direct_flag,
    });
    Ok(())
}

/// A new reference to recompyle's builtin named `key` (compared by identity: names in code
/// are interned), if it is one; for a listening flag, its current value.
///
/// # Safety
/// `key` is a live object; the GIL is held.
#[inline(always)]
unsafe fn own_builtin(key: *mut ffi::PyObject) -> Option<*mut ffi::PyObject> {
    unsafe {
        let own = OWN_BUILTINS.get()?;
        for &(name, obj) in &own.objects {
            if name == key {
                ffi::Py_INCREF(obj);
                return Some(obj);
            }
        }
        // The flags' current values, which `listeners::publish` keeps in the builtins.
        let on = if key == own.flag {
            listeners::sites_on()
        } else if key == own.direct_flag {
            listeners::direct_calls_on(Python::assume_attached())
        } else {
            return None;
        };
        let value = if on { ffi::Py_True() } else { ffi::Py_False() };
        ffi::Py_INCREF(value);
        Some(value)
    }
}

// ---------------------------------------------------------------------------------------
// The KeyError of a miss
// ---------------------------------------------------------------------------------------

/// Name -> the KeyError instance last raised for it (3.12 and 3.13).
#[cfg(all(Py_3_12, not(Py_3_14)))]
static KEY_ERRORS: crate::gil::GilCell<Option<Py<pyo3::types::PyDict>>> =
    crate::gil::GilCell::new(None);
#[cfg(all(Py_3_12, not(Py_3_14)))]
const KEY_ERRORS_MAX: ffi::Py_ssize_t = 4096;

/// Raise `KeyError(key)` as `dict` would. From 3.12 on every raise creates the exception
/// object (~150 ns, paid by every builtin a tracked module reads, its call-site selectors
/// included): when no exception is being handled (so the new one would get no
/// `__context__`), the instance raised last time for this name is raised again if nothing
/// else holds it and nothing was attached to it (no traceback, context, cause, notes or
/// attributes, its args still `(key,)`), which makes it indistinguishable from a new one.
///
/// # Safety
/// The GIL is held and `key` is a live str.
unsafe fn raise_missing(key: *mut ffi::PyObject) {
    unsafe {
        // `is_pristine_key_error` reads exceptions with the layout of 3.12 and 3.13, so only
        // those reuse.
        #[cfg(all(Py_3_12, not(Py_3_14)))]
        {
            let handled = ffi::PyErr_GetHandledException();
            let idle = handled.is_null() || handled == ffi::Py_None();
            if !handled.is_null() {
                ffi::Py_DECREF(handled);
            }
            if idle {
                if let Some(exc) = reusable_key_error(Python::assume_attached(), key) {
                    ffi::PyErr_SetRaisedException(exc);
                    return;
                }
                ffi::PyErr_Clear();
            }
        }
        ffi::PyErr_SetObject(ffi::PyExc_KeyError, key);
    }
}

/// A new reference to a pristine `KeyError(key)` kept in the cache, or None.
///
/// # Safety
/// The GIL is held and `key` is a live str.
#[cfg(all(Py_3_12, not(Py_3_14)))]
unsafe fn reusable_key_error(
    py: Python<'_>,
    key: *mut ffi::PyObject,
) -> Option<*mut ffi::PyObject> {
    unsafe {
        let cache = KEY_ERRORS
            .get_mut(py)
            .get_or_insert_with(|| pyo3::types::PyDict::new(py).unbind());
        let cache = cache.as_ptr();
        let cached = ffi::PyDict_GetItemWithError(cache, key);
        if !cached.is_null()
            && ffi::Py_REFCNT(cached) == 1
            && crate::cpython::is_pristine_key_error(cached, key)
        {
            ffi::Py_INCREF(cached);
            return Some(cached);
        }
        if cached.is_null() && ffi::PyDict_Size(cache) >= KEY_ERRORS_MAX {
            return None;
        }
        let fresh = ffi::PyObject_CallOneArg(ffi::PyExc_KeyError, key);
        if fresh.is_null() {
            return None;
        }
        if ffi::PyDict_SetItem(cache, key, fresh) != 0 {
            ffi::Py_DECREF(fresh);
            return None;
        }
        Some(fresh)
    }
}

/// Build the event and run the handlers. Leaves the caller's exception state as it was and
/// returns false, unless a handler raised a `BaseException` that is not an `Exception`
/// (`KeyboardInterrupt`, `SystemExit`): then that is the exception set, and true returned,
/// for the caller to fail as if the access had raised it.
///
/// # Safety
/// The GIL is held; `d` is a live tracked namespace, `key` a live object and `value` a live
/// object or NULL.
#[cold]
#[inline(never)]
unsafe fn report(
    kind: GlobalKind,
    d: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
    value: *mut ffi::PyObject,
    site: Option<u64>,
) -> bool {
    unsafe {
        let py = Python::assume_attached();
        let saved = PyErr::take(py);
        let Some(handlers) = handlers::snapshot(py) else {
            if let Some(e) = saved {
                e.restore(py);
            }
            return false;
        };
        let module = {
            let m = ffi::PyDict_GetItemWithError(d, ptrs().name_key);
            if m.is_null() {
                ffi::PyErr_Clear();
                None
            } else {
                Some(Bound::from_borrowed_ptr(py, m).unbind())
            }
        };
        let (code, lineno) = {
            let frame = ffi::PyEval_GetFrame();
            if frame.is_null() {
                ffi::PyErr_Clear();
                (None, None)
            } else {
                let code = ffi::PyFrame_GetCode(frame);
                let line = ffi::PyFrame_GetLineNumber(frame);
                (
                    Bound::from_owned_ptr_or_opt(py, code.cast()).map(Bound::unbind),
                    Some(line),
                )
            }
        };
        let event = GlobalEvent::new(
            kind,
            module,
            Bound::from_borrowed_ptr(py, key).unbind(),
            Bound::from_borrowed_ptr_or_opt(py, value).map(Bound::unbind),
            code,
            lineno,
            site,
        );
        let escaped = match Bound::new(py, event) {
            Ok(event) => handlers::run_globals(py, &handlers, &event),
            Err(err) => {
                err.write_unraisable(py, None);
                Ok(())
            }
        };
        match escaped {
            Err(err) => {
                err.restore(py);
                true
            }
            Ok(()) => {
                if let Some(e) = saved {
                    e.restore(py);
                }
                false
            }
        }
    }
}

/// Swap `module.__dict__` for a `TrackedGlobals` holding the same items. Only for a module
/// no code has seen yet (the loader's `create_module`): whoever held the old dictionary
/// would no longer see the module's globals.
#[pyfunction]
pub fn track_module(module: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = module.py();
    let tp = create_type(py)?;
    // SAFETY: a module object's dictionary slot is at PyModule_Type.tp_dictoffset (its
    // md_dict); it is replaced by a dict subclass holding the same items, with the GIL held.
    unsafe {
        let m = module.as_ptr();
        if ffi::PyModule_CheckExact(m) == 0 {
            return Err(PyTypeError::new_err(format!(
                "track_module needs a types.ModuleType, not {}",
                module.get_type().name()?
            )));
        }
        let offset = (*std::ptr::addr_of!(ffi::PyModule_Type)).tp_dictoffset;
        if offset <= 0 {
            return Err(PyTypeError::new_err("modules have no dictionary slot"));
        }
        let slot = m.cast::<u8>().offset(offset).cast::<*mut ffi::PyObject>();
        let old = *slot;
        if is_tracked(old) {
            return Ok(());
        }
        let new = ffi::PyObject_CallNoArgs(tp.as_ptr());
        if new.is_null() {
            return Err(PyErr::fetch(py));
        }
        if !old.is_null() && ffi::PyDict_Update(new, old) != 0 {
            ffi::Py_DECREF(new);
            return Err(PyErr::fetch(py));
        }
        *slot = new;
        if !old.is_null() {
            ffi::Py_DECREF(old);
        }
    }
    Ok(())
}

/// Whether `namespace` (a module's `__dict__`) is tracked.
#[pyfunction]
pub fn is_tracked_namespace(namespace: &Bound<'_, PyAny>) -> bool {
    // SAFETY: only compares the type pointer.
    unsafe { is_tracked(namespace.as_ptr()) }
}

/// The names a write-report site stores (the site table's `names`).
fn site_names(site: u64) -> Option<Vec<String>> {
    let (module, index) = sites::lookup(site)?;
    Some(module.sites[index].names.clone())
}

/// Report each name `site` stored; true when a handler's `BaseException` is now set.
///
/// # Safety
/// The GIL is held and `globals` is a live tracked namespace.
unsafe fn report_names(globals: *mut ffi::PyObject, site: u64) -> bool {
    unsafe {
        let Some(names) = site_names(site) else {
            return false;
        };
        for name in names {
            let Ok(len) = ffi::Py_ssize_t::try_from(name.len()) else {
                continue;
            };
            let key = ffi::PyUnicode_FromStringAndSize(name.as_ptr().cast(), len);
            if key.is_null() {
                ffi::PyErr_Clear();
                continue;
            }
            let value = ffi::PyDict_GetItemWithError(globals, key);
            let escaped = if value.is_null() {
                ffi::PyErr_Clear();
                report(GlobalKind::Delete, globals, key, null_mut(), Some(site))
            } else {
                ffi::Py_INCREF(value);
                let escaped = report(GlobalKind::Write, globals, key, value, Some(site));
                ffi::Py_DECREF(value);
                escaped
            };
            ffi::Py_DECREF(key);
            if escaped {
                return true;
            }
        }
        false
    }
}

/// `__recompyle_gw__(site_id)`: after a statement that stored (or deleted) declared
/// globals, report each name's value now. Returns None; raises only a handler's
/// `KeyboardInterrupt` or `SystemExit` (any `BaseException` not an `Exception`).
///
/// # Safety
/// CPython calls it with the GIL held and `args` holding `nargs` live objects.
unsafe extern "C-unwind" fn report_writes(
    _slf: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    unsafe {
        if nargs != 1 {
            return type_error(c"__recompyle_gw__() takes a site id");
        }
        if listening() {
            let globals = ffi::PyEval_GetGlobals();
            if is_tracked(globals) {
                let site = ffi::PyLong_AsUnsignedLongLong(*args);
                if site == u64::MAX && !ffi::PyErr_Occurred().is_null() {
                    ffi::PyErr_Clear();
                } else if report_names(globals, site) {
                    return null_mut();
                }
            }
        }
        let none = ffi::Py_None();
        ffi::Py_INCREF(none);
        none
    }
}

/// `__recompyle_gr__(site_id, value)`: `value`, which a class body loaded by name; reported
/// as a global read when the name came from the module's globals, not the class namespace.
///
/// # Safety
/// CPython calls it with the GIL held and `args` holding `nargs` live objects.
unsafe extern "C-unwind" fn report_class_read(
    _slf: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    unsafe {
        if nargs != 2 {
            return type_error(c"__recompyle_gr__() takes a site id and a value");
        }
        let value = *args.add(1);
        ffi::Py_INCREF(value);
        if !listening() {
            return value;
        }
        let globals = ffi::PyEval_GetGlobals();
        if !is_tracked(globals) {
            return value;
        }
        let site = ffi::PyLong_AsUnsignedLongLong(*args);
        if site == u64::MAX && !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Clear();
            return value;
        }
        let Some(name) = site_names(site).and_then(|n| n.into_iter().next()) else {
            return value;
        };
        let Ok(len) = ffi::Py_ssize_t::try_from(name.len()) else {
            return value;
        };
        let key = ffi::PyUnicode_FromStringAndSize(name.as_ptr().cast(), len);
        if key.is_null() {
            ffi::PyErr_Clear();
            return value;
        }
        // The class namespace answers first (LOAD_NAME's order); only a name it lacks, found
        // in the globals as this very object, was read from the globals.
        let locals = ffi::PyEval_GetLocals();
        let mut from_class = false;
        if locals.is_null() {
            ffi::PyErr_Clear();
        } else if locals != globals {
            match ffi::PyMapping_HasKey(locals, key) {
                1 => from_class = true,
                _ => ffi::PyErr_Clear(),
            }
        }
        let escaped = !from_class
            && ffi::PyDict_GetItemWithError(globals, key) == value
            && report(GlobalKind::Read, globals, key, value, Some(site));
        ffi::Py_DECREF(key);
        if escaped {
            ffi::Py_DECREF(value);
            return null_mut();
        }
        ffi::PyErr_Clear();
        value
    }
}

const WRITE_DOC: &CStr = c"__recompyle_gw__(site_id, /)\n--\n\n\
Reports the global names a statement just stored or deleted (recompyle, tracked modules).";
const READ_DOC: &CStr = c"__recompyle_gr__(site_id, value, /)\n--\n\n\
Returns value, a name a class body loaded, reporting it when it came from the module's \
globals (recompyle, tracked modules).";

static WRITE_INFO: BuiltinInfo = BuiltinInfo {
    name: names::WRITE_REPORTER_C,
    params: &[("site_id", "POSITIONAL_ONLY")],
    repr: c"<recompyle call-site selector __recompyle_gw__>",
};
static READ_INFO: BuiltinInfo = BuiltinInfo {
    name: names::CLASS_READ_REPORTER_C,
    params: &[("site_id", "POSITIONAL_ONLY"), ("value", "POSITIONAL_ONLY")],
    repr: c"<recompyle call-site selector __recompyle_gr__>",
};

/// The two reporting builtins, made as the selectors are ([`fast_call_builtin`]), so that
/// a recursion hitting the limit fails in the program's own call, with CPython's own
/// message.
pub fn create_reporters(py: Python<'_>) -> PyResult<(Bound<'_, PyAny>, Bound<'_, PyAny>)> {
    Ok((
        fast_call_builtin(py, report_writes, WRITE_DOC, &WRITE_INFO)?,
        fast_call_builtin(py, report_class_read, READ_DOC, &READ_INFO)?,
    ))
}
