"""The loader stage: source bytes of a selected module become instrumented code.

``RecompyleLoader`` is a ``SourceFileLoader`` in every respect (``get_source`` gives the
original text, so ``inspect``, ``linecache`` and tracebacks show the file as written;
``importlib.resources`` and ``reload`` work) except that compiling goes through
``instrument_source``, which asks the Rust transform for rewritten text, compiles it, gives
the code back its original columns and registers the call sites. Modules it loads (``prepare``,
``get_code``, ``source_to_code``) first look in recompyle's own bytecode cache
(``recompyle.cache``), and write it after a transform; the plain ``.pyc`` is never read nor
written, since it holds code as written.

Nothing here ever words a ``SyntaxError``: when our parser refuses a file, the plain loader
compiles the original bytes so CPython raises its own error, byte for byte, from importlib's
own frames and outside any ``except`` of ours; if CPython accepts what we refused, the module
runs uninstrumented with one warning (an error with ``RECOMPYLE_STRICT=1``). That holds for
any failure to instrument, not only a refusal: the compiler may run out of recursion or memory
on the rewritten text where the original compiles (long chains of calls nest deeper once
rewritten), and a bug of ours must never cost the program its module.

Paths are ``os.fsencode``/``os.fsdecode`` data: a ``str`` with surrogate escapes for a path
that is not UTF-8 goes to the native side as it is (pyo3 encodes it as ``os.fsencode`` does).
"""

import os
import sys
from importlib.machinery import SourceFileLoader

from recompyle import _core, cache

# A constant of our own rather than `typing.TYPE_CHECKING`: type checkers treat any name
# TYPE_CHECKING as true, and `typing` is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing only; `types` is not loaded at start-up on every version
    from collections.abc import Callable
    from types import CodeType, FrameType
    from typing import Optional

__all__ = ["RecompyleLoader", "RecompyleWarning", "instrument_source"]

_VERSION = sys.version_info[:2]
# A site-key clash between two files is astronomically rare; a few salts settle it.
_MAX_SALTS = 8


class RecompyleWarning(RuntimeWarning):
    """A module could not be instrumented and runs as written."""


#: The values ``RECOMPYLE_STRICT`` may take (README): on, off (unset is off).
STRICT_VALUES = ("0", "1")


def strict_setting_error() -> "str | None":
    """Why ``RECOMPYLE_STRICT`` is set wrongly, or None: only documented values are
    accepted, so ``RECOMPYLE_STRICT=yes`` is refused rather than read one way or the other."""
    value = os.environ.get("RECOMPYLE_STRICT", "").strip()
    if value in ("", *STRICT_VALUES):
        return None
    return f"RECOMPYLE_STRICT={value!r} is not one of {', '.join(STRICT_VALUES)}"


def _strict() -> bool:
    return os.environ.get("RECOMPYLE_STRICT", "").strip() == "1"


_HERE = os.path.dirname(os.path.abspath(__file__))


def _is_bootstrap(filename: str) -> bool:
    # What `warnings` skips when it counts a stack level.
    return "importlib" in filename and "_bootstrap" in filename


def warn_at_user(message: str, category: "type[Warning]" = RecompyleWarning) -> None:
    """``warnings.warn`` pointing at the first frame that is neither recompyle's nor the
    import machinery's: the user's ``import`` or ``install()`` line, not ``loader.py``."""
    import warnings

    frame: Optional[FrameType] = sys._getframe(1)
    level = 2  # 1 would be this function, 2 is its caller
    while frame is not None and os.path.dirname(frame.f_code.co_filename) == _HERE:
        frame = frame.f_back
        while frame is not None and _is_bootstrap(frame.f_code.co_filename):
            frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


def _warn_uninstrumented(path: str, module: str, reason: str) -> None:
    message = f"recompyle: {path} ({module}) runs uninstrumented: {reason}"
    if _strict():
        # RECOMPYLE_STRICT=1 (README): the error named there.
        raise RuntimeError(message)
    warn_at_user(message)


_finalization_ready = False


def _keep_selectors_through_finalization() -> None:
    """At exit CPython restores the builtins dict from a copy taken at start-up, before the
    last garbage collection; ``__del__`` methods and weakref callbacks of instrumented code
    that run then must still find the selectors. The copy is reachable only through the
    garbage collector, and finding it costs time in proportion to the heap, so it waits
    for exit: atexit callbacks run before the restore."""
    global _finalization_ready
    if _finalization_ready:
        return
    _finalization_ready = True
    import atexit

    atexit.register(_give_selectors_to_the_builtins_copy)


def _give_selectors_to_the_builtins_copy() -> None:
    """Find the start-up copy of the builtins by its ``__build_class__`` and add the
    selectors to it, with the listening flag ``True`` and the direct-call flag ``False``:
    whoever listens then, the selectors (which check for themselves) decide, so the restored
    builtins never hide a call.
    ``gc.get_referrers`` walks the heap in C: after the 38 modules of
    ``benches/bench_warm_import.py`` that is 3.5 million instructions, where a Python loop
    over ``gc.get_objects()`` took 17.5 million."""
    import builtins
    import gc

    live = builtins.__dict__
    marker = live["__build_class__"]
    names = (
        _core.SELECTOR_NAME,
        _core.METHOD_SELECTOR_NAME,
        _core.CALL_SELECTOR_NAME,
        _core.METHOD_LOOKUP_SELECTOR_NAME,
        _core.WRAP_SELECTOR_NAME,
        _core.AWAIT_SELECTOR_NAME,
        _core.WRITE_REPORTER_NAME,
        _core.CLASS_READ_REPORTER_NAME,
    )
    for obj in gc.get_referrers(marker):
        if type(obj) is dict and obj is not live and obj.get("__build_class__") is marker:
            for name in names:
                obj.setdefault(name, live[name])
            obj[_core.LISTENING_NAME] = True
            obj[_core.DIRECT_CALLS_NAME] = False


def _try_instrument(
    data: bytes,
    path: str,
    module: str,
    optimize: int,
    cached: bool = False,
    tracked: bool = False,
    stamp: "cache.Stamp | None" = None,
    probe: bool = True,
) -> "CodeType | str":
    """Instrumented code, or why there is none (the caller then compiles the original, so
    a file CPython rejects raises CPython's own error, outside any handler of ours).

    With ``cached``, the bytecode cache is read first and written after a transform; a
    cached module key that another file holds in this process counts as a miss, and the
    transform below salts its way to a free key. ``tracked``: the module's globals are
    tracked, so the code also reports what its namespace cannot see (``tracked_globals.rs``).
    ``stamp``: the file's, taken before ``data`` was read from it (see ``recompyle.cache``);
    ``probe=False``: the caller has just asked the cache, skip reading it again."""
    if cached and probe:
        code = cache.load(path, data, module, optimize, tracked)
        if code is not None:
            return _loaded(code, tracked)
    for salt in range(_MAX_SALTS):
        try:
            transformed = _core.transform(data, path, _VERSION, salt, track_globals=tracked)
        except _core.ParseError as exc:
            return f"parse failed ({exc})"
        except _core.InternalTransformError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 -- any failure leaves the module as written
            return f"transform failed ({type(exc).__name__}: {exc})"
        try:
            code = compile(transformed.source, path, "exec", dont_inherit=True, optimize=optimize)
            code = transformed.remap(code)
            registered = transformed.register(path, module)
        except Exception as exc:  # noqa: BLE001
            # An error only the compiler finds (e.g. `return` outside a function) is raised
            # from the original by the caller; RecursionError or MemoryError in CPython's
            # compiler on the longer rewritten text, or anything of ours, leaves the module
            # uninstrumented.
            return f"rewritten source did not compile ({type(exc).__name__}: {exc})"
        if registered:
            _keep_selectors_through_finalization()
            if cached:
                key, table = transformed.module_key, transformed.site_table
                cache.store(path, data, optimize, key, table, code, tracked, stamp)
            _remember_qualnames(code, tracked)
            return code
    return "no free site key"


def _loaded(code: "CodeType", tracked: bool) -> "CodeType":
    """Code from the cache, made ready as a transform's would be."""
    _keep_selectors_through_finalization()
    _remember_qualnames(code, tracked)
    return code


def _instrument_file(
    path: str,
    data_of: "Callable[[str], bytes]",
    module: str,
    tracked: bool,
    plain_cache: "str | None" = None,
) -> "tuple[CodeType | str, bytes | None]":
    """The file's instrumented code (or why there is none) and, when it had to be read, its
    bytes. A warm import stats the file and takes the cached code without reading the
    source, as CPython does with its timestamp pycs (``recompyle.cache``). ``plain_cache``:
    the plain ``.pyc``'s path if known (``cache.cache_path``'s ``plain``)."""
    code = cache.load_current(path, module, -1, tracked, plain_cache)
    if code is not None:
        return _loaded(code, tracked), None
    stamp = cache.stamp_of(path)  # before the read: a change in between fails the stamp
    data = data_of(path)
    return _try_instrument(data, path, module, -1, True, tracked, stamp, probe=False), data


def _remember_qualnames(code: "CodeType", tracked: bool) -> None:
    # Before 3.11 code objects have no co_qualname: the dependency graph names the code
    # that read a global from this table, built the way the compiler builds qualnames.
    if tracked and _VERSION < (3, 11):
        from recompyle.qualnames import remember_qualnames

        remember_qualnames(code)


def instrument_source(
    data: bytes,
    path: str,
    module: str = "__main__",
    optimize: int = -1,
    *,
    cached: bool = False,
    track_globals: bool = False,
) -> "CodeType":
    """Compile module source ``data`` (bytes, as read from ``path``) with every call
    site instrumented; a source CPython rejects raises CPython's own ``SyntaxError``.

    ``cached``: use recompyle's bytecode cache beside ``path`` (off by default: like
    ``compile``, this neither reads nor writes files unless asked; the loader asks).
    ``track_globals``: the code will run in a tracked namespace (``recompyle.tracked_globals``).

    ``data`` must be bytes (or a bytes-like object): the transform reads the coding
    declaration as CPython does for a file. A ``str`` is refused rather than compiled
    uninstrumented: ``compile`` ignores a ``str``'s coding line, so encoding it here could
    silently disagree with what the caller meant."""
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    elif not isinstance(data, bytes):
        raise TypeError(
            "recompyle.instrument_source() takes the source as bytes, as read from the file,"
            f" not {type(data).__name__}"
        )
    result = _try_instrument(data, path, module, optimize, cached, track_globals)
    if not isinstance(result, str):
        return result
    code = compile(data, path, "exec", dont_inherit=True, optimize=optimize)
    _warn_uninstrumented(path, module, result)
    return code


class RecompyleLoader(SourceFileLoader):
    """A ``SourceFileLoader`` whose code is instrumented.

    The finder calls ``prepare`` before handing the loader out: a module we cannot
    instrument never reaches this class, so its errors come from the plain loader with
    importlib's own frames. Instrumented code is never written under the plain ``.pyc``
    name, whoever calls ``get_code`` (importlib, ``runpy``, ``pkgutil``): it and
    ``source_to_code`` go through ``recompyle.cache`` and never ``_cache_bytecode``.
    """

    _prepared: "CodeType | None" = None
    #: The module's globals are tracked: ``create_module`` gives it a ``TrackedGlobals``
    #: namespace (set by the finder before ``prepare``).
    track_globals: bool = False
    #: The plain ``.pyc``'s path, the spec's ``cached`` (set by the finder before ``prepare``:
    #: importlib computes it for ``__cached__`` anyway, and ours is named after it).
    plain_cache: "str | None" = None

    def create_module(self, spec):
        if not self.track_globals:
            return None  # importlib's own module creation
        # A real module, created as importlib would; its dictionary is swapped before any
        # code (importlib's attribute setting included) sees it.
        module = type(sys)(spec.name)
        _core.track_module(module)
        return module

    def prepare(self) -> bool:
        """Instrument now; False (and the module is left to the plain loader) if that is
        not possible. A module CPython accepts but we cannot instrument is named in a
        ``RecompyleWarning``."""
        path = self.get_filename(self.name)
        result, data = _instrument_file(
            path, self.get_data, self.name, self.track_globals, self.plain_cache
        )
        if isinstance(result, str):
            if data is None:  # (a cache hit is code: a reason comes with the bytes read)
                data = self.get_data(path)
            try:
                compile(data, path, "exec", dont_inherit=True)
            except Exception:  # noqa: BLE001 -- SyntaxError, ValueError, RecursionError...
                return False  # the plain loader raises CPython's own error
            _warn_uninstrumented(path, self.name, result)
            return False
        self._prepared = result
        return True

    def get_code(self, fullname: str) -> "CodeType":
        code, self._prepared = self._prepared, None
        if code is not None:
            return code
        path = self.get_filename(fullname)
        result, data = _instrument_file(path, self.get_data, fullname, self.track_globals)
        if not isinstance(result, str):
            return result
        if data is None:
            data = self.get_data(path)
        code = compile(data, path, "exec", dont_inherit=True)
        _warn_uninstrumented(path, fullname, result)
        return code

    def source_to_code(self, data, path, *, _optimize=-1):
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif not isinstance(data, bytes):
            data = bytes(data)
        # The cache is validated by the hash of these very bytes, so text that is not the
        # file's (an editor's buffer) can neither be served stale code nor poison the file.
        return instrument_source(
            data, path, self.name, _optimize, cached=True, track_globals=self.track_globals
        )
