"""The loader stage: source bytes of a selected module become instrumented code.

``RecompyleLoader`` is a ``SourceFileLoader`` in every respect (``get_source`` gives the
original text, so ``inspect``, ``linecache`` and tracebacks show the file as written;
``importlib.resources`` and ``reload`` work) except that compiling goes through
``instrument_source``, which asks the Rust transform for rewritten text, compiles it, gives
the code back its original columns and registers the call sites.

Nothing here ever words a ``SyntaxError``: when our parser refuses a file, the original bytes
are compiled so CPython raises its own error, byte for byte, or, if CPython accepts what we
refused, the module runs uninstrumented with one warning.
"""

import os
import sys
from importlib.machinery import SourceFileLoader

from recompyle import _core

if False:  # typing only; `types` is not loaded at start-up on every version
    from types import CodeType

__all__ = ["RecompyleLoader", "RecompyleWarning", "instrument_source"]

_VERSION = sys.version_info[:2]
# A site-key clash between two files is astronomically rare; a few salts settle it.
_MAX_SALTS = 8


class RecompyleWarning(RuntimeWarning):
    """A module could not be instrumented and runs as written."""


def _strict() -> bool:
    return os.environ.get("RECOMPYLE_STRICT", "") not in ("", "0")


def _fallback(data: bytes, path: str, module: str, reason: str, optimize: int) -> "CodeType":
    """Compile the original; warn once that ``path`` runs uninstrumented."""
    code = compile(data, path, "exec", dont_inherit=True, optimize=optimize)
    message = f"recompyle: {path} ({module}) runs uninstrumented: {reason}"
    if _strict():
        raise RuntimeError(message)
    import warnings

    warnings.warn(message, RecompyleWarning, stacklevel=2)
    return code


def instrument_source(
    data: bytes, path: str, module: str = "__main__", optimize: int = -1
) -> "CodeType":
    """Compile module source ``data`` (bytes, as read from ``path``) with every call
    site instrumented."""
    for salt in range(_MAX_SALTS):
        try:
            transformed = _core.transform(data, path, _VERSION, salt)
        except _core.ParseError as exc:
            # CPython raises its own SyntaxError here; if it does not, our parser was wrong.
            return _fallback(data, path, module, f"parse failed ({exc})", optimize)
        except _core.InternalTransformError as exc:
            return _fallback(data, path, module, str(exc), optimize)
        try:
            code = compile(transformed.source, path, "exec", dont_inherit=True, optimize=optimize)
        except SyntaxError as exc:
            # An error only the compiler finds (e.g. `return` outside a function) raises
            # from the original; anything else is our fault.
            return _fallback(
                data, path, module, f"rewritten source did not compile ({exc})", optimize
            )
        code = transformed.remap(code)
        if _core.register_sites(transformed.module_key, path, module, list(transformed.sites)):
            return code
    return _fallback(data, path, module, "no free site key", optimize)


class RecompyleLoader(SourceFileLoader):
    """A ``SourceFileLoader`` whose code is instrumented.

    Instrumented code is never written under the plain ``.pyc`` name: ``get_code`` here does
    not call ``_cache_bytecode``.
    """

    def get_code(self, fullname: str) -> "CodeType":
        path = self.get_filename(fullname)
        data = self.get_data(path)
        return instrument_source(data, path, fullname)

    def source_to_code(self, data, path, *, _optimize=-1):  # type: ignore[override]
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif not isinstance(data, bytes):
            data = bytes(data)
        return instrument_source(data, path, self.name, _optimize)
