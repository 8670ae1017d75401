//! Code objects compiled from rewritten text get the original text's positions back.
//!
//! Lines never move (the rewrite adds no line break), but on 3.11+ every instruction also
//! carries columns, which tracebacks use for their carets. Each code object's `co_linetable`
//! is decoded, its columns mapped through the [`PositionMap`], and written back.
//!
//! On 3.9 the site ids added to `co_consts` can push a folded constant past index 255 and
//! trip a line-table quirk of the peephole optimizer; [`lnotab::fix_extended_args`] undoes it.

use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt, PyTuple};
use recompyle_transform::{linetable, lnotab, split_site_id, PositionMap};

pub fn remap<'py>(
    code: &Bound<'py, PyAny>,
    positions: &PositionMap,
    module_key: u32,
) -> PyResult<Bound<'py, PyAny>> {
    let py = code.py();
    if py.version_info() < (3, 10) {
        return Ok(fix_lnotab(code, module_key)?.unwrap_or_else(|| code.clone()));
    }
    if py.version_info() < (3, 11) || positions.is_identity() {
        return Ok(code.clone());
    }
    remap_one(code, positions)
}

/// CPython 3.9's `LOAD_CONST`.
const LOAD_CONST: u8 = 100;

/// `code` with its (and its nested code objects') `co_lnotab` repaired, or `None` if
/// nothing needed repair.
fn fix_lnotab<'py>(
    code: &Bound<'py, PyAny>,
    module_key: u32,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = code.py();
    let consts = code.getattr("co_consts")?.cast_into::<PyTuple>()?;
    let mut new_consts = Vec::with_capacity(consts.len());
    let mut changed = false;
    // For each constant index, how many site ids come before it: the index in plain code
    // is the index here minus that.
    let mut ids_before = Vec::with_capacity(consts.len());
    let mut ids = 0u32;
    for item in consts.iter() {
        ids_before.push(ids);
        if is_code(&item) {
            match fix_lnotab(&item, module_key)? {
                Some(fixed) => {
                    changed = true;
                    new_consts.push(fixed);
                }
                None => new_consts.push(item),
            }
            continue;
        }
        if item.is_exact_instance_of::<PyInt>() {
            if let Ok(value) = item.extract::<u64>() {
                if split_site_id(value).0 == module_key {
                    ids += 1;
                }
            }
        }
        new_consts.push(item);
    }
    let kwargs = PyDict::new(py);
    if changed {
        kwargs.set_item("co_consts", PyTuple::new(py, new_consts)?)?;
    }
    // Without over 256 constants no `LOAD_CONST` needs a prefix.
    if consts.len() > 256 && ids > 0 {
        let co_code = code.getattr("co_code")?;
        let table = code.getattr("co_lnotab")?;
        let first_line: i32 = code.getattr("co_firstlineno")?.extract()?;
        let ours = |opcode: u8, arg: u32| {
            opcode == LOAD_CONST
                && ids_before
                    .get(arg as usize)
                    .is_some_and(|before| arg - before < 256)
        };
        let fixed = lnotab::fix_extended_args(
            co_code.cast::<PyBytes>()?.as_bytes(),
            table.cast::<PyBytes>()?.as_bytes(),
            first_line,
            ours,
        );
        if let Some(fixed) = fixed {
            kwargs.set_item("co_lnotab", PyBytes::new(py, &fixed))?;
            changed = true;
        }
    }
    if !changed {
        return Ok(None);
    }
    Ok(Some(code.call_method("replace", (), Some(&kwargs))?))
}

fn is_code(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: PyCode_Check only reads the object's type.
    unsafe { pyo3::ffi::PyCode_Check(obj.as_ptr()) != 0 }
}

/// `code` with the original columns, or `code` itself when none of its (or its nested code
/// objects') columns moved: `code.replace` builds a whole new code object (names interned,
/// constants walked), so it runs only where something changed, and with only the fields
/// that did.
fn remap_one<'py>(
    code: &Bound<'py, PyAny>,
    positions: &PositionMap,
) -> PyResult<Bound<'py, PyAny>> {
    let py = code.py();
    let consts = code
        .getattr(intern!(py, "co_consts"))?
        .cast_into::<PyTuple>()?;
    // Made at the first nested code object that changed, with every constant before it.
    let mut new_consts: Option<Vec<Bound<'py, PyAny>>> = None;
    for (i, item) in consts.iter().enumerate() {
        let item = if is_code(&item) {
            let remapped = remap_one(&item, positions)?;
            if new_consts.is_none() && !remapped.is(&item) {
                new_consts = Some(consts.iter().take(i).collect());
            }
            remapped
        } else {
            item
        };
        if let Some(new) = &mut new_consts {
            new.push(item);
        }
    }
    let table = code.getattr(intern!(py, "co_linetable"))?;
    let table = table.cast::<PyBytes>()?;
    let first_line: i32 = code.getattr(intern!(py, "co_firstlineno"))?.extract()?;
    let new_table = linetable::remap_columns(table.as_bytes(), first_line, |line, col| {
        positions.original_col(line, col)
    })
    .map_err(|e| PyRuntimeError::new_err(format!("cannot remap positions: {}", e.0)))?;
    if new_consts.is_none() && new_table.is_none() {
        return Ok(code.clone());
    }
    let kwargs = PyDict::new(py);
    if let Some(new_consts) = new_consts {
        kwargs.set_item(intern!(py, "co_consts"), PyTuple::new(py, new_consts)?)?;
    }
    if let Some(new_table) = new_table {
        kwargs.set_item(intern!(py, "co_linetable"), PyBytes::new(py, &new_table))?;
    }
    code.call_method(intern!(py, "replace"), (), Some(&kwargs))
}
