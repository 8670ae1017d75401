"""The rewrite stage for one function: source → native rewrite → code object → function.

``wrap_calls`` and ``flat_profile`` (``decorators.py``) decorate a function that was already
compiled; this module compiles it again from its source with every call routed through the
decorator's layer, and gives back a function that is the original in everything else:

* The source comes from ``linecache`` (files, and ``exec``'d or REPL code that registered its
  text there), so the same text tracebacks and ``inspect`` show.
* The native rewrite (``_core.rewrite_function``) places the function at its original lines
  and columns inside a scaffold that recreates its scopes: the free variables of the original
  become cells of a factory, and a class of the original's name makes private names mangle
  the same. Decorators are not evaluated again, nor are defaults or annotations: only the
  code object is taken from the compiled text, and the new function reuses the original's
  globals, defaults, keyword defaults, annotations, closure cells and ``__dict__``.
* Each call site's id constant is replaced by a native ``FunctionSite`` that knows the
  function's layers, so a call costs one native call and no lookup. A function whose only
  layer is a wrapper calls the wrapper itself (``ID(f, a)`` with the wrapper in place of
  ``ID``), which the interpreter runs inline, as the original recompyle does.
* A function rewritten before (stacked decorators) is rewritten again from its original
  code with the layers of both; a function reached through other decorators' wrappers
  (``__wrapped__``) gets the new code in place, so those wrappers keep working around it.
"""

from __future__ import annotations
import __future__

import linecache
import sys
import types
import warnings
import weakref
from dataclasses import dataclass
from typing import Any, Callable

from recompyle import _core

_VERSION = sys.version_info[:2]

#: Compiler flags of ``__future__`` imports: the rewritten code is compiled with the same.
_FUTURE_FLAGS = 0
for _feature in __future__.all_feature_names:
    _FUTURE_FLAGS |= getattr(__future__, _feature).compiler_flag

#: The kinds of layer (``Layer.kind``): a ``wrap_calls`` wrapper, a ``flat_profile`` timer.
WRAP = "wrap"
TIME = "time"

#: One layer a rewritten function's calls go through (innermost first when stacked), the
#: native type the call path reads: ``Layer.wrap(wrapper)`` for a ``wrap_calls`` wrapper
#: (``kind`` WRAP, ``obj`` the wrapper), ``Layer.time(profile)`` for a ``flat_profile``
#: timer (``kind`` TIME, ``obj`` the ``_core.FlatProfile``).
Layer = _core.Layer


@dataclass
class _Origin:
    """What a function rewritten by us was made from."""

    code: types.CodeType
    layers: list[Layer]


#: Functions we made, to their origin (a stacked decorator starts from the original code).
_ORIGINS: weakref.WeakKeyDictionary[types.FunctionType, _Origin] = weakref.WeakKeyDictionary()


class RewriteError(ValueError):
    """The function cannot be rewritten; the message says why."""


@dataclass
class Target:
    """Where the function to rewrite sits in a decorated object."""

    #: The function whose code is rewritten.
    func: types.FunctionType
    #: The object inside any classmethod/staticmethod: ``func`` or a wrapper around it.
    top: Any
    #: Rewraps a replacement of ``top`` in the same classmethod/staticmethod layers.
    rebuild: Callable[[Any], Any]
    #: ``func`` sits inside other decorators' wrappers, which hold on to it: its code is
    #: replaced in place.
    in_place: bool


def split_target(obj: Any) -> Target:
    """Find the function to rewrite in a decorated object."""
    if isinstance(obj, (classmethod, staticmethod)):
        inner = split_target(obj.__func__)
        kind, rebuild = type(obj), inner.rebuild
        return Target(inner.func, inner.top, lambda new: kind(rebuild(new)), inner.in_place)
    if isinstance(obj, types.FunctionType) and (obj in _ORIGINS or not hasattr(obj, "__wrapped__")):
        return Target(obj, obj, lambda new: new, False)
    inner = obj
    seen = set()
    while hasattr(inner, "__wrapped__") and id(inner) not in seen:
        seen.add(id(inner))
        if isinstance(inner, types.FunctionType) and inner in _ORIGINS:
            break
        inner = inner.__wrapped__
    if isinstance(inner, types.FunctionType):
        return Target(inner, obj, lambda new: new, True)
    raise TypeError(
        f"only functions, methods and lambdas can be rewritten, not {type(obj).__name__!r}"
    )


def _class_name(func: types.FunctionType) -> str | None:
    """The class a function was defined in, from its qualified name."""
    parts = func.__qualname__.split(".")
    if len(parts) >= 2 and parts[-2] != "<locals>":
        return parts[-2]
    return None


def _lambda_hint(code: types.CodeType) -> tuple[int, int] | None:
    """A position inside a lambda's text (3.11+), to tell lambdas on one line apart."""
    positions = getattr(code, "co_positions", None)
    if positions is None:
        return None
    for line, _end_line, col, _end_col in positions():
        if line is not None and col is not None:
            return (line, col)
    return None


def _find_code(code: types.CodeType, name: str, line: int) -> types.CodeType | None:
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            if const.co_name == name and const.co_firstlineno == line:
                return const
            found = _find_code(const, name, line)
            if found is not None:
                return found
    return None


def _fix_code(
    code: types.CodeType, shift: int, old_qualname: str, new_qualname: str
) -> types.CodeType:
    """Move every line up by ``shift`` and give nested functions the original's qualified
    names (``co_qualname`` on 3.11+, the qualname constants of ``MAKE_FUNCTION`` before)."""
    changes: dict[str, Any] = {}
    consts = []
    changed = False
    prefix = old_qualname + "."
    for const in code.co_consts:
        new = const
        if isinstance(const, types.CodeType):
            new = _fix_code(const, shift, old_qualname, new_qualname)
        elif type(const) is str and const.startswith(prefix):
            new = new_qualname + const[len(old_qualname) :]
        changed |= new is not const
        consts.append(new)
    if changed:
        changes["co_consts"] = tuple(consts)
    if shift:
        changes["co_firstlineno"] = code.co_firstlineno - shift
    qualname = getattr(code, "co_qualname", None)
    if qualname is not None:
        if qualname == old_qualname:
            changes["co_qualname"] = new_qualname
        elif qualname.startswith(prefix):
            changes["co_qualname"] = new_qualname + qualname[len(old_qualname) :]
    return code.replace(**changes) if changes else code


def source_of(func: types.FunctionType, code: types.CodeType) -> str:
    """The text of the file (or ``exec`` string) the function was compiled from."""
    lines = linecache.getlines(code.co_filename, func.__globals__)
    if not lines:
        raise RewriteError(
            f"the source of {func.__qualname__} is not available "
            f"({code.co_filename!r} is neither a file nor in linecache)"
        )
    return "".join(lines)


@dataclass
class Compiled:
    """A function's code compiled from rewritten text, and what it was made from."""

    code: types.CodeType
    original_code: types.CodeType
    rewritten: Any


def compile_function(
    func: types.FunctionType,
    code: types.CodeType,
    *,
    time_awaits: bool = False,
    direct: bool = False,
    blacklist: list[str] | None = None,
    whitelist: list[str] | None = None,
    ignore: list[str] | None = None,
) -> Compiled:
    """``code`` (the original of ``func``) compiled again from its source with its calls
    rewritten; site constants still unbound."""
    source = source_of(func, code)
    is_lambda = code.co_name == "<lambda>"
    try:
        rewritten = _core.rewrite_function(
            source,
            _VERSION,
            code.co_firstlineno,
            code.co_name,
            hint=_lambda_hint(code) if is_lambda else None,
            freevars=list(code.co_freevars),
            class_name=_class_name(func),
            time_awaits=time_awaits,
            direct=direct,
            blacklist=sorted(blacklist or ()),
            whitelist=sorted(whitelist or ()),
            ignore=sorted(ignore or ()),
        )
    except _core.InternalTransformError as exc:
        raise RewriteError(f"cannot rewrite {func.__qualname__}: {exc}") from None
    with warnings.catch_warnings():
        # The original's compilation already warned (invalid escapes and the like).
        warnings.simplefilter("ignore")
        module_code = compile(
            rewritten.code,
            code.co_filename,
            "exec",
            flags=code.co_flags & _FUTURE_FLAGS,
            dont_inherit=True,
        )
    shift = rewritten.line_shift
    new = _find_code(module_code, code.co_name, code.co_firstlineno + shift)
    if new is None:
        raise RewriteError(f"cannot rewrite {func.__qualname__}: compiled text lost the function")
    if new.co_freevars != code.co_freevars:
        raise RewriteError(
            f"cannot rewrite {func.__qualname__}: free variables {new.co_freevars} "
            f"instead of {code.co_freevars}"
        )
    scaffold_qualname = getattr(new, "co_qualname", None) or rewritten.scaffold_qualname
    new = _fix_code(new, shift, scaffold_qualname, func.__qualname__)
    return Compiled(new, code, rewritten)


def _new_function(func: types.FunctionType, code: types.CodeType) -> types.FunctionType:
    """A function like ``func`` in everything but its code."""
    new = types.FunctionType(
        code, func.__globals__, func.__name__, func.__defaults__, func.__closure__
    )
    new.__kwdefaults__ = func.__kwdefaults__
    new.__annotations__ = func.__annotations__
    new.__dict__.update(func.__dict__)
    new.__doc__ = func.__doc__
    new.__qualname__ = func.__qualname__
    new.__module__ = func.__module__
    if sys.version_info >= (3, 12):  # PEP 695: every function has them from 3.12
        new.__type_params__ = func.__type_params__
    new.__dict__["__wrapped__"] = func  # as functools.update_wrapper sets it
    return new


def rewrite(
    obj: Any,
    layer: Layer,
    *,
    around: Callable[[Any], Any] | None = None,
    time_awaits: bool = False,
    blacklist: set[str] | None = None,
    whitelist: set[str] | None = None,
    ignore: set[str] | None = None,
    rewrite_details: dict | None = None,
) -> Any:
    """``obj`` with its calls going through ``layer`` (outermost of any earlier ones);
    ``around`` (a shim) is applied to the rewritten function inside any classmethod or
    staticmethod."""
    target = split_target(obj)
    func = target.func
    origin = _ORIGINS.get(func)
    original_code = origin.code if origin else func.__code__
    layers = (origin.layers if origin else []) + [layer]
    compiled = compile_function(
        func,
        original_code,
        time_awaits=time_awaits,
        direct=len(layers) == 1 and layers[0].kind == WRAP,
        blacklist=list(blacklist or ()),
        whitelist=list(whitelist or ()),
        ignore=list(ignore or ()),
    )
    code = compiled.rewritten.bind(compiled.code, layers)
    from recompyle.loader import _keep_selectors_through_finalization

    _keep_selectors_through_finalization()
    if rewrite_details is not None:
        rewrite_details["original_func"] = func
        rewrite_details["original_source"] = compiled.rewritten.original_source
        rewrite_details["new_source"] = compiled.rewritten.new_source
    if target.in_place:
        func.__code__ = code
        _ORIGINS[func] = _Origin(original_code, layers)
        new_top = target.top
    else:
        new_top = _new_function(func, code)
        _ORIGINS[new_top] = _Origin(original_code, layers)
    if around is not None:
        new_top = around(new_top)
    return target.rebuild(new_top)
