"""The finder stage: which imports get the instrumenting loader.

Only modules that are loaded already at start-up are imported here (see
``recompyle/__init__.py`` for why).

A ``sys.meta_path`` finder that never locates modules itself: for a selected name it asks the
finders after it (so editable installs, namespace packages and other hooks keep working) and,
when the spec they return is a plain ``SourceFileLoader`` on a ``.py`` file, instruments the
module and swaps in ``RecompyleLoader`` holding the code; a module that cannot be
instrumented (it does not compile, say) keeps the plain loader, which raises CPython's own
error exactly as without recompyle. Any other loader (extensions, zip imports, custom
subclasses) is left alone, as is every module not selected.

Selection is by glob patterns over dotted names, comma-separated (``recompyle._core``
documents the syntax): ``pkg.*`` is ``pkg`` and all its submodules, ``pkg`` only ``pkg``, ``*``
everything but recompyle and the import machinery. A second set of patterns selects modules
whose globals are tracked (``recompyle.tracking``): those are instrumented too, since only
modules this loader creates can get a tracked namespace.
"""

import sys
from _thread import _local
from importlib.machinery import ModuleSpec, SourceFileLoader

from recompyle import _core
from recompyle.loader import RecompyleLoader, RecompyleWarning

__all__ = [
    "RecompyleFinder",
    "already_imported",
    "install",
    "installed_patterns",
    "tracked_patterns",
    "uninstall",
]


class RecompyleFinder:
    """Hands selected ``.py`` modules to ``RecompyleLoader``."""

    def __init__(self, patterns: str, track_globals: str = "") -> None:
        self.matcher = _core.ModuleMatcher(patterns)
        self.track_matcher = _core.ModuleMatcher(track_globals)
        self._local = _local()

    def __repr__(self) -> str:
        tracked = ",".join(self.track_matcher.patterns)
        extra = f", track_globals={tracked!r}" if tracked else ""
        return f"RecompyleFinder({','.join(self.matcher.patterns)!r}{extra})"

    def find_spec(self, fullname, path=None, target=None):  # type: ignore[override]
        tracked = self.track_matcher.matches(fullname)
        if not tracked and not self.matcher.matches(fullname):
            return None
        # A finder after us may import (and so come back here) while we ask it.
        busy = getattr(self._local, "busy", None)
        if busy is None:
            busy = self._local.busy = set()
        if fullname in busy:
            return None
        busy.add(fullname)
        try:
            spec = self._spec_from_later_finders(fullname, path, target)
        finally:
            busy.discard(fullname)
        if spec is not None and _instrumentable(spec):
            loader = RecompyleLoader(fullname, spec.origin)
            loader.track_globals = tracked
            try:
                prepared = loader.prepare()
            except OSError:
                prepared = False  # unreadable: the plain loader reports it as usual
            if prepared:
                spec.loader = loader
        return spec

    def _spec_from_later_finders(self, fullname, path, target) -> "ModuleSpec | None":
        seen_self = False
        for finder in list(sys.meta_path):
            if not seen_self:
                seen_self = finder is self
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def invalidate_caches(self) -> None:
        pass


def _instrumentable(spec: ModuleSpec) -> bool:
    return (
        type(spec.loader) is SourceFileLoader
        and isinstance(spec.origin, str)
        and spec.origin.endswith(".py")
    )


def _finder() -> "RecompyleFinder | None":
    for finder in sys.meta_path:
        if isinstance(finder, RecompyleFinder):
            return finder
    return None


def install(
    patterns: str = "", *, warn_imported: bool = True, track_globals: str = ""
) -> "RecompyleFinder":
    """Instrument modules matching ``patterns`` from their next import on, and track the
    globals of those matching ``track_globals`` (which are instrumented as well).

    Idempotent: installing again adds patterns to the installed finder. Modules already
    imported cannot be instrumented; with ``warn_imported`` each selected one is named in a
    ``RecompyleWarning``.
    """
    finder = _finder()
    if finder is None:
        finder = RecompyleFinder(patterns, track_globals)
        sys.meta_path.insert(0, finder)
    else:
        merged = ",".join([*finder.matcher.patterns, patterns])
        finder.matcher = _core.ModuleMatcher(merged)
        if track_globals:
            tracked = ",".join([*finder.track_matcher.patterns, track_globals])
            finder.track_matcher = _core.ModuleMatcher(tracked)
    if warn_imported:
        already = already_imported(patterns, track_globals)
        if already:
            import warnings

            warnings.warn(
                "recompyle: already imported before instrumentation was installed, so not "
                f"instrumented: {', '.join(already)}",
                RecompyleWarning,
                stacklevel=2,
            )
    return finder


def already_imported(patterns: str, track_globals: str = "") -> "list[str]":
    """The modules these patterns select that are imported already, and so cannot be
    instrumented (sorted). A bare ``*`` cannot mean the modules every start-up imports
    (warnings, codecs, what other ``.pth`` files load): only patterns that name modules
    count."""
    both = f"{patterns},{track_globals}"
    named = ",".join(p for p in both.split(",") if p.strip() not in ("*", "**"))
    if not named.strip(", "):
        return []
    fresh = _core.ModuleMatcher(named)
    return sorted(
        name
        for name, module in list(sys.modules.items())
        if fresh.matches(name)
        and isinstance(getattr(module, "__spec__", None), ModuleSpec)
        and _instrumentable(module.__spec__)
    )


def uninstall() -> None:
    """Remove the finder; modules already instrumented stay so."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, RecompyleFinder)]


def installed_patterns() -> "list[str]":
    """The patterns selecting modules now (empty when not installed)."""
    finder = _finder()
    return list(finder.matcher.patterns) if finder else []


def tracked_patterns() -> "list[str]":
    """The patterns selecting modules whose globals are tracked (empty when none)."""
    finder = _finder()
    return list(finder.track_matcher.patterns) if finder else []
