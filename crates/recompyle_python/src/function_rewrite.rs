//! The rewrite of one function for `wrap_calls` / `flat_profile`, as Python sees it: the
//! transform's `function.rs` on the function's text, then [`RewrittenFunction::bind`], which
//! gives the compiled code the original columns and puts a [`FunctionSite`] (the call path,
//! `function_sites.rs`) in place of each site id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt, PyTuple};
use recompyle_transform::function::{self as rewrite, CallFilter, FunctionOptions};
use recompyle_transform::{split_site_id, PositionMap};

use crate::code_object;
use crate::function_sites::{FunctionSite, Layer, Layers, PyLayer};
use crate::transform::InternalTransformError;

static NEXT_KEY: AtomicU32 = AtomicU32::new(0x5EC0_0001);

/// A function's text rewritten, ready to compile.
#[pyclass(module = "recompyle._core", frozen)]
pub struct RewrittenFunction {
    #[pyo3(get)]
    code: String,
    #[pyo3(get)]
    original_source: String,
    #[pyo3(get)]
    new_source: String,
    #[pyo3(get)]
    line_shift: u32,
    #[pyo3(get)]
    scaffold_qualname: String,
    key: u32,
    sites: Vec<rewrite::FunctionSite>,
    positions: PositionMap,
}

#[pymethods]
impl RewrittenFunction {
    /// `(line, col, callee text, awaited, direct)` per site.
    #[getter]
    fn sites(&self) -> Vec<(u32, u32, String, bool, bool)> {
        self.sites
            .iter()
            .map(|s| (s.line, s.col, s.callee.clone(), s.awaited, s.direct))
            .collect()
    }

    /// `code` (compiled from `self.code` and moved to its lines) with original columns and
    /// each site id constant replaced by a [`FunctionSite`] going through `layers` (a list
    /// of `Layer`, innermost first).
    fn bind<'py>(
        &self,
        code: &Bound<'py, PyAny>,
        layers: Vec<Bound<'py, PyLayer>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = code.py();
        let built: Vec<Layer> = layers.iter().map(|l| l.get().layer(py)).collect();
        let direct_wrapper = match built.as_slice() {
            [Layer::Wrap(wrapper)] => Some(wrapper.clone_ref(py)),
            _ => None,
        };
        let layers: Layers = Arc::new(built);
        let mut objects: HashMap<u32, Py<PyAny>> = HashMap::new();
        for (i, site) in self.sites.iter().enumerate() {
            let object = if site.direct {
                direct_wrapper
                    .as_ref()
                    .ok_or_else(|| {
                        PyValueError::new_err("direct call sites need exactly one wrapper layer")
                    })?
                    .clone_ref(py)
            } else {
                Py::new(
                    py,
                    FunctionSite {
                        layers: layers.clone(),
                        line: site.line,
                        col: site.col,
                        callee: site.callee.clone(),
                    },
                )?
                .into_any()
            };
            objects.insert(i as u32, object);
        }
        let code = code_object::remap(code, &self.positions, self.key)?;
        replace_sites(&code, self.key, &objects)
    }
}

fn replace_sites<'py>(
    code: &Bound<'py, PyAny>,
    key: u32,
    objects: &HashMap<u32, Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = code.py();
    let consts = code.getattr("co_consts")?.cast_into::<PyTuple>()?;
    let mut out = Vec::with_capacity(consts.len());
    for item in consts.iter() {
        // SAFETY: PyCode_Check only reads the type.
        if unsafe { ffi::PyCode_Check(item.as_ptr()) } != 0 {
            out.push(replace_sites(&item, key, objects)?);
            continue;
        }
        if item.is_exact_instance_of::<PyInt>() {
            if let Ok(value) = item.extract::<u64>() {
                let (k, index) = split_site_id(value);
                if k == key {
                    if let Some(site) = objects.get(&index) {
                        out.push(site.bind(py).clone());
                        continue;
                    }
                }
            }
        }
        out.push(item);
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item("co_consts", PyTuple::new(py, out)?)?;
    code.call_method("replace", (), Some(&kwargs))
}

/// Rewrite the function `name` that starts on `line` of `source`.
#[pyfunction]
#[pyo3(signature = (source, version, line, name, *, hint=None, freevars=Vec::new(), class_name=None, time_awaits=false, direct=false, blacklist=Vec::new(), whitelist=Vec::new(), ignore=Vec::new()))]
#[allow(clippy::too_many_arguments)]
pub fn rewrite_function(
    py: Python<'_>,
    source: &Bound<'_, PyAny>,
    version: (u8, u8),
    line: u32,
    name: String,
    hint: Option<(u32, u32)>,
    freevars: Vec<String>,
    class_name: Option<String>,
    time_awaits: bool,
    direct: bool,
    blacklist: Vec<String>,
    whitelist: Vec<String>,
    ignore: Vec<String>,
) -> PyResult<RewrittenFunction> {
    let text: String = if let Ok(bytes) = source.cast::<PyBytes>() {
        String::from_utf8(bytes.as_bytes().to_vec())
            .map_err(|_| PyTypeError::new_err("source bytes are not UTF-8"))?
    } else {
        source.extract()?
    };
    let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    let options = FunctionOptions {
        version,
        line,
        name,
        hint,
        freevars,
        class_name,
        key,
        time_awaits,
        direct,
        filter: CallFilter {
            blacklist,
            whitelist,
            ignore,
        },
    };
    let out = py
        .detach(|| rewrite::rewrite_function(&text, &options))
        .map_err(|e| InternalTransformError::new_err(e.to_string()))?;
    Ok(RewrittenFunction {
        code: out.code,
        original_source: out.original_source,
        new_source: out.new_source,
        line_shift: out.line_shift,
        scaffold_qualname: out.scaffold_qualname,
        key,
        sites: out.sites,
        positions: out.positions,
    })
}
