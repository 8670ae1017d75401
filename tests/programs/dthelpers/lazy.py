"""A module with a module-level __getattr__ and __dir__ (PEP 562)."""
import sys

_loaded = []
eager = "eager value"


def _compute(name):
    _loaded.append(name)
    return name.upper() * 2


def __getattr__(name):
    if name.startswith("lazy_"):
        value = _compute(name)
        globals()[name] = value
        return value
    if name == "caller":
        return sys._getframe(1).f_code.co_name
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + ["lazy_one", "lazy_two"])


def loaded():
    return list(_loaded)
