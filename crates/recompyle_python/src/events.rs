//! The event object handed to Python handlers: one per instrumented call, shown to the
//! *before* handlers, then completed with the result or exception for the *after* handlers.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use recompyle_transform::Site;

use crate::sites;

#[pyclass(module = "recompyle._core", name = "CallEvent")]
pub struct CallEvent {
    site_id: u64,
    func: Py<PyAny>,
    args: Py<PyTuple>,
    kwargs: Py<PyDict>,
    result: Option<Py<PyAny>>,
    exception: Option<Py<PyAny>>,
    finished: bool,
}

impl CallEvent {
    pub fn new(site_id: u64, func: Py<PyAny>, args: Py<PyTuple>, kwargs: Py<PyDict>) -> Self {
        CallEvent {
            site_id,
            func,
            args,
            kwargs,
            result: None,
            exception: None,
            finished: false,
        }
    }

    pub fn finish(&mut self, result: Option<Py<PyAny>>, exception: Option<Py<PyAny>>) {
        self.result = result;
        self.exception = exception;
        self.finished = true;
    }

    fn site<T>(&self, f: impl FnOnce(&sites::ModuleSites, &Site) -> T) -> Option<T> {
        sites::lookup(self.site_id).map(|(m, i)| f(&m, &m.sites[i]))
    }
}

#[pymethods]
impl CallEvent {
    /// The callable that is (or was) called.
    #[getter]
    fn func(&self, py: Python<'_>) -> Py<PyAny> {
        self.func.clone_ref(py)
    }
    /// Positional arguments, as the callee receives them.
    #[getter]
    fn args(&self, py: Python<'_>) -> Py<PyTuple> {
        self.args.clone_ref(py)
    }
    /// Keyword arguments, as the callee receives them.
    #[getter]
    fn kwargs(&self, py: Python<'_>) -> Py<PyDict> {
        self.kwargs.clone_ref(py)
    }
    /// The call's return value; None before the call and when it raised.
    #[getter]
    fn result(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.result.as_ref().map(|r| r.clone_ref(py))
    }
    /// The exception the call raised, or None.
    #[getter]
    fn exception(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.exception.as_ref().map(|e| e.clone_ref(py))
    }
    /// "before" while the call has not happened, "after" once it returned or raised.
    #[getter]
    fn phase(&self) -> &'static str {
        if self.finished {
            "after"
        } else {
            "before"
        }
    }
    #[getter]
    fn site_id(&self) -> u64 {
        self.site_id
    }
    #[getter]
    fn filename(&self) -> Option<String> {
        self.site(|m, _| m.filename.clone())
    }
    /// The module the call site is in.
    #[getter]
    fn module(&self) -> Option<String> {
        self.site(|m, _| m.module.clone())
    }
    #[getter]
    fn lineno(&self) -> Option<u32> {
        self.site(|_, s| s.line)
    }
    /// 0-based UTF-8 byte column, as `ast` and `co_positions()` count.
    #[getter]
    fn col_offset(&self) -> Option<u32> {
        self.site(|_, s| s.col)
    }
    #[getter]
    fn end_lineno(&self) -> Option<u32> {
        self.site(|_, s| s.end_line)
    }
    #[getter]
    fn end_col_offset(&self) -> Option<u32> {
        self.site(|_, s| s.end_col)
    }
    /// The callee's source text at the call site, e.g. `obj.method`.
    #[getter]
    fn source(&self) -> Option<String> {
        self.site(|_, s| s.callee.clone())
    }
    /// Qualified name of the function containing the call site.
    #[getter]
    fn caller(&self) -> Option<String> {
        self.site(|_, s| s.qualname.clone())
    }

    fn __repr__(&self) -> String {
        let place = self
            .site(|m, s| format!("{}:{}:{}", m.filename, s.line, s.col))
            .unwrap_or_else(|| format!("site {}", self.site_id));
        let callee = self
            .site(|_, s| s.callee.clone())
            .unwrap_or_else(|| "?".to_string());
        format!("<CallEvent {} {callee} at {place}>", self.phase())
    }
}
