//! Code objects compiled from rewritten text get the original text's positions back.
//!
//! Lines never move (the rewrite adds no line break), but on 3.11+ every instruction also
//! carries columns, which tracebacks use for their carets. Each code object's `co_linetable`
//! is decoded, its columns mapped through the [`PositionMap`], and written back.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use recompyle_transform::{linetable, PositionMap};

pub fn remap<'py>(
    code: &Bound<'py, PyAny>,
    positions: &PositionMap,
) -> PyResult<Bound<'py, PyAny>> {
    let py = code.py();
    if py.version_info() < (3, 11) || positions.is_identity() {
        return Ok(code.clone());
    }
    remap_one(code, positions)
}

fn is_code(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: PyCode_Check only reads the object's type.
    unsafe { pyo3::ffi::PyCode_Check(obj.as_ptr()) != 0 }
}

fn remap_one<'py>(
    code: &Bound<'py, PyAny>,
    positions: &PositionMap,
) -> PyResult<Bound<'py, PyAny>> {
    let py = code.py();
    let consts = code.getattr("co_consts")?.cast_into::<PyTuple>()?;
    let mut new_consts = Vec::with_capacity(consts.len());
    for item in consts.iter() {
        if is_code(&item) {
            new_consts.push(remap_one(&item, positions)?);
        } else {
            new_consts.push(item);
        }
    }
    let table = code.getattr("co_linetable")?;
    let table = table.cast::<PyBytes>()?;
    let first_line: i32 = code.getattr("co_firstlineno")?.extract()?;
    let new_table = linetable::remap_columns(table.as_bytes(), first_line, |line, col| {
        positions.original_col(line, col)
    })
    .map_err(|e| PyRuntimeError::new_err(format!("cannot remap positions: {}", e.0)))?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("co_consts", PyTuple::new(py, new_consts)?)?;
    kwargs.set_item("co_linetable", PyBytes::new(py, &new_table))?;
    code.call_method("replace", (), Some(&kwargs))
}
