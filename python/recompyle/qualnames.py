"""Qualified names of code objects: ``co_qualname`` from 3.11, and before that a table built
the way the compiler builds qualnames, filled by the loader for tracked modules (the
dependency graph names the code that read a global).

A module of its own, below the loader and the tracked-globals API alike: both need it, and
neither needs the other for it. Only modules that are loaded already at start-up are
imported here.
"""

from __future__ import annotations

# A constant of our own rather than `typing.TYPE_CHECKING`: type checkers treat any name
# TYPE_CHECKING as true, and `typing` is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing only
    from types import CodeType

__all__ = ["code_qualname", "remember_qualnames"]

# Class bodies are neither optimized nor given new locals; function code always is.
_CO_OPTIMIZED = 0x1
_CO_NEWLOCALS = 0x2

_QUALNAMES: dict[CodeType, str] = {}


def remember_qualnames(code: CodeType) -> None:
    """Record the qualified name of every code object nested in module code ``code`` (for
    interpreters before 3.11, whose code objects lack ``co_qualname``)."""
    _walk(code, "")


def _walk(code: CodeType, prefix: str) -> None:
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


def code_qualname(code: CodeType) -> str:
    """The qualified name of the function (or class body, or ``<module>``) ``code`` runs."""
    qualname: str | None = getattr(code, "co_qualname", None)
    if qualname is not None:
        return qualname
    known = _QUALNAMES.get(code)
    if known is not None:
        return known
    return code.co_name
