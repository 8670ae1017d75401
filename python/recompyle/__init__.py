"""recompyle: instrument any Python program without editing it.

Selected modules are rewritten at import time so that every call site goes through a native
selector, which reports *before* and *after* events to handlers and times calls for the
flat profiler. See ``recompyle.finder`` for how modules are selected and ARCHITECTURE.md for
the path of an import and of a call.

Attributes are imported on first use: the start-up hook imports this package in every
interpreter that sets ``RECOMPYLE_MODULES``, and every module it imported eagerly would be
one the user could no longer instrument.
"""

__version__ = "0.1.0"

_EXPORTS = {
    "CallEvent": "recompyle._core",
    "GlobalEvent": "recompyle._core",
    "track_globals": "recompyle.tracked_globals",
    "tracked_patterns": "recompyle.tracked_globals",
    "is_tracked": "recompyle.tracked_globals",
    "Tracer": "recompyle.deps",
    "track": "recompyle.deps",
    "DependencyGraph": "recompyle.deps",
    "Handler": "recompyle._core",
    "HandlerWarning": "recompyle._core",
    "add_handler": "recompyle.handlers",
    "handler": "recompyle.handlers",
    "remove_handler": "recompyle.handlers",
    "install": "recompyle.finder",
    "installed_patterns": "recompyle.finder",
    "uninstall": "recompyle.finder",
    "RecompyleWarning": "recompyle.loader",
    "instrument_source": "recompyle.loader",
    "Profiler": "recompyle.profiler",
    "CallLog": "recompyle.call_log",
    "SiteStats": "recompyle.profiler",
    "wrap_calls": "recompyle.decorators",
    "flat_profile": "recompyle.decorators",
    "rewrite_function": "recompyle.decorators",
    "RecompyleBaseTransformer": "recompyle.decorators",
    "RewriteError": "recompyle.function_rewrite",
    "default_below_log": "recompyle.decorators",
    "default_above_log": "recompyle.decorators",
    # The module itself, which is callable: importing the submodule makes the package's
    # attribute the module, so the decorator and the module must be one object.
    "byref": "recompyle.byref",
    "ByRefError": "recompyle.byref",
}

# Submodules a reader reaches as ``recompyle.deps.hash_value`` after a plain
# ``import recompyle``: imported on first attribute access, like the names above.
_SUBMODULES = frozenset(
    (
        "decorators",
        "deps",
        "finder",
        "handlers",
        "loader",
        "profiler",
        "report",
        "tracked_globals",
        "tracking",
    )
)

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str):
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"recompyle.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'recompyle' has no attribute {name!r}")
    import importlib

    value = importlib.import_module(module)
    if name != "byref":
        value = getattr(value, name)
    globals()[name] = value
    return value


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext recompyle``: the ``%%recompyle`` magics (``recompyle.ipython``; the
    package itself does not need IPython)."""
    from recompyle.ipython import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    from recompyle.ipython import unload_ipython_extension as unload

    unload(ipython)


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS) | _SUBMODULES)
