"""``wrap_calls``, ``flat_profile`` and ``rewrite_function``: the original recompyle's API.

Code written for the original (``from recompyle import wrap_calls, flat_profile``) runs
unchanged; the differences are what the original could not do (closures, ``super()``,
private names, async code, lambdas, ``exec``'d code, stacking, threads) and the cost: a call
goes through one native call (``function_rewrite.py``, ``function_sites.rs``) instead of a
Python wrapper, and ``flat_profile`` times calls natively.

``flat_profile`` puts a thin Python shim of the function's own kind (plain, generator,
coroutine, async generator) around the rewritten function: it opens the invocation's record,
steps generators and coroutines with the record resumed around each step (so interleaved
invocations, threads and recursion each keep their own times), and hands the times to the
callback when the invocation ends.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import logging
import sys
import warnings
from operator import itemgetter
from pprint import pformat
from typing import Any, Callable, Dict, Generator, List, Optional, Protocol, TypeVar

from recompyle import _core, function_rewrite

__all__ = [
    "CallWrapper",
    "ProfilerCallback",
    "RecompyleBaseTransformer",
    "default_above_log",
    "default_below_log",
    "flat_profile",
    "rewrite_function",
    "wrap_calls",
]

T = TypeVar("T")
TimeDict = Dict[str, List[float]]

#: The original's logger name, so existing logging configuration keeps applying.
log = logging.getLogger("recompyle.applied.flat_profiler")


class CallWrapper(Protocol):
    """``wrapper(call, *args, **kwargs)``: must call ``call(*args, **kwargs)`` and return
    its result."""

    def __call__(self, __call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...


class ProfilerCallback(Protocol):
    """``callback(total, limit, times, func)``, run when a profiled invocation ends."""

    def __call__(
        self, total: float, limit: float, times: TimeDict, func: Callable[..., Any]
    ) -> None: ...


async def _timed_await(awaitable: Any, profile: Any, callee: Any, start: int) -> Any:
    """What ``await f(x)`` awaits in a profiled function: ``f(x)``'s result, with the time
    from the call to the end of the awaited work recorded."""
    try:
        return await awaitable
    finally:
        _core.record_awaited(profile, callee, start)


def _frame_sensitive() -> list[Any]:
    """Callees that read their caller's frame; a Python wrapper would be that caller."""
    found = [eval, exec, locals, vars, dir, globals, super, sys._getframe, inspect.currentframe]
    for name in ("_getframemodulename",):
        if hasattr(sys, name):
            found.append(getattr(sys, name))
    return found


_core.configure_function_sites(_frame_sensitive(), _timed_await)


def _check_lists(blacklist: Optional[set[str]], whitelist: Optional[set[str]]) -> None:
    if blacklist and whitelist:
        raise ValueError("Call blacklist and whitelist can not both be used at once")


def _builtin_names(obj: Any) -> set[str]:
    """Names of callable builtins, as ``ignore_builtins`` skips them."""
    func = function_rewrite.split_target(obj).func
    # ``function.__builtins__`` is 3.10+; the globals' ``__builtins__`` is a dict or a module.
    table = getattr(func, "__builtins__", None) or func.__globals__.get("__builtins__", builtins)
    if not isinstance(table, dict):
        table = vars(table)
    return {name for name, value in table.items() if callable(value)}


def wrap_calls(
    *,
    wrapper: CallWrapper,
    ignore_builtins: bool = False,
    blacklist: Optional[set[str]] = None,
    whitelist: Optional[set[str]] = None,
    rewrite_details: Optional[dict] = None,
) -> Callable[[T], T]:
    """Rewrite the decorated function so each call in it runs as
    ``wrapper(call, *args, **kwargs)``.

    ``blacklist``/``whitelist`` name calls as the original does: dotted attribute chains,
    string subscripts without quotes (``"a[b]"`` is ``a["b"]()``), ``[*]`` for any subscript.
    Calls of ``eval``, ``exec``, ``locals``, ``vars``, ``dir``, ``globals``, ``super``,
    ``sys._getframe`` and ``inspect.currentframe`` bypass the wrapper: they read their caller's
    frame, which must stay the function's own.
    """
    _check_lists(blacklist, whitelist)
    if not callable(wrapper):
        raise TypeError(f"wrapper must be callable, not {type(wrapper).__name__!r}")

    def decorate(target: T) -> T:
        return function_rewrite.rewrite(
            target,
            function_rewrite.Layer.wrap(wrapper),
            blacklist=blacklist,
            whitelist=whitelist,
            ignore=_builtin_names(target) if ignore_builtins else None,
            rewrite_details=rewrite_details,
        )

    return decorate


def _collect_sorted_times(times: TimeDict) -> Generator[str, None, None]:
    sum_times = ((name, sum(values)) for name, values in times.items())
    return (
        f"{name}: {total:.3g}s"
        for name, total in sorted(sum_times, key=itemgetter(1), reverse=True)
    )


def default_below_log(
    total: float, limit: float, times: TimeDict, func: Callable[..., Any]
) -> None:
    """Log the total time of an invocation under the limit."""
    log.info(f"{func.__qualname__} finished in {total:g}s, below limit of {limit:g}s")


def default_above_log(
    total: float, limit: float, times: TimeDict, func: Callable[..., Any]
) -> None:
    """Log the total time of an invocation at or over the limit, and each callee's summed
    time, longest first."""
    log_str = f"{func.__qualname__} finished in {total:g}s, above limit of {limit:g}s"
    log_str += f"\n{pformat(tuple(_collect_sorted_times(times)))}"
    log.info(log_str)


def _find_name(call: Any) -> str:
    """The name the original gives a callee in ``times``."""
    seen = 0
    while seen < 100:
        seen += 1
        for attr in ("__qualname__", "__name__"):
            try:
                name = getattr(call, attr)
            except Exception:
                continue
            if isinstance(name, str):
                return name
        try:
            call = call.__wrapped__
        except Exception:
            break
    return type(call).__name__


class _Reporter:
    """Ends an invocation's record, turns it into ``times`` and runs the callback; a
    callback that raises is reported as a warning, never into the profiled program."""

    __slots__ = ("above", "below", "finish", "func", "limit")

    def __init__(self, profile: Any, limit: float, below: Any, above: Any) -> None:
        self.finish = profile.finish
        self.limit, self.below, self.above = limit, below, above
        self.func: Any = None

    def __call__(self, token: int) -> None:
        total, calls = self.finish(
            token, self.limit, self.below is not None, self.above is not None
        )
        if calls is None:
            return
        callback = self.below if total < self.limit else self.above
        times: TimeDict = {}
        for source, durations in calls:
            name = source if isinstance(source, str) else _find_name(source)
            times.setdefault(name, []).extend(durations)
        try:
            callback(total, self.limit, times, self.func)
        except Exception as exc:
            warnings.warn(
                f"flat_profile callback {getattr(callback, '__qualname__', callback)!r} raised "
                f"{type(exc).__name__}: {exc}",
                _core.HandlerWarning,
                stacklevel=3,
            )


def _shim(func: Any, profile: Any, report: _Reporter) -> Any:
    """A function of ``func``'s own kind that times each invocation: an invocation of a
    generator or a coroutine is timed across its steps, and parked between them."""
    if inspect.isasyncgenfunction(func):
        make = _async_gen_shim
    elif inspect.iscoroutinefunction(func):
        make = _coroutine_shim
    elif inspect.isgeneratorfunction(func):
        make = _generator_shim
    else:
        make = _plain_shim
    return functools.wraps(func)(make(func, profile, report))


def _plain_shim(func: Any, profile: Any, report: _Reporter) -> Callable[..., Any]:
    enter = profile.enter

    def shim(*args: Any, **kwargs: Any) -> Any:
        token = enter()
        try:
            return func(*args, **kwargs)
        finally:
            report(token)

    return shim


def _generator_shim(func: Any, profile: Any, report: _Reporter) -> Callable[..., Any]:
    enter, park, resume = profile.enter, profile.park, profile.resume

    def generator_shim(*args: Any, **kwargs: Any) -> Any:
        token = enter()
        try:
            inner = func(*args, **kwargs)
        except BaseException:
            report(token)
            raise
        park(token)
        try:
            value: Any = None
            error: Optional[BaseException] = None
            while True:
                resume(token)
                try:
                    out = inner.send(value) if error is None else inner.throw(error)
                except StopIteration as stop:
                    return stop.value
                finally:
                    error = None
                    park(token)
                try:
                    value = yield out
                except GeneratorExit:
                    resume(token)
                    try:
                        inner.close()
                    finally:
                        park(token)
                    raise
                except BaseException as exc:
                    error, value = exc, None
        finally:
            report(token)

    return generator_shim


def _coroutine_shim(func: Any, profile: Any, report: _Reporter) -> Callable[..., Any]:
    enter, park, resume = profile.enter, profile.park, profile.resume

    async def coroutine_shim(*args: Any, **kwargs: Any) -> Any:
        token = enter()
        try:
            inner = func(*args, **kwargs)
        except BaseException:
            report(token)
            raise
        park(token)
        try:
            return await _Stepped(inner, resume, park, token)
        finally:
            report(token)

    return coroutine_shim


def _async_gen_shim(func: Any, profile: Any, report: _Reporter) -> Callable[..., Any]:
    enter, park, resume = profile.enter, profile.park, profile.resume

    async def async_gen_shim(*args: Any, **kwargs: Any) -> Any:
        token = enter()
        try:
            inner = func(*args, **kwargs)
        except BaseException:
            report(token)
            raise
        park(token)
        try:
            value: Any = None
            error: Optional[BaseException] = None
            while True:
                step = inner.asend(value) if error is None else inner.athrow(error)
                error = None
                try:
                    out = await _Stepped(step, resume, park, token)
                except StopAsyncIteration:
                    return
                try:
                    value = yield out
                except GeneratorExit:
                    await _Stepped(inner.aclose(), resume, park, token)
                    raise
                except BaseException as exc:
                    error, value = exc, None
        finally:
            report(token)

    return async_gen_shim


class _Stepped:
    """Awaits ``awaitable`` with a record resumed around each of its steps."""

    __slots__ = ("awaitable", "park", "resume", "token")

    def __init__(self, awaitable: Any, resume: Any, park: Any, token: int) -> None:
        self.awaitable, self.resume, self.park, self.token = awaitable, resume, park, token

    def __await__(self) -> Any:
        inner = self.awaitable.__await__()
        value: Any = None
        error: Optional[BaseException] = None
        while True:
            self.resume(self.token)
            try:
                out = inner.send(value) if error is None else inner.throw(error)
            except StopIteration as stop:
                return stop.value
            finally:
                error = None
                self.park(self.token)
            try:
                value = yield out
            except GeneratorExit:
                inner.close()
                raise
            except BaseException as exc:
                error, value = exc, None


def flat_profile(
    *,
    time_limit: float,
    below_callback: Optional[ProfilerCallback] = default_below_log,
    above_callback: Optional[ProfilerCallback] = default_above_log,
    ignore_builtins: bool = False,
    blacklist: Optional[set[str]] = None,
    whitelist: Optional[set[str]] = None,
    rewrite_details: Optional[dict] = None,
) -> Callable[[T], T]:
    """Time every call in the decorated function; when an invocation ends, run
    ``below_callback`` if its total time is under ``time_limit``, else ``above_callback``,
    as ``callback(total, limit, times, func)`` with ``times`` mapping each callee's name to
    its calls' durations. Each invocation (recursive, on another thread, or an interleaved
    coroutine) gets its own ``times``. An ``await f()`` counts the awaited work."""
    if below_callback is None and above_callback is None:
        raise ValueError("At least one of below_callback and above_callback must be non-None")
    _check_lists(blacklist, whitelist)

    def decorate(target: T) -> T:
        profile = _core.FlatProfile()
        report = _Reporter(profile, time_limit, below_callback, above_callback)

        def around(func: Any) -> Any:
            report.func = func
            return _shim(func, profile, report)

        return function_rewrite.rewrite(
            target,
            function_rewrite.Layer.time(profile),
            around=around,
            time_awaits=True,
            blacklist=blacklist,
            whitelist=whitelist,
            ignore=_builtin_names(target) if ignore_builtins else None,
            rewrite_details=rewrite_details,
        )

    return decorate


class RecompyleBaseTransformer(ast.NodeTransformer):
    """Base of transformers for :func:`rewrite_function`. One that moves the function's
    first line sets ``adjust_lineno`` (e.g. ``-1`` for one line earlier)."""

    def __init__(self) -> None:
        super().__init__()
        self._adjust_lineno = 0

    @property
    def adjust_lineno(self) -> int:
        return self._adjust_lineno

    @adjust_lineno.setter
    def adjust_lineno(self, value: int) -> None:
        self._adjust_lineno = value


def _find_node(tree: ast.AST, name: str, line: int) -> Optional[ast.AST]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            if min([node.lineno] + [d.lineno for d in node.decorator_list]) == line:
                return node
        if isinstance(node, ast.Lambda) and name == "<lambda>" and node.lineno == line:
            return node
    return None


def rewrite_function(
    target_func: Optional[Callable[..., T]] = None,
    transformers: Any = (),
    *,
    custom_locals: Optional[dict[str, object]] = None,
    rewrite_details: Optional[dict[str, object]] = None,
) -> Callable[..., T]:
    """A new function made from ``target_func``'s source after ``transformers`` (each an
    ``ast.NodeTransformer``, usually a :class:`RecompyleBaseTransformer`) have transformed its
    ``FunctionDef`` in turn. The function keeps its lines, columns, closure cells, defaults
    and annotations; a transformer that changes the parameters gets its def executed again
    (defaults evaluated with ``custom_locals`` in scope), as the original recompyle does."""
    if target_func is None:
        raise TypeError("rewrite_function() needs a target function")
    target = function_rewrite.split_target(target_func)
    func = target.func
    code = func.__code__
    # The scaffolded text with nothing rewritten: the function at its own lines and scopes.
    compiled_text = _core.rewrite_function(
        function_rewrite.source_of(func, code),
        sys.version_info[:2],
        code.co_firstlineno,
        code.co_name,
        hint=function_rewrite._lambda_hint(code) if code.co_name == "<lambda>" else None,
        freevars=list(code.co_freevars),
        class_name=function_rewrite._class_name(func),
        whitelist=["\0"],
    )
    tree = ast.parse(compiled_text.code, code.co_filename)
    node = _find_node(tree, code.co_name, code.co_firstlineno + compiled_text.line_shift)
    if node is None:
        raise function_rewrite.RewriteError(f"cannot find {func.__qualname__} in its source")
    original_args = ast.dump(node.args) if hasattr(node, "args") else None
    new_node: Any = node
    for transformer in transformers:
        new_node = transformer.visit(new_node)
        adjust = getattr(transformer, "adjust_lineno", 0)
        if adjust:
            ast.increment_lineno(new_node, adjust)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and isinstance(
        new_node, (ast.FunctionDef, ast.AsyncFunctionDef)
    ):
        new_node.decorator_list = node.decorator_list
    _replace_node(tree, node, new_node)
    ast.fix_missing_locations(tree)
    flags = code.co_flags & function_rewrite._FUTURE_FLAGS
    if rewrite_details is not None:
        rewrite_details["original_func"] = func
        rewrite_details["original_source"] = compiled_text.original_source
        rewrite_details["new_source"] = ast.unparse(new_node)
    params_changed = hasattr(new_node, "args") and ast.dump(new_node.args) != original_args
    if params_changed or custom_locals:
        if code.co_freevars:
            raise function_rewrite.RewriteError(
                "a transformer that changes the parameters needs the def executed again, "
                f"which a function with free variables ({', '.join(code.co_freevars)}) cannot be"
            )
        new_node.decorator_list = []
        module = ast.Module(body=[new_node], type_ignores=[])
        namespace: dict[str, Any] = dict(custom_locals or {})
        exec(
            compile(module, code.co_filename, "exec", flags=flags, dont_inherit=True),
            func.__globals__,
            namespace,
        )  # noqa: S102
        new = namespace[func.__name__]
        functools.update_wrapper(new, func)
        return target.rebuild(new)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module_code = compile(tree, code.co_filename, "exec", flags=flags, dont_inherit=True)
    shift = compiled_text.line_shift
    new_code = function_rewrite._find_code(module_code, code.co_name, code.co_firstlineno + shift)
    if new_code is None:
        raise function_rewrite.RewriteError(
            f"the transformed {func.__qualname__} has another name or line"
        )
    scaffold_qualname = getattr(new_code, "co_qualname", None) or compiled_text.scaffold_qualname
    new_code = function_rewrite._fix_code(new_code, shift, scaffold_qualname, func.__qualname__)
    if target.in_place:
        func.__code__ = new_code
        return target.rebuild(target.top)
    return target.rebuild(function_rewrite._new_function(func, new_code))


def _replace_node(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if item is old:
                        value[i] = new
                        return
