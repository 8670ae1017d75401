"""Relative imports and import-time calls inside a helper package module."""
import importlib

from . import lazy
from .lazy import eager

LOADS = globals().get("LOADS", 0) + 1
print(f"dthelpers.rel executing (load {LOADS}), package={__package__!r}, parent={__spec__.parent!r}")
sibling = importlib.import_module(".lazy", __package__)
same = __import__("lazy", globals(), locals(), ["eager"], 1)


def info():
    return (lazy is sibling is same, eager, __name__)


def fail(n):
    return helper_missing(n)  # noqa: F821
