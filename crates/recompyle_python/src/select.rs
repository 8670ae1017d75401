//! Which modules are instrumented: comma-separated glob patterns over dotted module names.
//!
//! `pkg.*` selects `pkg` and every submodule at any depth; `pkg` selects only `pkg`; `*`
//! within a name matches inside one dotted component (`pkg.test_*`); a lone `*` selects
//! everything. recompyle itself and the import machinery are never selected: rewriting the
//! code that runs the rewrite would recurse.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

const NEVER: &[&str] = &[
    "recompyle",
    "recompyle/**",
    "importlib",
    "importlib/**",
    "_frozen_importlib",
    "_frozen_importlib_external",
    "zipimport",
    "encodings",
    "encodings/**",
    "site",
    "sitecustomize",
    "usercustomize",
];

#[pyclass(module = "recompyle._core", frozen)]
pub struct ModuleMatcher {
    include: GlobSet,
    exclude: GlobSet,
    patterns: Vec<String>,
}

fn glob(pattern: &str) -> Result<globset::Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(true).build()
}

#[pymethods]
impl ModuleMatcher {
    #[new]
    pub(crate) fn new(patterns: &str) -> PyResult<Self> {
        let mut include = GlobSetBuilder::new();
        let mut kept = Vec::new();
        for raw in patterns.split(',') {
            let pattern = raw.trim();
            if pattern.is_empty() {
                continue;
            }
            if pattern
                .chars()
                .any(|c| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '*' | '?' | '[' | ']')))
            {
                return Err(PyValueError::new_err(format!(
                    "invalid module pattern {pattern:?}: use dotted names with * wildcards, e.g. 'pkg.*'"
                )));
            }
            let path = pattern.replace('.', "/");
            let globs = if path == "*" || path == "**" {
                vec!["**".to_string()]
            } else if let Some(prefix) = path.strip_suffix("/*") {
                vec![prefix.to_string(), format!("{prefix}/**")]
            } else {
                vec![path]
            };
            for g in globs {
                let compiled = glob(&g).map_err(|e| {
                    PyValueError::new_err(format!("invalid module pattern {pattern:?}: {e}"))
                })?;
                include.add(compiled);
            }
            kept.push(pattern.to_string());
        }
        let mut exclude = GlobSetBuilder::new();
        for g in NEVER {
            exclude.add(glob(g).map_err(|e| PyValueError::new_err(e.to_string()))?);
        }
        let build = |b: GlobSetBuilder| b.build().map_err(|e| PyValueError::new_err(e.to_string()));
        Ok(ModuleMatcher {
            include: build(include)?,
            exclude: build(exclude)?,
            patterns: kept,
        })
    }

    /// Whether the dotted module name is selected.
    pub(crate) fn matches(&self, name: &str) -> bool {
        let path = name.replace('.', "/");
        self.include.is_match(&path) && !self.exclude.is_match(&path)
    }

    #[getter]
    pub(crate) fn patterns(&self) -> Vec<String> {
        self.patterns.clone()
    }

    fn __bool__(&self) -> bool {
        !self.patterns.is_empty()
    }

    fn __repr__(&self) -> String {
        format!("ModuleMatcher({:?})", self.patterns.join(","))
    }
}
