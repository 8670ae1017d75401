//! Native helpers of `recompyle.byref` (`python/recompyle/byref.py`): the call-site analysis
//! as Python tuples, and the write of a frame's locals dict back into its fast locals.

use pyo3::exceptions::{PyKeyError, PyRuntimeError, PyStopIteration, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};
use recompyle_transform::call_args::{self, Arg, ArgKind, CallInfo, Callee, Lvalue, Query, Step};

use crate::transform::ParseError;

/// `(root, binding, ((is_attribute, text), ...))`.
fn lvalue<'py>(py: Python<'py>, l: &Lvalue) -> PyResult<Bound<'py, PyAny>> {
    let steps = l
        .steps
        .iter()
        .map(|s| match s {
            Step::Attr(name) => (true, name.as_str()),
            Step::Index(key) => (false, key.as_str()),
        })
        .collect::<Vec<_>>();
    Ok((
        l.root.as_str(),
        l.binding.as_str(),
        PyTuple::new(py, steps)?,
    )
        .into_pyobject(py)?
        .into_any())
}

/// `(line, col, text, lvalue or None, reason or None)`.
fn arg<'py>(py: Python<'py>, a: &Arg) -> PyResult<Bound<'py, PyAny>> {
    let (value, reason) = match &a.kind {
        ArgKind::Lvalue(l) => (Some(lvalue(py, l)?), None),
        ArgKind::Refused(r) => (None, Some(r.describe())),
    };
    Ok((a.line, a.col, a.text.as_str(), value, reason)
        .into_pyobject(py)?
        .into_any())
}

/// `(kind, lvalue or None, attribute or None)`, kind one of name/attr/super/other.
fn callee<'py>(py: Python<'py>, c: &Callee) -> PyResult<Bound<'py, PyAny>> {
    let (kind, base, attr) = match c {
        Callee::Name(l) => ("name", Some(lvalue(py, l)?), None),
        Callee::Attribute { base, attr } => (
            "attr",
            base.as_ref().map(|b| lvalue(py, b)).transpose()?,
            Some(attr.as_str()),
        ),
        Callee::SuperAttribute(attr) => ("super", None, Some(attr.as_str())),
        Callee::Other => ("other", None, None),
    };
    Ok((kind, base, attr).into_pyobject(py)?.into_any())
}

fn call<'py>(py: Python<'py>, c: &CallInfo) -> PyResult<Bound<'py, PyAny>> {
    let positional = c
        .positional
        .iter()
        .map(|a| arg(py, a))
        .collect::<PyResult<Vec<_>>>()?;
    let keywords = c
        .keywords
        .iter()
        .map(|k| Ok((k.name.as_deref(), arg(py, &k.arg)?)))
        .collect::<PyResult<Vec<_>>>()?;
    Ok((
        (c.line, c.col, c.end_line, c.end_col),
        callee(py, &c.callee)?,
        c.callee_text.as_str(),
        PyTuple::new(py, positional)?,
        PyTuple::new(py, keywords)?,
    )
        .into_pyobject(py)?
        .into_any())
}

/// The calls of `source` that end at `end` (`(line, col)`, 3.11+) or, without `end`, are
/// on `line` as `version` (3.9/3.10) records lines, each as
/// `((line, col, end_line, end_col), callee, callee_text, positional, keywords)`.
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
/// `_write_back` in byref.py describes): `plan` is a list of `(kind, object, name or key,
/// param)`, kind one of `fast`, `namespace`, `global`, `attr`, `item`. Reads every value
/// first; returns the name of a parameter the body deleted (then nothing is written), else
/// `None`. Names go first, in one refreshed `f_locals` written back at once (3.9–3.12) or
/// through the PEP 667 proxy (3.13); then attributes and items, whose setters may run code.
#[pyfunction]
pub fn byref_write_back<'py>(
    py: Python<'py>,
    frame: &Bound<'py, PyAny>,
    callee_frame: &Bound<'py, PyAny>,
    plan: &Bound<'py, PyList>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let final_locals = callee_frame.getattr(intern!(py, "f_locals"))?;
    let mut entries = Vec::with_capacity(plan.len());
    for entry in plan.iter() {
        let entry = entry.cast_into::<PyTuple>()?;
        let param = entry.get_item(3)?;
        let value = match final_locals.get_item(&param) {
            Ok(value) => value,
            Err(err) if err.is_instance_of::<PyKeyError>(py) => return Ok(Some(param)),
            Err(err) => return Err(err),
        };
        let kind = entry.get_item(0)?;
        entries.push((kind.cast_into::<PyString>()?, entry, value));
    }
    let mut fast: Option<Bound<'py, PyAny>> = None;
    for (kind, entry, value) in &entries {
        if kind.to_str()? == "fast" {
            let locals = match &fast {
                Some(locals) => locals,
                None => fast.insert(frame.getattr(intern!(py, "f_locals"))?),
            };
            locals.set_item(entry.get_item(2)?, value)?;
        }
    }
    #[cfg(not(Py_3_13))]
    if fast.is_some() {
        byref_locals_to_fast(frame)?;
    }
    for (kind, entry, value) in &entries {
        match kind.to_str()? {
            "namespace" => frame
                .getattr(intern!(py, "f_locals"))?
                .set_item(entry.get_item(2)?, value)?,
            "global" => frame
                .getattr(intern!(py, "f_globals"))?
                .set_item(entry.get_item(2)?, value)?,
            "attr" => entry
                .get_item(1)?
                .setattr(entry.get_item(2)?.cast_into::<PyString>()?, value)?,
            "item" => entry.get_item(1)?.set_item(entry.get_item(2)?, value)?,
            _ => {}
        }
    }
    Ok(None)
}
