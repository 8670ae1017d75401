//! Everything the bindings take from CPython beyond pyo3's declarations, in one place: the C
//! functions pyo3-ffi does not declare, the one struct layout copied from CPython's headers,
//! and the few generic helpers every native type and builtin here is built with.
//!
//! Each declaration says which CPython versions it is valid for. The test suite loads the
//! extension on every supported version (3.9-3.15), and the dynamic loader binds every
//! symbol at load (`sys.getdlopenflags()` has `RTLD_NOW`), so a function missing on one
//! version fails that version's whole suite, not one rare call. Layout copies are compiled
//! for their versions only (`#[cfg]`). `unwind.rs` keeps its own `"C-unwind"` declarations
//! of the vectorcall functions (3.9/3.10 and 3.11+ apart): they exist for the unwind rules
//! described there.
//!
//! Nothing here knows about call sites, handlers or the profiler: the modules that do build
//! on this one, never the other way round.

use std::ffi::{c_int, c_void, CStr};
use std::ptr::null_mut;
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;

use crate::unwind::{self, FastCall, Getter, Vectorcall};

// ---------------------------------------------------------------------------------------
// C functions and objects pyo3-ffi does not declare
// ---------------------------------------------------------------------------------------

extern "C-unwind" {
    /// What LOAD_METHOD calls. Valid for 3.9-3.15: exported by each, which the suite's run
    /// on each version checks (see above). Returns 1 with an unbound callable that needs `obj` as first
    /// argument, 0 with a ready callable, and sets `*method` to NULL with an exception on
    /// failure. May run Python code (descriptors, `__getattr__`), hence `"C-unwind"`.
    pub(crate) fn _PyObject_GetMethod(
        obj: *mut ffi::PyObject,
        name: *mut ffi::PyObject,
        method: *mut *mut ffi::PyObject,
    ) -> c_int;

    /// Public C API (`Include/cpython/classobject.h`), valid for 3.9-3.15.
    fn PyMethod_New(func: *mut ffi::PyObject, slf: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

extern "C" {
    /// `types.MethodType`: public C API (`Include/cpython/classobject.h`), valid for
    /// 3.9-3.15.
    static mut PyMethod_Type: ffi::PyTypeObject;
    /// A bound method's function, borrowed. Public C API, valid for 3.9-3.15; runs no
    /// Python code.
    pub(crate) fn PyMethod_Function(meth: *mut ffi::PyObject) -> *mut ffi::PyObject;
    /// Give a reused object's memory its first reference, as `PyObject_Init` does after
    /// setting the type (reference count 1; tracemalloc's and, from 3.13, the reference
    /// tracer's record of a new object). Exported in `Include/cpython/object.h` for
    /// 3.9-3.15; pyo3-ffi leaves it out as private.
    pub(crate) fn _Py_NewReference(op: *mut ffi::PyObject);
}

/// Whether `obj` is a bound method (`types.MethodType`, exactly).
///
/// # Safety
/// `obj` must be a live object; the GIL is held.
#[inline(always)]
pub(crate) unsafe fn is_bound_method(obj: *mut ffi::PyObject) -> bool {
    unsafe { ffi::Py_TYPE(obj) == &raw mut PyMethod_Type }
}

/// `descr` bound to `obj` as attribute lookup would: a function becomes a bound method, a
/// descriptor gives what its `__get__` gives, anything else is itself. A new reference, or
/// NULL with an exception set.
///
/// # Safety
/// Both objects are live; the GIL is held.
pub(crate) unsafe fn bind(
    descr: *mut ffi::PyObject,
    obj: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        if ffi::PyFunction_Check(descr) != 0 {
            return PyMethod_New(descr, obj);
        }
        match (*ffi::Py_TYPE(descr)).tp_descr_get {
            Some(get) => get(descr, obj, ffi::Py_TYPE(obj).cast()),
            None => {
                ffi::Py_INCREF(descr);
                descr
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Layout copies
// ---------------------------------------------------------------------------------------

/// `PyException_HEAD` of CPython 3.12 and 3.13 (`Include/cpython/pyerrors.h`); valid for
/// those two versions only, and compiled for them only. 3.14 added fields.
#[cfg(all(Py_3_12, not(Py_3_14)))]
#[repr(C)]
struct BaseException312 {
    ob_base: ffi::PyObject,
    /// Borrowed (the exception owns it), as every pointer field below.
    dict: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
    notes: *mut ffi::PyObject,
    traceback: *mut ffi::PyObject,
    context: *mut ffi::PyObject,
    cause: *mut ffi::PyObject,
    suppress_context: std::ffi::c_char,
}

/// Whether `exc` is a `KeyError(key)` nothing was attached to: no traceback, context,
/// cause, notes or attributes, its args still `(key,)`. Valid for 3.12 and 3.13 (reads
/// [`BaseException312`]).
///
/// # Safety
/// `exc` and `key` are live objects; the GIL is held.
#[cfg(all(Py_3_12, not(Py_3_14)))]
pub(crate) unsafe fn is_pristine_key_error(
    exc: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
) -> bool {
    unsafe {
        if ffi::Py_TYPE(exc) != ffi::PyExc_KeyError.cast() {
            return false;
        }
        let e = exc.cast::<BaseException312>();
        let args = (*e).args;
        (*e).traceback.is_null()
            && (*e).context.is_null()
            && (*e).cause.is_null()
            && (*e).suppress_context == 0
            && (*e).notes.is_null()
            && ((*e).dict.is_null() || ffi::PyDict_Size((*e).dict) == 0)
            && !args.is_null()
            && ffi::PyTuple_CheckExact(args) != 0
            && ffi::PyTuple_GET_SIZE(args) == 1
            && ffi::PyTuple_GET_ITEM(args, 0) == key
    }
}

// ---------------------------------------------------------------------------------------
// Method lookups a call site may reuse
// ---------------------------------------------------------------------------------------

/// Whether this build reads an instance layout ([`no_shadow`]) and so lets call sites reuse
/// method lookups: 3.11 only. Elsewhere the selector skips the cache entirely, so a method
/// call site pays nothing for it.
pub(crate) const METHOD_CACHE: bool = cfg!(all(Py_3_11, not(Py_3_12), not(Py_GIL_DISABLED)));

/// Why `obj.name` can be answered by a method found on `type(obj)` without asking the
/// instance: its own attributes cannot hold `name`. Valid only with the type unmodified
/// (its `tp_version_tag` unchanged), which is what the layouts below are read under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Only 3.11 makes them (elsewhere `no_shadow` is always `None`).
#[cfg_attr(
    not(all(Py_3_11, not(Py_3_12), not(Py_GIL_DISABLED))),
    allow(dead_code)
)]
pub(crate) enum NoShadow {
    /// Instances have no attribute dictionary (`__slots__` classes, most C types).
    NoDict,
    /// 3.11: the instance keeps its attributes as values of the type's shared keys
    /// (`ht_cached_keys`, borrowed here), which did not hold `name` when they had
    /// `nentries` entries; shared keys only grow, so the same count means still not.
    SharedKeys { keys: *mut c_void, nentries: isize },
}

/// `PyDictKeysObject` of CPython 3.11 (`Include/internal/pycore_dict.h`), valid for 3.11
/// only and compiled for it only: 3.12 and later read no instance layout here.
#[cfg(all(Py_3_11, not(Py_3_12), not(Py_GIL_DISABLED)))]
#[repr(C)]
struct DictKeys311 {
    dk_refcnt: ffi::Py_ssize_t,
    dk_log2_size: u8,
    dk_log2_index_bytes: u8,
    /// 0 general, 1 unicode, 2 split (shared keys).
    dk_kind: u8,
    dk_version: u32,
    dk_usable: ffi::Py_ssize_t,
    dk_nentries: ffi::Py_ssize_t,
    dk_indices: [u8; 0],
}

/// 3.11's `_PyObject_ValuesPointer` (`Include/internal/pycore_object.h`): a managed-dict
/// object's inline values, NULL once it has a dictionary of its own. Valid for 3.11 only.
///
/// # Safety
/// `obj` is live and its type has `Py_TPFLAGS_MANAGED_DICT`.
#[cfg(all(Py_3_11, not(Py_3_12), not(Py_GIL_DISABLED)))]
#[inline(always)]
unsafe fn values_311(obj: *mut ffi::PyObject) -> *mut c_void {
    unsafe { *obj.cast::<*mut c_void>().sub(4) }
}

/// The version tag of `tp`: it changes (to 0, then a new number never given before) when
/// the type or a base is modified; 0 means none, and then nothing may be cached. Every
/// version reads it, but only 3.11 uses it ([`no_shadow`] is `None` elsewhere).
///
/// # Safety
/// `tp` is a live type; the GIL is held.
#[inline(always)]
pub(crate) unsafe fn type_version(tp: *mut ffi::PyTypeObject) -> u32 {
    unsafe { (*tp).tp_version_tag }
}

/// Whether `obj`'s own attributes cannot give `name` (an exact `str`), and what keeps that
/// so for other instances of the same unmodified type; `None` when that cannot be told
/// cheaply (an instance dictionary, a key `name` in the shared keys, another version).
/// Valid for 3.11, where it reads [`DictKeys311`] and the managed-dict layout;
/// always `None` on other versions.
///
/// # Safety
/// `obj` is live, `name` an exact `str`; the GIL is held.
#[cfg(all(Py_3_11, not(Py_3_12), not(Py_GIL_DISABLED)))]
pub(crate) unsafe fn no_shadow(
    obj: *mut ffi::PyObject,
    name: *mut ffi::PyObject,
) -> Option<NoShadow> {
    unsafe {
        let tp = ffi::Py_TYPE(obj);
        if (*tp).tp_flags & ffi::Py_TPFLAGS_MANAGED_DICT == 0 {
            return ((*tp).tp_dictoffset == 0).then_some(NoShadow::NoDict);
        }
        if values_311(obj).is_null() {
            return None; // a dictionary of its own: it would have to be asked
        }
        let keys = (*tp.cast::<ffi::PyHeapTypeObject>())
            .ht_cached_keys
            .cast::<DictKeys311>();
        if keys.is_null() || (*keys).dk_kind == 0 {
            return None;
        }
        let nentries = (*keys).dk_nentries;
        // DK_UNICODE_ENTRIES: (key, value) pairs after the index table.
        let entries = (*keys)
            .dk_indices
            .as_ptr()
            .add(1usize << (*keys).dk_log2_index_bytes)
            .cast::<[*mut ffi::PyObject; 2]>();
        for i in 0..nentries.max(0) as usize {
            let key = (*entries.add(i))[0];
            if key.is_null() {
                continue;
            }
            if key == name || ffi::PyUnicode_Compare(key, name) == 0 {
                return None;
            }
            if !ffi::PyErr_Occurred().is_null() {
                ffi::PyErr_Clear();
                return None;
            }
        }
        Some(NoShadow::SharedKeys {
            keys: keys.cast(),
            nentries,
        })
    }
}

/// See the 3.11 version: other versions cache no method lookup.
///
/// # Safety
/// None needed; the signature matches the 3.11 version's.
#[cfg(not(all(Py_3_11, not(Py_3_12), not(Py_GIL_DISABLED))))]
pub(crate) unsafe fn no_shadow(
    _obj: *mut ffi::PyObject,
    _name: *mut ffi::PyObject,
) -> Option<NoShadow> {
    None
}

/// Whether `guard`, found by [`no_shadow`] for an instance of `type(obj)` while the type
/// had the version it still has, holds for `obj` too.
///
/// # Safety
/// `obj` is live; its type's version is the one `guard` was found under; the GIL is held.
#[inline(always)]
pub(crate) unsafe fn still_no_shadow(obj: *mut ffi::PyObject, guard: NoShadow) -> bool {
    match guard {
        NoShadow::NoDict => true,
        #[cfg(all(Py_3_11, not(Py_3_12), not(Py_GIL_DISABLED)))]
        NoShadow::SharedKeys { keys, nentries } => unsafe {
            let tp = ffi::Py_TYPE(obj);
            // The keys are the type's (read again, not trusted); the object has no dict.
            (*tp.cast::<ffi::PyHeapTypeObject>()).ht_cached_keys == keys
                && !values_311(obj).is_null()
                && (*keys.cast::<DictKeys311>()).dk_nentries == nentries
        },
        #[cfg(not(all(Py_3_11, not(Py_3_12), not(Py_GIL_DISABLED))))]
        NoShadow::SharedKeys { .. } => {
            let _ = obj;
            false
        }
    }
}

// ---------------------------------------------------------------------------------------
// Errors and calls
// ---------------------------------------------------------------------------------------

/// Set a `TypeError` with `message` and return NULL: how a native entry point refuses a
/// bad call.
///
/// # Safety
/// The GIL is held.
#[cold]
#[inline(never)]
pub(crate) unsafe fn type_error(message: &CStr) -> *mut ffi::PyObject {
    unsafe {
        ffi::PyErr_SetString(ffi::PyExc_TypeError, message.as_ptr());
        null_mut()
    }
}

/// `target(first, *args, **kwargs)`, the arguments being a vectorcall's own (`nargs`
/// positional values, then one per name in `kwnames`), as LOAD_METHOD's call makes a call
/// without building a bound method. With `may_borrow` (the caller passed
/// `PY_VECTORCALL_ARGUMENTS_OFFSET`), `args[-1]` is lent for `first` during the call and
/// restored; otherwise the vector is copied.
///
/// # Safety
/// The GIL is held; `target` and `first` are live; `args` and `kwnames` form a valid
/// vector call; with `may_borrow`, `args[-1]` is writable.
#[inline(always)]
pub(crate) unsafe fn call_prepended(
    target: *mut ffi::PyObject,
    first: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: usize,
    kwnames: *mut ffi::PyObject,
    may_borrow: bool,
) -> *mut ffi::PyObject {
    unsafe {
        if may_borrow {
            let place = args.cast_mut().sub(1);
            let saved = *place;
            *place = first;
            let result = unwind::vectorcall(target, place, nargs + 1, kwnames);
            *place = saved;
            return result;
        }
        let nkw = if kwnames.is_null() {
            0
        } else {
            ffi::PyTuple_GET_SIZE(kwnames) as usize
        };
        let mut stack: Vec<*mut ffi::PyObject> = Vec::with_capacity(1 + nargs + nkw);
        stack.push(first);
        stack.extend_from_slice(std::slice::from_raw_parts(args, nargs + nkw));
        unwind::vectorcall(target, stack.as_ptr(), nargs + 1, kwnames)
    }
}

// ---------------------------------------------------------------------------------------
// Native types
// ---------------------------------------------------------------------------------------

/// A type object made here: leaked, so immortal for the process.
pub(crate) struct TypePtr(pub(crate) *mut ffi::PyTypeObject);
// SAFETY: the type object is immortal for the process and only used with the GIL held.
unsafe impl Send for TypePtr {}
unsafe impl Sync for TypePtr {}

pub(crate) fn slot(slot: c_int, pfunc: *mut c_void) -> ffi::PyType_Slot {
    ffi::PyType_Slot { slot, pfunc }
}

/// A read-only attribute computed by `get`.
pub(crate) fn getset(name: &'static CStr, get: Getter) -> ffi::PyGetSetDef {
    ffi::PyGetSetDef {
        name: name.as_ptr(),
        get: Some(unwind::getter(get)),
        set: None,
        doc: std::ptr::null(),
        closure: null_mut(),
    }
}

/// A native type whose instances are called through the vectorcall pointer at `offset`.
/// Everything handed to CPython is leaked: the type lives as long as the process.
pub(crate) fn vectorcall_type(
    py: Python<'_>,
    name: &'static CStr,
    basicsize: usize,
    offset: usize,
    extra: &[ffi::PyType_Slot],
) -> PyResult<*mut ffi::PyTypeObject> {
    let members = Box::leak(Box::new([
        ffi::PyMemberDef {
            name: c"__vectorcalloffset__".as_ptr(),
            type_code: ffi::Py_T_PYSSIZET,
            offset: offset as ffi::Py_ssize_t,
            flags: ffi::Py_READONLY,
            doc: std::ptr::null(),
        },
        ffi::PyMemberDef::default(),
    ]));
    let mut slots = vec![
        slot(ffi::Py_tp_call, ffi::PyVectorcall_Call as *mut c_void),
        slot(ffi::Py_tp_members, members.as_mut_ptr().cast()),
    ];
    slots.extend_from_slice(extra);
    slots.push(slot(0, null_mut()));
    let slots = Box::leak(slots.into_boxed_slice());
    let spec = Box::leak(Box::new(ffi::PyType_Spec {
        name: name.as_ptr(),
        basicsize: basicsize as c_int,
        itemsize: 0,
        flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_HAVE_VECTORCALL) as std::ffi::c_uint,
        slots: slots.as_mut_ptr(),
    }));
    // SAFETY: the spec and everything it points to are leaked, so live forever.
    let t = unsafe { ffi::PyType_FromSpec(spec) };
    if t.is_null() {
        return Err(PyErr::fetch(py));
    }
    Ok(t.cast())
}

// ---------------------------------------------------------------------------------------
// Builtins: the selectors and reporters rewritten code calls
// ---------------------------------------------------------------------------------------

/// What a builtin of recompyle is, for `inspect` and `repr`: static data.
pub(crate) struct BuiltinInfo {
    pub(crate) name: &'static CStr,
    /// Its parameters for `inspect.signature`: name and `inspect.Parameter` kind attribute
    /// (`POSITIONAL_ONLY`, `VAR_POSITIONAL`, `VAR_KEYWORD`).
    pub(crate) params: &'static [(&'static str, &'static str)],
    pub(crate) repr: &'static CStr,
}

/// The one layout of recompyle's selector objects: the call-site selectors and reporters
/// where they are not builtin functions (3.9 and 3.10), and the selectors of rewritten
/// functions (`function_sites.rs`).
#[repr(C)]
pub(crate) struct Selector {
    ob_base: ffi::PyObject,
    vectorcall: Option<Vectorcall>,
    /// The fast-call function the positional arguments go to (see [`fast_call_builtin`]);
    /// `None` when `vectorcall` does the work itself.
    target: Option<FastCall>,
    /// Borrowed: static data.
    info: *const BuiltinInfo,
}

/// A selector type named `name`: instances say their signature and repr from their
/// [`BuiltinInfo`]. Leaked, as every type here.
pub(crate) fn selector_type(
    py: Python<'_>,
    name: &'static CStr,
    doc: Option<&'static CStr>,
) -> PyResult<*mut ffi::PyTypeObject> {
    let getsets = Box::leak(Box::new([
        getset(c"__signature__", selector_signature),
        ffi::PyGetSetDef::default(),
    ]));
    let mut extra = vec![
        slot(ffi::Py_tp_repr, selector_repr as *mut c_void),
        slot(ffi::Py_tp_getset, getsets.as_mut_ptr().cast()),
    ];
    if let Some(doc) = doc {
        extra.push(slot(ffi::Py_tp_doc, doc.as_ptr() as *mut c_void));
    }
    vectorcall_type(
        py,
        name,
        std::mem::size_of::<Selector>(),
        std::mem::offset_of!(Selector, vectorcall),
        &extra,
    )
}

/// An instance of the selector type `tp` (from [`selector_type`]).
pub(crate) fn new_selector<'py>(
    py: Python<'py>,
    tp: *mut ffi::PyTypeObject,
    vectorcall: Vectorcall,
    target: Option<FastCall>,
    info: &'static BuiltinInfo,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `tp` is a selector type; PyType_GenericAlloc zeroes the object.
    unsafe {
        let obj = ffi::PyType_GenericAlloc(tp, 0);
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        let sel = obj.cast::<Selector>();
        (*sel).vectorcall = Some(vectorcall);
        (*sel).target = target;
        (*sel).info = info;
        Ok(Bound::from_owned_ptr(py, obj))
    }
}

const SELECTOR_DOC: &CStr = c"A call-site selector inserted by recompyle's rewrite.\n\n\
__recompyle__(site_id, callee) is the callee of an instrumented call site, and \
__recompyle_m__(site_id, obj) is obj, whose method the site calls: each is the object itself \
when nothing listens, or a proxy that reports the call when a handler or the profiler \
listens.";

/// The type of [`fast_call_builtin`]'s objects before 3.11.
static FAST_CALL_TYPE: OnceLock<TypePtr> = OnceLock::new();

/// A builtin calling `f` with its positional arguments (`METH_FASTCALL`).
///
/// From 3.11 on it is a builtin function, whose calls the interpreter specialises (a
/// vectorcall object of our own costs ~8 ns more per call there); `doc` starts with the
/// signature, so `inspect.signature` works on it as on every other builtin. Before 3.11 it
/// is an instance of a small native type with a vectorcall slot instead, because 3.9 and
/// 3.10 charge every builtin-function call a recursion level: the builtin, not the callee,
/// would hit the recursion limit and word the error ("... while calling a Python object").
/// Objects of that type are not reported to `sys.setprofile` either.
pub(crate) fn fast_call_builtin<'py>(
    py: Python<'py>,
    f: FastCall,
    doc: &'static CStr,
    info: &'static BuiltinInfo,
) -> PyResult<Bound<'py, PyAny>> {
    if py.version_info() < (3, 11) {
        let tp = match FAST_CALL_TYPE.get() {
            Some(tp) => tp.0,
            None => {
                let tp = selector_type(py, c"recompyle._core.Selector", Some(SELECTOR_DOC))?;
                FAST_CALL_TYPE.get_or_init(|| TypePtr(tp)).0
            }
        };
        return new_selector(py, tp, fast_call_vectorcall, Some(f), info);
    }
    let meth = ffi::PyMethodDefPointer {
        PyCFunctionFast: unwind::fast_call(f),
    };
    builtin_function(py, info.name, meth, ffi::METH_FASTCALL, doc)
}

/// A builtin function (3.11+) taking its arguments as `METH_FASTCALL | METH_KEYWORDS`;
/// `doc` starts with its signature, as [`fast_call_builtin`]'s. Calls the interpreter
/// specialises (`PRECALL_BUILTIN_FAST_WITH_KEYWORDS`, 3.13's `CALL_BUILTIN_FAST_WITH_KEYWORDS`)
/// charge no recursion level; an unspecialised one (a site's first executions) charges one.
pub(crate) fn fast_call_keywords_builtin<'py>(
    py: Python<'py>,
    f: unwind::FastCallKeywords,
    name: &'static CStr,
    doc: &'static CStr,
) -> PyResult<Bound<'py, PyAny>> {
    let meth = ffi::PyMethodDefPointer {
        PyCFunctionFastWithKeywords: unwind::fast_call_keywords(f),
    };
    builtin_function(py, name, meth, ffi::METH_FASTCALL | ffi::METH_KEYWORDS, doc)
}

/// A builtin function named `name` calling `meth` as `flags` say, with no self or module;
/// its method definition lives for the rest of the process.
fn builtin_function<'py>(
    py: Python<'py>,
    name: &'static CStr,
    meth: ffi::PyMethodDefPointer,
    flags: std::ffi::c_int,
    doc: &'static CStr,
) -> PyResult<Bound<'py, PyAny>> {
    let def = Box::leak(Box::new(ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: meth,
        ml_flags: flags,
        ml_doc: doc.as_ptr(),
    }));
    // SAFETY: `def` lives for the rest of the process; NULL self and module are allowed.
    unsafe {
        let f = ffi::PyCFunction_NewEx(def, null_mut(), null_mut());
        Bound::from_owned_ptr_or_err(py, f)
    }
}

/// `inspect.signature` works on every builtin; selector objects are not builtin functions,
/// so they say theirs with `__signature__`.
///
/// # Safety
/// CPython calls it with the GIL held and `obj` a live selector object.
unsafe extern "C-unwind" fn selector_signature(
    obj: *mut ffi::PyObject,
    _: *mut c_void,
) -> *mut ffi::PyObject {
    unsafe {
        let py = Python::assume_attached();
        let params = (*(*obj.cast::<Selector>()).info).params;
        let build = || -> PyResult<Bound<'_, PyAny>> {
            let inspect = py.import("inspect")?;
            let parameter = inspect.getattr("Parameter")?;
            let params = params
                .iter()
                .map(|(name, kind)| parameter.call1((*name, parameter.getattr(*kind)?)))
                .collect::<PyResult<Vec<_>>>()?;
            inspect.getattr("Signature")?.call1((params,))
        };
        match build() {
            Ok(sig) => sig.into_ptr(),
            Err(err) => {
                err.restore(py);
                null_mut()
            }
        }
    }
}

/// # Safety
/// CPython calls it with the GIL held and `obj` a live selector object.
unsafe extern "C-unwind" fn selector_repr(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    unsafe { ffi::PyUnicode_FromString((*(*obj.cast::<Selector>()).info).repr.as_ptr()) }
}

/// The vectorcall of [`fast_call_builtin`]'s objects: the positional arguments go to the
/// same function the builtin-function form calls.
///
/// # Safety
/// CPython calls it with the GIL held, `callable` a live selector object and a valid
/// vector call.
unsafe extern "C-unwind" fn fast_call_vectorcall(
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        if !kwnames.is_null() && ffi::PyTuple_GET_SIZE(kwnames) != 0 {
            return type_error(c"recompyle's selectors take no keyword arguments");
        }
        match (*callable.cast::<Selector>()).target {
            Some(target) => target(null_mut(), args.cast_mut(), ffi::PyVectorcall_NARGS(nargsf)),
            None => type_error(c"recompyle: selector without a target"),
        }
    }
}
