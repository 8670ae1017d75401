//! Native helpers of `recompyle.byref` (`python/recompyle/byref.py`): the call-site analysis
//! as named, frozen Python objects ([`ByRefCall`] and its parts), the plan's writes
//! ([`ByRefWrite`]), and the write of a frame's locals dict back into its fast locals.

use pyo3::exceptions::{PyKeyError, PyRuntimeError, PyStopIteration, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};
use recompyle_transform::call_args::{
    self, Arg, ArgKind, CallInfo, Callee, Keyword, Lvalue, Query, Refusal, Step,
};

use crate::transform::ParseError;

/// One step after an lvalue's root: `.text` (`attribute`) or `[text]` (a constant key's
/// source text, for `ast.literal_eval` once per site).
#[pyclass(frozen, module = "recompyle._core")]
pub struct ByRefStep {
    #[pyo3(get)]
    attribute: bool,
    #[pyo3(get)]
    text: Py<PyString>,
}

/// Something an assignment could target: a root name, how the caller's code binds it
/// (`binding`: `""`, `"global"`, `"nonlocal"` or `"comprehension"`), then steps.
#[pyclass(frozen, module = "recompyle._core")]
pub struct ByRefLvalue {
    #[pyo3(get)]
    root: Py<PyString>,
    #[pyo3(get)]
    binding: &'static str,
    #[pyo3(get)]
    steps: Py<PyTuple>,
}

/// One argument as written (`line`, 0-based `col`, `text`): an `lvalue`, or the `reason`
/// it is not one (in the words of the error message); `starred` for `*args`.
#[pyclass(frozen, module = "recompyle._core")]
pub struct ByRefArg {
    #[pyo3(get)]
    line: u32,
    #[pyo3(get)]
    col: u32,
    #[pyo3(get)]
    text: Py<PyString>,
    #[pyo3(get)]
    lvalue: Option<Py<ByRefLvalue>>,
    #[pyo3(get)]
    reason: Option<&'static str>,
    #[pyo3(get)]
    starred: bool,
}

/// A keyword argument; `name` is `None` for `**mapping`.
#[pyclass(frozen, module = "recompyle._core")]
pub struct ByRefKeyword {
    #[pyo3(get)]
    name: Option<Py<PyString>>,
    #[pyo3(get)]
    arg: Py<ByRefArg>,
}

/// What a call calls: `kind` `"name"` (`base` is the name), `"attr"` (`base.attr`, `base`
/// `None` when it is not an lvalue), `"super"` (`super().attr`) or `"other"`.
#[pyclass(frozen, module = "recompyle._core")]
pub struct ByRefCallee {
    #[pyo3(get)]
    kind: &'static str,
    #[pyo3(get)]
    base: Option<Py<ByRefLvalue>>,
    #[pyo3(get)]
    attr: Option<Py<PyString>>,
}

/// One call expression found by [`byref_find_calls`]: its span (1-based lines, 0-based
/// UTF-8 columns), callee, callee text and arguments.
#[pyclass(frozen, module = "recompyle._core")]
pub struct ByRefCall {
    #[pyo3(get)]
    line: u32,
    #[pyo3(get)]
    col: u32,
    #[pyo3(get)]
    end_line: u32,
    #[pyo3(get)]
    end_col: u32,
    #[pyo3(get)]
    callee: Py<ByRefCallee>,
    #[pyo3(get)]
    callee_text: Py<PyString>,
    #[pyo3(get)]
    positional: Py<PyTuple>,
    #[pyo3(get)]
    keywords: Py<PyTuple>,
}

fn text(py: Python<'_>, s: &str) -> Py<PyString> {
    PyString::new(py, s).unbind()
}

fn lvalue(py: Python<'_>, l: &Lvalue) -> PyResult<Py<ByRefLvalue>> {
    let steps = l
        .steps
        .iter()
        .map(|s| {
            let (attribute, t) = match s {
                Step::Attr(name) => (true, name),
                Step::Index(key) => (false, key),
            };
            Py::new(
                py,
                ByRefStep {
                    attribute,
                    text: text(py, t),
                },
            )
        })
        .collect::<PyResult<Vec<_>>>()?;
    Py::new(
        py,
        ByRefLvalue {
            root: text(py, &l.root),
            binding: l.binding.as_str(),
            steps: PyTuple::new(py, steps)?.unbind(),
        },
    )
}

fn arg(py: Python<'_>, a: &Arg) -> PyResult<Py<ByRefArg>> {
    let (value, reason) = match &a.kind {
        ArgKind::Lvalue(l) => (Some(lvalue(py, l)?), None),
        ArgKind::Refused(r) => (None, Some(r.describe())),
    };
    Py::new(
        py,
        ByRefArg {
            line: a.line,
            col: a.col,
            text: text(py, &a.text),
            lvalue: value,
            reason,
            starred: matches!(a.kind, ArgKind::Refused(Refusal::Starred)),
        },
    )
}

fn keyword(py: Python<'_>, k: &Keyword) -> PyResult<Py<ByRefKeyword>> {
    Py::new(
        py,
        ByRefKeyword {
            name: k.name.as_deref().map(|n| text(py, n)),
            arg: arg(py, &k.arg)?,
        },
    )
}

fn callee(py: Python<'_>, c: &Callee) -> PyResult<Py<ByRefCallee>> {
    let (kind, base, attr) = match c {
        Callee::Name(l) => ("name", Some(lvalue(py, l)?), None),
        Callee::Attribute { base, attr } => (
            "attr",
            base.as_ref().map(|b| lvalue(py, b)).transpose()?,
            Some(text(py, attr)),
        ),
        Callee::SuperAttribute(attr) => ("super", None, Some(text(py, attr))),
        Callee::Other => ("other", None, None),
    };
    Py::new(py, ByRefCallee { kind, base, attr })
}

fn call(py: Python<'_>, c: &CallInfo) -> PyResult<Py<ByRefCall>> {
    let positional = c
        .positional
        .iter()
        .map(|a| arg(py, a))
        .collect::<PyResult<Vec<_>>>()?;
    let keywords = c
        .keywords
        .iter()
        .map(|k| keyword(py, k))
        .collect::<PyResult<Vec<_>>>()?;
    Py::new(
        py,
        ByRefCall {
            line: c.line,
            col: c.col,
            end_line: c.end_line,
            end_col: c.end_col,
            callee: callee(py, &c.callee)?,
            callee_text: text(py, &c.callee_text),
            positional: PyTuple::new(py, positional)?.unbind(),
            keywords: PyTuple::new(py, keywords)?.unbind(),
        },
    )
}

/// The calls of `source` that end at `end` (`(line, col)`, 3.11+) or, without `end`, are
/// on `line` as `version` (3.9/3.10) records lines, as a tuple of [`ByRefCall`].
///
/// Raises `ParseError` when the source does not parse for `version`.
#[pyfunction]
#[pyo3(signature = (source, version, line, end=None))]
pub fn byref_find_calls<'py>(
    py: Python<'py>,
    source: &str,
    version: (u8, u8),
    line: u32,
    end: Option<(u32, u32)>,
) -> PyResult<Bound<'py, PyTuple>> {
    let query = match end {
        Some((line, col)) => Query::End { line, col },
        None if version == (3, 10) => Query::Line310(line),
        None => Query::Line(line),
    };
    let found = py
        .detach(|| call_args::find_calls(source, version, query))
        .map_err(|e| ParseError::new_err(e.to_string()))?;
    let items = found
        .iter()
        .map(|c| call(py, c))
        .collect::<PyResult<Vec<_>>>()?;
    PyTuple::new(py, items)
}

/// Where one write of a write-back plan goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WriteKind {
    /// A local, cell or free variable of the caller: through `frame.f_locals`.
    Fast,
    /// A name of a module, class body or exec'd code's namespace (`frame.f_locals`).
    Namespace,
    /// A name in `frame.f_globals`.
    Global,
    /// An attribute of this call's object: `setattr`.
    Attr,
    /// An item of this call's object: `__setitem__`.
    Item,
}

impl WriteKind {
    const ALL: [(WriteKind, &'static str); 5] = [
        (WriteKind::Fast, "fast"),
        (WriteKind::Namespace, "namespace"),
        (WriteKind::Global, "global"),
        (WriteKind::Attr, "attr"),
        (WriteKind::Item, "item"),
    ];

    fn name(self) -> &'static str {
        match Self::ALL.iter().find(|(k, _)| *k == self) {
            Some((_, name)) => name,
            None => unreachable!("every kind is in ALL"),
        }
    }
}

/// One write of a write-back plan: the final value of parameter `param` goes to the name
/// `key` in the caller's frame (`kind` `"fast"`, `"namespace"` or `"global"`), or to the
/// attribute or item `key` (`"attr"`, `"item"`) of the object the call passes beside the
/// plan. Fixed per call site, so made once; only the objects change from call to call.
#[pyclass(frozen, module = "recompyle._core")]
pub struct ByRefWrite {
    kind: WriteKind,
    #[pyo3(get)]
    key: Py<PyAny>,
    #[pyo3(get)]
    param: Py<PyString>,
}

#[pymethods]
impl ByRefWrite {
    #[new]
    fn new(kind: &str, key: Py<PyAny>, param: Py<PyString>) -> PyResult<Self> {
        match WriteKind::ALL.iter().find(|(_, name)| *name == kind) {
            Some(&(kind, _)) => Ok(ByRefWrite { kind, key, param }),
            None => Err(PyValueError::new_err(format!(
                "unknown write kind {kind:?} (fast, namespace, global, attr or item)"
            ))),
        }
    }

    #[getter]
    fn kind(&self) -> &'static str {
        self.kind.name()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "ByRefWrite({:?}, {}, {})",
            self.kind.name(),
            self.key.bind(py).repr()?,
            self.param.bind(py).repr()?
        ))
    }
}

/// Copy `frame.f_locals` (just refreshed and updated by the caller) back into the frame's
/// fast locals and cells: `PyFrame_LocalsToFast(frame, 0)`, which CPython 3.9–3.12 offer
/// for exactly this; 3.13 frames write through `f_locals` themselves (PEP 667).
#[pyfunction]
pub fn byref_locals_to_fast(frame: &Bound<'_, PyAny>) -> PyResult<()> {
    if frame.get_type().name()? != "frame" {
        return Err(PyTypeError::new_err("expected a frame"));
    }
    #[cfg(not(Py_3_13))]
    {
        // SAFETY: `frame` is a live frame object (checked above) and the GIL is held;
        // clear=0 leaves fast locals missing from the dict alone.
        unsafe {
            pyo3::ffi::PyFrame_LocalsToFast(frame.as_ptr().cast::<pyo3::ffi::PyFrameObject>(), 0)
        };
        if let Some(err) = PyErr::take(frame.py()) {
            return Err(err);
        }
        Ok(())
    }
    #[cfg(Py_3_13)]
    {
        Err(pyo3::exceptions::PyRuntimeError::new_err(
            "3.13+ frames write through f_locals; PyFrame_LocalsToFast is gone",
        ))
    }
}

/// Run the body of a function's generator copy (`generator_code` in byref.py) to its end:
/// its return value, or its exception as the original function would have raised it.
///
/// `PyIter_Send` (3.10+) returns the value without a `StopIteration`, and tells a return
/// from an exception. A `StopIteration` the body raised comes back as itself: 3.9–3.11 wrap
/// it in PEP 479's `RuntimeError` (made in C, so without a traceback), which is undone here;
/// 3.12+ do that wrapping in the bytecode of real generators only, which the copy lacks.
#[pyfunction]
pub fn byref_run(py: Python<'_>, gen: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    #[cfg(Py_3_10)]
    {
        use pyo3::ffi;
        let mut result: *mut ffi::PyObject = std::ptr::null_mut();
        // SAFETY: `gen` is a live object and the GIL is held; PyIter_Send checks its type
        // and leaves a new reference in `result` unless it returns PYGEN_ERROR.
        let status = unsafe { ffi::PyIter_Send(gen.as_ptr(), ffi::Py_None(), &mut result) };
        match status {
            // SAFETY: a new reference, per PyIter_Send's contract.
            ffi::PySendResult::PYGEN_RETURN => {
                Ok(unsafe { Bound::from_owned_ptr(py, result) }.unbind())
            }
            ffi::PySendResult::PYGEN_NEXT => {
                // SAFETY: the yielded value is a new reference we do not keep.
                unsafe { ffi::Py_DECREF(result) };
                Err(PyRuntimeError::new_err("the function's body yielded"))
            }
            ffi::PySendResult::PYGEN_ERROR => Err(unwrap_pep479(py, PyErr::fetch(py))),
        }
    }
    #[cfg(not(Py_3_10))]
    {
        match gen.call_method1("send", (py.None(),)) {
            Ok(_) => Err(PyRuntimeError::new_err("the function's body yielded")),
            // A return: the StopIteration was made in C, after the frame was gone.
            Err(err)
                if err.is_instance_of::<PyStopIteration>(py) && err.traceback(py).is_none() =>
            {
                Ok(err.value(py).getattr("value")?.unbind())
            }
            Err(err) => Err(unwrap_pep479(py, err)),
        }
    }
}

fn unwrap_pep479(py: Python<'_>, err: PyErr) -> PyErr {
    let converted =
        err.get_type(py).is(py.get_type::<PyRuntimeError>()) && err.traceback(py).is_none();
    if converted {
        if let Some(cause) = err.cause(py) {
            if cause.is_instance_of::<PyStopIteration>(py) {
                return cause;
            }
        }
    }
    err
}

/// Write the final values of the by-reference parameters where the plan says (what
/// `_write_back` in byref.py describes): `writes` is a tuple of [`ByRefWrite`], and
/// `objects` the objects its attribute and item writes are made on at this call, in the
/// order of those writes (names take no object). Reads every value first;
/// returns the name of a parameter the body deleted (then nothing is written), else `None`.
/// Names go first, in one refreshed `f_locals` written back at once (3.9–3.12) or through
/// the PEP 667 proxy (3.13); then attributes and items, whose setters may run code.
#[pyfunction]
pub fn byref_write_back<'py>(
    py: Python<'py>,
    frame: &Bound<'py, PyAny>,
    callee_frame: &Bound<'py, PyAny>,
    writes: &Bound<'py, PyTuple>,
    objects: &Bound<'py, PyList>,
) -> PyResult<Option<Py<PyString>>> {
    let final_locals = callee_frame.getattr(intern!(py, "f_locals"))?;
    let mut entries = Vec::with_capacity(writes.len());
    for write in writes.iter() {
        let write = write.cast_into::<ByRefWrite>()?;
        let value = match final_locals.get_item(&write.get().param) {
            Ok(value) => value,
            Err(err) if err.is_instance_of::<PyKeyError>(py) => {
                return Ok(Some(write.get().param.clone_ref(py)))
            }
            Err(err) => return Err(err),
        };
        entries.push((write, value));
    }
    let mut fast: Option<Bound<'py, PyAny>> = None;
    for (write, value) in &entries {
        let write = write.get();
        if write.kind == WriteKind::Fast {
            let locals = match &fast {
                Some(locals) => locals,
                None => fast.insert(frame.getattr(intern!(py, "f_locals"))?),
            };
            locals.set_item(&write.key, value)?;
        }
    }
    #[cfg(not(Py_3_13))]
    if fast.is_some() {
        byref_locals_to_fast(frame)?;
    }
    let mut objects = objects.iter();
    for (write, value) in &entries {
        let write = write.get();
        let key = write.key.bind(py);
        match write.kind {
            WriteKind::Fast => {}
            WriteKind::Namespace => frame
                .getattr(intern!(py, "f_locals"))?
                .set_item(key, value)?,
            WriteKind::Global => frame
                .getattr(intern!(py, "f_globals"))?
                .set_item(key, value)?,
            WriteKind::Attr | WriteKind::Item => {
                let Some(obj) = objects.next() else {
                    return Err(PyValueError::new_err(
                        "fewer objects than attribute and item writes",
                    ));
                };
                if write.kind == WriteKind::Attr {
                    obj.setattr(key.cast::<PyString>()?, value)?;
                } else {
                    obj.set_item(key, value)?;
                }
            }
        }
    }
    Ok(None)
}
