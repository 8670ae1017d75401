"""Tracked module globals: every global a module's own code reads, writes or deletes is an
event for the handlers' ``globals`` callback (``recompyle.add_handler(globals=...)``).

Opt in per module, with the same glob patterns as ``RECOMPYLE_MODULES``:
``RECOMPYLE_TRACK_GLOBALS=pkg.*``, ``python -m recompyle run --track-globals 'pkg.*'``, or
``track_globals("pkg.*")`` before the modules are imported. Only modules recompyle's loader
creates can be tracked (the namespace must be swapped before any code sees it), so tracked
modules are instrumented as well.

A tracked module is a real ``types.ModuleType`` whose ``__dict__`` is a native ``dict``
subclass (``recompyle._core.TrackedGlobals``, see
``crates/recompyle_python/src/tracked_globals.rs``); everything else about the module is
unchanged. Modules not tracked keep exact dicts and pay
nothing.

Only modules that are loaded already at start-up are imported here.
"""

from __future__ import annotations

from recompyle import _core
from recompyle.finder import install, tracked_patterns

# A constant of our own rather than `typing.TYPE_CHECKING`: type checkers treat any name
# TYPE_CHECKING as true, and `typing` is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing only
    from types import ModuleType

__all__ = ["is_tracked", "track_globals", "tracked_patterns"]


def track_globals(patterns: str) -> None:
    """Track the globals of modules matching ``patterns`` (comma-separated globs over
    dotted names) from their next import on; they are instrumented too. Modules imported
    already are named in a ``RecompyleWarning``."""
    install("", track_globals=patterns)


def is_tracked(module: ModuleType) -> bool:
    """Whether ``module``'s globals are tracked."""
    return _core.is_tracked_namespace(getattr(module, "__dict__", None))
