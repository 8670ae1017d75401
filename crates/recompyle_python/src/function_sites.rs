//! The call path of functions rewritten by `wrap_calls` and `flat_profile`.
//!
//! Their calls read `__recompyle_w__(SITE, callee, *args, **kwargs)`, where `SITE` is a
//! [`FunctionSite`] put into the code object's constants in place of the site id the rewrite
//! emitted. The selector object is native and called by vectorcall, so the arguments arrive
//! in place: the callee sits right before them, which is exactly the layout of
//! `wrapper(callee, *args, **kwargs)`, and the slot before the callee is ours to borrow when
//! the callee itself is called. No Python frame is pushed: a traceback shows the function's
//! line, then the wrapper, then the callee.
//!
//! A site carries the *layers* of its function, innermost first: a user's wrapper
//! (`wrap_calls`) or a [`FlatProfile`]'s timer. Stacked decorators give several layers;
//! the outermost runs first and, when there is another layer below, receives a
//! [`LayerProxy`] standing for "the rest of the layers, then the callee" as its `call`.
//!
//! Timers record into the innermost active invocation of their profile on this thread: the
//! Python shim of `flat_profile` enters a record before the body runs and finishes it
//! after; generators and coroutines park their record between steps. A record holds what
//! each call's name will be made from (the callee, or for a bound method its function, or
//! for a builtin method its type and C definition) and the call's duration in ticks; names
//! are made when the record finishes, and the record is then dropped with every reference.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_void, CStr};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt, PyList, PyString, PyTuple};
use recompyle_transform::function::{self as rewrite, CallFilter, FunctionOptions};
use recompyle_transform::{split_site_id, PositionMap};

use crate::clock;
use crate::code_object;
use crate::gil::GilCell;
use crate::trampoline::{getset, slot, vectorcall_type};
use crate::transform::InternalTransformError;

/// What a site's calls go through, one entry per decorator, innermost first.
enum Layer {
    Wrap(Py<PyAny>),
    Time(Py<FlatProfile>),
}

type Layers = Arc<Vec<Layer>>;

/// One call site of a rewritten function, stored in its code object's constants.
#[pyclass(module = "recompyle._core", frozen)]
pub struct FunctionSite {
    layers: Layers,
    #[pyo3(get)]
    line: u32,
    #[pyo3(get)]
    col: u32,
    #[pyo3(get)]
    callee: String,
}

#[pymethods]
impl FunctionSite {
    fn __repr__(&self) -> String {
        format!(
            "<recompyle call site {}:{} {}(...)>",
            self.line, self.col, self.callee
        )
    }
}

static NEXT_PROFILE: AtomicU64 = AtomicU64::new(1);

/// The state of one `flat_profile` decoration: which records on a thread's stack are its.
#[pyclass(module = "recompyle._core", frozen)]
pub struct FlatProfile {
    id: u64,
}

/// One invocation being timed.
struct Record {
    profile: u64,
    token: u64,
    start: u64,
    /// Distinct name sources, with the identity they were found by.
    keys: Vec<((usize, usize), NameKey)>,
    /// The key of the previous call: a loop calls the same callee again and again.
    last: Option<((usize, usize), u32)>,
    /// Per call: index into `keys`, duration in ticks.
    calls: Vec<(u32, u64)>,
}

impl Record {
    fn new(profile: u64, token: u64) -> Self {
        Record {
            profile,
            token,
            start: clock::ticks(),
            keys: Vec::new(),
            last: None,
            calls: Vec::new(),
        }
    }

    /// Add a call of `callee` that took `ticks`.
    unsafe fn add(&mut self, py: Python<'_>, callee: *mut ffi::PyObject, ticks: u64) {
        let identity = name_identity(callee);
        let index = match self.last {
            Some((id, index)) if id == identity => index,
            _ => {
                let index = match self.keys.iter().position(|(id, _)| *id == identity) {
                    Some(i) => i as u32,
                    None => {
                        self.keys.push((identity, name_key(py, callee)));
                        (self.keys.len() - 1) as u32
                    }
                };
                self.last = Some((identity, index));
                index
            }
        };
        self.calls.push((index, ticks));
    }
}

/// What a call's name is made from, kept only while its record lives.
enum NameKey {
    Object(Py<PyAny>),
    /// A builtin method: its owner type and C definition.
    CMethod(Py<PyAny>, MethodDef),
    /// A builtin function of a module: its C definition.
    CFunction(MethodDef),
}

/// A C method definition: static data of CPython or of an extension, never freed.
#[derive(Clone, Copy)]
struct MethodDef(*const ffi::PyMethodDef);
// SAFETY: points to immutable static data.
unsafe impl Send for MethodDef {}

extern "C" {
    static mut PyMethod_Type: ffi::PyTypeObject;
    fn PyMethod_Function(method: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

thread_local! {
    /// Records of this thread's running invocations, innermost last.
    static STACK: RefCell<Vec<Record>> = const { RefCell::new(Vec::new()) };
}

/// Records of suspended generators and coroutines, by token.
static PARKED: GilCell<Option<HashMap<u64, Record>>> = GilCell::new(None);
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

#[pymethods]
impl FlatProfile {
    #[new]
    fn new() -> Self {
        clock::start();
        FlatProfile {
            id: NEXT_PROFILE.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Start an invocation's record on this thread; returns its token.
    fn enter(&self) -> u64 {
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        let record = Record::new(self.id, token);
        STACK.with(|s| s.borrow_mut().push(record));
        token
    }

    /// Move a running record off this thread's stack (a generator or coroutine pauses).
    fn park(&self, py: Python<'_>, token: u64) -> PyResult<()> {
        let record = STACK.with(|s| {
            let mut stack = s.borrow_mut();
            let at = stack.iter().rposition(|r| r.token == token)?;
            Some(stack.remove(at))
        });
        let record = record.ok_or_else(|| PyRuntimeError::new_err("no such running record"))?;
        PARKED
            .get_mut(py)
            .get_or_insert_with(HashMap::new)
            .insert(token, record);
        Ok(())
    }

    /// Put a parked record back on this thread's stack (the generator resumes, maybe on
    /// another thread).
    fn resume(&self, py: Python<'_>, token: u64) -> PyResult<()> {
        let record = PARKED
            .get_mut(py)
            .as_mut()
            .and_then(|parked| parked.remove(&token))
            .ok_or_else(|| PyRuntimeError::new_err("no such parked record"))?;
        STACK.with(|s| s.borrow_mut().push(record));
        Ok(())
    }

    /// End an invocation: its total seconds and, when the callback for its side of `limit`
    /// is wanted (`below` / `above`), `[(name source, [seconds, ...]), ...]` in first-call
    /// order. A name source is a string, or an object whose name Python finds.
    fn finish<'py>(
        &self,
        py: Python<'py>,
        token: u64,
        limit: f64,
        below: bool,
        above: bool,
    ) -> PyResult<(f64, Option<Bound<'py, PyList>>)> {
        let end = clock::ticks();
        let record = STACK
            .with(|s| {
                let mut stack = s.borrow_mut();
                let at = stack.iter().rposition(|r| r.token == token)?;
                Some(stack.remove(at))
            })
            .or_else(|| {
                PARKED
                    .get_mut(py)
                    .as_mut()
                    .and_then(|parked| parked.remove(&token))
            })
            .ok_or_else(|| PyRuntimeError::new_err("no such record"))?;
        let per_tick = clock::ns_per_tick_cached() * 1e-9;
        let total = end.wrapping_sub(record.start) as f64 * per_tick;
        if !(if total < limit { below } else { above }) {
            return Ok((total, None));
        }
        let mut durations: Vec<Vec<f64>> = vec![Vec::new(); record.keys.len()];
        for (index, ticks) in &record.calls {
            durations[*index as usize].push(*ticks as f64 * per_tick);
        }
        let out = PyList::empty(py);
        for ((_, key), seconds) in record.keys.iter().zip(durations) {
            out.append((name_source(py, key)?, seconds))?;
        }
        Ok((total, Some(out)))
    }

    fn __repr__(&self) -> String {
        format!("<recompyle flat profile {}>", self.id)
    }
}

/// A string where the name is known natively, else the object whose name Python finds.
fn name_source<'py>(py: Python<'py>, key: &NameKey) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: method tables (`PyMethodDef`) are static data of CPython and of C extensions,
    // which are never unloaded.
    let ml_name = |ml: MethodDef| unsafe {
        CStr::from_ptr((*ml.0).ml_name)
            .to_string_lossy()
            .into_owned()
    };
    Ok(match key {
        NameKey::Object(o) => o.bind(py).clone(),
        NameKey::CMethod(t, ml) => {
            let owner = t.bind(py).getattr("__qualname__")?;
            PyString::new(py, &format!("{owner}.{}", ml_name(*ml))).into_any()
        }
        NameKey::CFunction(ml) => PyString::new(py, &ml_name(*ml)).into_any(),
    })
}

/// What tells two callees' names apart without making them: the object (a bound method's
/// function), or a builtin method's owner type and C definition.
unsafe fn name_identity(callee: *mut ffi::PyObject) -> (usize, usize) {
    if ffi::Py_TYPE(callee) == std::ptr::addr_of_mut!(PyMethod_Type) {
        return (PyMethod_Function(callee) as usize, 0);
    }
    if ffi::PyCFunction_Check(callee) != 0 {
        let cfunc = callee.cast::<ffi::PyCFunctionObject>();
        let owner = (*cfunc).m_self;
        let ml = (*cfunc).m_ml as usize;
        if owner.is_null() || ffi::PyModule_Check(owner) != 0 {
            return (0, ml);
        }
        let tp = if ffi::PyType_Check(owner) != 0 {
            owner
        } else {
            ffi::Py_TYPE(owner).cast()
        };
        return (tp as usize, ml);
    }
    (callee as usize, 0)
}

/// What the record keeps of `callee` for its name.
unsafe fn name_key(py: Python<'_>, callee: *mut ffi::PyObject) -> NameKey {
    if ffi::Py_TYPE(callee) == std::ptr::addr_of_mut!(PyMethod_Type) {
        let func = PyMethod_Function(callee);
        return NameKey::Object(Bound::from_borrowed_ptr(py, func).unbind());
    }
    if ffi::PyCFunction_Check(callee) != 0 {
        let cfunc = callee.cast::<ffi::PyCFunctionObject>();
        let ml = (*cfunc).m_ml;
        let owner = (*cfunc).m_self;
        if owner.is_null() || ffi::PyModule_Check(owner) != 0 {
            return NameKey::CFunction(MethodDef(ml));
        }
        let tp = if ffi::PyType_Check(owner) != 0 {
            owner
        } else {
            ffi::Py_TYPE(owner).cast()
        };
        return NameKey::CMethod(Bound::from_borrowed_ptr(py, tp).unbind(), MethodDef(ml));
    }
    NameKey::Object(Bound::from_borrowed_ptr(py, callee).unbind())
}

/// Add a finished call to the innermost running record of `profile` on this thread; a call
/// made when none runs (a closure called after its function returned) is not recorded.
unsafe fn record_call(py: Python<'_>, profile: u64, callee: *mut ffi::PyObject, ticks: u64) {
    STACK.with(|s| {
        let Ok(mut stack) = s.try_borrow_mut() else {
            return;
        };
        if let Some(record) = stack.iter_mut().rev().find(|r| r.profile == profile) {
            record.add(py, callee, ticks);
        }
    });
}

/// Called by the awaitable `__recompyle_wa__` returns, when the awaited work is done.
#[pyfunction]
pub fn record_awaited(
    py: Python<'_>,
    profile: &Bound<'_, FlatProfile>,
    callee: &Bound<'_, PyAny>,
    start: u64,
) {
    let ticks = clock::ticks().wrapping_sub(start);
    // SAFETY: `callee` is a live object; the GIL is held.
    unsafe { record_call(py, profile.get().id, callee.as_ptr(), ticks) };
}

/// Objects that look at their caller's frame: a Python wrapper between them and the
/// function would make them see the wrapper's frame, so wrappers are bypassed for them.
static FRAME_SENSITIVE: GilCell<Vec<Py<PyAny>>> = GilCell::new(Vec::new());
/// Builds the timing awaitable of `__recompyle_wa__`: `(awaitable, profile, callee, start)`.
static AWAIT_TIMER: GilCell<Option<Py<PyAny>>> = GilCell::new(None);

/// Set once by `recompyle.decorators` at import.
#[pyfunction]
pub fn configure_function_sites(
    py: Python<'_>,
    frame_sensitive: Vec<Py<PyAny>>,
    await_timer: Py<PyAny>,
) {
    *FRAME_SENSITIVE.get_mut(py) = frame_sensitive;
    *AWAIT_TIMER.get_mut(py) = Some(await_timer);
}

fn is_frame_sensitive(py: Python<'_>, callee: *mut ffi::PyObject) -> bool {
    FRAME_SENSITIVE.get(py).iter().any(|o| o.as_ptr() == callee)
}

/// How deep calls through rewritten functions may nest on the C stack before a
/// `RecursionError`: each is a native call, where plain 3.11+ code recurses without one.
const MAX_NESTING: u32 = 4000;
static NESTING: GilCell<std::cell::Cell<u32>> = GilCell::new(std::cell::Cell::new(0));

/// Call `layers[..n]` then the callee. `args[-1]` may be overwritten for the call's
/// duration when `slot` is true. (The arguments are the vectorcall's own, passed through.)
#[allow(clippy::too_many_arguments)]
unsafe fn call_layers(
    py: Python<'_>,
    layers: &Layers,
    n: usize,
    callee: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: usize,
    kwnames: *mut ffi::PyObject,
    slot: bool,
    awaited: bool,
) -> *mut ffi::PyObject {
    if n == 0 {
        let flag = if slot {
            ffi::PY_VECTORCALL_ARGUMENTS_OFFSET
        } else {
            0
        };
        return crate::unwind::vectorcall(callee, args, nargs | flag, kwnames);
    }
    match &layers[n - 1] {
        Layer::Time(profile) => {
            let id = profile.get().id;
            let start = clock::ticks();
            let result = call_layers(py, layers, n - 1, callee, args, nargs, kwnames, slot, false);
            if awaited && !result.is_null() {
                if let Some(timer) = AWAIT_TIMER.get(py).as_ref() {
                    let built = timer.bind(py).call1((
                        Bound::from_owned_ptr(py, result),
                        profile.bind(py),
                        Bound::from_borrowed_ptr(py, callee),
                        start,
                    ));
                    return match built {
                        Ok(obj) => obj.into_ptr(),
                        Err(err) => {
                            err.restore(py);
                            null_mut()
                        }
                    };
                }
            }
            record_call(py, id, callee, clock::ticks().wrapping_sub(start));
            result
        }
        Layer::Wrap(wrapper) => {
            if is_frame_sensitive(py, callee) {
                return call_layers(
                    py,
                    layers,
                    n - 1,
                    callee,
                    args,
                    nargs,
                    kwnames,
                    slot,
                    awaited,
                );
            }
            let first = if n == 1 {
                callee
            } else {
                let proxy = new_layer_proxy(py, layers.clone(), n - 1, callee, awaited);
                if proxy.is_null() {
                    return null_mut();
                }
                proxy
            };
            let result = call_with_first(wrapper.as_ptr(), first, args, nargs, kwnames, slot);
            if n != 1 {
                ffi::Py_DECREF(first);
            }
            result
        }
    }
}

/// `target(first, *args, **kwargs)`, borrowing `args[-1]` for `first` when allowed.
unsafe fn call_with_first(
    target: *mut ffi::PyObject,
    first: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: usize,
    kwnames: *mut ffi::PyObject,
    slot: bool,
) -> *mut ffi::PyObject {
    let nkw = if kwnames.is_null() {
        0
    } else {
        ffi::PyTuple_GET_SIZE(kwnames) as usize
    };
    if slot {
        let place = args.sub(1).cast_mut();
        let saved = *place;
        *place = first;
        let result = crate::unwind::vectorcall(target, place, nargs + 1, kwnames);
        *place = saved;
        return result;
    }
    let mut stack: Vec<*mut ffi::PyObject> = Vec::with_capacity(1 + nargs + nkw);
    stack.push(first);
    stack.extend_from_slice(std::slice::from_raw_parts(args, nargs + nkw));
    crate::unwind::vectorcall(target, stack.as_ptr(), nargs + 1, kwnames)
}

#[repr(C)]
struct Selector {
    ob_base: ffi::PyObject,
    vectorcall: Option<crate::unwind::Vectorcall>,
    awaited: bool,
}

#[repr(C)]
struct LayerProxy {
    ob_base: ffi::PyObject,
    vectorcall: Option<crate::unwind::Vectorcall>,
    layers: *const Vec<Layer>,
    n: usize,
    callee: *mut ffi::PyObject,
    awaited: bool,
}

struct TypePtr(*mut ffi::PyTypeObject);
// SAFETY: type objects are immortal here (leaked) and only used with the GIL.
unsafe impl Send for TypePtr {}
unsafe impl Sync for TypePtr {}

static SELECTOR_TYPE: OnceLock<TypePtr> = OnceLock::new();
static PROXY_TYPE: OnceLock<TypePtr> = OnceLock::new();

/// The two builtins the rewritten functions call.
pub fn create(py: Python<'_>) -> PyResult<(Bound<'_, PyAny>, Bound<'_, PyAny>)> {
    let selector = vectorcall_type(
        py,
        c"recompyle._core.FunctionSelector",
        std::mem::size_of::<Selector>(),
        std::mem::offset_of!(Selector, vectorcall),
        &[
            slot(ffi::Py_tp_repr, selector_repr as *mut c_void),
            slot(
                ffi::Py_tp_getset,
                Box::leak(Box::new([
                    getset(c"__signature__", selector_signature),
                    ffi::PyGetSetDef::default(),
                ]))
                .as_mut_ptr()
                .cast(),
            ),
        ],
    )?;
    let _ = SELECTOR_TYPE.set(TypePtr(selector));
    let proxy = vectorcall_type(
        py,
        c"recompyle._core.LayerProxy",
        std::mem::size_of::<LayerProxy>(),
        std::mem::offset_of!(LayerProxy, vectorcall),
        &[
            slot(ffi::Py_tp_dealloc, proxy_dealloc as *mut c_void),
            slot(ffi::Py_tp_repr, proxy_repr as *mut c_void),
            slot(ffi::Py_tp_getattro, proxy_getattro as *mut c_void),
        ],
    )?;
    let _ = PROXY_TYPE.set(TypePtr(proxy));
    let make = |awaited: bool| -> PyResult<Bound<'_, PyAny>> {
        // SAFETY: `selector` is the type just made; GenericAlloc zeroes the object.
        unsafe {
            let obj = ffi::PyType_GenericAlloc(selector, 0);
            if obj.is_null() {
                return Err(PyErr::fetch(py));
            }
            let sel = obj.cast::<Selector>();
            (*sel).vectorcall = Some(selector_vectorcall);
            (*sel).awaited = awaited;
            Ok(Bound::from_owned_ptr(py, obj))
        }
    };
    Ok((make(false)?, make(true)?))
}

unsafe extern "C-unwind" fn selector_repr(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let text = if (*obj.cast::<Selector>()).awaited {
        c"<recompyle awaited-call selector>"
    } else {
        c"<recompyle function call selector>"
    };
    ffi::PyUnicode_FromString(text.as_ptr())
}

/// `(site, callee, /, *args, **kwargs)`: these are not builtin functions, so `inspect`
/// learns their signature from `__signature__`.
unsafe extern "C-unwind" fn selector_signature(
    _: *mut ffi::PyObject,
    _: *mut c_void,
) -> *mut ffi::PyObject {
    let py = Python::assume_attached();
    let build = || -> PyResult<Bound<'_, PyAny>> {
        let inspect = py.import("inspect")?;
        let parameter = inspect.getattr("Parameter")?;
        let params = vec![
            parameter.call1(("site", parameter.getattr("POSITIONAL_ONLY")?))?,
            parameter.call1(("callee", parameter.getattr("POSITIONAL_ONLY")?))?,
            parameter.call1(("args", parameter.getattr("VAR_POSITIONAL")?))?,
            parameter.call1(("kwargs", parameter.getattr("VAR_KEYWORD")?))?,
        ];
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

#[cold]
unsafe fn type_error(message: &CStr) -> *mut ffi::PyObject {
    ffi::PyErr_SetString(ffi::PyExc_TypeError, message.as_ptr());
    null_mut()
}

unsafe extern "C-unwind" fn selector_vectorcall(
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let py = Python::assume_attached();
    let nargs = ffi::PyVectorcall_NARGS(nargsf) as usize;
    if nargs < 2 {
        return type_error(c"__recompyle_w__ needs a site and a callee");
    }
    let site_obj = *args;
    let Ok(site) = Bound::from_borrowed_ptr(py, site_obj).cast_into::<FunctionSite>() else {
        return type_error(c"__recompyle_w__: the first argument is not a call site");
    };
    let site = site.get();
    let awaited = (*callable.cast::<Selector>()).awaited;
    let depth = NESTING.get(py);
    if depth.get() >= MAX_NESTING {
        ffi::PyErr_SetString(
            ffi::PyExc_RecursionError,
            c"maximum recursion depth exceeded in calls through recompyle's function wrappers"
                .as_ptr(),
        );
        return null_mut();
    }
    depth.set(depth.get() + 1);
    let layers = &site.layers;
    let result = call_layers(
        py,
        layers,
        layers.len(),
        *args.add(1),
        args.add(2),
        nargs - 2,
        kwnames,
        true,
        awaited,
    );
    depth.set(depth.get() - 1);
    result
}

unsafe fn new_layer_proxy(
    py: Python<'_>,
    layers: Layers,
    n: usize,
    callee: *mut ffi::PyObject,
    awaited: bool,
) -> *mut ffi::PyObject {
    let Some(tp) = PROXY_TYPE.get() else {
        return type_error(c"recompyle: proxy type missing");
    };
    let obj = ffi::PyType_GenericAlloc(tp.0, 0);
    if obj.is_null() {
        return null_mut();
    }
    let _ = py;
    let proxy = obj.cast::<LayerProxy>();
    (*proxy).vectorcall = Some(proxy_vectorcall);
    (*proxy).layers = Arc::into_raw(layers);
    (*proxy).n = n;
    ffi::Py_INCREF(callee);
    (*proxy).callee = callee;
    (*proxy).awaited = awaited;
    obj
}

unsafe extern "C-unwind" fn proxy_vectorcall(
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let py = Python::assume_attached();
    let proxy = callable.cast::<LayerProxy>();
    let slot = nargsf & ffi::PY_VECTORCALL_ARGUMENTS_OFFSET != 0;
    // Keep the layers alive across the call even if the proxy is dropped meanwhile.
    Arc::increment_strong_count((*proxy).layers);
    let layers = Arc::from_raw((*proxy).layers);
    let callee = (*proxy).callee;
    ffi::Py_INCREF(callee);
    let result = call_layers(
        py,
        &layers,
        (*proxy).n,
        callee,
        args,
        ffi::PyVectorcall_NARGS(nargsf) as usize,
        kwnames,
        slot,
        (*proxy).awaited,
    );
    ffi::Py_DECREF(callee);
    result
}

unsafe extern "C-unwind" fn proxy_dealloc(obj: *mut ffi::PyObject) {
    let proxy = obj.cast::<LayerProxy>();
    if !(*proxy).layers.is_null() {
        drop(Arc::from_raw((*proxy).layers));
    }
    if !(*proxy).callee.is_null() {
        ffi::Py_DECREF((*proxy).callee);
    }
    let tp = ffi::Py_TYPE(obj);
    if let Some(free) = (*tp).tp_free {
        free(obj.cast());
    }
    ffi::Py_DECREF(tp.cast());
}

/// A wrapper reads `call.__qualname__` and the like: the proxy answers for its callee.
unsafe extern "C-unwind" fn proxy_getattro(
    obj: *mut ffi::PyObject,
    name: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    ffi::PyObject_GetAttr((*obj.cast::<LayerProxy>()).callee, name)
}

unsafe extern "C-unwind" fn proxy_repr(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    ffi::PyObject_Repr((*obj.cast::<LayerProxy>()).callee)
}

static NEXT_KEY: AtomicU32 = AtomicU32::new(0x5EC0_0001);

/// A function's text rewritten, ready to compile.
#[pyclass(module = "recompyle._core", frozen)]
pub struct RewrittenFunction {
    #[pyo3(get)]
    code: String,
    #[pyo3(get)]
    original_source: String,
    #[pyo3(get)]
    new_source: String,
    #[pyo3(get)]
    line_shift: u32,
    #[pyo3(get)]
    scaffold_qualname: String,
    key: u32,
    sites: Vec<rewrite::FunctionSite>,
    positions: PositionMap,
}

#[pymethods]
impl RewrittenFunction {
    /// `(line, col, callee text, awaited, direct)` per site.
    #[getter]
    fn sites(&self) -> Vec<(u32, u32, String, bool, bool)> {
        self.sites
            .iter()
            .map(|s| (s.line, s.col, s.callee.clone(), s.awaited, s.direct))
            .collect()
    }

    /// `code` (compiled from `self.code` and moved to its lines) with original columns and
    /// each site id constant replaced by a [`FunctionSite`] going through `layers`: a list
    /// of `("wrap", wrapper)` / `("time", FlatProfile)`, innermost first.
    fn bind<'py>(
        &self,
        code: &Bound<'py, PyAny>,
        layers: Vec<(String, Bound<'py, PyAny>)>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = code.py();
        let mut built = Vec::with_capacity(layers.len());
        for (kind, obj) in layers {
            built.push(match kind.as_str() {
                "wrap" => Layer::Wrap(obj.unbind()),
                "time" => Layer::Time(obj.cast_into::<FlatProfile>()?.unbind()),
                other => return Err(PyValueError::new_err(format!("unknown layer {other:?}"))),
            });
        }
        let direct_wrapper = match built.as_slice() {
            [Layer::Wrap(wrapper)] => Some(wrapper.clone_ref(py)),
            _ => None,
        };
        let layers: Layers = Arc::new(built);
        let mut objects: HashMap<u32, Py<PyAny>> = HashMap::new();
        for (i, site) in self.sites.iter().enumerate() {
            let object = if site.direct {
                direct_wrapper
                    .as_ref()
                    .ok_or_else(|| {
                        PyValueError::new_err("direct call sites need exactly one wrapper layer")
                    })?
                    .clone_ref(py)
            } else {
                Py::new(
                    py,
                    FunctionSite {
                        layers: layers.clone(),
                        line: site.line,
                        col: site.col,
                        callee: site.callee.clone(),
                    },
                )?
                .into_any()
            };
            objects.insert(i as u32, object);
        }
        let code = code_object::remap(code, &self.positions, self.key)?;
        replace_sites(&code, self.key, &objects)
    }
}

fn replace_sites<'py>(
    code: &Bound<'py, PyAny>,
    key: u32,
    objects: &HashMap<u32, Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = code.py();
    let consts = code.getattr("co_consts")?.cast_into::<PyTuple>()?;
    let mut out = Vec::with_capacity(consts.len());
    for item in consts.iter() {
        // SAFETY: PyCode_Check only reads the type.
        if unsafe { ffi::PyCode_Check(item.as_ptr()) } != 0 {
            out.push(replace_sites(&item, key, objects)?);
            continue;
        }
        if item.is_exact_instance_of::<PyInt>() {
            if let Ok(value) = item.extract::<u64>() {
                let (k, index) = split_site_id(value);
                if k == key {
                    if let Some(site) = objects.get(&index) {
                        out.push(site.bind(py).clone());
                        continue;
                    }
                }
            }
        }
        out.push(item);
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item("co_consts", PyTuple::new(py, out)?)?;
    code.call_method("replace", (), Some(&kwargs))
}

/// Rewrite the function `name` that starts on `line` of `source`.
#[pyfunction]
#[pyo3(signature = (source, version, line, name, *, hint=None, freevars=Vec::new(), class_name=None, time_awaits=false, direct=false, blacklist=Vec::new(), whitelist=Vec::new(), ignore=Vec::new()))]
#[allow(clippy::too_many_arguments)]
pub fn rewrite_function(
    py: Python<'_>,
    source: &Bound<'_, PyAny>,
    version: (u8, u8),
    line: u32,
    name: String,
    hint: Option<(u32, u32)>,
    freevars: Vec<String>,
    class_name: Option<String>,
    time_awaits: bool,
    direct: bool,
    blacklist: Vec<String>,
    whitelist: Vec<String>,
    ignore: Vec<String>,
) -> PyResult<RewrittenFunction> {
    let text: String = if let Ok(bytes) = source.cast::<PyBytes>() {
        String::from_utf8(bytes.as_bytes().to_vec())
            .map_err(|_| PyTypeError::new_err("source bytes are not UTF-8"))?
    } else {
        source.extract()?
    };
    let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    let options = FunctionOptions {
        version,
        line,
        name,
        hint,
        freevars,
        class_name,
        key,
        time_awaits,
        direct,
        filter: CallFilter {
            blacklist,
            whitelist,
            ignore,
        },
    };
    let out = py
        .detach(|| rewrite::rewrite_function(&text, &options))
        .map_err(|e| InternalTransformError::new_err(e.to_string()))?;
    Ok(RewrittenFunction {
        code: out.code,
        original_source: out.original_source,
        new_source: out.new_source,
        line_shift: out.line_shift,
        scaffold_qualname: out.scaffold_qualname,
        key,
        sites: out.sites,
        positions: out.positions,
    })
}
