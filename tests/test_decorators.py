"""wrap_calls, flat_profile and rewrite_function: the original recompyle API, without its limits."""

from __future__ import annotations

import ast
import asyncio
import functools
import gc
import importlib
import inspect
import linecache
import logging
import sys
import textwrap
import threading
import time
import traceback
import types
import weakref

import pytest

from recompyle import RecompyleBaseTransformer, flat_profile, rewrite_function, wrap_calls
from recompyle.function_rewrite import RewriteError

log_lines: list = []


def recording(calls: list):
    def wrapper(__call, *args, **kwargs):
        calls.append((getattr(__call, "__qualname__", repr(__call)), args, kwargs))
        return __call(*args, **kwargs)

    return wrapper


def passthrough(__call, *args, **kwargs):
    return __call(*args, **kwargs)


def other_function(val):
    return f"other val: {val}"


def test_seed_example_output(capsys):
    def basic_wrapper(__call, *args, **kwargs):
        print(f"Before {__call.__qualname__}, args: {args}, kwargs: {kwargs}")
        try:
            return __call(*args, **kwargs)
        finally:
            print(f"After {__call.__qualname__}")

    @wrap_calls(wrapper=basic_wrapper)
    def example_function(count: int) -> str:
        """Function we are rewriting to wrap calls."""
        for _ in (int(v) for v in range(count)):
            pass
        return other_function(val=123.45)

    print(example_function(2))
    assert capsys.readouterr().out == textwrap.dedent(
        """\
        Before range, args: (2,), kwargs: {}
        After range
        Before int, args: (0,), kwargs: {}
        After int
        Before int, args: (1,), kwargs: {}
        After int
        Before other_function, args: (), kwargs: {'val': 123.45}
        After other_function
        other val: 123.45
        """
    )
    assert example_function.__doc__ == "Function we are rewriting to wrap calls."
    assert example_function.__name__ == "example_function"


def test_evaluation_order_and_call_shapes():
    order = []

    def note(x):
        order.append(x)
        return x

    def f(*args, **kwargs):
        return args, kwargs

    calls = []

    @wrap_calls(wrapper=recording(calls))
    def body():
        return note(f)(note(1), *note([2, 3]), k=note(4), **note({"z": 5}))

    assert body() == ((1, 2, 3), {"k": 4, "z": 5})
    assert order == [f, 1, [2, 3], 4, {"z": 5}]
    assert [c[0] for c in calls] == [
        "test_evaluation_order_and_call_shapes.<locals>.note",
        "test_evaluation_order_and_call_shapes.<locals>.note",
        "test_evaluation_order_and_call_shapes.<locals>.note",
        "test_evaluation_order_and_call_shapes.<locals>.note",
        "test_evaluation_order_and_call_shapes.<locals>.note",
        "test_evaluation_order_and_call_shapes.<locals>.f",
    ]


def test_filters_follow_the_original():
    obj = types.SimpleNamespace(a={"b": len, 0: len, "c": len}, run=len)
    calls = []

    @wrap_calls(wrapper=recording(calls), blacklist={"obj.a[b]", "obj.a[*]"})
    def black():
        return obj.a["b"]("x") + obj.a[0]("yy") + obj.run("zzz") + len("w")

    assert black() == 7
    assert [c[1] for c in calls] == [("zzz",), ("w",)]

    calls.clear()

    @wrap_calls(wrapper=recording(calls), whitelist={"obj.a[b]"})
    def white():
        return obj.a["b"]("x") + obj.a["c"]("yy") + len("w")

    assert white() == 4
    assert [c[1] for c in calls] == [("x",)]

    calls.clear()

    @wrap_calls(wrapper=recording(calls), ignore_builtins=True)
    def no_builtins():
        return other_function(len("abc"))

    assert no_builtins() == "other val: 3"
    assert [c[0] for c in calls] == ["other_function"]

    with pytest.raises(ValueError, match="blacklist and whitelist"):
        wrap_calls(wrapper=passthrough, blacklist={"a"}, whitelist={"b"})


def test_rewrite_details():
    details: dict = {}

    def target(x):
        return other_function(x)

    new = wrap_calls(wrapper=passthrough, rewrite_details=details)(target)
    assert details["original_func"] is target
    assert details["original_source"].strip().startswith("def target(x):")
    assert "(other_function, x)" in details["new_source"]
    assert new(1) == "other val: 1"
    assert target(1) == "other val: 1"  # the original is left alone


def _raiser(x):
    raise KeyError(x)


def test_traceback_shows_function_wrapper_callee():
    def wrapper(__call, *args, **kwargs):
        return __call(*args, **kwargs)

    @wrap_calls(wrapper=wrapper)
    def target():
        x = 1
        return _raiser(x)

    with pytest.raises(KeyError) as info:
        target()
    frames = traceback.extract_tb(info.value.__traceback__)
    names = [f.name for f in frames]
    assert names[-3:] == ["target", "wrapper", "_raiser"]
    line = frames[-3]
    assert line.lineno == target.__code__.co_firstlineno + 3
    assert line.line == "return _raiser(x)"
    if sys.version_info >= (3, 11):
        assert (line.colno, line.end_colno) == (15, 25)


def test_frame_sensitive_callees_see_the_function():
    calls = []

    @wrap_calls(wrapper=recording(calls))
    def target(a):
        b = a + 1
        return (
            sorted(locals()),
            eval("a + b"),
            sys._getframe().f_code.co_name,
            inspect.currentframe().f_code.co_name,
            sorted(vars()),
        )

    assert target(1) == (["a", "b"], 3, "target", "target", ["a", "b"])
    assert [c[0] for c in calls] == ["sorted", "sorted"]


class Base:
    def greet(self):
        return "base"

    @classmethod
    def make(cls):
        return cls.__name__


class Child(Base):
    @wrap_calls(wrapper=passthrough)
    def greet(self):
        self.__secret = "s"
        return super().greet() + self.__secret

    @classmethod
    @wrap_calls(wrapper=passthrough)
    def make(cls):
        return super().make() + "!"

    @wrap_calls(wrapper=passthrough)
    @staticmethod
    def static(x):
        return str(x)


def test_methods_super_private_names_and_method_decorators():
    c = Child()
    assert c.greet() == "bases"
    assert c._Child__secret == "s"
    assert Child.make() == "Child!"
    assert Child.static(3) == "3"
    assert Child.greet.__qualname__ == "Child.greet"


def test_decorators_above_and_below_are_kept():
    seen = []

    def tag(fn):
        @functools.wraps(fn)
        def tagged(*a, **k):
            seen.append("tag")
            return fn(*a, **k)

        return tagged

    calls = []

    @tag
    @wrap_calls(wrapper=recording(calls))
    @functools.cache
    def cached(x):
        return other_function(x)

    assert cached(1) == "other val: 1"
    assert cached(1) == "other val: 1"
    assert seen == ["tag", "tag"]
    assert len(calls) == 1  # the second call hit the cache
    assert cached.__wrapped__.cache_info().hits == 1


def test_closures_and_nonlocal_share_the_original_cells():
    count = 0

    def bump(n):
        return n + 1

    def make():
        nonlocal count

        @wrap_calls(wrapper=passthrough)
        def inc():
            nonlocal count
            count = bump(count)
            return count

        return inc

    inc = make()
    assert inc() == 1
    assert inc() == 2
    assert count == 2


def test_nested_function_qualnames_are_the_originals():
    @wrap_calls(wrapper=passthrough)
    def outer():
        def inner():
            return 1

        return inner, (lambda: 2)

    inner, lam = outer()
    prefix = "test_nested_function_qualnames_are_the_originals.<locals>.outer.<locals>."
    assert inner.__qualname__ == prefix + "inner"
    assert lam.__qualname__ == prefix + "<lambda>"


def test_lambda():
    calls = []
    f = wrap_calls(wrapper=recording(calls))(lambda x: other_function(x))
    g = wrap_calls(wrapper=recording(calls))(lambda y: str(y))
    assert f(1) == "other val: 1"
    assert g(2) == "2"
    assert [c[0] for c in calls] == ["other_function", "str"]


def test_exec_source_in_linecache_and_clear_error_without():
    source = "def f(x):\n    return str(x) + '!'\n"
    filename = "<recompyle-test-exec>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns: dict = {}
    exec(compile(source, filename, "exec"), ns)
    calls = []
    g = wrap_calls(wrapper=recording(calls))(ns["f"])
    assert g(1) == "1!"
    assert [c[0] for c in calls] == ["str"]

    ns2: dict = {}
    exec(compile(source, "<nowhere>", "exec"), ns2)
    with pytest.raises(RewriteError, match="source of f is not available"):
        wrap_calls(wrapper=passthrough)(ns2["f"])


def test_future_annotations_and_defaults_evaluated_once():
    source = textwrap.dedent(
        """\
        from __future__ import annotations
        evaluated = []

        def default():
            evaluated.append(1)
            return 5

        def f(x: Undefined = default()) -> AlsoUndefined:
            def g(y: Nope) -> None:
                return None
            g(1)
            return x
        """
    )
    filename = "<recompyle-test-future>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns: dict = {}
    exec(compile(source, filename, "exec"), ns)
    new = wrap_calls(wrapper=passthrough)(ns["f"])
    assert new() == 5
    assert ns["evaluated"] == [1]
    assert new.__annotations__ == {"x": "Undefined", "return": "AlsoUndefined"}


def test_no_hidden_parameter():
    @wrap_calls(wrapper=passthrough)
    def target(a, b=2, *, c=3):
        return sorted(locals())

    assert target(1) == ["a", "b", "c"]
    assert str(inspect.signature(target)) == "(a, b=2, *, c=3)"
    with pytest.raises(TypeError, match=r"target\(\) got an unexpected keyword argument 'd'"):
        target(1, d=4)


def test_stacking_runs_the_outer_wrapper_first():
    order = []

    def named(tag):
        def wrapper(__call, *args, **kwargs):
            order.append((tag, __call.__qualname__))
            return __call(*args, **kwargs)

        return wrapper

    @wrap_calls(wrapper=named("outer"))
    @wrap_calls(wrapper=named("inner"))
    def target():
        return other_function(1)

    assert target() == "other val: 1"
    assert order == [("outer", "other_function"), ("inner", "other_function")]


def test_reload_rewrites_again(tmp_path, monkeypatch):
    pkg = tmp_path / "reloadme.py"
    pkg.write_text(
        "from recompyle import wrap_calls\n"
        "calls = []\n"
        "def w(c, *a, **k):\n"
        "    calls.append(c.__name__)\n"
        "    return c(*a, **k)\n"
        "@wrap_calls(wrapper=w)\n"
        "def f():\n"
        "    return len('ab')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("reloadme")
    assert mod.f() == 2
    mod = importlib.reload(mod)
    assert mod.f() == 2
    assert mod.calls == ["len"]
    sys.modules.pop("reloadme", None)


def collect_into(store: list):
    def callback(total, limit, times, func):
        store.append((total, limit, {k: list(v) for k, v in times.items()}, func))

    return callback


def test_flat_profile_callbacks_and_times():
    below, above = [], []

    def sleeper(t):
        time.sleep(t)

    # Limits far apart from the work, so a loaded machine cannot move a call across one.
    @flat_profile(
        time_limit=0.3, below_callback=collect_into(below), above_callback=collect_into(above)
    )
    def target(t):
        sleeper(t)
        return len([1, 2])

    assert target(0.0) == 2
    assert target(0.4) == 2
    assert len(below) == 1 and len(above) == 1
    total, limit, times, func = above[0]
    assert total >= 0.4 and limit == 0.3
    assert set(times) == {"test_flat_profile_callbacks_and_times.<locals>.sleeper", "len"}
    assert times["test_flat_profile_callbacks_and_times.<locals>.sleeper"][0] >= 0.4
    assert func.__qualname__ == "test_flat_profile_callbacks_and_times.<locals>.target"

    with pytest.raises(ValueError, match="At least one"):
        flat_profile(time_limit=1, below_callback=None, above_callback=None)


def test_flat_profile_reports_when_the_function_raises():
    above = []

    @flat_profile(time_limit=0.0, above_callback=collect_into(above))
    def target():
        len("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        target()
    assert list(above[0][2]) == ["len", "RuntimeError"]


def test_flat_profile_default_logs(caplog):
    @flat_profile(time_limit=100)
    def quick():
        return len("x")

    @flat_profile(time_limit=0)
    def slow():
        return len("x") + len("y")

    with caplog.at_level(logging.INFO, logger="recompyle.applied.flat_profiler"):
        quick()
        slow()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("test_flat_profile_default_logs.<locals>.quick finished in ")
    assert messages[0].endswith("s, below limit of 100s")
    assert "slow finished in" in messages[1] and "above limit of 0s" in messages[1]
    assert "'len: " in messages[1]


def test_flat_profile_callback_that_raises_warns():
    def bad(total, limit, times, func):
        raise ValueError("callback broke")

    @flat_profile(time_limit=100, below_callback=bad)
    def target():
        return 7

    with pytest.warns(Warning, match="callback broke"):
        assert target() == 7


def test_flat_profile_recursion_and_threads_get_their_own_times():
    results = []

    @flat_profile(time_limit=100, below_callback=collect_into(results))
    def fact(n):
        if n <= 1:
            return abs(1)
        return n * fact(n - 1)

    assert fact(4) == 24
    # Innermost first: fact(1) called abs once; each outer level called fact once.
    innermost = results[0][2]
    assert list(innermost) == ["abs"]
    for r in results[1:]:
        assert list(r[2]) == [
            "test_flat_profile_recursion_and_threads_get_their_own_times.<locals>.fact"
        ]
        assert (
            len(r[2]["test_flat_profile_recursion_and_threads_get_their_own_times.<locals>.fact"])
            == 1
        )

    per_thread = []

    @flat_profile(time_limit=100, below_callback=collect_into(per_thread))
    def work(n):
        for _ in range(n):
            len("x")
            time.sleep(0.0005)

    threads = [threading.Thread(target=work, args=(n,)) for n in (5, 10, 15, 20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = sorted(len(r[2]["len"]) for r in per_thread)
    assert counts == [5, 10, 15, 20]


def test_flat_profile_generators_time_across_their_life():
    results = []

    @flat_profile(time_limit=100, below_callback=collect_into(results))
    def gen(n):
        for i in range(n):
            x = yield str(i)
            if x:
                len(x)
        return "done"

    g = gen(3)
    assert next(g) == "0"
    assert g.send("abc") == "1"
    assert results == []
    assert list(g) == ["2"]
    assert len(results) == 1
    assert sorted(results[0][2]) == ["len", "range", "str"]
    assert len(results[0][2]["str"]) == 3

    g2 = gen(5)
    next(g2)
    g2.close()
    assert len(results) == 2


def test_flat_profile_async_times_awaited_work_and_interleaving():
    results = []

    async def pause(t):
        await asyncio.sleep(t)
        return t

    @flat_profile(time_limit=100, below_callback=collect_into(results))
    async def job(t):
        await pause(t)
        return len("x")

    async def main():
        return await asyncio.gather(job(0.4), job(0.01))

    assert asyncio.run(main()) == [1, 1]
    assert inspect.iscoroutinefunction(job)
    assert len(results) == 2
    by_total = sorted(results, key=lambda r: r[0])
    pause_name = "test_flat_profile_async_times_awaited_work_and_interleaving.<locals>.pause"
    assert by_total[0][2][pause_name][0] >= 0.01
    assert by_total[1][2][pause_name][0] >= 0.4
    # Not mixed up with the other task's (a bound far from 0.01 s, for loaded machines).
    assert by_total[0][2][pause_name][0] < 0.4


def test_flat_profile_async_generator():
    results = []

    @flat_profile(time_limit=100, below_callback=collect_into(results))
    async def agen(n):
        for i in range(n):
            await asyncio.sleep(0)
            yield str(i)

    async def main():
        return [x async for x in agen(3)]

    assert asyncio.run(main()) == ["0", "1", "2"]
    assert len(results) == 1
    assert len(results[0][2]["str"]) == 3


def test_flat_profile_holds_no_references_after_the_callback():
    results = []

    class Thing:
        def method(self):
            return 1

    def make_callee():
        def callee(obj):
            return obj

        return callee

    @flat_profile(time_limit=100, below_callback=lambda *a: results.append(a[2]))
    def target(thing, callee):
        callee(thing)
        thing.method()
        return None

    thing, callee = Thing(), make_callee()
    refs = [weakref.ref(thing), weakref.ref(callee)]
    target(thing, callee)
    del thing, callee
    gc.collect()
    assert [r() for r in refs] == [None, None]
    assert set(results[0]) == {
        "test_flat_profile_holds_no_references_after_the_callback.<locals>.make_callee.<locals>.callee",
        "test_flat_profile_holds_no_references_after_the_callback.<locals>.Thing.method",
    }


class Upper(RecompyleBaseTransformer):
    def visit_Constant(self, node):
        if isinstance(node.value, str):
            return ast.copy_location(ast.Constant(node.value.upper()), node)
        return node


def test_rewrite_function_with_a_custom_transformer():
    factor = 2

    def target(x):
        return "value: " + str(x * factor)

    details: dict = {}
    new = rewrite_function(target, [Upper()], rewrite_details=details)
    assert new(3) == "VALUE: 6"
    assert target(3) == "value: 6"
    assert "'VALUE: '" in details["new_source"]
    new_kw = rewrite_function(target_func=target, transformers=[Upper()])
    assert new_kw(1) == "VALUE: 2"
