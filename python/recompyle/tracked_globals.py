"""Tracked module globals: every global a module's own code reads, writes or deletes is an
event for the handlers' ``globals`` callback (``recompyle.add_handler(globals=...)``).

Opt in per module, with the same glob patterns as ``RECOMPYLE_MODULES``:
``RECOMPYLE_TRACK_GLOBALS=pkg.*``, ``python -m recompyle run --track-globals 'pkg.*'``, or
``track_globals("pkg.*")`` before the modules are imported. Only modules recompyle's loader
creates can be tracked (the namespace must be swapped before any code sees it), so tracked
modules are instrumented as well.

A tracked module is a real ``types.ModuleType`` whose ``__dict__`` is a native ``dict``
subclass (``recompyle._core.TrackedGlobals``, see ``crates/recompyle_python/src/globals.rs``);
everything else about the module is unchanged. Modules not tracked keep exact dicts and pay
nothing.

Only modules that are loaded already at start-up are imported here.
"""

from recompyle import _core
from recompyle.finder import install, tracked_patterns

if False:  # typing only
    from types import CodeType, ModuleType

__all__ = ["code_qualname", "is_tracked", "track_globals", "tracked_patterns"]

# Class bodies are neither optimized nor given new locals; function code always is.
_CO_OPTIMIZED = 0x1
_CO_NEWLOCALS = 0x2

_QUALNAMES: "dict[CodeType, str]" = {}


def track_globals(patterns: str) -> None:
    """Track the globals of modules matching ``patterns`` (comma-separated globs over
    dotted names) from their next import on; they are instrumented too. Modules imported
    already are named in a ``RecompyleWarning``."""
    install("", track_globals=patterns)


def is_tracked(module: "ModuleType") -> bool:
    """Whether ``module``'s globals are tracked."""
    return _core.is_tracked_namespace(getattr(module, "__dict__", None))


def remember_qualnames(code: "CodeType") -> None:
    """Record the qualified name of every code object nested in module code ``code`` (for
    interpreters before 3.11, whose code objects lack ``co_qualname``)."""
    _walk(code, "")


def _walk(code: "CodeType", prefix: str) -> None:
    code_type = type(code)
    for const in code.co_consts:
        if type(const) is not code_type:
            continue
        qualname = f"{prefix}{const.co_name}"
        _QUALNAMES[const] = qualname
        is_function = const.co_flags & (_CO_OPTIMIZED | _CO_NEWLOCALS) == (
            _CO_OPTIMIZED | _CO_NEWLOCALS
        )
        child = f"{qualname}.<locals>." if is_function else f"{qualname}."
        _walk(const, child)


def code_qualname(code: "CodeType") -> str:
    """The qualified name of the function (or class body, or ``<module>``) ``code`` runs."""
    qualname = getattr(code, "co_qualname", None)
    if qualname is not None:
        return qualname
    known = _QUALNAMES.get(code)
    if known is not None:
        return known
    return code.co_name
