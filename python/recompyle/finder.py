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
whose globals are tracked (``recompyle.tracked_globals``): those are instrumented too, since only
modules this loader creates can get a tracked namespace.
"""

import sys
from _thread import _local
from importlib.machinery import ModuleSpec, SourceFileLoader

from recompyle import _core
from recompyle.loader import RecompyleLoader, warn_at_user

__all__ = [
    "RecompyleFinder",
    "already_imported",
    "install",
    "installed_patterns",
    "tracked_patterns",
    "uninstall",
    "matched_elsewhere",
    "unmatched_patterns",
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

    def find_spec(self, fullname, path=None, target=None):
        tracked = self.track_matcher.matches(fullname)
        if not tracked and not self.matcher.matches(fullname):
            return None
        if _unmatched:
            _matched(fullname)
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
            # Computed once (the spec keeps it) for importlib's `__cached__` and our file.
            loader.plain_cache = spec.cached
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


def _instrumentable(spec: object) -> bool:
    """Whether ``spec`` (a module's ``__spec__``, whatever it holds) loads a ``.py`` file with
    the standard loader, the only modules recompyle rewrites."""
    return (
        isinstance(spec, ModuleSpec)
        and type(spec.loader) is SourceFileLoader
        and isinstance(spec.origin, str)
        and spec.origin.endswith(".py")
    )


def _finder() -> "RecompyleFinder | None":
    for finder in sys.meta_path:
        if isinstance(finder, RecompyleFinder):
            return finder
    return None


# Each pattern given to install() that no imported module has matched yet, with its own
# matcher; named at exit, as coverage.py names a module that was never imported, so that a
# typo (`myap.*`) does not instrument nothing in silence.
_unmatched: "dict[str, _core.ModuleMatcher]" = {}
_unmatched_hook = False


def _matched(fullname: str) -> None:
    for pattern, matcher in list(_unmatched.items()):
        if matcher.matches(fullname):
            _unmatched.pop(pattern, None)  # another thread may have crossed it off


def _watch_patterns(patterns: str) -> None:
    """Remember the patterns of ``patterns`` that match no module imported so far."""
    global _unmatched_hook
    names = list(sys.modules)
    for pattern in (p.strip() for p in patterns.split(",")):
        if not pattern or pattern in ("*", "**") or pattern in _unmatched:
            continue
        matcher = _core.ModuleMatcher(pattern)
        if not any(matcher.matches(name) for name in names):
            _unmatched[pattern] = matcher
    if _unmatched and not _unmatched_hook:
        import atexit

        _unmatched_hook = True
        atexit.register(_report_unmatched_at_exit)


def unmatched_patterns() -> "list[str]":
    """The patterns given to ``install`` that no module imported so far has matched."""
    return list(_unmatched)


def matched_elsewhere(names: "list[str]") -> None:
    """Cross off the patterns these modules match: modules another process of the run
    imported (its part names them, ``recompyle.processes``), so that at exit only a pattern
    no process matched is named."""
    for name in names:
        if not _unmatched:
            return
        _matched(name)


def _report_unmatched_at_exit() -> None:
    """At exit: name each pattern that selected nothing (stderr, one line each)."""
    for pattern in _unmatched:
        sys.stderr.write(
            f"recompyle: no module matching {pattern!r} was imported, so it instrumented "
            "nothing (a typo in the pattern?)\n"
        )
    _unmatched.clear()


def install(
    patterns: str = "",
    *,
    warn_imported: bool = True,
    track_globals: str = "",
    report_unmatched: bool = True,
) -> "RecompyleFinder":
    """Instrument modules matching ``patterns`` from their next import on, and track the
    globals of those matching ``track_globals`` (which are instrumented as well).

    Idempotent: installing again adds patterns to the installed finder. Modules already
    imported cannot be instrumented; with ``warn_imported`` each selected one is named in a
    ``RecompyleWarning``, and so is ``__main__``, the running script, which was compiled
    before this call. With ``report_unmatched``, a pattern that no imported module matched
    is named on stderr at exit.
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
    # A bare `*` cannot mean the modules every start-up imports (warnings, codecs, what
    # other .pth files load): only patterns that name modules warn about them.
    both = f"{patterns},{track_globals}"
    named = ",".join(p for p in both.split(",") if p.strip() not in ("*", "**"))
    if report_unmatched:
        _watch_patterns(named)
    if warn_imported and named.strip(", "):
        if _core.ModuleMatcher(named).matches("__main__") and "__main__" in sys.modules:
            warn_at_user(
                "recompyle: __main__ is the running script, compiled before install(), so "
                "it is not instrumented and its calls are not reported; put the code in a "
                "module imported after install(), or run the script with "
                "`python -m recompyle run script.py`"
            )
        already = [name for name in already_imported(patterns, track_globals) if name != "__main__"]
        if already:
            warn_at_user(
                "recompyle: already imported before instrumentation was installed, so not "
                f"instrumented: {', '.join(already)}"
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
        if fresh.matches(name) and _instrumentable(getattr(module, "__spec__", None))
    )


def uninstall() -> None:
    """Remove the finder; modules already instrumented stay so."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, RecompyleFinder)]
    _unmatched.clear()


def installed_patterns() -> "list[str]":
    """The patterns selecting modules now (empty when not installed)."""
    finder = _finder()
    return list(finder.matcher.patterns) if finder else []


def tracked_patterns() -> "list[str]":
    """The patterns selecting modules whose globals are tracked (empty when none)."""
    finder = _finder()
    return list(finder.track_matcher.patterns) if finder else []
