"""``byref``: pass-by-reference parameters.

::

    from recompyle import byref

    @byref("x")
    def add(x, y, /):
        x += y

    a = 60
    add(a, 40)
    assert a == 100

After the decorated function returns, the caller's variables (or attributes, or items with
a constant key) that were passed for the named parameters hold the function's final values
of those parameters. How, stage by stage (ARCHITECTURE.md has the one-paragraph version):

1. **Where the call is** — the caller frame's current instruction: on 3.11+ its source span
   (``co_positions()``; ``f_lasti`` may point at a ``CACHE`` unit of the call, which has the
   call's position), on 3.9/3.10 its line, narrowed by the call instruction's kind and
   argument count. The native ``_core.byref_find_calls``
   (``crates/recompyle_transform/src/call_args.rs``) parses the caller's source (from
   ``linecache``, as tracebacks do) and classifies each argument of the call there. The
   result is cached per (caller code object, instruction offset): a site is analysed once.
2. **Is it a direct call** — the callee expression is looked up again without running code
   (a name in the caller's scopes; an attribute found in the ``__dict__`` of the object or
   its classes; ``super().name``) and must be this function, a method of it, or a
   classmethod/staticmethod of it; the number of arguments must match. Anything in between
   (``functools.partial``, ``map``, another wrapper) is refused: it would make us write to
   the wrong variables.
3. **Before the body** — arguments are bound by calling a copy of the function compiled as
   a generator (same code, flag ``CO_GENERATOR``, and on 3.11+ the ``RETURN_GENERATOR``
   prologue CPython gives generators), so binding errors are CPython's own and the
   function's frame exists before its body runs. The containers of attribute and subscript
   arguments are evaluated in the caller now, so ``a.b[0]`` names the object ``a.b`` was
   when the call was made. Any refusal (``ByRefError``) happens here, before the body.
4. **The body** runs by one native ``PyIter_Send`` (``_core.byref_run``); its frame keeps
   its final locals after it returns. If the body raises, the exception propagates (a
   ``StopIteration`` raised by the body is given back as itself, not as PEP 479's
   ``RuntimeError``) and nothing is written.
5. **Write-back** (native, ``_core.byref_write_back``) — every final value is read first;
   then names into the caller frame: locals, cells and free variables through
   ``frame.f_locals`` (a write-through proxy on 3.13, PEP 667; on 3.9–3.12 one refreshed
   snapshot followed by ``PyFrame_LocalsToFast``), class and module namespaces directly,
   globals into ``f_globals``; then attributes by ``setattr`` and items by ``__setitem__`` on
   the objects from step 3.

A site's later calls take a short path (``_fast_objects``) with the same checks, precomputed.
"""

from __future__ import annotations

import dis
import functools
import linecache
import sys
import types
from typing import Any, Callable, NamedTuple, TypeVar, Union

from recompyle import _core
from recompyle.code_tables import insert_unlocated, shift_exception_table

__all__ = ["ByRefError", "byref"]

# This module is also what ``from recompyle import byref`` gives: importing a submodule sets
# the package attribute of its name to the module, so the module is made callable (see the
# end of the file) and calling it is calling ``byref()``.

_VERSION = sys.version_info[:2]
_F = TypeVar("_F", bound=Callable[..., Any])

_CO_OPTIMIZED = 0x0001
_CO_GENERATOR = 0x0020
_CO_ASYNC_KINDS = 0x0020 | 0x0080 | 0x0100 | 0x0200  # generator, coroutine, iterable, async gen
_MISSING = object()

#: Call instructions, by name; anything else at the caller's position is not a call.
_CALL_OPS = {
    "CALL",
    "CALL_KW",
    "CALL_FUNCTION",
    "CALL_FUNCTION_KW",
    "CALL_FUNCTION_EX",
    "CALL_METHOD",
}
_CACHE = dis.opmap.get("CACHE", -1)
_EXTENDED_ARG = dis.opmap["EXTENDED_ARG"]
#: Sites cached per decorated function before the cache is emptied (exec'd code in a loop
#: makes a new code object each time).
_MAX_SITES = 4096


class ByRefError(ValueError):
    """A by-reference argument cannot be written back; raised before the body runs.

    ``parameter`` is the parameter's name (``None`` when the whole call is refused) and
    ``site`` the call's ``file:line:column`` (column 1-based)."""

    def __init__(self, message: str, parameter: str | None = None, site: str = "") -> None:
        super().__init__(message)
        self.parameter = parameter
        self.site = site


# --- the copy of the function that runs as a generator ------------------------------------


def generator_code(code: types.CodeType) -> types.CodeType:
    """``code`` compiled as a generator: calling a function of it binds the arguments and
    stops before the body; its frame (``gi_frame``) keeps the final locals.

    3.9/3.10 need only the flag. 3.11+ also need the ``RETURN_GENERATOR; POP_TOP`` pair the
    compiler puts before ``RESUME`` in generators; jumps are relative there and nothing
    jumps into the prologue, so only the exception table and the location table move."""
    flags = code.co_flags | _CO_GENERATOR
    if sys.version_info < (3, 11):
        return code.replace(co_flags=flags)
    ops = code.co_code
    resume = dis.opmap["RESUME"]
    at = next((i for i in range(0, len(ops), 2) if ops[i] == resume), None)
    if at is None:
        raise ValueError("no RESUME instruction")
    prologue = bytes([dis.opmap["RETURN_GENERATOR"], 0, dis.opmap["POP_TOP"], 0])
    return code.replace(
        co_flags=flags,
        co_code=ops[:at] + prologue + ops[at:],
        co_exceptiontable=shift_exception_table(code.co_exceptiontable, 2),
        co_linetable=insert_unlocated(code.co_linetable, at // 2, 2),
        co_stacksize=max(code.co_stacksize, 1),
    )


# --- looking names up in the caller frame without running its code -------------------------

# Where the caller's code finds a root name.
_FAST = "fast"  # a local, cell or free variable of a function: frame.f_locals
_NAMESPACE = "namespace"  # module, class body, exec'd code: the namespace, then globals
_GLOBAL = "global"


class _Refuse(Exception):
    """Internal: why an argument or a call cannot be handled, in words for the message."""


def _builtins(frame: types.FrameType) -> Any:
    b = frame.f_builtins
    return b if isinstance(b, dict) else vars(b)


def _scope_of(code: types.CodeType, name: str, binding: str) -> str:
    """Where ``code`` looks ``name`` up, as far as the code object tells (fixed per site)."""
    if binding == "comprehension" and _VERSION >= (3, 12):
        raise _Refuse(
            "a variable of a list/set/dict comprehension, which CPython 3.12+ runs inside "
            "the enclosing frame; it cannot be written reliably"
        )
    if binding == "global":
        return _GLOBAL
    if code.co_flags & _CO_OPTIMIZED:
        if name in code.co_varnames or name in code.co_cellvars or name in code.co_freevars:
            return _FAST
        return _GLOBAL
    if name in code.co_freevars:
        raise _Refuse(f"{name!r}, a free variable of a class body, which is not supported")
    return _NAMESPACE


def _read(frame: types.FrameType, locs: Any, scope: str, name: str) -> tuple[str, Any]:
    """(where, value) of a root name now; ``locs`` is ``frame.f_locals`` when the scope
    needs it."""
    if scope is _FAST:
        value = locs.get(name, _MISSING)
        if value is _MISSING:
            raise _Refuse(f"the local variable {name!r}, which has no value")
        return _FAST, value
    if scope is _NAMESPACE and name in locs:
        return _NAMESPACE, locs[name]
    globals_ = frame.f_globals
    if name in globals_:
        return _GLOBAL, globals_[name]
    if name in _builtins(frame):
        raise _Refuse(f"the builtin {name!r}, not a variable of the caller")
    raise _Refuse(f"{name!r}, which has no value")


def _static_attr(obj: Any, name: str) -> tuple[Any, str]:
    """``obj.name`` as stored, without calling descriptors: (raw value, where found), where
    is ``"instance"`` (the object's own ``__dict__``), ``"type"`` (its class, for an
    instance) or ``"class"`` (``obj`` is a class)."""
    if isinstance(obj, type):
        for klass in obj.__mro__:
            if name in klass.__dict__:
                return klass.__dict__[name], "class"
        return _MISSING, ""
    found: Any = _MISSING
    for klass in type(obj).__mro__:
        if name in klass.__dict__:
            found = klass.__dict__[name]
            if hasattr(type(found), "__set__"):
                return found, "type"
            break
    try:
        own = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        own = None
    if isinstance(own, dict) and name in own:
        return own[name], "instance"
    return found, "type"


def _key(text: str) -> Any:
    """A constant key from its source text (once per site)."""
    import ast

    return ast.literal_eval(f"({text})")


# --- one call site --------------------------------------------------------------------------


class _Lvalue:
    """An lvalue of the analysis, its keys evaluated and its root's scope found."""

    __slots__ = ("root", "steps", "scope", "refusal")

    def __init__(self, code: types.CodeType, lvalue: _core.ByRefLvalue) -> None:
        self.root = lvalue.root
        #: (is_attribute, name or key) pairs, the keys evaluated.
        self.steps = tuple(
            (s.attribute, s.text if s.attribute else _key(s.text)) for s in lvalue.steps
        )
        self.scope = ""
        self.refusal: str | None = None
        try:
            self.scope = _scope_of(code, lvalue.root, lvalue.binding)
        except _Refuse as refused:
            self.refusal = str(refused)

    def evaluate(self, frame: types.FrameType, locs: Any) -> Any:
        """The object the whole chain names now."""
        _where, obj = _read(frame, locs, self.scope, self.root)
        for is_attr, step in self.steps:
            obj = getattr(obj, step) if is_attr else obj[step]
        return obj


class _Arg:
    __slots__ = ("text", "lvalue", "reason")

    def __init__(self, code: types.CodeType, arg: _core.ByRefArg) -> None:
        self.text = arg.text
        self.reason = arg.reason
        self.lvalue = _Lvalue(code, arg.lvalue) if arg.lvalue is not None else None


class _Call:
    """One analysed call expression of a site."""

    __slots__ = (
        "where",
        "callee_kind",
        "callee_base",
        "callee_attr",
        "callee_text",
        "args",
        "npos",
        "starred_at",
        "keywords",
        "needs_locals",
        "templates",
    )

    def __init__(self, code: types.CodeType, filename: str, call: _core.ByRefCall) -> None:
        callee = call.callee
        self.callee_kind = callee.kind
        self.callee_attr = callee.attr or ""  # the attribute of "attr" and "super" callees
        self.callee_text = call.callee_text
        self.callee_base = _Lvalue(code, callee.base) if callee.base is not None else None
        self.where = f"{filename}:{call.line}:{call.col + 1}"
        pos = call.positional
        self.args = [_Arg(code, a) for a in pos]
        self.npos = len(pos)
        self.starred_at = next((i for i, a in enumerate(pos) if a.starred), None)
        self.keywords = {k.name: _Arg(code, k.arg) for k in call.keywords}
        # Whether looking anything up needs the caller's f_locals (a copy on 3.9-3.12).
        # (A method call's object is looked up only when the bound object does not tell.)
        lvalues = [a.lvalue for a in [*self.args, *self.keywords.values()] if a.lvalue]
        if self.callee_kind == "name" and self.callee_base is not None:
            lvalues.append(self.callee_base)
        self.needs_locals = self.callee_kind == "super" or any(
            (lv.scope is _FAST and (lv.steps or lv is self.callee_base)) or lv.scope is _NAMESPACE
            for lv in lvalues
            if lv is not None
        )
        #: (offset, number of positional arguments, keyword names) → (param, _Arg) pairs,
        #: or the message of a refusal.
        self.templates: dict[_Shape, _Template] = {}


class _Site:
    """A call site of a decorated function: the call(s) found there, analysed once."""

    __slots__ = ("code", "where", "calls", "error", "needs_locals")

    def __init__(self, code: types.CodeType, where: str) -> None:
        self.code = code
        self.where = where
        self.calls: list[_Call] = []
        self.error: str | None = None
        self.needs_locals = False


def _instruction(code: types.CodeType, lasti: int) -> tuple[str, int, int]:
    """(name, argument, offset) of the instruction a frame is executing; on 3.11+ ``f_lasti``
    may be one of its ``CACHE`` units."""
    ops = code.co_code
    i = lasti
    while i > 0 and ops[i] == _CACHE:
        i -= 2
    arg = ops[i + 1]
    shift = 8
    j = i - 2
    while j >= 0 and ops[j] == _EXTENDED_ARG:
        arg |= ops[j + 1] << shift
        shift += 8
        j -= 2
    return dis.opname[ops[i]], arg, i


def _fits_instruction(call: _Call, op: str, oparg: int, direct: bool) -> bool:
    """3.9/3.10: whether a call expression compiles to this call instruction. ``direct``:
    the code makes calls through ``__recompyle_c__(ID, f, *args, **kwargs)`` (instrumented
    code while the profiler listens), whose instruction has two more positional arguments
    than the call it makes; a candidate that fits either way is checked against the real
    call's arguments later."""
    has_star = call.starred_at is not None or None in call.keywords
    if op == "CALL_FUNCTION_EX":
        return has_star
    if has_star:
        return False
    if op == "CALL_METHOD":
        return call.callee_kind in ("attr", "super") and not call.keywords and call.npos == oparg
    counts = (oparg, oparg - 2) if direct else (oparg,)
    if op == "CALL_FUNCTION_KW":
        return bool(call.keywords) and call.npos + len(call.keywords) in counts
    if op == "CALL_FUNCTION":
        return not call.keywords and call.npos in counts and call.callee_kind != "super"
    return False


def _loads(code: types.CodeType) -> dict[str, set[tuple[int | None, int | None]]]:
    """Where ``code`` loads each name: (line, column) on 3.11+, where instructions record
    columns (a fused load of two names, 3.13's LOAD_FAST_LOAD_FAST, has only the first
    one's, so its names count by line); (line, None) before."""
    loads: dict[str, set[tuple[int | None, int | None]]] = {}
    line = None
    for ins in dis.get_instructions(code):
        if sys.version_info >= (3, 11):
            line, col = ins.positions.lineno, ins.positions.col_offset  # type: ignore[union-attr]
        else:
            if ins.starts_line is not None:
                line = ins.starts_line
            col = None
        if "LOAD" not in ins.opname:  # LOAD_*, and 3.13's fused STORE_FAST_LOAD_FAST
            continue
        names = ins.argval if isinstance(ins.argval, tuple) else (ins.argval,)
        for name in names:
            if isinstance(name, str):
                loads.setdefault(name, set()).add((line, col if len(names) == 1 else None))
    return loads


def _source_matches(
    loads: dict[str, set[tuple[int | None, int | None]]], call: _core.ByRefCall
) -> bool:
    """Whether the code loads each lvalue argument's root name at the position the source
    text gives it (by line only where columns are not known), and the callee's root name on
    the call's first line (the call may start at a parenthesis before it)."""
    base = call.callee.base
    callee = base.root if base is not None else "super" if call.callee.kind == "super" else None
    if callee is not None and all(line != call.line for line, _ in loads.get(callee, ())):
        return False
    for arg in [*call.positional, *(k.arg for k in call.keywords)]:
        if arg.lvalue is None:
            continue
        at = loads.get(arg.lvalue.root, ())
        if (arg.line, arg.col) not in at and (arg.line, None) not in at:
            return False
    return True


def _analyse(frame: types.FrameType) -> _Site:
    """Find and classify the call the frame is making (once per site)."""
    code = frame.f_code
    op, oparg, offset = _instruction(code, frame.f_lasti)
    positions = None
    line = frame.f_lineno
    if sys.version_info >= (3, 11):
        for n, position in enumerate(code.co_positions()):
            if n == offset // 2:
                positions = position
                break
        if positions is not None and positions[0] is not None:
            line = positions[0]
    site = _Site(code, f"{code.co_filename}:{line}")
    if op not in _CALL_OPS:
        site.error = (
            "it was not called by a call expression there (but by an operator, a property, "
            "or C code such as map())"
        )
        return site
    lines = linecache.getlines(code.co_filename, frame.f_globals)
    if not lines:
        site.error = f"the source of {code.co_filename!r} is not available (not in linecache)"
        return site
    source = "".join(lines)
    try:
        if positions is not None and positions[1] is not None and positions[3] is not None:
            end = (positions[1], positions[3])
            found = _core.byref_find_calls(source, _VERSION, line, end)
        else:
            found = _core.byref_find_calls(source, _VERSION, line)
    except _core.ParseError as exc:
        site.error = f"its source does not parse ({exc})"
        return site
    # The file may have changed since the code was compiled: a call found in today's text
    # is trusted only if the running code loads its names where the text has them.
    loads = _loads(code)
    current = [c for c in found if _source_matches(loads, c)]
    if found and not current:
        site.error = (
            f"the source of {code.co_filename!r} does not match the running code there "
            "(changed since it was compiled?)"
        )
        return site
    calls = [_Call(code, code.co_filename, c) for c in current]
    if positions is None:
        direct = _core.CALL_SELECTOR_NAME in code.co_names
        calls = [c for c in calls if _fits_instruction(c, op, oparg, direct)]
    if not calls:
        site.error = "no call expression in the source matches the running instruction"
        return site
    site.calls = calls
    site.needs_locals = any(c.needs_locals for c in calls)
    return site


# --- the decorator ------------------------------------------------------------------------


class _Spec:
    """What ``byref`` knows of the decorated function."""

    def __init__(self, func: types.FunctionType, names: tuple[str, ...]) -> None:
        code = func.__code__
        params = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        self.qualname = func.__qualname__
        self.names = names
        #: name → positional index, or None for keyword-only.
        self.positions: dict[str, int | None] = {}
        for name in names:
            if name not in params:
                raise TypeError(
                    f"byref: {func.__qualname__}() has no parameter {name!r} "
                    "(by-reference parameters must be named parameters, not *args/**kwargs)"
                )
            index = params.index(name)
            self.positions[name] = index if index < code.co_argcount else None


def _callee_offset(
    frame: types.FrameType, locs: Any, call: _Call, wrapper: Any, args: tuple
) -> int | None:
    """How many leading positional arguments the call did not write (1 for a bound
    ``self``/``cls``), or ``None`` when its callee is not ``wrapper`` itself."""
    kind = call.callee_kind
    base = call.callee_base
    if kind == "name":
        if base is None or base.refusal is not None:
            return None
        if base.scope is _GLOBAL:
            value = frame.f_globals.get(base.root, _MISSING)
            if value is _MISSING:
                value = _builtins(frame).get(base.root, _MISSING)
        else:
            try:
                _where, value = _read(frame, locs, base.scope, base.root)
            except _Refuse:
                return None
        if value is wrapper:
            return 0
        if getattr(value, "__func__", None) is wrapper:
            return 1 if args and getattr(value, "__self__", _MISSING) is args[0] else None
        return None
    if kind == "attr":
        if (
            args
            and call.starred_at is None
            and None not in call.keywords
            and len(args) == call.npos + 1
        ):
            # A method call (`obj.m(a)`): the bound object came first. Its class having
            # this function under the name called, and the count of arguments, are enough:
            # whatever else ran between could not have changed what the arguments are.
            owner = args[0] if isinstance(args[0], type) else type(args[0])
            for klass in owner.__mro__:
                if call.callee_attr in klass.__dict__:
                    raw = klass.__dict__[call.callee_attr]
                    if raw is wrapper and owner is not args[0]:
                        return 1
                    if isinstance(raw, classmethod) and raw.__func__ is wrapper:
                        return 1
                    break
        if base is None or base.refusal is not None:
            return None
        try:
            obj = base.evaluate(frame, frame.f_locals if locs is None else locs)
        except Exception:
            return None
        raw, found_in = _static_attr(obj, call.callee_attr)
    elif kind == "super":
        # super().attr: looked up in the MRO after the class the calling method was defined
        # in (its ``__class__`` cell), as super() does.
        defining = locs.get("__class__") if hasattr(locs, "get") else None
        if not args or not isinstance(defining, type):
            return None
        owner = args[0] if isinstance(args[0], type) else type(args[0])
        mro = owner.__mro__
        if defining not in mro:
            return None
        raw = _MISSING
        for base_class in mro[mro.index(defining) + 1 :]:
            if call.callee_attr in base_class.__dict__:
                raw = base_class.__dict__[call.callee_attr]
                break
        found_in = "type" if owner is not args[0] else "class"
    else:
        return None
    if raw is wrapper:
        return 1 if found_in == "type" else 0
    if isinstance(raw, classmethod) and raw.__func__ is wrapper:
        return 1
    if isinstance(raw, staticmethod) and raw.__func__ is wrapper:
        return 0
    if getattr(raw, "__func__", None) is wrapper and found_in == "instance":
        return 1
    return None


class _Passed(NamedTuple):
    """A by-reference parameter the call passed, and the argument (an lvalue) it got."""

    param: str
    arg: _Arg
    lvalue: _Lvalue


class _Refusal(NamedTuple):
    """Why a call's arguments cannot be written back (the ``ByRefError``'s message), and the
    parameter concerned, if one is."""

    message: str
    param: str | None


#: What a call site passed for the by-reference parameters, or why it cannot be written
#: back: fixed for a site, an offset and a shape of the arguments, so it is cached.
_Template = Union[list[_Passed], _Refusal]
#: (callee offset, number of positional arguments, keyword names in order).
_Shape = tuple[int, int, tuple[str, ...]]


def _template(
    spec: _Spec, call: _Call, offset: int, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> _Template:
    """Which argument of the call each passed by-reference parameter got, or the refusal."""
    qualname = spec.qualname
    where = call.where
    has_star = call.starred_at is not None
    if not has_star and None not in call.keywords:
        if len(args) != call.npos + offset or set(kwargs) != set(call.keywords):
            return _Refusal(
                f"{qualname}() called at {where} with other arguments than written there: "
                "not a direct call of it (functools.partial and other wrappers are refused)",
                None,
            )
    pairs: list[_Passed] = []
    for param in spec.names:
        if param in kwargs:
            arg = call.keywords.get(param) or call.keywords.get(None)
        else:
            index = spec.positions[param]
            if index is None or index >= len(args):
                continue  # not passed: its default was used, nothing to write
            index -= offset
            if index < 0:
                return _Refusal(
                    f"{qualname}() called at {where}: by-reference parameter {param!r} "
                    "received the object of a method call, not a variable",
                    param,
                )
            starred_at = call.starred_at
            arg = call.args[starred_at if starred_at is not None and index >= starred_at else index]
        if arg is None or arg.lvalue is None:
            text, reason = (arg.text, arg.reason) if arg is not None else ("?", "unknown")
            return _Refusal(
                f"{qualname}() called at {where}: the argument for by-reference parameter "
                f"{param!r}, {text!r}, is {reason}, not a variable, an attribute or an item "
                "with a constant key",
                param,
            )
        if arg.lvalue.refusal is not None:
            return _Refusal(
                f"{qualname}() called at {where}: the argument for by-reference parameter "
                f"{param!r}, {arg.text!r}, is {arg.lvalue.refusal}",
                param,
            )
        pairs.append(_Passed(param, arg, arg.lvalue))
    return pairs


def byref(*names: str) -> Callable[[_F], _F]:
    """Make the named parameters by-reference: when the decorated function returns, the
    variables, attributes or constant-key items its caller passed for them hold the
    parameters' final values. See the module docstring for how, and README for the limits.

    Raises ``ByRefError`` (a ``ValueError``) before the body runs when an argument for a
    by-reference parameter is not something an assignment could target, or the call is not
    a direct call of the function."""
    if not names:
        raise TypeError("byref() needs the names of the by-reference parameters")
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"byref() takes parameter names, not {name!r}")

    def decorate(func: _F) -> _F:
        if not isinstance(func, types.FunctionType):
            raise TypeError(
                f"byref() decorates plain functions, not {type(func).__name__!r} "
                "(put @classmethod/@staticmethod above @byref)"
            )
        code = func.__code__
        if code.co_flags & _CO_ASYNC_KINDS:
            raise TypeError(
                f"byref() cannot decorate {func.__qualname__}(): generator and async functions "
                "return before their body ends"
            )
        spec = _Spec(func, names)
        body = types.FunctionType(
            generator_code(code),
            func.__globals__,
            func.__name__,
            func.__defaults__,
            func.__closure__,
        )
        body.__kwdefaults__ = func.__kwdefaults__
        body.__qualname__ = func.__qualname__
        return _make_wrapper(func, body, spec)  # type: ignore[return-value]

    return decorate


#: ``objects`` of a plan whose writes are all names (never mutated).
_NO_OBJECTS: list[Any] = []


class _Target:
    """Where a usual site writes a parameter back: a root name in a scope, then steps (the
    write itself, ``_core.ByRefWrite``, is made once, in ``_FastSite.writes``). (A slotted
    class, not a NamedTuple: the short path reads these on every call, and slot reads are
    what CPython's specialising interpreter makes fastest.)"""

    __slots__ = ("scope", "root", "steps")

    def __init__(self, scope: str, root: str, steps: tuple[tuple[bool, Any], ...]) -> None:
        self.scope = scope
        self.root = root
        self.steps = steps


class _FastSite:
    """A site ``bind`` found usual (``f(a, b.c)``, ``obj.m(a, k=v)``): the next calls from
    it take ``_fast_objects``, the same checks without the generality. (Slotted, as _Target.)"""

    __slots__ = (
        "code",
        "method",
        "name",
        "nargs",
        "targets",
        "writes",
        "needs_locals",
        "names_only",
        "global_roots",
        "keywords",
    )

    def __init__(
        self,
        *,
        code: types.CodeType,
        method: bool,
        name: str,
        nargs: int,
        targets: tuple[_Target, ...],
        writes: tuple[_core.ByRefWrite, ...],
        needs_locals: bool,
        names_only: bool,
        global_roots: tuple[str, ...],
        keywords: tuple[str, ...],
    ) -> None:
        self.code = code
        self.method = method  # a method call: the callee is looked up on the first argument
        self.name = name  # the callee's global name or the method's attribute name
        self.nargs = nargs  # positional arguments, the bound object included
        self.targets = targets
        self.writes = writes  # one per target: the plan's writes, fixed for the site
        self.needs_locals = needs_locals  # a local root has steps: read from f_locals
        self.names_only = names_only  # no target has steps: no object to find per call
        self.global_roots = global_roots  # must still exist for a names-only plan to hold
        self.keywords = keywords  # keyword names, in order


def _make_wrapper(
    func: types.FunctionType, body: types.FunctionType, spec: _Spec
) -> Callable[..., Any]:
    """The decorated function: run ``body`` (the generator made of ``func``), then write the
    by-reference parameters back where the caller's arguments name."""
    sites: dict[tuple[int, int], _Site] = {}
    compiled: dict[tuple[int, int], _FastSite] = {}
    qualname = spec.qualname

    def bind(
        frame: types.FrameType, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[_core.ByRefWrite, ...], list[Any]]:
        """The write-back plan of this call (writes, and the objects of its attribute and item
        writes); raises ``ByRefError``."""
        code = frame.f_code
        key = (id(code), frame.f_lasti)
        site = sites.get(key)
        if site is None or site.code is not code:
            if len(sites) >= _MAX_SITES:
                sites.clear()
                compiled.clear()
            site = sites[key] = _analyse(frame)
        if site.error is not None:
            raise ByRefError(
                f"{qualname}() called at {site.where}: {site.error}; "
                "cannot tell which variables to write back",
                None,
                site.where,
            )
        locs = frame.f_locals if site.needs_locals else None
        call, offset = _which_call(site, frame, locs, wrapper, args, qualname)
        shape = (offset, len(args), tuple(kwargs) if kwargs else ())
        template = call.templates.get(shape)
        if template is None:
            template = call.templates[shape] = _template(spec, call, offset, args, kwargs)
        if isinstance(template, _Refusal):
            raise ByRefError(template.message, template.param, call.where)
        if len(site.calls) == 1:
            fast = _fast_site(code, call, offset, shape, template)
            if fast is not None:
                compiled[key] = fast
        return _plan(frame, locs, call, template, qualname)

    run = _core.byref_run

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        gen = body(*args, **kwargs)  # binds the arguments: CPython's own TypeErrors
        frame = sys._getframe(1)
        callee_frame = None
        try:
            code = frame.f_code
            site = compiled.get((id(code), frame.f_lasti))
            writes = objects = None
            if site is not None and site.code is code:
                objects = _fast_objects(frame, args, kwargs, site, wrapper)
                if objects is not None:
                    writes = site.writes
            if writes is None or objects is None:
                writes, objects = bind(frame, args, kwargs)
            callee_frame = gen.gi_frame
            result = run(gen)  # the body's exception, if any, propagates: nothing written
            if writes:
                _write_back(frame, callee_frame, writes, objects, qualname)
            return result
        finally:
            # The finished body's frame links back to this one (f_back): dropping it here
            # keeps each call from leaving a reference cycle for the collector.
            del frame, callee_frame

    wrapper.__byref__ = spec.names  # type: ignore[attr-defined]
    return wrapper


def _which_call(
    site: _Site,
    frame: types.FrameType,
    locs: Any,
    wrapper: Callable[..., Any],
    args: tuple[Any, ...],
    qualname: str,
) -> tuple[_Call, int]:
    """The call of ``site`` that is running and its callee offset (1 when the call passed a
    bound object); ``ByRefError`` when there is none or it cannot be told."""
    calls = site.calls
    call = calls[0]
    offset = _callee_offset(frame, locs, call, wrapper, args)
    if len(calls) > 1:  # 3.9/3.10: calls alike on one line
        candidates = [(c, _callee_offset(frame, locs, c, wrapper, args)) for c in calls]
        matching = [(c, o) for c, o in candidates if o is not None]
        if len(matching) > 1:
            raise ByRefError(
                f"{qualname}() called at {site.where}: several calls on that line could "
                "be this one, and Python 3.9/3.10 record only lines; put the call on a "
                "line of its own",
                None,
                site.where,
            )
        if matching:
            call, offset = matching[0]
    if offset is None:
        raise ByRefError(
            f"{qualname}() called at {call.where} through {call.callee_text!r}, which is "
            "not a direct call of it (functools.partial, map() and other wrappers are "
            "refused: they would make byref write to the wrong variables)",
            None,
            call.where,
        )
    return call, offset


def _fast_site(
    code: types.CodeType, call: _Call, offset: int, shape: _Shape, passed: list[_Passed]
) -> _FastSite | None:
    """The short path for a site of one call whose callee is a global function or a method
    and whose arguments are locals or globals (with steps), else None."""
    base = call.callee_base
    if offset == 0 and call.callee_kind == "name" and base is not None and base.scope is _GLOBAL:
        name = base.root
    elif offset == 1 and call.callee_kind == "attr":
        name = call.callee_attr
    else:
        return None
    if not all(p.lvalue.scope in (_FAST, _GLOBAL) for p in passed):
        return None
    targets = tuple(_Target(p.lvalue.scope, p.lvalue.root, p.lvalue.steps) for p in passed)
    return _FastSite(
        code=code,
        method=call.callee_kind == "attr",
        name=name,
        nargs=shape[1],
        targets=targets,
        writes=tuple(_write(p.param, t.scope, t.root, t.steps) for p, t in zip(passed, targets)),
        needs_locals=any(t.scope is _FAST and t.steps for t in targets),
        names_only=not any(t.steps for t in targets),
        global_roots=tuple(t.root for t in targets if t.scope is _GLOBAL),
        keywords=shape[2],
    )


def _write(
    param: str, scope: str, root: str, steps: tuple[tuple[bool, Any], ...]
) -> _core.ByRefWrite:
    """Where ``param`` is written back: the root name in its scope, or the attribute or item
    of the last step (on the object the steps before it name at each call)."""
    if not steps:
        return _core.ByRefWrite(scope, root, param)
    is_attr, step = steps[-1]
    return _core.ByRefWrite("attr" if is_attr else "item", step, param)


def _plan(
    frame: types.FrameType, locs: Any, call: _Call, passed: list[_Passed], qualname: str
) -> tuple[tuple[_core.ByRefWrite, ...], list[Any]]:
    """The writes of one call and the objects of its attribute and item writes, each found
    now; ``ByRefError`` names the argument that cannot be read."""
    writes: list[_core.ByRefWrite] = []
    objects: list[Any] = []
    for param, arg, lvalue in passed:
        steps = lvalue.steps
        root = lvalue.root
        try:
            if not steps:
                if lvalue.scope is _FAST:
                    writes.append(_write(param, _FAST, root, steps))
                elif lvalue.scope is _NAMESPACE and root in locs:
                    writes.append(_write(param, _NAMESPACE, root, steps))
                else:
                    if root not in frame.f_globals:
                        _read(frame, locs, _GLOBAL, root)  # raises the reason
                    writes.append(_write(param, _GLOBAL, root, steps))
                continue
            _where, obj = _read(frame, locs, lvalue.scope, root)
            for is_attr, step in steps[:-1]:
                obj = getattr(obj, step) if is_attr else obj[step]
            writes.append(_write(param, lvalue.scope, root, steps))
            objects.append(obj)
        except _Refuse as refused:
            raise ByRefError(
                f"{qualname}() called at {call.where}: the argument for by-reference "
                f"parameter {param!r}, {arg.text!r}, is {refused}",
                param,
                call.where,
            ) from None
    return tuple(writes), objects


def _fast_objects(
    frame: types.FrameType,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    site: _FastSite,
    wrapper: Callable[..., Any],
) -> list[Any] | None:
    """``bind``'s plan for a call at a compiled site, whose writes are ``site.writes``: the
    objects of its attribute and item writes, or ``None`` when anything is not as it was
    (the general path then decides, and words any refusal)."""
    if len(args) != site.nargs or (tuple(kwargs) if kwargs else ()) != site.keywords:
        return None
    globals_ = frame.f_globals
    name = site.name
    if site.method:
        first = args[0]
        owner = first if isinstance(first, type) else type(first)
        for klass in owner.__mro__:
            namespace = klass.__dict__
            if name in namespace:
                raw = namespace[name]
                if not (
                    (raw is wrapper and owner is not first)
                    or (type(raw) is classmethod and raw.__func__ is wrapper)
                ):
                    return None
                break
        else:
            return None
    elif globals_.get(name) is not wrapper:
        return None
    if site.names_only:
        for root in site.global_roots:
            if root not in globals_:
                return None
        return _NO_OBJECTS
    locs = frame.f_locals if site.needs_locals else None
    objects: list[Any] = []
    for target in site.targets:
        scope, root, steps = target.scope, target.root, target.steps
        if not steps:
            if scope is _GLOBAL and root not in globals_:
                return None
            continue
        obj = (locs if scope is _FAST else globals_).get(root, _MISSING)  # type: ignore[union-attr]
        if obj is _MISSING:
            return None
        for is_attr, step in steps[:-1]:
            obj = getattr(obj, step) if is_attr else obj[step]
        objects.append(obj)
    return objects


def _write_back(
    frame: types.FrameType,
    callee_frame: types.FrameType,
    writes: tuple[_core.ByRefWrite, ...],
    objects: list[Any],
    qualname: str,
) -> None:
    """Write the final values of the by-reference parameters where the plan says (natively:
    ``_core.byref_write_back``, which reads every value before writing any)."""
    missing = _core.byref_write_back(frame, callee_frame, writes, objects)
    if missing is not None:
        raise ByRefError(
            f"{qualname}(): by-reference parameter {missing!r} has no value at return "
            "(deleted in the body); nothing was written back",
            missing,
        )


class _CallableModule(types.ModuleType):
    """The type of this module: ``recompyle.byref("x")`` is ``recompyle.byref.byref("x")``."""

    def __call__(self, *names: str) -> Callable[[_F], _F]:
        return byref(*names)


sys.modules[__name__].__class__ = _CallableModule
