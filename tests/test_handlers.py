"""Events, handlers and the call-site proxy, in-process."""

from __future__ import annotations

import sys
import textwrap
import threading
import warnings
import weakref

import pytest

import recompyle
from recompyle import _core


def test_before_and_after_events_describe_the_call(instrumented):
    mod = instrumented(
        """
        def callee(a, b=0, *, k=None):
            return a + b

        def caller():
            return callee(1, b=2, k=3)
        """
    )
    seen = []
    with recompyle.handler(
        before=lambda e: seen.append(("before", e.phase, e.func, e.args, dict(e.kwargs), e.result)),
        after=lambda e: seen.append(
            (
                "after",
                e.phase,
                e.result,
                e.exception,
                e.lineno,
                e.col_offset,
                e.end_col_offset,
                e.source,
                e.caller,
                e.filename,
                e.module,
            )
        ),
    ):
        assert mod.caller() == 3
    assert seen[0] == ("before", "before", mod.callee, (1,), {"b": 2, "k": 3}, None)
    assert seen[1] == (
        "after",
        "after",
        3,
        None,
        6,
        11,
        30,
        "callee",
        "caller",
        mod.__file__,
        "mod",
    )


def test_events_kept_by_a_handler_keep_their_arguments(instrumented):
    # Events borrow the interpreter's argument vector while the call runs and are reused
    # when no handler keeps them: a kept event must still describe its own call afterwards,
    # for plain, keyword, method and nested calls, and whether or not it was looked at.
    mod = instrumented(
        """
        class Box:
            def put(self, item, *, times=1):
                return [item] * times

        def inner(x):
            return [x * 2]

        class Thing:
            pass

        def make():
            return Thing()

        def outer(a, *, k):
            return inner(a) + k

        def caller():
            box = Box()
            return outer(1, k=[10]), box.put("x", times=2), outer(3, k=[30])
        """
    )
    kept = []
    glimpsed = []

    def before(e):
        if e.source == "outer":
            kept.append(e)  # kept, arguments never read during the call
        else:
            glimpsed.append((e.source, e.args, dict(e.kwargs)))

    with recompyle.handler(before=before):
        assert mod.caller() == ([2, 10], ["x", "x"], [6, 30])
    assert [(e.args, e.kwargs, e.func, e.result, e.phase) for e in kept] == [
        ((1,), {"k": [10]}, mod.outer, [2, 10], "after"),
        ((3,), {"k": [30]}, mod.outer, [6, 30], "after"),
    ]
    assert glimpsed[0] == ("Box", (), {})
    assert glimpsed[1] == ("inner", (1,), {})
    assert glimpsed[2] == ("box.put", ("x",), {"times": 2})
    assert glimpsed[3] == ("inner", (3,), {})

    methods = []
    with recompyle.handler(after=methods.append):
        mod.caller()
    put = next(e for e in methods if e.source == "box.put")
    assert put.func.__func__ is mod.Box.put
    assert isinstance(put.func.__self__, mod.Box)
    assert put.args == ("x",)
    # Events nobody kept are recycled, and hold nothing of a finished call: the callee,
    # its arguments and its result are freed as they would be without the handler.
    with recompyle.handler(after=lambda e: (e.func, e.args, e.result)):
        thing = mod.make()
    ref = weakref.ref(thing)
    del thing
    assert ref() is None


def test_exception_reaches_after_handler_and_caller_unchanged(instrumented):
    mod = instrumented(
        """
        def boom():
            raise KeyError("x")

        def caller():
            boom()
        """
    )
    excs = []
    with recompyle.handler(after=lambda e: excs.append((e.source, e.exception))):
        with pytest.raises(KeyError) as info:
            mod.caller()
    assert excs == [("KeyError", None), ("boom", info.value)]
    names = [entry.name for entry in info.traceback]
    assert names[-2:] == ["caller", "boom"]


def test_raising_handler_is_reported_once_and_program_goes_on(instrumented):
    mod = instrumented(
        """
        def f(x):
            return x * 2

        def loop():
            return [f(i) for i in range(5)]
        """
    )

    def bad(event):
        raise ValueError("handler bug")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with recompyle.handler(before=bad) as h:
            assert mod.loop() == [0, 2, 4, 6, 8]
    relevant = [w for w in caught if issubclass(w.category, recompyle.HandlerWarning)]
    assert len(relevant) == 1
    assert "handler bug" in str(relevant[0].message)
    assert h.errors >= 5


def test_raising_handler_with_warnings_as_errors_still_does_not_break(instrumented):
    mod = instrumented(
        """
        def f():
            return abs(1)
        """
    )
    unraisable = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with recompyle.handler(after=lambda e: 1 / 0):
                assert mod.f() == 1
                assert [mod.f() for _ in range(3)] == [1, 1, 1]
    finally:
        sys.unraisablehook = old_hook
    assert len(unraisable) == 1


def test_handler_calling_instrumented_code_does_not_recurse(instrumented):
    mod = instrumented(
        """
        def helper():
            return len([1, 2])

        def main():
            return helper()
        """
    )
    seen = []

    def before(event):
        mod.helper()  # instrumented code inside a handler: not reported
        seen.append(event.source)

    with recompyle.handler(before=before):
        assert mod.main() == 2
    assert seen == ["helper", "len"]


def test_handlers_added_and_removed_during_dispatch(instrumented):
    mod = instrumented(
        """
        def g():
            return 1

        def f():
            return g()
        """
    )
    calls = []
    second = []

    def first(event):
        calls.append("first")
        if not second:
            second.append(recompyle.add_handler(before=lambda e: calls.append("second")))

    h = recompyle.add_handler(before=first)
    try:
        mod.f()
        mod.f()
    finally:
        h.remove()
        second[0].remove()
        second[0].remove()  # twice is harmless
    assert calls == ["first", "first", "second"]
    assert _core.handlers() == []


def test_handler_arguments_are_checked():
    with pytest.raises(TypeError):
        recompyle.add_handler(before=42)
    with pytest.raises(ValueError):
        recompyle.add_handler()


def test_events_from_many_threads(instrumented):
    mod = instrumented(
        """
        def work(n):
            total = 0
            for i in range(n):
                total += abs(i)
            return total
        """
    )
    lock = threading.Lock()
    counts = {}

    def after(event):
        with lock:
            counts[event.source] = counts.get(event.source, 0) + 1

    with recompyle.handler(after=after):
        threads = [threading.Thread(target=mod.work, args=(100,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert counts == {"range": 8, "abs": 800}


def test_selectors_reject_bad_calls():
    with pytest.raises(TypeError, match="site id and a callee"):
        _core.select(1)
    with pytest.raises(TypeError, match="site id and an object"):
        _core.select_method(1, [], 5)
    target = [3]
    assert _core.select(0, len) is len
    assert _core.select_method(0, target) is target  # nothing listens: the object itself
    _core.profiler_start()
    try:
        with pytest.raises(TypeError):
            _core.select("x", print)  # the site id is read only when someone listens
        with pytest.raises(TypeError):
            _core.select_method("x", target)
        proxy = _core.select(0, len)
        assert proxy is not len and proxy([1]) == 1
        assert (proxy.__qualname__, proxy.__module__, repr(proxy)) == ("len", "builtins", repr(len))
        method = _core.select_method(0, target).count
        assert method(3) == 1 and method.__qualname__ == "list.count"
        with pytest.raises(AttributeError, match="'list' object has no attribute 'nope'"):
            _core.select_method(0, target).nope  # noqa: B018
    finally:
        _core.profiler_stop()


def test_method_lookup_selector():
    """``__recompyle_ml__`` gives the method: ``obj.m`` when nothing listens, a proxy
    passing ``obj`` first otherwise."""
    with pytest.raises(TypeError, match="site id, an object and a name"):
        _core.select_method_lookup(1, [])
    target = [3, 1, 3]
    bound = _core.select_method_lookup(0, target, "count")
    assert bound == target.count and bound(3) == 2  # nothing listens: a bound method
    with pytest.raises(AttributeError, match="'list' object has no attribute 'nope'"):
        _core.select_method_lookup(0, target, "nope")
    _core.profiler_start()
    try:
        with pytest.raises(TypeError):
            _core.select_method_lookup("x", target, "count")
        method = _core.select_method_lookup(0, target, "count")
        assert method is not bound and method(3) == 2 and method.__qualname__ == "list.count"
        assert _core.select_method_lookup(0, target, "copy")() == target
        with pytest.raises(AttributeError, match="'list' object has no attribute 'nope'"):
            _core.select_method_lookup(0, target, "nope")
    finally:
        _core.profiler_stop()


def test_call_selector_makes_the_call():
    """``__recompyle_c__`` makes the call it is given, with positional and keyword
    arguments, reported or not, a bound method's too."""
    call = _core.select_call
    with pytest.raises(TypeError, match="site id, a callee and its arguments"):
        call(1)
    assert call(0, max, 3, 4, key=None) == 4  # nothing listens
    _core.profiler_start()
    try:
        assert call(0, max, 3, 4, key=lambda v: -v) == 3
        assert call(0, [1, 2].index, 2) == 1
        assert call(0, dict, a=1) == {"a": 1}
        with pytest.raises(TypeError):
            call("x", max, 3, 4)
    finally:
        _core.profiler_stop()


def test_directly_made_calls_fail_as_the_interpreter_words_it(instrumented):
    """A call ``__recompyle_c__`` makes (the profiler alone listening) raises what the
    interpreter's own call raises: the callee's messages, a non-callable's."""
    source = """
        def f(a):
            return a

        def g(n):
            return n

        def calls(x):
            out = []
            for _ in range(2):
                out.append(g(f(x)))
            return out

        def too_many(x):
            for _ in range(1):
                return f(x, x)

        def keyword(x):
            for _ in range(1):
                return f(b=x)

        def not_callable(x):
            for _ in range(1):
                return x(1)

        def builtin(x):
            for _ in range(1):
                return len(x, x)
        """
    mod = instrumented(source)
    plain: dict[str, object] = {"__name__": "mod"}
    exec(compile(textwrap.dedent(source), "<plain>", "exec"), plain)
    names = ("too_many", "keyword", "not_callable", "builtin")
    expected: dict[str, str] = {}
    for name in names:
        with pytest.raises(TypeError) as info:
            plain[name](5)
        expected[name] = str(info.value)
    with recompyle.Profiler() as prof:
        assert mod.calls(7) == [7, 7]
        for name in names:
            with pytest.raises(TypeError) as info:
                getattr(mod, name)(5)
            assert str(info.value) == expected[name]
    assert "__recompyle_c__" in mod.too_many.__code__.co_names
    rows = {r.callee: r for r in prof.stats() if r.caller == "calls" and r.module == "mod"}
    assert rows["f"].calls == 2 and rows["g"].calls == 1 + 1


def test_call_errors_name_the_real_callee_while_listening(instrumented):
    source = """
        def f(a):
            return a

        def dup():
            return f(a=1, **{"a": 2})

        def star():
            return f(*None)
        """
    mod = instrumented(source)
    # The interpreter's own wording (it changes between versions: compare with a plain run).
    plain: dict[str, object] = {"__name__": "mod"}
    exec(compile(textwrap.dedent(source), "<plain>", "exec"), plain)
    expected: dict[str, str] = {}
    for name in ("dup", "star"):
        with pytest.raises(TypeError) as info:
            plain[name]()
        expected[name] = str(info.value)
    assert "mod.f() got multiple values for keyword argument 'a'" in expected["dup"]
    with recompyle.handler(before=lambda e: None):
        for name in ("dup", "star"):
            with pytest.raises(TypeError) as info:
                getattr(mod, name)()
            assert str(info.value) == expected[name]


def test_profiler_counts_calls_and_raises(instrumented):
    mod = instrumented(
        """
        def ok():
            return 1

        def bad():
            raise ValueError

        def main():
            for _ in range(10):
                ok()
            for _ in range(3):
                try:
                    bad()
                except ValueError:
                    pass
        """,
        name="profiled",
    )
    profiler = recompyle.Profiler()
    profiler.reset()
    with profiler:
        mod.main()
    rows = {r.callee: r for r in profiler.stats() if r.module == "profiled"}
    assert rows["ok"].calls == 10 and rows["ok"].raised == 0
    assert rows["bad"].calls == 3 and rows["bad"].raised == 3
    assert sorted(r.line for r in profiler.stats() if r.callee == "range") == [9, 11]
    assert rows["ok"].total_ns > 0 and rows["ok"].max_ns <= rows["ok"].total_ns
    assert rows["ok"].line == 10 and rows["ok"].col == 8 and rows["ok"].caller == "main"
    profiler.reset()
    assert [r for r in profiler.stats() if r.module == "profiled"] == []


def test_selectors_have_signatures():
    import builtins
    import inspect

    assert str(inspect.signature(builtins.__recompyle__)) == "(site_id, callee, /)"
    assert str(inspect.signature(builtins.__recompyle_m__)) == "(site_id, obj, /)"
    assert str(inspect.signature(builtins.__recompyle_ml__)) == "(site_id, obj, name, /)"
    assert (
        str(inspect.signature(builtins.__recompyle_c__)) == "(site_id, callee, /, *args, **kwargs)"
    )
