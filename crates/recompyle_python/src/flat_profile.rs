//! The records of `flat_profile`: which callees an invocation of a decorated function
//! called, and for how long.
//!
//! Timers (the [`FlatProfile`] layers of `function_sites.rs`) record into the innermost
//! active invocation of their profile on this thread: the Python shim of `flat_profile`
//! enters a record before the body runs and finishes it after; generators and coroutines
//! park their record between steps. A record holds what each call's name will be made from
//! (the callee, or for a bound method its function, or for a builtin method its type and C
//! definition) and the call's duration in ticks; names are made when the record finishes,
//! and the record is then dropped with every reference.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use crate::clock;
use crate::cpython::{is_bound_method, PyMethod_Function};
use crate::gil::GilCell;

static NEXT_PROFILE: AtomicU64 = AtomicU64::new(1);

/// The state of one `flat_profile` decoration: which records on a thread's stack are its.
#[pyclass(module = "recompyle._core", frozen)]
pub struct FlatProfile {
    pub(crate) id: u64,
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
    ///
    /// # Safety
    /// The GIL is held and `callee` is a live object.
    unsafe fn add(&mut self, py: Python<'_>, callee: *mut ffi::PyObject, ticks: u64) {
        unsafe {
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
}

/// What a call's name is made from, kept only while its record lives.
enum NameKey {
    Object(Py<PyAny>),
    /// A builtin method: its owner type and C definition.
    CMethod(Py<PyAny>, MethodDef),
    /// A builtin function of a module: its C definition.
    CFunction(MethodDef),
}

/// A C method definition, borrowed: static data of CPython or of an extension, never freed.
#[derive(Clone, Copy)]
struct MethodDef(*const ffi::PyMethodDef);
// SAFETY: points to immutable static data.
unsafe impl Send for MethodDef {}

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
///
/// # Safety
/// `callee` is a live object; the GIL is held.
unsafe fn name_identity(callee: *mut ffi::PyObject) -> (usize, usize) {
    unsafe {
        if is_bound_method(callee) {
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
}

/// What the record keeps of `callee` for its name.
///
/// # Safety
/// `callee` is a live object; the GIL is held.
unsafe fn name_key(py: Python<'_>, callee: *mut ffi::PyObject) -> NameKey {
    unsafe {
        if is_bound_method(callee) {
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
}

/// Add a finished call to the innermost running record of `profile` on this thread; a call
/// made when none runs (a closure called after its function returned) is not recorded.
///
/// # Safety
/// `callee` is a live object; the GIL is held.
pub(crate) unsafe fn record_call(
    py: Python<'_>,
    profile: u64,
    callee: *mut ffi::PyObject,
    ticks: u64,
) {
    unsafe {
        STACK.with(|s| {
            let Ok(mut stack) = s.try_borrow_mut() else {
                return;
            };
            if let Some(record) = stack.iter_mut().rev().find(|r| r.profile == profile) {
                record.add(py, callee, ticks);
            }
        });
    }
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
