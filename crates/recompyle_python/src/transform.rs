//! The transform stage as Python sees it: bytes in, rewritten source and site table out.

use std::borrow::Cow;
use std::ffi::OsString;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use recompyle_parser::{decode_source, Decoded};
use recompyle_transform::{site_table, Options, PositionMap, Site, TransformError};

use crate::code_object;
use crate::id_hash::module_key;
use crate::sites;

pyo3::create_exception!(
    recompyle._core,
    ParseError,
    PyValueError,
    "The source does not parse for this interpreter; compile the original to get CPython's own error."
);
pyo3::create_exception!(
    recompyle._core,
    InternalTransformError,
    PyRuntimeError,
    "The rewrite failed for a reason of recompyle's own; the original code should be used."
);

/// A rewritten module, ready to compile.
#[pyclass(module = "recompyle._core", frozen)]
pub struct Transformed {
    source: String,
    module_key: u32,
    sites: Vec<Site>,
    positions: PositionMap,
}

#[pymethods]
impl Transformed {
    /// The rewritten source text (same lines as the original).
    #[getter]
    fn source(&self) -> &str {
        &self.source
    }

    /// The key that prefixes every site id of this module.
    #[getter]
    fn module_key(&self) -> u32 {
        self.module_key
    }

    /// The site table: `(line, col, end_line, end_col, callee, qualname)` per site.
    #[getter]
    fn sites<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let items = self
            .sites
            .iter()
            .map(|s| {
                (
                    s.line,
                    s.col,
                    s.end_line,
                    s.end_col,
                    s.callee.as_str(),
                    s.qualname.as_str(),
                )
                    .into_pyobject(py)
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyTuple::new(py, items)
    }

    /// The site table as bytes, for the bytecode cache (`register_site_table` reads it).
    #[getter]
    fn site_table<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &site_table::encode(&self.sites))
    }

    /// Register this module's sites for `filename`/`module`; false when the module key
    /// already belongs to another file (transform again under another salt).
    fn register(&self, filename: OsString, module: String) -> bool {
        sites::register(self.module_key, filename, module, self.sites.clone())
    }

    /// Give `code` (compiled from `source`) and every code object nested in it the original
    /// source's columns (3.11+), or undo a 3.9 line-table quirk the added constants trip.
    fn remap<'py>(&self, code: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        code_object::remap(code, &self.positions, self.module_key)
    }

    fn __repr__(&self) -> String {
        format!(
            "<Transformed key={:#x} sites={}>",
            self.module_key,
            self.sites.len()
        )
    }
}

/// Stack for the transform: 16 MiB, and 1 KiB more per source byte.
const STACK_BASE: usize = 16 << 20;
const STACK_PER_BYTE: usize = 1 << 10;

/// Run `f` on a stack that grows with the source. The parser grows its own stack, but the
/// syntax tree is visited and dropped recursively, a level per nested expression:
/// `x = ------...1` with 200,000 minus signs overflowed the 8 MiB of the main thread, a
/// crash (SIGSEGV) where CPython raises its own error. No nesting takes less than a byte of
/// source per level, and a level takes far less than 1 KiB of stack, so this cannot run
/// out; the pages are only committed as they are touched.
///
/// The stack is a mapping `stacker` switches to on this thread (with a guard page below it),
/// not a new thread: a thread per module cost a cold import a spawn and a join, and on a
/// loaded machine a wait for the scheduler at each (the importing thread blocks until the
/// new one has run), and it hid the transform's time from the importing thread's CPU time,
/// which `benches/bench_cold_import.py` reads. A panic inside is caught on this thread
/// and becomes an internal error (the module runs as written, with a warning), as does a
/// stack that cannot be mapped.
fn on_a_deep_stack(
    len: usize,
    f: impl FnOnce() -> Result<recompyle_transform::Transformed, TransformError>,
) -> Result<recompyle_transform::Transformed, TransformError> {
    let size = len
        .saturating_mul(STACK_PER_BYTE)
        .saturating_add(STACK_BASE);
    // `grow` itself panics when the mapping cannot be made: caught here too.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stacker::grow(size, f)))
        .unwrap_or_else(|_| {
            Err(TransformError::Internal(format!(
                "the transform panicked (or no {size}-byte stack could be mapped)"
            )))
        })
}

/// Rewrite the bytes of a module for the interpreter `version`. `filename` is `os.fsencode`
/// data (a `str` with surrogate escapes, or bytes), never required to be UTF-8; with `track_globals`, add
/// the reports a tracked namespace cannot make itself (see `tracked_globals.rs`).
///
/// Raises `ParseError` when the bytes do not decode or parse for that version, and
/// `InternalTransformError` when recompyle itself fails.
#[pyfunction]
#[pyo3(signature = (data, filename, version, salt = 0, *, track_globals = false))]
pub fn transform(
    py: Python<'_>,
    data: &Bound<'_, PyBytes>,
    filename: OsString,
    version: (u8, u8),
    salt: u32,
    track_globals: bool,
) -> PyResult<Transformed> {
    let bytes = data.as_bytes();
    let key = module_key(&filename, bytes, salt);
    let options = Options {
        version,
        module_key: key,
        track_globals,
    };
    let text: Cow<'_, str> = match decode_source(bytes) {
        Decoded::Text(text) => text,
        // A codec CPython knows and we do not: let Python's codec registry decode.
        Decoded::Codec { encoding } => Cow::Owned(
            data.call_method1("decode", (encoding.as_str(),))
                .map_err(|e| ParseError::new_err(format!("cannot decode with {encoding}: {e}")))?
                .extract()?,
        ),
        Decoded::Invalid => return Err(ParseError::new_err("source bytes do not decode")),
    };
    let result = py.detach(|| {
        on_a_deep_stack(text.len(), || {
            recompyle_transform::transform(&text, &options)
        })
    });
    match result {
        Ok(out) => Ok(Transformed {
            source: out.source,
            module_key: key,
            sites: out.sites,
            positions: out.positions,
        }),
        Err(TransformError::Parse(p)) => Err(ParseError::new_err(p.to_string())),
        Err(TransformError::Internal(m)) => Err(InternalTransformError::new_err(m)),
    }
}
