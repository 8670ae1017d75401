//! The native side of every rewritten call site.
//!
//! `(__recompyle__(ID, f) if __recompyle_on__ else f)(args)` and
//! `(__recompyle_m__(ID, obj) if __recompyle_on__ else obj).m(args)` are what call sites
//! become (a callee not cheap to write twice keeps the selector call alone,
//! `__recompyle__(ID, g(x))(args)`); a one-line call whose callee (or method's object) and
//! arguments are cheap to write twice makes its call in each branch:
//! `(f(args) if not __recompyle_on__ else __recompyle_c__(ID, f, args) if
//! __recompyle_c_on__ else __recompyle__(ID, f)(args))` for a function (without `*` or `**`
//! arguments; with them, from 3.13, `(__recompyle__(ID, f)(args) if __recompyle_on__ else
//! f(args))`), `(__recompyle_ml__(ID, obj, 'm')(args) if __recompyle_on__ else
//! obj.m(args))` for a method. While nothing listens the flag skips the selectors
//! (`listeners::publish` keeps it); called then anyway, they return `f` / `obj` / `obj.m`
//! (and `__recompyle_c__` makes the call), so the call (and the method lookup) is the
//! interpreter's own: a Python callee runs inline, errors name the real callee, and a call
//! deeper than the reported calls may nest adds no native frame. When a handler or the
//! profiler listens they return a [`Proxy`]: a native callable holding the site and callee,
//! whose vectorcall reports the call around forwarding it (for `__recompyle_m__`, first a
//! target whose attribute lookup produces that proxy); while the profiler alone listens,
//! `__recompyle_c__` reports the call around making it, with no proxy.
//!
//! Everything here is native code: no Python frame is pushed, so `eval`, `locals()`,
//! zero-argument `super()`, `sys._getframe()` and `warnings`' stack levels see the caller's
//! own frame, through the proxy too.

use std::ffi::{c_void, CStr};
use std::ptr::null_mut;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use recompyle_transform::names;

use crate::cpython::{
    self, _PyObject_GetMethod, call_prepended, fast_call_builtin, getset, slot, type_error,
    vectorcall_type, BuiltinInfo, TypePtr,
};
use crate::events::CallEvent;
use crate::gil::GilCell;
use crate::handlers::After;
use crate::listeners::{self, ACTIVE, HANDLERS, PROFILING, REPORTED_CALLS, TREE};
use crate::profiler::awaited;
use crate::{clock, handlers, profiler, sites, unwind};

// Docstrings of the builtin-function form start with the signature, so `inspect.signature`
// works on them as on every other builtin.
const SELECT_DOC: &CStr = c"__recompyle__(site_id, callee, /)\n--\n\n\
The callee of an instrumented call site: callee itself when nothing listens, or a proxy \
that reports the call when a handler or the profiler listens. Inserted by recompyle.";
const SELECT_METHOD_DOC: &CStr = c"__recompyle_m__(site_id, obj, /)\n--\n\n\
The object whose method an instrumented call site calls: obj itself when nothing listens, \
or a target whose attributes are proxies that report the call. Inserted by recompyle.";

static SELECT_INFO: BuiltinInfo = BuiltinInfo {
    name: names::SELECTOR_C,
    params: &[
        ("site_id", "POSITIONAL_ONLY"),
        ("callee", "POSITIONAL_ONLY"),
    ],
    repr: c"<recompyle call-site selector __recompyle__>",
};
static SELECT_METHOD_INFO: BuiltinInfo = BuiltinInfo {
    name: names::METHOD_SELECTOR_C,
    params: &[("site_id", "POSITIONAL_ONLY"), ("obj", "POSITIONAL_ONLY")],
    repr: c"<recompyle call-site selector __recompyle_m__>",
};

const SELECT_CALL_DOC: &CStr = c"__recompyle_c__(site_id, callee, /, *args, **kwargs)\n--\n\n\
The call callee(*args, **kwargs) of an instrumented call site, reported to the profiler. \
Inserted by recompyle.";

static CALL_SELECTOR_INFO: BuiltinInfo = BuiltinInfo {
    name: names::CALL_SELECTOR_C,
    params: &[
        ("site_id", "POSITIONAL_ONLY"),
        ("callee", "POSITIONAL_ONLY"),
        ("args", "VAR_POSITIONAL"),
        ("kwargs", "VAR_KEYWORD"),
    ],
    repr: c"<recompyle call-site selector __recompyle_c__>",
};

const SELECT_METHOD_LOOKUP_DOC: &CStr = c"__recompyle_ml__(site_id, obj, name, /)\n--\n\n\
The method obj.name an instrumented call site calls: the attribute itself when nothing \
listens, or a proxy that calls it with obj and reports the call when a handler or the \
profiler listens. Inserted by recompyle.";

static METHOD_LOOKUP_INFO: BuiltinInfo = BuiltinInfo {
    name: names::METHOD_LOOKUP_SELECTOR_C,
    params: &[
        ("site_id", "POSITIONAL_ONLY"),
        ("obj", "POSITIONAL_ONLY"),
        ("name", "POSITIONAL_ONLY"),
    ],
    repr: c"<recompyle call-site selector __recompyle_ml__>",
};

/// The call sites' builtins.
pub struct Selectors<'py> {
    /// `__recompyle__` (see [`fast_call_builtin`] for its form on each version).
    pub select: Bound<'py, PyAny>,
    /// `__recompyle_m__` (the same form).
    pub select_method: Bound<'py, PyAny>,
    /// `__recompyle_c__`: from 3.11 a builtin function taking keywords, whose calls the
    /// interpreter specialises (an object of a native type with a vectorcall slot costs
    /// ~75 instructions more per call there, the generic call of an object); before, such
    /// an object, because 3.9 and 3.10 charge every builtin function's call a recursion
    /// level, and the callee runs inside it: it would hit the recursion limit sooner than
    /// without recompyle, and word the error differently. 3.11+ charge one only for an
    /// unspecialised call (a site's first executions), at most as deep as reported calls
    /// nest, as for the selectors.
    pub select_call: Bound<'py, PyAny>,
    /// `__recompyle_ml__`: of [`fast_call_builtin`]'s form, as the first two: it returns
    /// before anything is called, and a builtin function's call is one the 3.11+
    /// interpreter specialises (the generic call of an object of a native type costs ~75
    /// instructions more).
    /// Only a lookup that runs Python code (`__getattr__`, a property) runs inside it: in the
    /// first executions at a site, before the interpreter specialises the call, that code
    /// runs one recursion level deeper than it would under `LOAD_METHOD`.
    pub select_method_lookup: Bound<'py, PyAny>,
}

/// Create the call sites' builtins.
pub fn create(py: Python<'_>) -> PyResult<Selectors<'_>> {
    proxy_type(py)?;
    let select_call = if py.version_info() >= (3, 11) {
        cpython::fast_call_keywords_builtin(
            py,
            select_call_fast,
            names::CALL_SELECTOR_C,
            SELECT_CALL_DOC,
        )?
    } else {
        let call_type = cpython::selector_type(py, c"recompyle._core.CallSelector", None)?;
        cpython::new_selector(py, call_type, select_call, None, &CALL_SELECTOR_INFO)?
    };
    Ok(Selectors {
        select_call,
        select: fast_call_builtin(py, select, SELECT_DOC, &SELECT_INFO)?,
        select_method: fast_call_builtin(
            py,
            select_method,
            SELECT_METHOD_DOC,
            &SELECT_METHOD_INFO,
        )?,
        select_method_lookup: fast_call_builtin(
            py,
            select_method_lookup,
            SELECT_METHOD_LOOKUP_DOC,
            &METHOD_LOOKUP_INFO,
        )?,
    })
}

/// Whether the call being selected at `site` should be reported.
///
/// # Safety
/// The GIL is held and `site` is a live object.
#[inline(always)]
unsafe fn listening(site: *mut ffi::PyObject) -> bool {
    unsafe {
        match ACTIVE.load(Ordering::Relaxed) {
            0 => false,
            HANDLERS if listeners::in_handler() => false,
            active => {
                // SAFETY: the selectors and proxies only run with the GIL held.
                let py = Python::assume_attached();
                if REPORTED_CALLS.has_room(py) {
                    return true;
                }
                if active & PROFILING != 0 && !listeners::in_handler() {
                    profiler::count_untimed(py, site);
                }
                false
            }
        }
    }
}

/// `callee` (a new reference) as what the interpreter should call: itself when nothing
/// listens, else a proxy that takes over the reference.
///
/// # Safety
/// The GIL is held; `site` is a live object and `callee` a new reference, which is taken
/// over.
#[inline(always)]
unsafe fn selected(site: *mut ffi::PyObject, callee: *mut ffi::PyObject) -> *mut ffi::PyObject {
    unsafe {
        if !listening(site) {
            return callee;
        }
        if ffi::PyLong_CheckExact(site) == 0 {
            ffi::Py_DECREF(callee);
            return type_error(c"recompyle: a site id must be an int");
        }
        if ACTIVE.load(Ordering::Relaxed) == HANDLERS
            && !handlers::wants_selected(Python::assume_attached(), site, callee)
        {
            return callee; // filtered out: the interpreter makes the call itself
        }
        new_proxy(site, callee, null_mut())
    }
}

/// # Safety
/// CPython calls it with the GIL held and `args` holding `nargs` live objects.
unsafe extern "C-unwind" fn select(
    _slf: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    unsafe {
        if nargs != 2 {
            return type_error(c"__recompyle__() takes a site id and a callee");
        }
        let callee = *args.add(1);
        ffi::Py_INCREF(callee);
        selected(*args, callee)
    }
}

/// # Safety
/// CPython calls it with the GIL held and `args` holding `nargs` live objects.
unsafe extern "C-unwind" fn select_method(
    _slf: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    unsafe {
        if nargs != 2 {
            return type_error(c"__recompyle_m__() takes a site id and an object");
        }
        let site = *args;
        let obj = *args.add(1);
        ffi::Py_INCREF(obj);
        if !listening(site) {
            return obj;
        }
        if ffi::PyLong_CheckExact(site) == 0 {
            ffi::Py_DECREF(obj);
            return type_error(c"recompyle: a site id must be an int");
        }
        if ACTIVE.load(Ordering::Relaxed) == HANDLERS
            && !handlers::wants_selected(Python::assume_attached(), site, null_mut())
        {
            return obj; // no handler wants this module's calls
        }
        // A method target: the interpreter's LOAD_METHOD on it comes to `proxy_getattro`.
        new_proxy(site, null_mut(), obj)
    }
}

/// [`select_call`] as the builtin function's `METH_FASTCALL | METH_KEYWORDS` (3.11+).
///
/// # Safety
/// CPython calls it with the GIL held, `args` holding `nargs` live objects followed by one
/// for each name in `kwnames` (a tuple, or NULL).
unsafe extern "C-unwind" fn select_call_fast(
    _slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: the same call, as a vector call without the offset flag.
    unsafe { select_call(null_mut(), args, nargs as usize, kwnames) }
}

/// `__recompyle_c__(ID, f, *args, **kwargs)`: the call `f(*args, **kwargs)` of site `ID`,
/// reported. A one-line function call whose callee and arguments are cheap to write twice
/// calls it in the branch taken while only the profiler listens and reported calls may nest
/// deeper (`__recompyle_c_on__`, see `listeners::publish`):
/// `(f(a) if not __recompyle_on__ else __recompyle_c__(ID, f, a) if __recompyle_c_on__ else
/// __recompyle__(ID, f)(a))`. The flags are read before the arguments are evaluated, so the
/// call is checked again here as the selectors check theirs: one nested as deep as reported
/// calls may (another thread's calls came between) is counted unreported and made as is,
/// and so is one made while nothing listens any more or a handler runs; either is one
/// native frame, as from the next call on the sites take the selector's branch, whose
/// unreported calls are the interpreter's.
///
/// # Safety
/// CPython calls it with the GIL held and a valid vector call.
unsafe extern "C-unwind" fn select_call(
    _callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        let nargs = ffi::PyVectorcall_NARGS(nargsf);
        if nargs < 2 {
            return type_error(c"__recompyle_c__() takes a site id, a callee and its arguments");
        }
        let site = *args;
        let callee = *args.add(1);
        // The callee's arguments; the slot before them (the callee's) is ours to lend.
        let rest = args.add(2);
        let rest_nargsf = (nargs - 2) as usize | ffi::PY_VECTORCALL_ARGUMENTS_OFFSET;
        if !listening(site) {
            return unwind::vectorcall(callee, rest, rest_nargsf, kwnames);
        }
        if ffi::PyLong_CheckExact(site) == 0 {
            return type_error(c"recompyle: a site id must be an int");
        }
        let py = Python::assume_attached();
        if ACTIVE.load(Ordering::Relaxed) == HANDLERS && !handlers::wants_selected(py, site, callee)
        {
            // Filtered out: the call is made as is.
            return unwind::vectorcall(callee, rest, rest_nargsf, kwnames);
        }
        let _depth = REPORTED_CALLS.enter(py);
        report(callee, null_mut(), site, rest, rest_nargsf, kwnames)
    }
}

/// `__recompyle_ml__(ID, obj, name)`: `obj.name` for the method call at site `ID`, as the
/// interpreter's method lookup finds it, and when something listens a proxy that calls it
/// with `obj` first (no bound method is made) and reports the call. What a one-line method
/// call whose object and arguments are cheap to write twice calls in the branch taken while
/// something listens: `(__recompyle_ml__(ID, obj, 'm')(a) if __recompyle_on__ else
/// obj.m(a))`. When the call is not reported, the bound attribute, as `obj.m` gives it.
///
/// # Safety
/// CPython calls it with the GIL held and `args` holding `nargs` live objects.
unsafe extern "C-unwind" fn select_method_lookup(
    _slf: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    unsafe {
        if nargs != 3 {
            return type_error(c"__recompyle_ml__() takes a site id, an object and a name");
        }
        let (site, obj, name) = (*args, *args.add(1), *args.add(2));
        if !listening(site) {
            return ffi::PyObject_GetAttr(obj, name);
        }
        if ffi::PyLong_CheckExact(site) == 0 {
            return type_error(c"recompyle: a site id must be an int");
        }
        let Some(found) = find_method(site, obj, name) else {
            return null_mut();
        };
        if ACTIVE.load(Ordering::Relaxed) == HANDLERS
            && !handlers::wants_selected(Python::assume_attached(), site, found.meth)
        {
            return found.into_attribute(obj); // filtered out: called without a proxy
        }
        let Found { meth, unbound } = found;
        if unbound {
            // The proxy passes the object as first argument itself: no bound method is made.
            ffi::Py_INCREF(obj);
            new_proxy(site, meth, obj)
        } else {
            new_proxy(site, meth, null_mut())
        }
    }
}

/// Attribute lookup on a method target (`callee` NULL, `bound_self` the object): the lookup
/// LOAD_METHOD would have done on the object, answered with a proxy that reports the call.
/// On an ordinary proxy, the generic lookup (its `__qualname__` and the like).
///
/// The usual case of a listened method call on 3.11 is answered here without a stack
/// frame of its own: the site's remembered method still holds, no handler filter has to
/// be asked, and only the interpreter's stack holds the target, which becomes the proxy
/// (what [`proxy_getattro_full`] does in that case). Anything else goes there.
///
/// # Safety
/// CPython calls it with the GIL held and `obj` a live `CallProxy`; the other arguments are
/// as the slot's contract says.
unsafe extern "C-unwind" fn proxy_getattro(
    obj: *mut ffi::PyObject,
    name: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        let p = obj.cast::<Proxy>();
        if cpython::METHOD_CACHE
            && (*p).callee.is_null()
            && ffi::Py_REFCNT(obj) == 1
            && ACTIVE.load(Ordering::Relaxed) != HANDLERS
        {
            let hit = METHODS
                .get(Python::assume_attached())
                .hit((*p).site, (*p).bound_self, name);
            if let Some(found) = hit {
                // An unbound method (the cache keeps only those): the proxy passes the
                // object first, so it keeps `bound_self`.
                ffi::Py_INCREF(found);
                (*p).callee = found;
                ffi::Py_INCREF(obj);
                return obj;
            }
        }
        proxy_getattro_full(obj, name)
    }
}

/// [`proxy_getattro`] in full.
///
/// # Safety
/// As [`proxy_getattro`].
#[inline(never)]
unsafe fn proxy_getattro_full(
    obj: *mut ffi::PyObject,
    name: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        let p = obj.cast::<Proxy>();
        if !(*p).callee.is_null() {
            return ffi::PyObject_GenericGetAttr(obj, name);
        }
        let target = (*p).bound_self;
        let Some(found) = find_method((*p).site, target, name) else {
            return null_mut();
        };
        if ACTIVE.load(Ordering::Relaxed) == HANDLERS
            && !handlers::wants_selected(Python::assume_attached(), (*p).site, found.meth)
        {
            return found.into_attribute(target); // filtered out: called without a proxy
        }
        let Found { meth, unbound } = found;
        if ffi::Py_REFCNT(obj) == 1 {
            // Only the interpreter's stack holds the target, and LOAD_METHOD is about to drop
            // it: it becomes the proxy itself, saving an allocation.
            (*p).callee = meth;
            if !unbound {
                (*p).bound_self = null_mut();
                ffi::Py_DECREF(target);
            }
            ffi::Py_INCREF(obj);
            return obj;
        }
        if unbound {
            // The proxy passes the object as first argument itself: no bound method is made.
            ffi::Py_INCREF(target);
            new_proxy((*p).site, meth, target)
        } else {
            new_proxy((*p).site, meth, null_mut())
        }
    }
}

/// A method call site's callee, as `LOAD_METHOD` finds it.
struct Found {
    /// Owned.
    meth: *mut ffi::PyObject,
    /// `meth` is the type's unbound function (or method descriptor): the call passes the
    /// object first. Else `meth` is the attribute itself (an instance's, a bound method...).
    unbound: bool,
}

impl Found {
    /// What a plain attribute lookup gives: `meth`, bound to `obj` if unbound.
    ///
    /// # Safety
    /// The GIL is held and `obj` is the object `self` was found on.
    unsafe fn into_attribute(self, obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
        unsafe {
            if !self.unbound {
                return self.meth;
            }
            let bound = cpython::bind(self.meth, obj);
            ffi::Py_DECREF(self.meth);
            bound
        }
    }
}

/// `obj.name` as `LOAD_METHOD` looks it up for the call at `site`: on 3.11 from the site's
/// remembered method when it still holds (else remembered for next time). None: the lookup
/// raised.
///
/// # Safety
/// The GIL is held; `site`, `obj` and `name` are live.
#[inline(always)]
unsafe fn find_method(
    site: *mut ffi::PyObject,
    obj: *mut ffi::PyObject,
    name: *mut ffi::PyObject,
) -> Option<Found> {
    unsafe {
        if cpython::METHOD_CACHE {
            if let Some(meth) = METHODS.get(Python::assume_attached()).hit(site, obj, name) {
                ffi::Py_INCREF(meth);
                return Some(Found {
                    meth,
                    unbound: true,
                });
            }
        }
        let mut meth: *mut ffi::PyObject = null_mut();
        let unbound = _PyObject_GetMethod(obj, name, &mut meth) == 1;
        if meth.is_null() {
            return None;
        }
        if cpython::METHOD_CACHE && unbound {
            remember_method(site, obj, name, meth);
        }
        Some(Found { meth, unbound })
    }
}

// ---------------------------------------------------------------------------------------
// Method lookups kept per call site
// ---------------------------------------------------------------------------------------

/// A method a site's lookup found on a type: `type(obj).name` is the unbound `meth` (a
/// function or method descriptor, so the call passes `obj` first), and the instance did
/// not shadow it for the reason `guard` records.
#[derive(Clone, Copy)]
struct MethodHit {
    /// Borrowed, compared only: with `version`, it names one unmodified type (a version
    /// tag is never given twice, so a new type at a freed one's address cannot match).
    tp: *mut ffi::PyTypeObject,
    version: u32,
    /// Owned: the attribute's name (a reference, so its address is not reused).
    name: *mut ffi::PyObject,
    /// Borrowed: held by a dict on the type's MRO, which cannot change without changing
    /// the type's version.
    meth: *mut ffi::PyObject,
    guard: cpython::NoShadow,
}

/// The method lookups of call sites, direct-mapped by the site-id object's address (a
/// different site in the same slot just misses: an entry is right for any site, as it
/// depends only on the type, the name and the instance). What the interpreter's own
/// `LOAD_METHOD` specialisation does, which cannot see through the call-site target: the
/// lookup (type MRO, instance attributes) costs more than the rest of a reported call's
/// selection. Only 3.11 uses it ([`cpython::METHOD_CACHE`]).
struct MethodCache([Option<MethodHit>; METHOD_SLOTS]);
// SAFETY: only touched with the GIL held (GilCell), as the cache holding it.
unsafe impl Send for MethodHit {}
// A fixed array: a lookup is an index, no length check.
static METHODS: GilCell<MethodCache> = GilCell::new(MethodCache([None; METHOD_SLOTS]));
const METHOD_SLOTS: usize = 256;

#[inline(always)]
fn method_slot(site: *mut ffi::PyObject) -> usize {
    (site as usize >> 4) % METHOD_SLOTS
}

impl MethodCache {
    /// The unbound method `obj.name` finds, if this slot remembers it for `type(obj)` as
    /// it is now and `obj` does not shadow it; borrowed.
    ///
    /// # Safety
    /// The GIL is held; `obj` and `name` are live.
    #[inline(always)]
    unsafe fn hit(
        &self,
        site: *mut ffi::PyObject,
        obj: *mut ffi::PyObject,
        name: *mut ffi::PyObject,
    ) -> Option<*mut ffi::PyObject> {
        let hit = self.0[method_slot(site)]?;
        unsafe {
            let tp = ffi::Py_TYPE(obj);
            (hit.tp == tp
                && hit.name == name
                && hit.version == cpython::type_version(tp)
                && cpython::still_no_shadow(obj, hit.guard))
            .then_some(hit.meth)
        }
    }
}

/// `_PyObject_GetMethod(obj, name)` just gave the unbound `meth`: remember it for `site`
/// when the type has a version and the instance's reason for not shadowing it holds for
/// other instances.
///
/// # Safety
/// The GIL is held; `obj`, `name` and `meth` are live, `meth` found as said.
#[cold]
#[inline(never)]
unsafe fn remember_method(
    site: *mut ffi::PyObject,
    obj: *mut ffi::PyObject,
    name: *mut ffi::PyObject,
    meth: *mut ffi::PyObject,
) {
    unsafe {
        let tp = ffi::Py_TYPE(obj);
        let version = cpython::type_version(tp);
        if version == 0 || ffi::PyUnicode_CheckExact(name) == 0 {
            return;
        }
        let Some(guard) = cpython::no_shadow(obj, name) else {
            return;
        };
        let cache = &mut METHODS.get_mut(Python::assume_attached()).0;
        ffi::Py_INCREF(name);
        let old = cache[method_slot(site)].replace(MethodHit {
            tp,
            version,
            name,
            meth,
            guard,
        });
        if let Some(old) = old {
            ffi::Py_DECREF(old.name);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The proxy
// ---------------------------------------------------------------------------------------

#[repr(C)]
struct Proxy {
    ob_base: ffi::PyObject,
    vectorcall: Option<unwind::Vectorcall>,
    /// Owned: the site id, an int constant of the rewritten code.
    site: *mut ffi::PyObject,
    /// Owned: what is called; NULL for a method target until its attribute is looked up.
    callee: *mut ffi::PyObject,
    /// Owned: for a method call site, the object `callee` (then an unbound function or
    /// method descriptor) is called with as first argument; NULL otherwise.
    bound_self: *mut ffi::PyObject,
}

static PROXY_TYPE: OnceLock<TypePtr> = OnceLock::new();

/// Freed proxies kept for reuse: every listened call makes one. Owned: memory from
/// `PyObject_Malloc` holding a dead proxy whose type and `vectorcall` are still set, and
/// which still holds its reference to the (heap) type, so that reuse only has to give it
/// a reference count (`_Py_NewReference`) and its three fields.
struct FreeList(Vec<*mut Proxy>);
// SAFETY: only touched with the GIL held (GilCell).
unsafe impl Send for FreeList {}
static FREE: GilCell<FreeList> = GilCell::new(FreeList(Vec::new()));
const FREE_MAX: usize = 256;

fn proxy_type(py: Python<'_>) -> PyResult<*mut ffi::PyTypeObject> {
    if let Some(t) = PROXY_TYPE.get() {
        return Ok(t.0);
    }
    let getset = Box::leak(Box::new([
        getset(c"__qualname__", qualname_get),
        getset(c"__name__", name_get),
        getset(c"__module__", module_get),
        getset(c"__wrapped__", wrapped_get),
        ffi::PyGetSetDef::default(),
    ]));
    let t = vectorcall_type(
        py,
        c"recompyle._core.CallProxy",
        std::mem::size_of::<Proxy>(),
        std::mem::offset_of!(Proxy, vectorcall),
        &[
            slot(ffi::Py_tp_dealloc, proxy_dealloc as *mut c_void),
            slot(ffi::Py_tp_getattro, proxy_getattro as *mut c_void),
            slot(ffi::Py_tp_getset, getset.as_mut_ptr().cast()),
            slot(ffi::Py_tp_str, proxy_str as *mut c_void),
            slot(ffi::Py_tp_repr, proxy_repr as *mut c_void),
        ],
    )?;
    let _ = PROXY_TYPE.set(TypePtr(t));
    Ok(t)
}

/// A proxy holding `site` (borrowed; a reference is taken), `callee` and `bound_self`
/// (owned references, either may be NULL; both are released on failure). Inline: every
/// listened call site makes one, nearly always from the free list.
///
/// # Safety
/// The GIL is held; `site` is a live object (the proxy takes a reference); `callee` and
/// `bound_self` are owned references or NULL, taken over (released on failure).
#[inline(always)]
unsafe fn new_proxy(
    site: *mut ffi::PyObject,
    callee: *mut ffi::PyObject,
    bound_self: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        let py = Python::assume_attached();
        let Some(p) = FREE.get_mut(py).0.pop() else {
            return allocate_proxy(site, callee, bound_self);
        };
        // Type, its reference and `vectorcall` kept from its last life (see `FreeList`).
        cpython::_Py_NewReference(p.cast());
        ffi::Py_INCREF(site);
        (*p).site = site;
        (*p).callee = callee;
        (*p).bound_self = bound_self;
        p.cast()
    }
}

/// [`new_proxy`] with an empty free list: new memory.
///
/// # Safety
/// As [`new_proxy`].
#[cold]
#[inline(never)]
unsafe fn allocate_proxy(
    site: *mut ffi::PyObject,
    callee: *mut ffi::PyObject,
    bound_self: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        let release = || {
            for obj in [callee, bound_self] {
                if !obj.is_null() {
                    ffi::Py_DECREF(obj);
                }
            }
        };
        let Some(tp) = PROXY_TYPE.get() else {
            release();
            return type_error(c"recompyle: proxy type missing");
        };
        let p = ffi::PyObject_Malloc(std::mem::size_of::<Proxy>()).cast::<Proxy>();
        if p.is_null() {
            release();
            return ffi::PyErr_NoMemory();
        }
        ffi::PyObject_Init(p.cast(), tp.0); // takes a reference to the type
        (*p).vectorcall = Some(proxy_call);
        ffi::Py_INCREF(site);
        (*p).site = site;
        (*p).callee = callee;
        (*p).bound_self = bound_self;
        p.cast()
    }
}

/// # Safety
/// CPython calls it once, with the GIL held, when the last reference to `obj`, a
/// `CallProxy`, is gone.
unsafe extern "C-unwind" fn proxy_dealloc(obj: *mut ffi::PyObject) {
    unsafe {
        let p = obj.cast::<Proxy>();
        let tp = ffi::Py_TYPE(obj);
        for field in [&mut (*p).callee, &mut (*p).site, &mut (*p).bound_self] {
            let obj = std::mem::replace(field, null_mut());
            if !obj.is_null() {
                ffi::Py_DECREF(obj);
            }
        }
        let py = Python::assume_attached();
        let free = &mut FREE.get_mut(py).0;
        if free.len() < FREE_MAX {
            free.push(p); // keeps its reference to the type (see `FreeList`)
        } else {
            ffi::PyObject_Free(obj.cast());
            ffi::Py_DECREF(tp.cast());
        }
    }
}

/// What a proxy stands for: its callee, or for a method target the object.
///
/// # Safety
/// `obj` is a live `CallProxy`; the GIL is held.
unsafe fn shown(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    unsafe {
        let p = obj.cast::<Proxy>();
        if (*p).callee.is_null() {
            (*p).bound_self
        } else {
            (*p).callee
        }
    }
}

/// # Safety
/// `obj` is a live `CallProxy`; the GIL is held.
unsafe fn forward_attr(obj: *mut ffi::PyObject, name: &CStr) -> *mut ffi::PyObject {
    unsafe { ffi::PyObject_GetAttrString(shown(obj), name.as_ptr()) }
}

// CPython words call errors with the callee's `__qualname__` and `__module__`
// (`_PyObject_FunctionStr`), falling back to `str()`: the proxy answers with the callee's.
/// # Safety
/// CPython calls it with the GIL held and `obj` a live `CallProxy`; the other arguments are
/// as the slot's contract says.
unsafe extern "C-unwind" fn qualname_get(
    obj: *mut ffi::PyObject,
    _: *mut c_void,
) -> *mut ffi::PyObject {
    unsafe { forward_attr(obj, c"__qualname__") }
}
/// # Safety
/// CPython calls it with the GIL held and `obj` a live `CallProxy`; the other arguments are
/// as the slot's contract says.
unsafe extern "C-unwind" fn name_get(
    obj: *mut ffi::PyObject,
    _: *mut c_void,
) -> *mut ffi::PyObject {
    unsafe { forward_attr(obj, c"__name__") }
}
/// # Safety
/// CPython calls it with the GIL held and `obj` a live `CallProxy`; the other arguments are
/// as the slot's contract says.
unsafe extern "C-unwind" fn module_get(
    obj: *mut ffi::PyObject,
    _: *mut c_void,
) -> *mut ffi::PyObject {
    unsafe { forward_attr(obj, c"__module__") }
}
/// # Safety
/// CPython calls it with the GIL held and `obj` a live `CallProxy`; the other arguments are
/// as the slot's contract says.
unsafe extern "C-unwind" fn wrapped_get(
    obj: *mut ffi::PyObject,
    _: *mut c_void,
) -> *mut ffi::PyObject {
    unsafe {
        let callee = shown(obj);
        ffi::Py_INCREF(callee);
        callee
    }
}
/// # Safety
/// CPython calls it with the GIL held and `obj` a live `CallProxy`; the other arguments are
/// as the slot's contract says.
unsafe extern "C-unwind" fn proxy_str(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    unsafe { ffi::PyObject_Str(shown(obj)) }
}
/// # Safety
/// CPython calls it with the GIL held and `obj` a live `CallProxy`; the other arguments are
/// as the slot's contract says.
unsafe extern "C-unwind" fn proxy_repr(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    unsafe { ffi::PyObject_Repr(shown(obj)) }
}

/// # Safety
/// CPython calls it with the GIL held, `obj` a live `CallProxy` and a valid vector call.
unsafe extern "C-unwind" fn proxy_call(
    obj: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        let p = obj.cast::<Proxy>();
        let callee = (*p).callee;
        if callee.is_null() {
            return type_error(c"recompyle: a method target is not callable");
        }
        let bound_self = (*p).bound_self;
        let site = (*p).site;
        let _depth = REPORTED_CALLS.enter(Python::assume_attached());
        report(callee, bound_self, site, args, nargsf, kwnames)
    }
}

/// # Safety
/// The GIL is held; `callee` and `site` are live objects, `bound_self` is live or NULL, and
/// `args`/`nargsf`/`kwnames` are the call's valid vector call.
#[inline(always)]
unsafe fn report(
    callee: *mut ffi::PyObject,
    bound_self: *mut ffi::PyObject,
    site: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        let active = ACTIVE.load(Ordering::Relaxed);
        if active == 0 {
            return forward(callee, bound_self, args, nargsf, kwnames);
        }
        // SAFETY: vectorcall is only ever made with the GIL held.
        let py = Python::assume_attached();
        if active == PROFILING | TREE {
            let Some(entry) = profiler::enter(py, site, callee) else {
                return forward(callee, bound_self, args, nargsf, kwnames);
            };
            let res = forward(callee, bound_self, args, nargsf, kwnames);
            return profiler::leave_result(py, entry, res);
        }
        if active == PROFILING {
            let t0 = clock::ticks();
            let res = forward(callee, bound_self, args, nargsf, kwnames);
            return profiler::record_obj_result(py, site, t0, res);
        }
        let Some(site) = sites::id_of(site) else {
            return null_mut();
        };
        with_handlers(active, site, callee, bound_self, args, nargsf, kwnames)
    }
}

/// Call `callee(*args)`, or `callee(bound_self, *args)` when `bound_self` is set, as
/// LOAD_METHOD's call would: without making a bound method.
///
/// # Safety
/// The GIL is held; `callee` is live, `bound_self` live or NULL, and
/// `args`/`nargsf`/`kwnames` are a valid vector call (`args[-1]` writable when `nargsf` has
/// `PY_VECTORCALL_ARGUMENTS_OFFSET`).
#[inline(always)]
unsafe fn forward(
    callee: *mut ffi::PyObject,
    bound_self: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        if bound_self.is_null() {
            return unwind::vectorcall(callee, args, nargsf, kwnames);
        }
        // The caller may let us borrow args[-1] for the duration of the call.
        call_prepended(
            callee,
            bound_self,
            args,
            ffi::PyVectorcall_NARGS(nargsf) as usize,
            kwnames,
            nargsf & ffi::PY_VECTORCALL_ARGUMENTS_OFFSET != 0,
        )
    }
}

/// # Safety
/// As [`forward`]; `site` is a registered or unregistered site id.
#[inline(never)]
unsafe fn with_handlers(
    active: u8,
    site: u64,
    callee: *mut ffi::PyObject,
    bound_self: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        // SAFETY: only called from a vectorcall, with the GIL held.
        let py = Python::assume_attached();
        let profiling = active & PROFILING != 0;
        let registered = if active & HANDLERS != 0 && !listeners::in_handler() {
            handlers::snapshot(py)
        } else {
            None
        };
        // Handlers whose filter passes this call; none: the call is made as without handlers.
        let wanted = match &registered {
            Some(r) => handlers::wanted(py, r, site, callee),
            None => handlers::Wanted::NONE,
        };
        let (Some(registered), true) = (registered, wanted.any()) else {
            // A handler is running on this thread: its own calls are neither reported nor timed.
            if listeners::in_handler() || !profiling {
                return forward(callee, bound_self, args, nargsf, kwnames);
            }
            let timing = Timing::start(py, active, site, callee);
            let res = forward(callee, bound_self, args, nargsf, kwnames);
            return timing.end_result(py, site, res);
        };
        let registered = &registered;
        let npos = ffi::PyVectorcall_NARGS(nargsf) as usize;
        let event = match CallEvent::acquire(py, site, callee, bound_self, args, npos, kwnames) {
            Ok(e) => e,
            Err(err) => {
                // Building the event failed (out of memory): report, and still make the call.
                err.write_unraisable(py, None);
                return forward(callee, bound_self, args, nargsf, kwnames);
            }
        };
        if let Err(err) = handlers::run(py, registered, &event, false, wanted) {
            // KeyboardInterrupt, SystemExit...: the program gets it at the call, not made.
            CallEvent::release(event);
            err.restore(py);
            return null_mut();
        }
        let timing = Timing::start(py, active, site, callee);
        let res = forward(callee, bound_self, args, nargsf, kwnames);
        if !res.is_null() && awaited::awaitable_if(res, || timing.at_await(py, site)) {
            return awaited_call(py, registered, event, wanted, res, timing, site);
        }
        timing.end(py, site, res.is_null());
        call_over(py, registered, event, wanted, res)
    }
}

/// The profiler's part of a call on the handler path.
enum Timing {
    /// No profiler runs.
    Off,
    /// The flat-only profiler: the call's start tick.
    Flat(u64),
    /// The tree's entry of the call.
    Tree(profiler::Entry),
}

impl Timing {
    #[inline(always)]
    fn start(py: Python<'_>, active: u8, site: u64, callee: *mut ffi::PyObject) -> Timing {
        if active & PROFILING == 0 {
            Timing::Off
        } else if active & TREE != 0 {
            Timing::Tree(profiler::enter_id(py, site, callee))
        } else {
            Timing::Flat(clock::ticks())
        }
    }

    /// The call is over.
    #[inline(always)]
    fn end(self, py: Python<'_>, site: u64, raised: bool) {
        match self {
            Timing::Off => {}
            Timing::Flat(t0) => {
                profiler::record(py, site, clock::ticks().wrapping_sub(t0), raised);
            }
            Timing::Tree(entry) => profiler::leave(py, entry, raised),
        }
    }

    /// The call returned `res` (NULL: raised) to a caller no handler listens for: as
    /// without handlers, the profiler (tree or flat-only) times an awaited call until its
    /// result is ready.
    ///
    /// # Safety
    /// The GIL is held; `res` is the call's new reference (taken over) or NULL.
    unsafe fn end_result(
        self,
        py: Python<'_>,
        site: u64,
        res: *mut ffi::PyObject,
    ) -> *mut ffi::PyObject {
        match self {
            // SAFETY: as this function's contract.
            Timing::Tree(entry) => unsafe { profiler::leave_result(py, entry, res) },
            // SAFETY: as this function's contract; `res` is live when not NULL.
            Timing::Flat(t0)
                if !res.is_null()
                    && unsafe { awaited::awaitable(res) }
                    && profiler::site_awaited(py, site) =>
            {
                let pending = profiler::pend_flat(py, site, t0);
                // SAFETY: no error is set (the call returned), `res` is awaitable and its
                // reference is handed over.
                unsafe { awaited::wrap(py, res, Some(pending), None) }
            }
            other => {
                other.end(py, site, res.is_null());
                res
            }
        }
    }

    /// An awaited call returned its awaitable: the profiler's record waits for the result
    /// (as without handlers).
    fn pend(self, py: Python<'_>, site: u64) -> Option<profiler::Pending> {
        match self {
            Timing::Off => None,
            Timing::Flat(t0) => Some(profiler::pend_flat(py, site, t0)),
            Timing::Tree(entry) => profiler::pend(py, entry),
        }
    }

    /// Whether the call is the operand of `await` (the tree's entry knows; else the site
    /// table, asked only for calls that returned a generator or something awaitable).
    fn at_await(&self, py: Python<'_>, site: u64) -> bool {
        match self {
            Timing::Tree(entry) => entry.awaited(),
            _ => awaited::site_is_awaited(py, site),
        }
    }
}

/// An awaited call returned `res` (a new reference to an awaitable): the profiler's record
/// and the after-handlers wait for the `await`'s outcome, through the awaitable returned
/// instead (`profiler::awaited`); an event no one can see after the call ends now.
///
/// # Safety
/// The GIL is held, no error is set, and `res` is a new reference to an awaitable object,
/// taken over.
#[cold]
#[inline(never)]
unsafe fn awaited_call(
    py: Python<'_>,
    registered: &Bound<'_, PyTuple>,
    event: Bound<'_, CallEvent>,
    wanted: handlers::Wanted,
    res: *mut ffi::PyObject,
    timing: Timing,
    site: u64,
) -> *mut ffi::PyObject {
    unsafe {
        let pending = timing.pend(py, site);
        match After::defer(registered, event, wanted) {
            Ok(after) => awaited::wrap(py, res, pending, Some(after)),
            Err(event) => {
                let res = call_over(py, registered, event, wanted, res);
                match pending {
                    Some(pending) if !res.is_null() => awaited::wrap(py, res, Some(pending), None),
                    _ => res,
                }
            }
        }
    }
}

/// The call returned `res` (NULL: it raised): the event gets the outcome, the
/// after-handlers run; returns what the caller gets (an after-handler's `BaseException`
/// instead of the outcome).
///
/// # Safety
/// The GIL is held; `res` is a new reference, taken over, or NULL with the error set.
unsafe fn call_over(
    py: Python<'_>,
    registered: &Bound<'_, PyTuple>,
    event: Bound<'_, CallEvent>,
    wanted: handlers::Wanted,
    res: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        if res.is_null() {
            let Some(err) = PyErr::take(py) else {
                CallEvent::release(event);
                return res;
            };
            let exception = err.value(py).clone().into_any();
            match handlers::finish_call(py, registered, event, Err(exception), wanted) {
                Ok(()) => err.restore(py),
                // An `after` handler's KeyboardInterrupt or SystemExit replaces the outcome.
                Err(escaped) => escaped.restore(py),
            }
            return null_mut();
        }
        let result = Bound::from_borrowed_ptr(py, res);
        match handlers::finish_call(py, registered, event, Ok(Some(result)), wanted) {
            Ok(()) => res,
            Err(escaped) => {
                ffi::Py_DECREF(res);
                escaped.restore(py);
                null_mut()
            }
        }
    }
}
