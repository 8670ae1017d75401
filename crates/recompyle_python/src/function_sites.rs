//! The call path of functions rewritten by `wrap_calls` and `flat_profile`.
//!
//! Their calls read `__recompyle_w__(SITE, callee, *args, **kwargs)`, where `SITE` is a
//! [`FunctionSite`] put into the code object's constants in place of the site id the rewrite
//! emitted (`function_rewrite.rs`). The selector object is native and called by vectorcall,
//! so the arguments arrive in place: the callee sits right before them, which is exactly the
//! layout of `wrapper(callee, *args, **kwargs)`, and the slot before the callee is ours to
//! borrow when the callee itself is called. No Python frame is pushed: a traceback shows the
//! function's line, then the wrapper, then the callee.
//!
//! A site carries the *layers* of its function, innermost first: a user's wrapper
//! (`wrap_calls`) or a [`FlatProfile`]'s timer, which adds each call to its record
//! (`flat_profile.rs`). Stacked decorators give several layers; the outermost runs first
//! and, when there is another layer below, receives a [`LayerProxy`] standing for "the rest
//! of the layers, then the callee" as its `call`.

use std::ffi::c_void;
use std::ptr::null_mut;
use std::sync::{Arc, OnceLock};

use pyo3::ffi;
use pyo3::prelude::*;
use recompyle_transform::names;

use crate::clock;
use crate::cpython::{
    call_prepended, new_selector, selector_type, slot, type_error, vectorcall_type, BuiltinInfo,
    TypePtr,
};
use crate::flat_profile::{record_call, FlatProfile};
use crate::gil::GilCell;
use crate::listeners::WRAPPED_CALLS;
use crate::unwind;

/// What a site's calls go through, one entry per decorator, innermost first.
pub(crate) enum Layer {
    Wrap(Py<PyAny>),
    Time(Py<FlatProfile>),
}

impl Layer {
    fn clone_ref(&self, py: Python<'_>) -> Layer {
        match self {
            Layer::Wrap(wrapper) => Layer::Wrap(wrapper.clone_ref(py)),
            Layer::Time(profile) => Layer::Time(profile.clone_ref(py)),
        }
    }
}

/// One layer as Python holds it (`recompyle.function_rewrite.Layer`, the decorators' list
/// of a function's layers): `Layer.wrap(wrapper)` for `wrap_calls`, `Layer.time(profile)`
/// for `flat_profile`. `RewrittenFunction.bind` takes a list of them.
#[pyclass(frozen, module = "recompyle._core", name = "Layer")]
pub struct PyLayer(Layer);

impl PyLayer {
    pub(crate) fn layer(&self, py: Python<'_>) -> Layer {
        self.0.clone_ref(py)
    }
}

#[pymethods]
impl PyLayer {
    /// A `wrap_calls` wrapper: called as `wrapper(callee, *args, **kwargs)`.
    #[staticmethod]
    fn wrap(wrapper: Py<PyAny>) -> Self {
        PyLayer(Layer::Wrap(wrapper))
    }

    /// A `flat_profile` timer adding each call to `profile`.
    #[staticmethod]
    fn time(profile: Py<FlatProfile>) -> Self {
        PyLayer(Layer::Time(profile))
    }

    /// `"wrap"` or `"time"`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.0 {
            Layer::Wrap(_) => "wrap",
            Layer::Time(_) => "time",
        }
    }

    /// The wrapper or the `FlatProfile`.
    #[getter]
    fn obj(&self, py: Python<'_>) -> Py<PyAny> {
        match &self.0 {
            Layer::Wrap(wrapper) => wrapper.clone_ref(py),
            Layer::Time(profile) => profile.clone_ref(py).into_any(),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Layer.{}({})",
            self.kind(),
            self.obj(py).bind(py).repr()?
        ))
    }
}

pub(crate) type Layers = Arc<Vec<Layer>>;

/// One call site of a rewritten function, stored in its code object's constants.
#[pyclass(module = "recompyle._core", frozen)]
pub struct FunctionSite {
    pub(crate) layers: Layers,
    #[pyo3(get)]
    pub(crate) line: u32,
    #[pyo3(get)]
    pub(crate) col: u32,
    #[pyo3(get)]
    pub(crate) callee: String,
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

/// The call a wrapped site makes, passed through its layers unchanged: the vectorcall's own
/// arguments, all borrowed from the caller for the call's duration.
#[derive(Clone, Copy)]
struct WrappedCall {
    callee: *mut ffi::PyObject,
    /// `nargs` positional values, then one per keyword name.
    args: *const *mut ffi::PyObject,
    nargs: usize,
    kwnames: *mut ffi::PyObject,
    /// `args[-1]` may be overwritten for the call's duration
    /// (`PY_VECTORCALL_ARGUMENTS_OFFSET`).
    slot: bool,
}

/// Call `layers[..n]` then the callee.
///
/// # Safety
/// The GIL is held; `call.callee` is live, and `call`'s arguments are a valid vector call;
/// with `call.slot`, `args[-1]` may be written during the call.
unsafe fn call_layers(
    py: Python<'_>,
    layers: &Layers,
    n: usize,
    call: WrappedCall,
    awaited: bool,
) -> *mut ffi::PyObject {
    unsafe {
        let WrappedCall {
            callee,
            args,
            nargs,
            kwnames,
            slot,
        } = call;
        if n == 0 {
            let flag = if slot {
                ffi::PY_VECTORCALL_ARGUMENTS_OFFSET
            } else {
                0
            };
            return unwind::vectorcall(callee, args, nargs | flag, kwnames);
        }
        match &layers[n - 1] {
            Layer::Time(profile) => {
                let id = profile.get().id;
                let start = clock::ticks();
                let result = call_layers(py, layers, n - 1, call, false);
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
                    return call_layers(py, layers, n - 1, call, awaited);
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
                let result = call_prepended(wrapper.as_ptr(), first, args, nargs, kwnames, slot);
                if n != 1 {
                    ffi::Py_DECREF(first);
                }
                result
            }
        }
    }
}
#[repr(C)]
struct LayerProxy {
    ob_base: ffi::PyObject,
    vectorcall: Option<unwind::Vectorcall>,
    /// Owned: one strong count of an `Arc<Vec<Layer>>` (`Arc::into_raw`).
    layers: *const Vec<Layer>,
    n: usize,
    /// Owned reference.
    callee: *mut ffi::PyObject,
    awaited: bool,
}

static PROXY_TYPE: OnceLock<TypePtr> = OnceLock::new();

static WRAP_INFO: BuiltinInfo = BuiltinInfo {
    name: names::WRAP_SELECTOR_C,
    params: &SELECTOR_PARAMS,
    repr: c"<recompyle function call selector>",
};
static AWAIT_INFO: BuiltinInfo = BuiltinInfo {
    name: names::AWAIT_SELECTOR_C,
    params: &SELECTOR_PARAMS,
    repr: c"<recompyle awaited-call selector>",
};
/// `(site, callee, /, *args, **kwargs)`: these are not builtin functions, so `inspect`
/// learns their signature from `__signature__`.
const SELECTOR_PARAMS: [(&str, &str); 4] = [
    ("site", "POSITIONAL_ONLY"),
    ("callee", "POSITIONAL_ONLY"),
    ("args", "VAR_POSITIONAL"),
    ("kwargs", "VAR_KEYWORD"),
];

/// The two builtins the rewritten functions call.
pub fn create(py: Python<'_>) -> PyResult<(Bound<'_, PyAny>, Bound<'_, PyAny>)> {
    let selector = selector_type(py, c"recompyle._core.FunctionSelector", None)?;
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
    Ok((
        new_selector(py, selector, wrap_vectorcall::<false>, None, &WRAP_INFO)?,
        new_selector(py, selector, wrap_vectorcall::<true>, None, &AWAIT_INFO)?,
    ))
}

/// The vectorcall of `__recompyle_w__` (`AWAITED` false) and `__recompyle_wa__` (true: the
/// call is directly awaited).
///
/// # Safety
/// CPython calls it with the GIL held and a valid vector call.
unsafe extern "C-unwind" fn wrap_vectorcall<const AWAITED: bool>(
    _callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe { call_site(args, nargsf, kwnames, AWAITED) }
}

/// `__recompyle_w__(SITE, callee, *args, **kwargs)`: the site's layers, then the callee.
///
/// # Safety
/// The GIL is held and `args`/`nargsf`/`kwnames` are a valid vector call whose `args[-1]`
/// may be borrowed during the call.
#[inline(always)]
unsafe fn call_site(
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
    awaited: bool,
) -> *mut ffi::PyObject {
    unsafe {
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
        if !WRAPPED_CALLS.has_room(py) {
            ffi::PyErr_SetString(
                ffi::PyExc_RecursionError,
                c"maximum recursion depth exceeded in calls through recompyle's function wrappers"
                    .as_ptr(),
            );
            return null_mut();
        }
        let _depth = WRAPPED_CALLS.enter(py);
        let layers = &site.layers;
        let call = WrappedCall {
            callee: *args.add(1),
            args: args.add(2),
            nargs: nargs - 2,
            kwnames,
            slot: true,
        };
        call_layers(py, layers, layers.len(), call, awaited)
    }
}

/// # Safety
/// The GIL is held and `callee` is a live object (the proxy takes a reference).
unsafe fn new_layer_proxy(
    py: Python<'_>,
    layers: Layers,
    n: usize,
    callee: *mut ffi::PyObject,
    awaited: bool,
) -> *mut ffi::PyObject {
    unsafe {
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
}

/// # Safety
/// CPython calls it with the GIL held, `callable` a live `LayerProxy` and a valid vector
/// call.
unsafe extern "C-unwind" fn proxy_vectorcall(
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        let py = Python::assume_attached();
        let proxy = callable.cast::<LayerProxy>();
        let slot = nargsf & ffi::PY_VECTORCALL_ARGUMENTS_OFFSET != 0;
        // Keep the layers alive across the call even if the proxy is dropped meanwhile.
        Arc::increment_strong_count((*proxy).layers);
        let layers = Arc::from_raw((*proxy).layers);
        let callee = (*proxy).callee;
        ffi::Py_INCREF(callee);
        let call = WrappedCall {
            callee,
            args,
            nargs: ffi::PyVectorcall_NARGS(nargsf) as usize,
            kwnames,
            slot,
        };
        let result = call_layers(py, &layers, (*proxy).n, call, (*proxy).awaited);
        ffi::Py_DECREF(callee);
        result
    }
}

/// # Safety
/// CPython calls it once, with the GIL held, when the last reference to `obj`, a
/// `LayerProxy`, is gone.
unsafe extern "C-unwind" fn proxy_dealloc(obj: *mut ffi::PyObject) {
    unsafe {
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
}

/// A wrapper reads `call.__qualname__` and the like: the proxy answers for its callee.
///
/// # Safety
/// CPython calls it with the GIL held and `obj` a live `LayerProxy`; the other arguments
/// are as the slot's contract says.
unsafe extern "C-unwind" fn proxy_getattro(
    obj: *mut ffi::PyObject,
    name: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe { ffi::PyObject_GetAttr((*obj.cast::<LayerProxy>()).callee, name) }
}

/// # Safety
/// CPython calls it with the GIL held and `obj` a live `LayerProxy`; the other arguments
/// are as the slot's contract says.
unsafe extern "C-unwind" fn proxy_repr(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    unsafe { ffi::PyObject_Repr((*obj.cast::<LayerProxy>()).callee) }
}
