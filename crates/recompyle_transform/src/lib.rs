//! Rewrite every call expression of a module into a call through one of the recompyle selectors.
//!
//! `f(a, *b, k=v, **d)` becomes
//! `(__recompyle__(SITE, f) if __recompyle_on__ else f)(a, *b, k=v, **d)` and `obj.m(a)`
//! becomes `(__recompyle_m__(SITE, obj) if __recompyle_on__ else obj).m(a)` (a callee that
//! is itself a call, or spans lines, is not written twice, nor is any in module or class
//! body code that runs once: `__recompyle__(SITE, g(x))(a)`):
//! text is inserted at the call's first byte and before its `(` (or a method call's `.`).
//! No line break is added or removed,
//! so every line number stays; the callee and each argument are still evaluated once, in the
//! same order, and the interpreter itself still makes the call, in the caller's frame.
//!
//! The output carries a site table (where each call is, what its callee's text is, which
//! function it is in) and a [`PositionMap`] from the rewritten text's columns back to the
//! original's, used to give compiled code the original positions (see [`linetable`]).

#![forbid(unsafe_code)]

pub mod call_args;
mod call_walk;
pub mod function;
pub mod linetable;
pub mod lnotab;
pub mod names;
mod positions;
mod rewrite;
mod scope;
pub mod site_table;

pub use names::{
    CALL_SELECTOR, CLASS_READ_REPORTER, DIRECT_CALLS, LISTENING, METHOD_LOOKUP_SELECTOR,
    METHOD_SELECTOR, SELECTOR, WRITE_REPORTER,
};
pub use positions::PositionMap;
pub use recompyle_parser::ParseFailure;
pub use rewrite::{transform, Options, Site, Transformed};

/// Everything that changes the emitted code; bump when the output format changes so that
/// caches keyed on it are invalidated.
pub const FORMAT_VERSION: u32 = 11;

/// A site id packs the module key and the site's index; both fit a positive i64.
pub fn site_id(module_key: u32, index: u32) -> u64 {
    (u64::from(module_key) << 32) | u64::from(index)
}

/// The inverse of [`site_id`].
pub fn split_site_id(id: u64) -> (u32, u32) {
    ((id >> 32) as u32, (id & 0xFFFF_FFFF) as u32)
}

/// Why a module was not rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransformError {
    /// The parser refused the source; compile the original to let CPython word the error.
    Parse(ParseFailure),
    /// Our own invariant failed; the caller falls back to the original code and warns.
    Internal(String),
}

impl std::fmt::Display for TransformError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransformError::Parse(p) => write!(f, "{p}"),
            TransformError::Internal(m) => write!(f, "internal transform error: {m}"),
        }
    }
}

impl std::error::Error for TransformError {}
