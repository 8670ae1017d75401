//! The native side of every rewritten call site.
//!
//! `__recompyle__(ID, f)(args)` and `__recompyle_m__(ID, obj).m(args)` are what call sites
//! become. When nothing listens the selectors return `f` / `obj` itself, so the call (and
//! the method lookup) is the interpreter's own: a Python callee runs inline, errors name the
//! real callee, and the cost is one builtin call. When a handler or the profiler listens they
//! return a [`Proxy`]: a native callable holding the site and callee, whose vectorcall
//! reports the call around forwarding it (for a method site, first a target whose attribute
//! lookup produces that proxy).
//!
//! Everything here is native code: no Python frame is pushed, so `eval`, `locals()`,
//! zero-argument `super()`, `sys._getframe()` and `warnings`' stack levels see the caller's
//! own frame, through the proxy too.

use std::cell::Cell;
use std::ffi::{c_int, c_void, CStr};
use std::ptr::null_mut;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;

use crate::events::CallEvent;
use crate::gil::GilCell;
use crate::{clock, handlers, profiler, sites, ACTIVE, HANDLERS, PROFILING};

extern "C" {
    /// What LOAD_METHOD calls; exported by every CPython 3.9-3.13. Returns 1 with an
    /// unbound callable that needs `obj` as first argument, 0 with a ready callable, and
    /// sets `*method` to NULL with an exception on failure.
    fn _PyObject_GetMethod(
        obj: *mut ffi::PyObject,
        name: *mut ffi::PyObject,
        method: *mut *mut ffi::PyObject,
    ) -> c_int;

    /// Public C API (`Include/cpython/classobject.h`), not declared by pyo3-ffi.
    fn PyMethod_New(func: *mut ffi::PyObject, slf: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

// Docstrings of the builtin-function form start with the signature, so `inspect.signature`
// works on them as on every other builtin.
const SELECT_DOC: &CStr = c"__recompyle__(site_id, callee, /)\n--\n\n\
The callee of an instrumented call site: callee itself when nothing listens, or a proxy \
that reports the call when a handler or the profiler listens. Inserted by recompyle.";
const SELECT_METHOD_DOC: &CStr = c"__recompyle_m__(site_id, obj, /)\n--\n\n\
The object whose method an instrumented call site calls: obj itself when nothing listens, \
or a target whose attributes are proxies that report the call. Inserted by recompyle.";

const SELECTOR_DOC: &CStr = c"A call-site selector inserted by recompyle's rewrite.\n\n\
__recompyle__(site_id, callee) is the callee of an instrumented call site, and \
__recompyle_m__(site_id, obj) is obj, whose method the site calls: each is the object itself \
when nothing listens, or a proxy that reports the call when a handler or the profiler \
listens.";

/// Create the two builtins.
///
/// From 3.11 on they are builtin functions, whose calls the interpreter specialises (a
/// vectorcall object of our own costs ~8 ns more per call there). Before 3.11 they are
/// instances of a small native type with a vectorcall slot instead, because 3.9 and 3.10
/// charge every builtin-function call a recursion level: the selector, not the callee, would
/// hit the recursion limit and word the error ("... while calling a Python object"). Objects
/// of that type are not reported to `sys.setprofile` either.
pub fn create(py: Python<'_>) -> PyResult<(Bound<'_, PyAny>, Bound<'_, PyAny>)> {
    proxy_type(py)?;
    if py.version_info() >= (3, 11) {
        return Ok((
            builtin(
                py,
                c"__recompyle__",
                select as ffi::PyCFunctionFast,
                SELECT_DOC,
            )?,
            builtin(
                py,
                c"__recompyle_m__",
                select_method as ffi::PyCFunctionFast,
                SELECT_METHOD_DOC,
            )?,
        ));
    }
    let tp = selector_type(py)?;
    Ok((
        new_selector(py, tp, select, c"__recompyle__")?,
        new_selector(py, tp, select_method, c"__recompyle_m__")?,
    ))
}

fn builtin<'py>(
    py: Python<'py>,
    name: &'static CStr,
    f: ffi::PyCFunctionFast,
    doc: &'static CStr,
) -> PyResult<Bound<'py, PyAny>> {
    let def = Box::leak(Box::new(ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: ffi::PyMethodDefPointer { PyCFunctionFast: f },
        ml_flags: ffi::METH_FASTCALL,
        ml_doc: doc.as_ptr(),
    }));
    // SAFETY: `def` lives for the rest of the process; NULL self and module are allowed.
    unsafe {
        let f = ffi::PyCFunction_NewEx(def, null_mut(), null_mut());
        Bound::from_owned_ptr_or_err(py, f)
    }
}

#[repr(C)]
struct Selector {
    ob_base: ffi::PyObject,
    vectorcall: Option<ffi::vectorcallfunc>,
    target: Option<ffi::PyCFunctionFast>,
    name: *const std::ffi::c_char,
}

pub(crate) fn selector_type(py: Python<'_>) -> PyResult<*mut ffi::PyTypeObject> {
    let getsets = Box::leak(Box::new([
        getset(c"__signature__", selector_signature),
        ffi::PyGetSetDef::default(),
    ]));
    vectorcall_type(
        py,
        c"recompyle._core.Selector",
        std::mem::size_of::<Selector>(),
        std::mem::offset_of!(Selector, vectorcall),
        &[
            slot(ffi::Py_tp_repr, selector_repr as *mut c_void),
            slot(ffi::Py_tp_doc, SELECTOR_DOC.as_ptr() as *mut c_void),
            slot(ffi::Py_tp_getset, getsets.as_mut_ptr().cast()),
        ],
    )
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

pub(crate) fn new_selector<'py>(
    py: Python<'py>,
    tp: *mut ffi::PyTypeObject,
    target: ffi::PyCFunctionFast,
    name: &'static CStr,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `tp` is the selector type; PyType_GenericAlloc zeroes the object.
    unsafe {
        let obj = ffi::PyType_GenericAlloc(tp, 0);
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        let sel = obj.cast::<Selector>();
        (*sel).vectorcall = Some(selector_vectorcall);
        (*sel).target = Some(target);
        (*sel).name = name.as_ptr();
        Ok(Bound::from_owned_ptr(py, obj))
    }
}

/// `inspect.signature` works on every builtin; these objects are not builtin functions, so
/// they say theirs with `__signature__`.
unsafe extern "C" fn selector_signature(
    obj: *mut ffi::PyObject,
    _: *mut c_void,
) -> *mut ffi::PyObject {
    let py = Python::assume_attached();
    let name = CStr::from_ptr((*obj.cast::<Selector>()).name);
    let params: &[&str] = if name == c"__recompyle__" {
        &["site_id", "callee"]
    } else if name == c"__recompyle_gw__" {
        &["site_id"]
    } else if name == c"__recompyle_gr__" {
        &["site_id", "value"]
    } else {
        &["site_id", "obj"]
    };
    let build = || -> PyResult<Bound<'_, PyAny>> {
        let inspect = py.import("inspect")?;
        let parameter = inspect.getattr("Parameter")?;
        let kind = parameter.getattr("POSITIONAL_ONLY")?;
        let params = params
            .iter()
            .map(|p| parameter.call1((*p, &kind)))
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

unsafe extern "C" fn selector_repr(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let name = CStr::from_ptr((*obj.cast::<Selector>()).name);
    let text = format!("<recompyle call-site selector {}>", name.to_string_lossy());
    ffi::PyUnicode_FromStringAndSize(text.as_ptr().cast(), text.len() as ffi::Py_ssize_t)
}

/// The vectorcall of both selector objects: the positional arguments go to the same
/// function the builtin-function form calls.
unsafe extern "C" fn selector_vectorcall(
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    if !kwnames.is_null() && ffi::PyTuple_GET_SIZE(kwnames) != 0 {
        return bad_call(c"recompyle's selectors take no keyword arguments");
    }
    match (*callable.cast::<Selector>()).target {
        Some(target) => target(null_mut(), args.cast_mut(), ffi::PyVectorcall_NARGS(nargsf)),
        None => bad_call(c"recompyle: selector without a target"),
    }
}

/// Reported calls in progress, each a native frame on some thread's C stack. One count for
/// all threads (GIL-guarded, no thread-local lookup on the per-call path): it is never less
/// than any one thread's nesting, so the bound below holds per thread too.
static DEPTH: GilCell<Cell<u32>> = GilCell::new(Cell::new(0));

/// How deep reported calls may nest. A proxy calls its callee from C, so each nested
/// reported call also nests a C call of the interpreter; plain 3.11+ code recurses without
/// using the C stack, and a program that works under a raised recursion limit must not
/// overflow it because it is profiled. 3.12 also counts each such C call against its C
/// recursion limit (1500 units, two per call; 500 in debug builds). Deeper calls run
/// unreported (and untimed), exactly as without listeners.
const MAX_DEPTH: u32 = 200;

/// Whether the call being selected should be reported.
#[inline(always)]
fn listening() -> bool {
    match ACTIVE.load(Ordering::Relaxed) {
        0 => false,
        HANDLERS if handlers::in_handler() => false,
        // SAFETY: the selectors and proxies only run with the GIL held.
        _ => DEPTH.get(unsafe { Python::assume_attached() }).get() < MAX_DEPTH,
    }
}

#[cold]
#[inline(never)]
unsafe fn bad_call(message: &CStr) -> *mut ffi::PyObject {
    ffi::PyErr_SetString(ffi::PyExc_TypeError, message.as_ptr());
    null_mut()
}

/// `callee` (a new reference) as what the interpreter should call: itself when nothing
/// listens, else a proxy that takes over the reference.
#[inline(always)]
unsafe fn selected(site: *mut ffi::PyObject, callee: *mut ffi::PyObject) -> *mut ffi::PyObject {
    if !listening() {
        return callee;
    }
    if ffi::PyLong_CheckExact(site) == 0 {
        ffi::Py_DECREF(callee);
        return bad_call(c"recompyle: a site id must be an int");
    }
    if ACTIVE.load(Ordering::Relaxed) == HANDLERS
        && !handlers::wants_selected(Python::assume_attached(), site, callee)
    {
        return callee; // filtered out: the interpreter makes the call itself
    }
    new_proxy(site, callee, null_mut())
}

unsafe extern "C" fn select(
    _slf: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    if nargs != 2 {
        return bad_call(c"__recompyle__() takes a site id and a callee");
    }
    let callee = *args.add(1);
    ffi::Py_INCREF(callee);
    selected(*args, callee)
}

unsafe extern "C" fn select_method(
    _slf: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    if nargs != 2 {
        return bad_call(c"__recompyle_m__() takes a site id and an object");
    }
    let site = *args;
    let obj = *args.add(1);
    ffi::Py_INCREF(obj);
    if !listening() {
        return obj;
    }
    if ffi::PyLong_CheckExact(site) == 0 {
        ffi::Py_DECREF(obj);
        return bad_call(c"recompyle: a site id must be an int");
    }
    if ACTIVE.load(Ordering::Relaxed) == HANDLERS
        && !handlers::wants_selected(Python::assume_attached(), site, null_mut())
    {
        return obj; // no handler wants this module's calls
    }
    // A method target: the interpreter's LOAD_METHOD on it comes to `proxy_getattro`.
    new_proxy(site, null_mut(), obj)
}

/// Attribute lookup on a method target (`callee` NULL, `bound_self` the object): the lookup
/// LOAD_METHOD would have done on the object, answered with a proxy that reports the call.
/// On an ordinary proxy, the generic lookup (its `__qualname__` and the like).
unsafe extern "C" fn proxy_getattro(
    obj: *mut ffi::PyObject,
    name: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let p = obj.cast::<Proxy>();
    if !(*p).callee.is_null() {
        return ffi::PyObject_GenericGetAttr(obj, name);
    }
    let target = (*p).bound_self;
    let mut meth: *mut ffi::PyObject = null_mut();
    let unbound = _PyObject_GetMethod(target, name, &mut meth);
    if meth.is_null() {
        return null_mut();
    }
    if ACTIVE.load(Ordering::Relaxed) == HANDLERS
        && !handlers::wants_selected(Python::assume_attached(), (*p).site, meth)
    {
        // Filtered out: the attribute as a plain lookup gives it, called without a proxy.
        if unbound != 1 {
            return meth;
        }
        let bound = bind(meth, target);
        ffi::Py_DECREF(meth);
        return bound;
    }
    if ffi::Py_REFCNT(obj) == 1 {
        // Only the interpreter's stack holds the target, and LOAD_METHOD is about to drop
        // it: it becomes the proxy itself, saving an allocation.
        (*p).callee = meth;
        if unbound != 1 {
            (*p).bound_self = null_mut();
            ffi::Py_DECREF(target);
        }
        ffi::Py_INCREF(obj);
        return obj;
    }
    if unbound == 1 {
        // The proxy passes the object as first argument itself: no bound method is made.
        ffi::Py_INCREF(target);
        new_proxy((*p).site, meth, target)
    } else {
        new_proxy((*p).site, meth, null_mut())
    }
}

pub(crate) unsafe fn bind(
    descr: *mut ffi::PyObject,
    obj: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
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

// ---------------------------------------------------------------------------------------
// The proxy
// ---------------------------------------------------------------------------------------

#[repr(C)]
struct Proxy {
    ob_base: ffi::PyObject,
    vectorcall: Option<ffi::vectorcallfunc>,
    /// The site id: an int constant of the rewritten code (a reference is held).
    site: *mut ffi::PyObject,
    callee: *mut ffi::PyObject,
    /// For a method call site, the object `callee` (then an unbound function or method
    /// descriptor) is called with as first argument; NULL otherwise.
    bound_self: *mut ffi::PyObject,
}

struct TypePtr(*mut ffi::PyTypeObject);
// SAFETY: the type object is immortal for the process and only used with the GIL held.
unsafe impl Send for TypePtr {}
unsafe impl Sync for TypePtr {}

static PROXY_TYPE: OnceLock<TypePtr> = OnceLock::new();

/// Freed proxies kept for reuse: every listened call makes one.
struct FreeList(Vec<*mut Proxy>);
// SAFETY: only touched with the GIL held (GilCell).
unsafe impl Send for FreeList {}
static FREE: GilCell<FreeList> = GilCell::new(FreeList(Vec::new()));
const FREE_MAX: usize = 256;

fn proxy_type(py: Python<'_>) -> PyResult<*mut ffi::PyTypeObject> {
    if let Some(t) = PROXY_TYPE.get() {
        return Ok(t.0);
    }
    let getset = Box::leak(Box::new([
        getset(c"__qualname__", qualname_get),
        getset(c"__name__", name_get),
        getset(c"__module__", module_get),
        getset(c"__wrapped__", wrapped_get),
        ffi::PyGetSetDef::default(),
    ]));
    let t = vectorcall_type(
        py,
        c"recompyle._core.CallProxy",
        std::mem::size_of::<Proxy>(),
        std::mem::offset_of!(Proxy, vectorcall),
        &[
            slot(ffi::Py_tp_dealloc, proxy_dealloc as *mut c_void),
            slot(ffi::Py_tp_getattro, proxy_getattro as *mut c_void),
            slot(ffi::Py_tp_getset, getset.as_mut_ptr().cast()),
            slot(ffi::Py_tp_str, proxy_str as *mut c_void),
            slot(ffi::Py_tp_repr, proxy_repr as *mut c_void),
        ],
    )?;
    let _ = PROXY_TYPE.set(TypePtr(t));
    Ok(t)
}

pub(crate) fn slot(slot: c_int, pfunc: *mut c_void) -> ffi::PyType_Slot {
    ffi::PyType_Slot { slot, pfunc }
}

pub(crate) fn getset(name: &'static CStr, get: ffi::getter) -> ffi::PyGetSetDef {
    ffi::PyGetSetDef {
        name: name.as_ptr(),
        get: Some(get),
        set: None,
        doc: std::ptr::null(),
        closure: null_mut(),
    }
}

/// A proxy holding `site` (borrowed; a reference is taken), `callee` and `bound_self`
/// (owned references, either may be NULL; both are released on failure).
unsafe fn new_proxy(
    site: *mut ffi::PyObject,
    callee: *mut ffi::PyObject,
    bound_self: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let release = || {
        for obj in [callee, bound_self] {
            if !obj.is_null() {
                ffi::Py_DECREF(obj);
            }
        }
    };
    let Some(tp) = PROXY_TYPE.get() else {
        release();
        return bad_call(c"recompyle: proxy type missing");
    };
    let py = Python::assume_attached();
    let p = match FREE.get_mut(py).0.pop() {
        Some(p) => p,
        None => {
            let mem = ffi::PyObject_Malloc(std::mem::size_of::<Proxy>()).cast::<Proxy>();
            if mem.is_null() {
                release();
                return ffi::PyErr_NoMemory();
            }
            mem
        }
    };
    ffi::PyObject_Init(p.cast(), tp.0);
    (*p).vectorcall = Some(proxy_call);
    ffi::Py_INCREF(site);
    (*p).site = site;
    (*p).callee = callee;
    (*p).bound_self = bound_self;
    p.cast()
}

unsafe extern "C" fn proxy_dealloc(obj: *mut ffi::PyObject) {
    let p = obj.cast::<Proxy>();
    let tp = ffi::Py_TYPE(obj);
    for field in [&mut (*p).callee, &mut (*p).site, &mut (*p).bound_self] {
        let obj = std::mem::replace(field, null_mut());
        if !obj.is_null() {
            ffi::Py_DECREF(obj);
        }
    }
    let py = Python::assume_attached();
    let free = &mut FREE.get_mut(py).0;
    if free.len() < FREE_MAX {
        free.push(p);
    } else {
        ffi::PyObject_Free(obj.cast());
    }
    ffi::Py_DECREF(tp.cast());
}

/// What a proxy stands for: its callee, or for a method target the object.
unsafe fn shown(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let p = obj.cast::<Proxy>();
    if (*p).callee.is_null() {
        (*p).bound_self
    } else {
        (*p).callee
    }
}

unsafe fn forward_attr(obj: *mut ffi::PyObject, name: &CStr) -> *mut ffi::PyObject {
    ffi::PyObject_GetAttrString(shown(obj), name.as_ptr())
}

// CPython words call errors with the callee's `__qualname__` and `__module__`
// (`_PyObject_FunctionStr`), falling back to `str()`: the proxy answers with the callee's.
unsafe extern "C" fn qualname_get(obj: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    forward_attr(obj, c"__qualname__")
}
unsafe extern "C" fn name_get(obj: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    forward_attr(obj, c"__name__")
}
unsafe extern "C" fn module_get(obj: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    forward_attr(obj, c"__module__")
}
unsafe extern "C" fn wrapped_get(obj: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    let callee = shown(obj);
    ffi::Py_INCREF(callee);
    callee
}
unsafe extern "C" fn proxy_str(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    ffi::PyObject_Str(shown(obj))
}
unsafe extern "C" fn proxy_repr(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    ffi::PyObject_Repr(shown(obj))
}

unsafe extern "C" fn proxy_call(
    obj: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let p = obj.cast::<Proxy>();
    let callee = (*p).callee;
    if callee.is_null() {
        return bad_call(c"recompyle: a method target is not callable");
    }
    let bound_self = (*p).bound_self;
    let site = (*p).site;
    let depth = DEPTH.get(Python::assume_attached());
    depth.set(depth.get() + 1);
    let res = report(callee, bound_self, site, args, nargsf, kwnames);
    depth.set(depth.get() - 1);
    res
}

#[inline(always)]
unsafe fn report(
    callee: *mut ffi::PyObject,
    bound_self: *mut ffi::PyObject,
    site: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let active = ACTIVE.load(Ordering::Relaxed);
    if active == 0 {
        return forward(callee, bound_self, args, nargsf, kwnames);
    }
    // SAFETY: vectorcall is only ever made with the GIL held.
    let py = Python::assume_attached();
    if active == PROFILING {
        let t0 = clock::ticks();
        let res = forward(callee, bound_self, args, nargsf, kwnames);
        profiler::record_obj(py, site, clock::ticks().wrapping_sub(t0), res.is_null());
        return res;
    }
    let Some(site) = sites::id_of(site) else {
        return null_mut();
    };
    with_handlers(active, site, callee, bound_self, args, nargsf, kwnames)
}

/// Call `callee(*args)`, or `callee(bound_self, *args)` when `bound_self` is set, as
/// LOAD_METHOD's call would: without making a bound method.
#[inline(always)]
unsafe fn forward(
    callee: *mut ffi::PyObject,
    bound_self: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    if bound_self.is_null() {
        return ffi::PyObject_Vectorcall(callee, args, nargsf, kwnames);
    }
    let nargs = ffi::PyVectorcall_NARGS(nargsf) as usize;
    let nkw = if kwnames.is_null() {
        0
    } else {
        ffi::PyTuple_GET_SIZE(kwnames) as usize
    };
    if nargsf & ffi::PY_VECTORCALL_ARGUMENTS_OFFSET != 0 {
        // The caller lets us borrow args[-1] for the duration of the call.
        let slot = args.cast_mut().sub(1);
        let saved = *slot;
        *slot = bound_self;
        let res = ffi::PyObject_Vectorcall(callee, slot, nargs + 1, kwnames);
        *slot = saved;
        return res;
    }
    let mut stack: Vec<*mut ffi::PyObject> = Vec::with_capacity(nargs + nkw + 1);
    stack.push(bound_self);
    stack.extend_from_slice(std::slice::from_raw_parts(args, nargs + nkw));
    ffi::PyObject_Vectorcall(callee, stack.as_ptr(), nargs + 1, kwnames)
}

#[inline(never)]
unsafe fn with_handlers(
    active: u8,
    site: u64,
    callee: *mut ffi::PyObject,
    bound_self: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: only called from a vectorcall, with the GIL held.
    let py = Python::assume_attached();
    let profiling = active & PROFILING != 0;
    let registered = if active & HANDLERS != 0 && !handlers::in_handler() {
        handlers::snapshot(py)
    } else {
        None
    };
    // Handlers whose filter passes this call; none: the call is made as without handlers.
    let wanted = match &registered {
        Some(r) => handlers::wanted(py, r, site, callee),
        None => handlers::Wanted::NONE,
    };
    let (Some(registered), true) = (registered, wanted.any()) else {
        // A handler is running on this thread: its own calls are neither reported nor timed.
        if handlers::in_handler() || !profiling {
            return forward(callee, bound_self, args, nargsf, kwnames);
        }
        let t0 = clock::ticks();
        let res = forward(callee, bound_self, args, nargsf, kwnames);
        profiler::record(py, site, clock::ticks().wrapping_sub(t0), res.is_null());
        return res;
    };
    let registered = &registered;
    let npos = ffi::PyVectorcall_NARGS(nargsf) as usize;
    let event = match CallEvent::acquire(py, site, callee, bound_self, args, npos, kwnames) {
        Ok(e) => e,
        Err(err) => {
            // Building the event failed (out of memory): report, and still make the call.
            err.write_unraisable(py, None);
            return forward(callee, bound_self, args, nargsf, kwnames);
        }
    };
    handlers::run(py, registered, &event, false, wanted);
    let t0 = clock::ticks();
    let res = forward(callee, bound_self, args, nargsf, kwnames);
    if profiling {
        profiler::record(py, site, clock::ticks().wrapping_sub(t0), res.is_null());
    }
    if res.is_null() {
        let Some(err) = PyErr::take(py) else {
            release(py, event);
            return res;
        };
        event
            .borrow_mut()
            .finish(None, Some(err.value(py).clone().into_any().unbind()));
        handlers::run(py, registered, &event, true, wanted);
        release(py, event);
        err.restore(py);
        res
    } else {
        event
            .borrow_mut()
            .finish(Some(Bound::from_borrowed_ptr(py, res).unbind()), None);
        handlers::run(py, registered, &event, true, wanted);
        release(py, event);
        res
    }
}

/// The argument vector the event borrows is the caller's: done with before the call returns.
fn release(py: Python<'_>, event: Bound<'_, CallEvent>) {
    if let Err(err) = CallEvent::release(event) {
        err.write_unraisable(py, None);
    }
}
