//! Handler filters: which calls a handler's `before`/`after` callbacks see, decided here
//! rather than in Python, so a call no handler wants costs a few comparisons and is never
//! made into an event (`add_handler(..., callee=f, module="myapp.*")`).
//!
//! `callee` is an object (a function, class or builtin; a bound method, `classmethod` or
//! `staticmethod` stands for its function) compared by identity with what the site calls,
//! or a string compared with the callee's `__qualname__`, or with `__module__` + "." +
//! `__qualname__`. `module` is patterns (as `ModuleMatcher`) over the module the call
//! site is in (`event.module`), answered once per module and remembered.

use std::collections::HashMap;

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;
use recompyle_transform::split_site_id;

use crate::gil::GilCell;
use crate::select::ModuleMatcher;
use crate::sites;

extern "C" {
    /// `types.MethodType` (public C API, not declared by pyo3-ffi).
    static mut PyMethod_Type: ffi::PyTypeObject;
    /// A bound method's function, borrowed.
    fn PyMethod_Function(meth: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

enum Callee {
    /// Compared by identity (owned reference).
    Object(Py<PyAny>),
    /// A qualified name, optionally preceded by the module's name and a dot.
    Name(String),
}

struct Modules {
    matcher: ModuleMatcher,
    /// Module key of a site id → whether the module matches.
    seen: GilCell<HashMap<u32, bool>>,
}

/// What a handler with a filter wants to see of calls.
pub struct CallFilter {
    callee: Option<Callee>,
    modules: Option<Modules>,
}

impl CallFilter {
    /// The filter `callee` and `module` describe, or `None` when both are absent.
    pub fn new(
        py: Python<'_>,
        callee: Option<Bound<'_, PyAny>>,
        module: Option<&str>,
    ) -> PyResult<Option<Self>> {
        let callee = match callee {
            None => None,
            Some(obj) => Some(Self::callee(py, obj)?),
        };
        let modules = match module {
            None => None,
            Some(patterns) => {
                let matcher = ModuleMatcher::new(patterns)?;
                if matcher.patterns().is_empty() {
                    return Err(pyo3::exceptions::PyValueError::new_err(
                        "module= needs at least one pattern",
                    ));
                }
                Some(Modules {
                    matcher,
                    seen: GilCell::new(HashMap::new()),
                })
            }
        };
        if callee.is_none() && modules.is_none() {
            return Ok(None);
        }
        Ok(Some(CallFilter { callee, modules }))
    }

    fn callee(py: Python<'_>, obj: Bound<'_, PyAny>) -> PyResult<Callee> {
        if let Ok(name) = obj.extract::<String>() {
            return Ok(Callee::Name(name));
        }
        let builtins = py.import("builtins")?;
        let wrappers = pyo3::types::PyTuple::new(
            py,
            [
                builtins.getattr("classmethod")?,
                builtins.getattr("staticmethod")?,
            ],
        )?;
        // SAFETY: reading the address of a static type object.
        let is_method = unsafe { ffi::Py_TYPE(obj.as_ptr()) == &raw mut PyMethod_Type };
        let target = if is_method || obj.is_instance(wrappers.as_any())? {
            obj.getattr("__func__")?
        } else {
            obj
        };
        if !target.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "callee= must be a callable or a qualified name, not {}",
                target.get_type().name()?
            )));
        }
        Ok(Callee::Object(target.unbind()))
    }

    /// Whether the call of `callee` at `site` passes the filter.
    ///
    /// # Safety
    /// The GIL is held, `callee` is a live object and no exception is set.
    pub unsafe fn selects(&self, py: Python<'_>, site: u64, callee: *mut ffi::PyObject) -> bool {
        if let Some(modules) = &self.modules {
            let key = split_site_id(site).0;
            let seen = modules.seen.get_mut(py);
            let matched = match seen.get(&key) {
                Some(&m) => m,
                None => {
                    let m = sites::lookup(site)
                        .is_some_and(|(m, _)| modules.matcher.matches(&m.module));
                    seen.insert(key, m);
                    m
                }
            };
            if !matched {
                return false;
            }
        }
        let mut obj = callee;
        if ffi::Py_TYPE(obj) == &raw mut PyMethod_Type {
            obj = PyMethod_Function(obj);
        }
        match &self.callee {
            None => true,
            Some(Callee::Object(target)) => obj == target.as_ptr(),
            Some(Callee::Name(name)) => name_matches(py, obj, name),
        }
    }
}

/// `obj.__qualname__ == name`, or `name` is `obj.__module__ + "." + obj.__qualname__`.
///
/// # Safety
/// The GIL is held and `obj` is a live object.
unsafe fn name_matches(py: Python<'_>, obj: *mut ffi::PyObject, name: &str) -> bool {
    let obj = Bound::from_borrowed_ptr(py, obj);
    // Attribute errors are the callee's business, not ours: they mean "no match".
    let qualname = match obj.getattr(pyo3::intern!(py, "__qualname__")) {
        Ok(q) => q,
        Err(_) => return false,
    };
    let Ok(qualname) = qualname.cast::<PyString>() else {
        return false;
    };
    let Ok(qualname) = qualname.to_str() else {
        return false;
    };
    if name == qualname {
        return true;
    }
    let Some(prefix) = name
        .strip_suffix(qualname)
        .and_then(|p| p.strip_suffix('.'))
    else {
        return false;
    };
    match obj.getattr(pyo3::intern!(py, "__module__")) {
        Ok(m) => m
            .cast::<PyString>()
            .ok()
            .and_then(|m| m.to_str().ok().map(|m| m == prefix))
            .unwrap_or(false),
        Err(_) => false,
    }
}
