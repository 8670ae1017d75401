//! `Py_3_13` and the other version cfgs of the interpreter being built for, as pyo3 sets
//! them for itself: `byref.rs` uses a C function that 3.13 no longer has.
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
