//! `recompyle._core`: the native half of recompyle.
//!
//! Stages, in the order an import and then a call meet them:
//! [`transform`] (bytes → rewritten source + site table) → [`code_object`] (original
//! positions back into compiled code) → [`sites`] (the site registry) → [`selector`]
//! (every rewritten call) → [`handlers`] / [`profiler`] (who listens: [`listeners`]) →
//! [`events`]. Underneath them all, [`cpython`] (what is taken from CPython beyond pyo3)
//! and [`unwind`]; beside them, [`tracked_globals`], the decorators' call path
//! ([`function_rewrite`], [`function_sites`], [`flat_profile`]) and [`byref`].

mod byref;
mod call_tree;
mod checksum;
mod clock;
mod code_object;
mod cpython;
mod events;
mod filter;
mod flat_profile;
mod function_rewrite;
mod function_sites;
mod gil;
mod handlers;
mod id_hash;
mod listeners;
mod module_match;
mod module_patterns;
mod profiler;
mod selector;
mod sites;
mod slow_calls;
mod tracked_globals;
mod transform;
mod unwind;

use pyo3::prelude::*;
use recompyle_transform::names;

/// `gil_used = true`: the per-call state (`gil::GilCell`, the profiler's stacks, the handler
/// snapshot) relies on the GIL serialising every call, so a free-threaded interpreter (3.13t,
/// 3.14t) must enable the GIL when this module is imported, which it does with a
/// `RuntimeWarning` naming the module (pyo3 0.30 would otherwise declare `Py_MOD_GIL_NOT_USED`).
#[pymodule(gil_used = true)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("FORMAT_VERSION", recompyle_transform::FORMAT_VERSION)?;
    m.add("SELECTOR_NAME", names::SELECTOR)?;
    m.add("METHOD_SELECTOR_NAME", names::METHOD_SELECTOR)?;
    m.add("CALL_SELECTOR_NAME", names::CALL_SELECTOR)?;
    m.add("METHOD_LOOKUP_SELECTOR_NAME", names::METHOD_LOOKUP_SELECTOR)?;
    m.add("LISTENING_NAME", names::LISTENING)?;
    m.add("DIRECT_CALLS_NAME", names::DIRECT_CALLS)?;
    m.add_function(wrap_pyfunction!(transform::transform, m)?)?;
    m.add_class::<transform::Transformed>()?;
    m.add("ParseError", py.get_type::<transform::ParseError>())?;
    m.add(
        "InternalTransformError",
        py.get_type::<transform::InternalTransformError>(),
    )?;
    m.add_function(wrap_pyfunction!(sites::register_site_table, m)?)?;
    m.add_function(wrap_pyfunction!(checksum::cache_checksum, m)?)?;
    m.add_function(wrap_pyfunction!(sites::site_info, m)?)?;
    m.add_class::<module_match::ModuleMatcher>()?;
    m.add_function(wrap_pyfunction!(handlers::add_handler, m)?)?;
    m.add_function(wrap_pyfunction!(handlers::handlers, m)?)?;
    m.add_class::<handlers::Handler>()?;
    m.add("HandlerWarning", py.get_type::<handlers::HandlerWarning>())?;
    m.add_class::<events::CallEvent>()?;
    m.add_class::<events::GlobalEvent>()?;
    m.add("TrackedGlobals", tracked_globals::create_type(py)?)?;
    m.add_function(wrap_pyfunction!(tracked_globals::track_module, m)?)?;
    m.add_function(wrap_pyfunction!(tracked_globals::is_tracked_namespace, m)?)?;
    m.add("WRITE_REPORTER_NAME", names::WRITE_REPORTER)?;
    m.add("CLASS_READ_REPORTER_NAME", names::CLASS_READ_REPORTER)?;
    m.add_function(wrap_pyfunction!(profiler::profiler_start, m)?)?;
    m.add_function(wrap_pyfunction!(profiler::profiler_stop, m)?)?;
    m.add_function(wrap_pyfunction!(profiler::profiler_running, m)?)?;
    m.add_function(wrap_pyfunction!(profiler::profiler_reset, m)?)?;
    m.add_function(wrap_pyfunction!(profiler::profiler_snapshot, m)?)?;
    m.add_function(wrap_pyfunction!(profiler::profiler_counts, m)?)?;
    m.add_function(wrap_pyfunction!(profiler::profiler_window_open, m)?)?;
    m.add_function(wrap_pyfunction!(profiler::profiler_window_close, m)?)?;
    m.add_function(wrap_pyfunction!(profiler::profiler_window, m)?)?;
    m.add_class::<profiler::Window>()?;
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
    m.add_class::<byref::ByRefCall>()?;
    m.add_class::<byref::ByRefCallee>()?;
    m.add_class::<byref::ByRefArg>()?;
    m.add_class::<byref::ByRefKeyword>()?;
    m.add_class::<byref::ByRefLvalue>()?;
    m.add_class::<byref::ByRefStep>()?;
    m.add_class::<byref::ByRefWrite>()?;

    m.add_class::<function_sites::FunctionSite>()?;
    m.add_class::<function_sites::PyLayer>()?;
    m.add_class::<flat_profile::FlatProfile>()?;
    m.add_class::<function_rewrite::RewrittenFunction>()?;
    m.add_function(wrap_pyfunction!(function_rewrite::rewrite_function, m)?)?;
    m.add_function(wrap_pyfunction!(flat_profile::record_awaited, m)?)?;
    m.add_function(wrap_pyfunction!(
        function_sites::configure_function_sites,
        m
    )?)?;
    m.add("WRAP_SELECTOR_NAME", names::WRAP_SELECTOR)?;
    m.add("AWAIT_SELECTOR_NAME", names::AWAIT_SELECTOR)?;

    // The rewritten code finds its helpers as builtins: no name is added to any module's
    // namespace, and `dir()`/`globals()` of instrumented modules are unchanged.
    profiler::awaited::init(py)?;
    let selector::Selectors {
        select,
        select_method,
        select_call,
        select_method_lookup,
    } = selector::create(py)?;
    m.add("select", &select)?;
    m.add("select_method", &select_method)?;
    m.add("select_call", &select_call)?;
    m.add("select_method_lookup", &select_method_lookup)?;
    let (wrap, wrap_awaited) = function_sites::create(py)?;
    let (write_reporter, class_read_reporter) = tracked_globals::create_reporters(py)?;
    let own: [(&str, &Bound<'_, PyAny>); 8] = [
        (names::SELECTOR, &select),
        (names::METHOD_SELECTOR, &select_method),
        (names::CALL_SELECTOR, &select_call),
        (names::METHOD_LOOKUP_SELECTOR, &select_method_lookup),
        (names::WRAP_SELECTOR, &wrap),
        (names::AWAIT_SELECTOR, &wrap_awaited),
        (names::WRITE_REPORTER, &write_reporter),
        (names::CLASS_READ_REPORTER, &class_read_reporter),
    ];
    let builtins = py.import("builtins")?;
    for (name, obj) in own {
        builtins.setattr(name, obj)?;
    }
    tracked_globals::remember_own_builtins(py, &own)?;
    // `__recompyle_on__` and `__recompyle_c_on__`: what call sites test before calling
    // their selector.
    listeners::install_flag(py, &builtins.dict());
    Ok(())
}
