//! The builtins rewritten code calls, named once: the transform writes these names into the
//! code, and the bindings (`recompyle._core`) install objects under them in `builtins`.
//!
//! Each name is a dunder, so class bodies never mangle it, and is `__recompyle`-prefixed,
//! so no program defines it. Every name is given as `&str` (for the rewrite) and as `&CStr`
//! (`*_C`, for the C API), made from the one literal.

use std::ffi::CStr;

/// `name` with a trailing NUL, as a C string, at compile time.
macro_rules! c_name {
    ($text:literal) => {
        match CStr::from_bytes_with_nul(concat!($text, "\0").as_bytes()) {
            Ok(name) => name,
            Err(_) => panic!("a builtin name has an interior NUL"),
        }
    };
}

macro_rules! names {
    ($( $(#[$doc:meta])* $name:ident, $c_name:ident = $text:literal; )*) => {
        $(
            $(#[$doc])*
            pub const $name: &str = $text;
            #[doc = concat!("[`", stringify!($name), "`] as a C string.")]
            pub const $c_name: &CStr = c_name!($text);
        )*
        /// Every builtin name, for checks that must cover them all.
        pub const ALL: &[&str] = &[$($text),*];
    };
}

names! {
    /// The call-site selector: a rewritten call site calls `__recompyle__(ID, f)` to get its
    /// callee, which is `f` when nothing listens, else a native proxy that reports the call.
    SELECTOR, SELECTOR_C = "__recompyle__";

    /// A bool the bindings keep `True` while anything may listen to calls (a handler, the
    /// profiler), `False` otherwise. A call site reads it before its selector:
    /// `(__recompyle__(ID, f) if __recompyle_on__ else f)(x)`, so an idle site costs a
    /// builtin load the interpreter caches and a branch, not a call.
    LISTENING, LISTENING_C = "__recompyle_on__";

    /// The selector of method call sites: `__recompyle_m__(ID, obj)` is `obj` when nothing
    /// listens, else an object whose attributes are proxies reporting the call.
    METHOD_SELECTOR, METHOD_SELECTOR_C = "__recompyle_m__";

    /// The selector that makes the call itself: `__recompyle_c__(ID, f, *args, **kwargs)`
    /// calls `f(*args, **kwargs)`, reported. What a one-line call site whose callee and
    /// arguments are cheap to write twice calls while [`DIRECT_CALLS`] is `True`:
    /// `(f(a) if not __recompyle_on__ else __recompyle_c__(ID, f, a) if __recompyle_c_on__
    /// else __recompyle__(ID, f)(a))`.
    CALL_SELECTOR, CALL_SELECTOR_C = "__recompyle_c__";

    /// A bool the bindings keep `True` while [`CALL_SELECTOR`] may make calls: only the
    /// profiler listens, and reported calls may nest deeper. Otherwise (a handler listens,
    /// whose own calls must not each add a native frame, or reported calls nest as deep as
    /// they may) the site asks its selector, which decides per call and leaves a call it
    /// does not report to the interpreter. Tested after [`LISTENING`] by the sites whose
    /// call [`CALL_SELECTOR`] makes (a name, not `__recompyle_on__ is True`: 3.11 gives
    /// an `assert` whose test holds a comparison inside a conditional that comparison's
    /// position, so a failed assert's traceback lost its line's position).
    DIRECT_CALLS, DIRECT_CALLS_C = "__recompyle_c_on__";

    /// The selector of a method call site's lookup: `__recompyle_ml__(ID, obj, 'm')` is
    /// `obj.m` when nothing listens, else a proxy calling the method found with `obj` first.
    /// What a one-line method call whose object and arguments are cheap to write twice
    /// calls while something listens:
    /// `(__recompyle_ml__(ID, obj, 'm')(a) if __recompyle_on__ else obj.m(a))`.
    METHOD_LOOKUP_SELECTOR, METHOD_LOOKUP_SELECTOR_C = "__recompyle_ml__";

    /// What a tracked module calls after a statement that stored or deleted names its scope
    /// declares `global` (STORE_GLOBAL and DELETE_GLOBAL bypass the tracked namespace):
    /// `x += 1; __recompyle_gw__(ID)`. The site's callee column holds the names, `x,y`.
    WRITE_REPORTER, WRITE_REPORTER_C = "__recompyle_gw__";

    /// What a class body of a tracked module loads a name through (LOAD_NAME reads the
    /// globals with `PyDict_GetItem` there): `__recompyle_gr__(ID, name)` is the value.
    CLASS_READ_REPORTER, CLASS_READ_REPORTER_C = "__recompyle_gr__";

    /// The selector of calls in functions rewritten by `wrap_calls` / `flat_profile`:
    /// `__recompyle_w__(SITE, callee, *args, **kwargs)`.
    WRAP_SELECTOR, WRAP_SELECTOR_C = "__recompyle_w__";

    /// [`WRAP_SELECTOR`] for a call that is directly awaited: the awaited work is timed.
    AWAIT_SELECTOR, AWAIT_SELECTOR_C = "__recompyle_wa__";

    /// The factory that holds a rewritten function's scaffold; never run, only compiled.
    FACTORY, FACTORY_C = "__recompyle_factory__";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_names_are_the_names() {
        let pairs = [
            (SELECTOR, SELECTOR_C),
            (LISTENING, LISTENING_C),
            (METHOD_SELECTOR, METHOD_SELECTOR_C),
            (CALL_SELECTOR, CALL_SELECTOR_C),
            (DIRECT_CALLS, DIRECT_CALLS_C),
            (METHOD_LOOKUP_SELECTOR, METHOD_LOOKUP_SELECTOR_C),
            (WRITE_REPORTER, WRITE_REPORTER_C),
            (CLASS_READ_REPORTER, CLASS_READ_REPORTER_C),
            (WRAP_SELECTOR, WRAP_SELECTOR_C),
            (AWAIT_SELECTOR, AWAIT_SELECTOR_C),
            (FACTORY, FACTORY_C),
        ];
        assert_eq!(pairs.len(), ALL.len());
        for (text, c) in pairs {
            assert_eq!(c.to_str(), Ok(text));
            assert!(ALL.contains(&text));
        }
    }

    #[test]
    fn names_are_recompyle_dunders() {
        for name in ALL {
            assert!(
                name.starts_with("__recompyle") && name.ends_with("__"),
                "{name}"
            );
        }
    }
}
