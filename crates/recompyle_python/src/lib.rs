//! `recompyle._core`: the native half of recompyle.
//!
//! Stages, in the order an import and then a call meet them:
//! [`transform`] (bytes → rewritten source + site table) → [`code_object`] (original
//! positions back into compiled code) → [`sites`] (the site registry) → [`trampoline`]
//! (every rewritten call) → [`handlers`] / [`profiler`] (who listens) → [`events`].

mod awaited;
mod byref;
mod call_tree;
mod clock;
mod code_object;
mod events;
mod filter;
mod function_sites;
mod gil;
mod globals;
mod handlers;
mod profiler;
mod select;
mod sites;
mod slow_calls;
mod trampoline;
mod transform;
mod unwind;

use std::sync::atomic::AtomicU8;

use pyo3::prelude::*;

/// What the trampoline has to do besides calling: one load decides the fast path.
pub(crate) static ACTIVE: AtomicU8 = AtomicU8::new(0);
pub(crate) const HANDLERS: u8 = 1;
pub(crate) const PROFILING: u8 = 2;
/// With [`PROFILING`]: also the calling-context tree.
pub(crate) const TREE: u8 = 4;

/// `gil_used = true`: the per-call state (`gil::GilCell`, the profiler's stacks, the handler
/// snapshot) relies on the GIL serialising every call, so a free-threaded interpreter (3.13t,
/// 3.14t) must enable the GIL when this module is imported, which it does with a
/// `RuntimeWarning` naming the module (pyo3 0.30 would otherwise declare `Py_MOD_GIL_NOT_USED`).
#[pymodule(gil_used = true)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("FORMAT_VERSION", recompyle_transform::FORMAT_VERSION)?;
    m.add("TRAMPOLINE_NAME", recompyle_transform::TRAMPOLINE)?;
    m.add("METHOD_SELECTOR_NAME", recompyle_transform::METHOD_SELECTOR)?;
    m.add_function(wrap_pyfunction!(transform::transform, m)?)?;
    m.add_class::<transform::Transformed>()?;
    m.add("ParseError", py.get_type::<transform::ParseError>())?;
    m.add(
        "InternalTransformError",
        py.get_type::<transform::InternalTransformError>(),
    )?;
    m.add_function(wrap_pyfunction!(sites::register_site_table, m)?)?;
    m.add_function(wrap_pyfunction!(sites::site_info, m)?)?;
    m.add_class::<select::ModuleMatcher>()?;
    m.add_function(wrap_pyfunction!(handlers::add_handler, m)?)?;
    m.add_function(wrap_pyfunction!(handlers::handlers, m)?)?;
    m.add_class::<handlers::Handler>()?;
    m.add("HandlerWarning", py.get_type::<handlers::HandlerWarning>())?;
    m.add_class::<events::CallEvent>()?;
    m.add_class::<globals::GlobalEvent>()?;
    m.add("TrackedGlobals", globals::create_type(py)?)?;
    m.add_function(wrap_pyfunction!(globals::track_module, m)?)?;
    m.add_function(wrap_pyfunction!(globals::is_tracked_namespace, m)?)?;
    m.add("WRITE_REPORTER_NAME", globals::WRITE_REPORTER)?;
    m.add("CLASS_READ_REPORTER_NAME", globals::CLASS_READ_REPORTER)?;
    m.add_function(wrap_pyfunction!(profiler::profiler_start, m)?)?;
    m.add_function(wrap_pyfunction!(profiler::profiler_stop, m)?)?;
    m.add_function(wrap_pyfunction!(profiler::profiler_running, m)?)?;
    m.add_function(wrap_pyfunction!(profiler::profiler_reset, m)?)?;
    m.add_function(wrap_pyfunction!(profiler::profiler_snapshot, m)?)?;
    m.add_function(wrap_pyfunction!(profiler::profiler_counts, m)?)?;
    m.add_function(wrap_pyfunction!(profiler::profiler_clear_max, m)?)?;
    m.add_class::<profiler::Counts>()?;
    m.add_function(wrap_pyfunction!(profiler::timeline_acquire, m)?)?;
    m.add_function(wrap_pyfunction!(profiler::timeline_release, m)?)?;
    m.add_function(wrap_pyfunction!(profiler::timeline_events, m)?)?;
    m.add_function(wrap_pyfunction!(slow_calls::slow_calls_listen, m)?)?;
    m.add_class::<slow_calls::SlowCall>()?;
    m.add_class::<slow_calls::OpenCall>()?;

    m.add_function(wrap_pyfunction!(byref::byref_find_calls, m)?)?;
    m.add_function(wrap_pyfunction!(byref::byref_locals_to_fast, m)?)?;
    m.add_function(wrap_pyfunction!(byref::byref_run, m)?)?;
    m.add_function(wrap_pyfunction!(byref::byref_write_back, m)?)?;

    m.add_class::<function_sites::FunctionSite>()?;
    m.add_class::<function_sites::FlatProfile>()?;
    m.add_class::<function_sites::RewrittenFunction>()?;
    m.add_function(wrap_pyfunction!(function_sites::rewrite_function, m)?)?;
    m.add_function(wrap_pyfunction!(function_sites::record_awaited, m)?)?;
    m.add_function(wrap_pyfunction!(
        function_sites::configure_function_sites,
        m
    )?)?;
    m.add(
        "WRAP_SELECTOR_NAME",
        recompyle_transform::function::WRAP_SELECTOR,
    )?;
    m.add(
        "AWAIT_SELECTOR_NAME",
        recompyle_transform::function::AWAIT_SELECTOR,
    )?;

    // The rewritten code finds its two helpers as builtins: no name is added to any module's
    // namespace, and `dir()`/`globals()` of instrumented modules are unchanged.
    awaited::init(py)?;
    let (select, select_method) = trampoline::create(py)?;
    m.add("select", &select)?;
    m.add("select_method", &select_method)?;
    let builtins = py.import("builtins")?;
    builtins.setattr(recompyle_transform::TRAMPOLINE, &select)?;
    builtins.setattr(recompyle_transform::METHOD_SELECTOR, &select_method)?;
    let (wrap, wrap_awaited) = function_sites::create(py)?;
    builtins.setattr(recompyle_transform::function::WRAP_SELECTOR, &wrap)?;
    builtins.setattr(recompyle_transform::function::AWAIT_SELECTOR, &wrap_awaited)?;
    let (write_reporter, class_read_reporter) = globals::create_reporters(py)?;
    builtins.setattr(globals::WRITE_REPORTER, &write_reporter)?;
    builtins.setattr(globals::CLASS_READ_REPORTER, &class_read_reporter)?;
    globals::remember_own_builtins(
        py,
        &[
            (recompyle_transform::TRAMPOLINE, &select),
            (recompyle_transform::METHOD_SELECTOR, &select_method),
            (globals::WRITE_REPORTER, &write_reporter),
            (globals::CLASS_READ_REPORTER, &class_read_reporter),
            (recompyle_transform::function::WRAP_SELECTOR, &wrap),
            (recompyle_transform::function::AWAIT_SELECTOR, &wrap_awaited),
        ],
    )?;
    Ok(())
}
