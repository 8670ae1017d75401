//! The event objects handed to Python handlers: a [`CallEvent`] per instrumented call,
//! shown to the *before* handlers, then completed with the result or exception for the
//! *after* handlers; a [`GlobalEvent`] per read, write or deletion of a tracked module's
//! global (`tracked_globals.rs`), for the `globals` callbacks.

use std::ffi::c_int;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use recompyle_transform::Site;

use crate::cpython;
use crate::gil::GilCell;
use crate::sites;

/// The call's own argument vector (vectorcall layout: `npos` positional values, then one
/// value per name in `kwnames`), borrowed from the interpreter for as long as the call is in
/// progress. Most handlers never look at the arguments, so the tuple and dict they would
/// need are built only when asked for, or when a handler keeps the event past the call.
struct Borrowed {
    /// Borrowed from the interpreter (the call's argument vector).
    values: *const *mut ffi::PyObject,
    npos: usize,
    /// Borrowed from the interpreter; NULL when there are no keyword arguments.
    kwnames: *mut ffi::PyObject,
}

// SAFETY: only read with the GIL held, and only while the call that owns the vector runs
// (`CallEvent::release` drops it before the call returns).
unsafe impl Send for Borrowed {}
unsafe impl Sync for Borrowed {}

#[pyclass(module = "recompyle._core", name = "CallEvent")]
pub struct CallEvent {
    site_id: u64,
    func: Option<Py<PyAny>>,
    /// For a method call site (`obj.name(...)`), the object `func` is called with as its
    /// first argument; `func` is bound to it only when a handler asks for it.
    bound_self: Option<Py<PyAny>>,
    borrowed: Option<Borrowed>,
    args: Option<Py<PyTuple>>,
    kwargs: Option<Py<PyDict>>,
    result: Option<Py<PyAny>>,
    exception: Option<Py<PyAny>>,
    finished: bool,
}

/// The event of the last call no handler kept, reused by the next call: allocating and
/// freeing a pyo3 object costs about as much as the rest of the dispatch.
static SPARE: GilCell<Option<Py<CallEvent>>> = GilCell::new(None);

/// Drop a field's reference now. The per-call path runs without pyo3's GIL count, where
/// dropping a `Py` would queue the decref in pyo3's pool instead.
fn clear<T>(py: Python<'_>, field: &mut Option<Py<T>>) {
    if let Some(obj) = field.take() {
        drop(obj.into_bound(py));
    }
}

impl CallEvent {
    /// The event for a call about to be made: the spare one, refilled, or a new object.
    ///
    /// # Safety
    /// `func` must be live, `bound_self` live or NULL; `values` and `kwnames` (which may be NULL) must stay alive until
    /// `release` is called.
    pub unsafe fn acquire<'py>(
        py: Python<'py>,
        site_id: u64,
        func: *mut ffi::PyObject,
        bound_self: *mut ffi::PyObject,
        values: *const *mut ffi::PyObject,
        npos: usize,
        kwnames: *mut ffi::PyObject,
    ) -> PyResult<Bound<'py, CallEvent>> {
        unsafe {
            let func = Some(Bound::from_borrowed_ptr(py, func).unbind());
            let bound_self = Bound::from_borrowed_ptr_or_opt(py, bound_self).map(Bound::unbind);
            let borrowed = Some(Borrowed {
                values,
                npos,
                kwnames,
            });
            if let Some(spare) = SPARE.get_mut(py).take() {
                let event = spare.into_bound(py);
                {
                    // Nobody else has a reference to the spare event, so nobody borrows it.
                    let mut e = event.try_borrow_mut()?;
                    e.site_id = site_id;
                    e.func = func;
                    e.bound_self = bound_self;
                    e.borrowed = borrowed;
                }
                return Ok(event);
            }
            Bound::new(
                py,
                CallEvent {
                    site_id,
                    func,
                    bound_self,
                    borrowed,
                    args: None,
                    kwargs: None,
                    result: None,
                    exception: None,
                    finished: false,
                },
            )
        }
    }

    pub fn finish(&mut self, result: Option<Py<PyAny>>, exception: Option<Py<PyAny>>) {
        self.result = result;
        self.exception = exception;
        self.finished = true;
    }

    /// The call is about to return and every handler has seen the event. A handler that
    /// kept it gets a copy of the arguments out of the interpreter's vector; otherwise the
    /// event is emptied and kept for the next call.
    pub fn release(event: Bound<'_, Self>) -> PyResult<()> {
        let py = event.py();
        // SAFETY: a live object.
        let kept = unsafe { ffi::Py_REFCNT(event.as_ptr()) } > 1;
        let mut e = event.try_borrow_mut()?;
        if kept {
            let copied = e.materialize(py);
            e.borrowed = None;
            return copied;
        }
        e.borrowed = None;
        e.finished = false;
        clear(py, &mut e.func);
        clear(py, &mut e.bound_self);
        clear(py, &mut e.args);
        clear(py, &mut e.kwargs);
        clear(py, &mut e.result);
        clear(py, &mut e.exception);
        drop(e);
        let spare = SPARE.get_mut(py);
        if spare.is_none() {
            *spare = Some(event.unbind());
        }
        Ok(())
    }

    fn materialize(&mut self, py: Python<'_>) -> PyResult<()> {
        let Some(b) = &self.borrowed else {
            return Ok(());
        };
        if self.args.is_none() {
            // SAFETY: `borrowed` is only set while the vector is alive (see `new`).
            let positional =
                (0..b.npos).map(|i| unsafe { Bound::from_borrowed_ptr(py, *b.values.add(i)) });
            self.args = Some(PyTuple::new(py, positional)?.unbind());
        }
        if self.kwargs.is_none() {
            let kwargs = PyDict::new(py);
            if !b.kwnames.is_null() {
                // SAFETY: as above; `kwnames` is a tuple of str.
                unsafe {
                    let nkw = ffi::PyTuple_GET_SIZE(b.kwnames) as usize;
                    for i in 0..nkw {
                        let key = ffi::PyTuple_GET_ITEM(b.kwnames, i as ffi::Py_ssize_t);
                        let value = *b.values.add(b.npos + i);
                        kwargs.set_item(
                            Bound::from_borrowed_ptr(py, key),
                            Bound::from_borrowed_ptr(py, value),
                        )?;
                    }
                }
            }
            self.kwargs = Some(kwargs.unbind());
        }
        Ok(())
    }

    fn site<T>(&self, f: impl FnOnce(&sites::ModuleSites, &Site) -> T) -> Option<T> {
        sites::lookup(self.site_id).map(|(m, i)| f(&m, &m.sites[i]))
    }
}

#[pymethods]
impl CallEvent {
    /// The callable that is (or was) called; at a method call site, the bound method
    /// `obj.name` evaluates to.
    #[getter]
    fn func(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if let (Some(func), Some(obj)) = (&self.func, &self.bound_self) {
            // SAFETY: both are live references held by the event.
            let bound = unsafe {
                Bound::from_owned_ptr_or_err(py, cpython::bind(func.as_ptr(), obj.as_ptr()))?
            };
            self.func = Some(bound.unbind());
            clear(py, &mut self.bound_self);
        }
        Ok(self.func.as_ref().map(|f| f.clone_ref(py)))
    }
    /// Positional arguments, as the callee receives them.
    #[getter]
    fn args(&mut self, py: Python<'_>) -> PyResult<Py<PyTuple>> {
        self.materialize(py)?;
        Ok(match &self.args {
            Some(args) => args.clone_ref(py),
            None => PyTuple::empty(py).unbind(),
        })
    }
    /// Keyword arguments, as the callee receives them.
    #[getter]
    fn kwargs(&mut self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        self.materialize(py)?;
        Ok(match &self.kwargs {
            Some(kwargs) => kwargs.clone_ref(py),
            None => PyDict::new(py).unbind(),
        })
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
    fn filename(&self) -> Option<std::ffi::OsString> {
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
            .site(|m, s| format!("{}:{}:{}", m.filename.to_string_lossy(), s.line, s.col))
            .unwrap_or_else(|| format!("site {}", self.site_id));
        let callee = self
            .site(|_, s| s.callee.clone())
            .unwrap_or_else(|| "?".to_string());
        format!("<CallEvent {} {callee} at {place}>", self.phase())
    }
}

/// What happened to a tracked global.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum GlobalKind {
    Read,
    Write,
    Delete,
}

impl GlobalKind {
    fn name(self) -> &'static str {
        match self {
            GlobalKind::Read => "read",
            GlobalKind::Write => "write",
            GlobalKind::Delete => "delete",
        }
    }
}

/// One read, write or deletion of a tracked module's global, for handlers' `globals`
/// callbacks.
#[pyclass(module = "recompyle._core", name = "GlobalEvent", frozen)]
pub struct GlobalEvent {
    kind: &'static str,
    module: Option<Py<PyAny>>,
    name: Py<PyAny>,
    value: Option<Py<PyAny>>,
    code: Option<Py<PyAny>>,
    lineno: Option<c_int>,
    site_id: Option<u64>,
}

impl GlobalEvent {
    /// The event of a `kind` access of `name` in the namespace of `module`, made by `code`
    /// at `lineno` (or reported by the transform's `site`).
    pub(crate) fn new(
        kind: GlobalKind,
        module: Option<Py<PyAny>>,
        name: Py<PyAny>,
        value: Option<Py<PyAny>>,
        code: Option<Py<PyAny>>,
        lineno: Option<c_int>,
        site_id: Option<u64>,
    ) -> Self {
        GlobalEvent {
            kind: kind.name(),
            module,
            name,
            value,
            code,
            lineno,
            site_id,
        }
    }
}

#[pymethods]
impl GlobalEvent {
    /// "read", "write" or "delete".
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind
    }
    /// The module whose global it is (its `__name__`).
    #[getter]
    fn module(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.module.as_ref().map(|m| m.clone_ref(py))
    }
    /// The global's name.
    #[getter]
    fn name(&self, py: Python<'_>) -> Py<PyAny> {
        self.name.clone_ref(py)
    }
    /// The value read or written; None for a deletion.
    #[getter]
    fn value(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.value.as_ref().map(|v| v.clone_ref(py))
    }
    /// The code object that read or wrote it (None when no Python frame runs).
    #[getter]
    fn code(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.code.as_ref().map(|c| c.clone_ref(py))
    }
    /// The line of that code.
    #[getter]
    fn lineno(&self) -> Option<c_int> {
        self.lineno
    }
    /// That code's file.
    #[getter]
    fn filename(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let code = self.code.as_ref()?;
        code.bind(py).getattr("co_filename").ok().map(Bound::unbind)
    }
    /// Qualified name of the reading or writing code (`co_qualname` on 3.11+, else the
    /// site table's, else `co_name`); `<module>` at top level.
    #[getter]
    fn function(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        if let Some(code) = &self.code {
            let code = code.bind(py);
            if let Ok(q) = code.getattr("co_qualname") {
                return Some(q.unbind());
            }
        }
        if let Some(site) = self.site_id {
            if let Some((m, i)) = sites::lookup(site) {
                return Some(
                    pyo3::types::PyString::new(py, &m.sites[i].qualname)
                        .into_any()
                        .unbind(),
                );
            }
        }
        let code = self.code.as_ref()?;
        code.bind(py).getattr("co_name").ok().map(Bound::unbind)
    }
    /// The site id of the reporting code the transform added, for reads in class bodies
    /// and writes under `global`; None for reads and writes the namespace saw itself.
    #[getter]
    fn site_id(&self) -> Option<u64> {
        self.site_id
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let show = |o: &Option<Py<PyAny>>| {
            o.as_ref()
                .and_then(|o| o.bind(py).str().ok().map(|s| s.to_string()))
                .unwrap_or_else(|| "?".into())
        };
        let name = self
            .name
            .bind(py)
            .str()
            .map(|s| s.to_string())
            .unwrap_or_default();
        format!(
            "<GlobalEvent {} {}.{} at line {}>",
            self.kind,
            show(&self.module),
            name,
            self.lineno.map_or("?".to_string(), |l| l.to_string())
        )
    }
}
