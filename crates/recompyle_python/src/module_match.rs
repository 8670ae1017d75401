//! `ModuleMatcher`, the Python face of [`ModulePatterns`] (`module_patterns.rs`): which
//! modules the finder instruments, and which modules a handler's `module=` filter names.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::module_patterns::ModulePatterns;

#[pyclass(module = "recompyle._core", frozen)]
pub struct ModuleMatcher {
    patterns: ModulePatterns,
}

#[pymethods]
impl ModuleMatcher {
    #[new]
    pub(crate) fn new(patterns: &str) -> PyResult<Self> {
        Ok(ModuleMatcher {
            patterns: ModulePatterns::new(patterns).map_err(PyValueError::new_err)?,
        })
    }

    /// Whether the dotted module name is selected.
    pub(crate) fn matches(&self, name: &str) -> bool {
        self.patterns.matches(name)
    }

    #[getter]
    pub(crate) fn patterns(&self) -> Vec<String> {
        self.patterns.patterns().to_vec()
    }

    fn __bool__(&self) -> bool {
        !self.patterns.patterns().is_empty()
    }

    fn __repr__(&self) -> String {
        format!("ModuleMatcher({:?})", self.patterns.patterns().join(","))
    }
}
