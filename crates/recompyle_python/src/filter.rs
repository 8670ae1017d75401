//! Handler filters: which calls a handler's `before`/`after` callbacks see, decided here
//! rather than in Python, so a call no handler wants costs a few comparisons and is never
//! made into an event (`add_handler(..., callee=f, module="myapp.*")`).
//!
//! `callee` is an object (a function, class or builtin; a bound method, `classmethod` or
//! `staticmethod` stands for its function) compared by identity with what the site calls,
//! or a string compared with the callee's `__qualname__`, or with `__module__` + "." +
//! `__qualname__`. `module` is patterns (as `ModuleMatcher`, `module_patterns.rs`) over the module the call
//! site is in (`event.module`), answered once per module and remembered.

use std::collections::HashMap;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use recompyle_transform::split_site_id;

use crate::cpython::{is_bound_method, PyMethod_Function};
use crate::gil::GilCell;
use crate::listeners;
use crate::module_patterns::ModulePatterns;
use crate::sites;

enum Callee {
    /// Compared by identity (owned reference).
    Object(Py<PyAny>),
    /// A qualified name, optionally preceded by the module's name and a dot.
    Name(String),
}

struct Modules {
    matcher: ModulePatterns,
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
                let matcher = ModulePatterns::new(patterns).map_err(PyValueError::new_err)?;
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
        let is_method = unsafe { is_bound_method(obj.as_ptr()) };
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

    /// Whether the call of `callee` at `site` passes the filter. A NULL `callee` is not
    /// known yet (a method site before its lookup): only the module is checked.
    ///
    /// # Safety
    /// The GIL is held, `callee` is NULL or a live object, and no exception is set.
    pub unsafe fn selects(&self, py: Python<'_>, site: u64, callee: *mut ffi::PyObject) -> bool {
        unsafe {
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
            if obj.is_null() {
                return true;
            }
            if is_bound_method(obj) {
                obj = PyMethod_Function(obj);
            }
            match &self.callee {
                None => true,
                Some(Callee::Object(target)) => obj == target.as_ptr(),
                Some(Callee::Name(name)) => name_matches(py, obj, name),
            }
        }
    }
}

/// `obj.__qualname__ == name`, or `name` is `obj.__module__ + "." + obj.__qualname__`.
///
/// # Safety
/// The GIL is held and `obj` is a live object.
unsafe fn name_matches(py: Python<'_>, obj: *mut ffi::PyObject, name: &str) -> bool {
    unsafe {
        if ffi::PyFunction_Check(obj) != 0 {
            // A Python function's names are fields: read them without an attribute lookup.
            let f = obj.cast::<ffi::PyFunctionObject>();
            return names_match(name, (*f).func_qualname, || (*f).func_module);
        }
        // Any other callable's names may be properties running Python code: its calls are
        // not reported, as a handler's are not.
        listeners::unreported(|| attr_names_match(py, obj, name))
    }
}

/// `name_matches` through attribute lookups.
///
/// # Safety
/// As `name_matches`.
unsafe fn attr_names_match(py: Python<'_>, obj: *mut ffi::PyObject, name: &str) -> bool {
    unsafe {
        let obj = Bound::from_borrowed_ptr(py, obj);
        // Attribute errors are the callee's business, not ours: they mean "no match".
        let Ok(qualname) = obj.getattr(pyo3::intern!(py, "__qualname__")) else {
            return false;
        };
        let module = || match obj.getattr(pyo3::intern!(py, "__module__")) {
            // The attribute lives as long as `obj`'s class or the object keeps it; held by
            // `keep` below for the comparison.
            Ok(m) => m.into_ptr(),
            Err(_) => std::ptr::null_mut(),
        };
        let mut keep: *mut ffi::PyObject = std::ptr::null_mut();
        let matched = names_match(name, qualname.as_ptr(), || {
            keep = module();
            keep
        });
        if !keep.is_null() {
            ffi::Py_DECREF(keep);
        }
        matched
    }
}

/// `name` is `qualname`, or `module() + "." + qualname` (`module` is asked only then).
///
/// # Safety
/// The GIL is held; `qualname` and what `module` returns are NULL or live objects.
unsafe fn names_match(
    name: &str,
    qualname: *mut ffi::PyObject,
    module: impl FnOnce() -> *mut ffi::PyObject,
) -> bool {
    unsafe {
        let Some(qualname) = as_str(qualname) else {
            return false;
        };
        if name == qualname {
            return true;
        }
        match name
            .strip_suffix(qualname)
            .and_then(|p| p.strip_suffix('.'))
        {
            Some(prefix) => as_str(module()).is_some_and(|m| m == prefix),
            None => false,
        }
    }
}

/// The text of `obj` if it is a `str` (its UTF-8 form, cached by CPython in the object).
///
/// # Safety
/// The GIL is held; `obj` is NULL or a live object, which outlives the result.
unsafe fn as_str<'a>(obj: *mut ffi::PyObject) -> Option<&'a str> {
    unsafe {
        if obj.is_null() || ffi::PyUnicode_Check(obj) == 0 {
            return None;
        }
        let mut size: ffi::Py_ssize_t = 0;
        let data = ffi::PyUnicode_AsUTF8AndSize(obj, &mut size);
        if data.is_null() {
            ffi::PyErr_Clear(); // lone surrogates: no name of ours
            return None;
        }
        std::str::from_utf8(std::slice::from_raw_parts(data.cast::<u8>(), size as usize)).ok()
    }
}
