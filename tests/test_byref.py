"""``recompyle.byref``: by-reference parameters (issue 7), every bullet of the behaviour.

Callers are written as ordinary functions of this file, so their source is where
``linecache`` finds it, as for any program; module-level and ``exec``'d callers register
their text in ``linecache`` the way the REPL and IPython do.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import linecache
import sys
import threading
import traceback

import pytest

import recompyle
from recompyle import byref
from recompyle.byref import ByRefError

PY312 = sys.version_info >= (3, 12)
PY311 = sys.version_info >= (3, 11)


@byref("x")
def add(x, y, /):
    """Add y to x, in place."""
    x += y


@byref("x")
def inc(x):
    x += 1
    return x


@byref("a", "b")
def swap(a, b):
    a, b = b, a


@byref("out")
def store(value, *, out=None):
    out = value  # noqa: F841 (by-reference write)


def run_source(source: str, namespace: dict | None = None, name: str = "<byref-test>") -> dict:
    """Run ``source`` as a module whose text ``linecache`` knows."""
    filename = f"{name}-{abs(hash(source))}"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns = {"add": add, "inc": inc, "swap": swap, "__name__": "byref_test_module"}
    ns.update(namespace or {})
    exec(compile(source, filename, "exec"), ns)
    return ns


# --- the example of the issue and the kinds of names ---------------------------------------


def test_issue_example_at_module_level():
    ns = run_source("a = 60\nadd(a, 40)\nassert a == 100\n")
    assert ns["a"] == 100


def test_local_variable():
    a = 60
    add(a, 40)
    assert a == 100


def test_return_value_is_kept():
    n = 1
    assert inc(n) == 2
    assert n == 2


def test_swap_writes_both():
    p, q = "p", "q"
    swap(p, q)
    assert (p, q) == ("q", "p")


G = 0


def test_declared_global():
    global G
    G = 5
    add(G, 1)
    assert G == 6


def test_undeclared_global_read_by_the_caller():
    before = G
    add(G, 10)  # the caller reads the module's G; the write goes there
    assert globals()["G"] == before + 10


def test_nonlocal_and_free_variables():
    total = 1
    seen = 2

    def bump():
        nonlocal total
        add(total, 10)

    def free():
        add(seen, 20)  # `seen` is a free variable of `free` (never assigned there)

    bump()
    free()
    assert total == 11
    assert seen == 22


def test_variable_captured_by_a_lambda_stays_consistent():
    a = 1
    read = lambda: a  # noqa: E731
    add(a, 4)
    assert a == 5
    assert read() == 5


def test_class_body_names():
    class K:
        size = 3
        add(size, 4)
        doubled = size * 2

    assert K.size == 7
    assert K.doubled == 14


def test_exec_with_separate_locals():
    g: dict = {"add": add}
    loc: dict = {"v": 1}
    source = "add(v, 2)\n"
    filename = "<byref-exec-locals>"
    linecache.cache[filename] = (len(source), None, [source], filename)
    exec(compile(source, filename, "exec"), g, loc)
    assert loc["v"] == 3
    assert "v" not in g


# --- attributes, items, mixes --------------------------------------------------------------


class Box:
    def __init__(self):
        self.value = 1
        self.items = [10, 20, {"k": 5, (1, 2): 7}]
        self.inner = None


def test_attribute_chain():
    box = Box()
    box.inner = Box()
    add(box.inner.value, 9)
    assert box.inner.value == 10
    assert box.value == 1


def test_constant_subscripts_and_mixes():
    box = Box()
    box.inner = Box()
    data = {"key": 1, -1: 2}
    add(box.items[0], 1)
    add(box.items[-2], 2)
    add(box.items[2]["k"], 3)
    add(box.items[2][1, 2], 4)
    add(data["key"], 5)
    add(data[-1], 6)
    add(box.inner.items[2]["k"], 100)
    assert box.items == [11, 22, {"k": 8, (1, 2): 11}]
    assert data == {"key": 6, -1: 8}
    assert box.inner.items[2]["k"] == 105


def test_containers_are_the_objects_of_the_call():
    box = Box()
    first = box.items

    @byref("x")
    def replace_list(x):
        box.items = [0, 0, 0]
        x = 99  # noqa: F841 (by-reference write)

    replace_list(box.items[0])
    assert first[0] == 99
    assert box.items == [0, 0, 0]


# --- positional, keyword, methods ----------------------------------------------------------


def test_keyword_argument():
    n = 1

    @byref("x")
    def bump(x, step=1):
        x += step

    bump(x=n, step=2)
    assert n == 3
    bump(step=3, x=n)
    assert n == 6


def test_keyword_only_parameter():
    target = None
    store(42, out=target)
    assert target == 42


def test_unpassed_parameter_keeps_its_default_and_writes_nothing():
    target = "unchanged"
    store(1)
    assert target == "unchanged"


class Counter:
    def __init__(self):
        self.count = 0

    @byref("x")
    def add_to(self, x, n):
        x += n
        self.count += 1

    @classmethod
    @byref("x")
    def class_add(cls, x):
        x += 100

    @staticmethod
    @byref("x")
    def static_add(x):
        x += 1000


class SubCounter(Counter):
    @byref("x")
    def add_to(self, x, n):
        super().add_to(x, n * 2)


def test_methods():
    c = Counter()
    v = 1
    c.add_to(v, 2)
    assert v == 3
    c.class_add(v)
    Counter.class_add(v)
    assert v == 203
    c.static_add(v)
    Counter.static_add(v)
    assert v == 2203
    Counter.add_to(c, v, 1)
    assert v == 2204
    assert c.count == 2


def test_super_call_and_nested_byref():
    s = SubCounter()
    v = 1
    s.add_to(v, 5)
    assert v == 11


def test_bound_method_in_a_variable():
    c = Counter()
    m = c.add_to
    v = 0
    m(v, 7)
    assert v == 7


def test_multiline_call():
    a = 1
    add(
        a,
        2,
    )
    assert a == 3


def test_private_names_are_mangled():
    class Holder:
        def __init__(self):
            self.__n = 1

        def bump(self):
            __local = 5
            add(self.__n, 1)
            add(__local, 1)
            return self.__n, __local

    assert Holder().bump() == (2, 6)


def test_two_calls_on_one_line():
    a, b = 1, 10
    if PY311:
        assert inc(a) + inc(b) == 13
        assert (a, b) == (2, 11)
    else:
        with pytest.raises(ByRefError, match="several calls on that line"):
            inc(a) + inc(b)
        assert (a, b) == (1, 10)


def test_same_line_calls_of_other_functions_are_not_ambiguous():
    a = 1
    assert str(inc(a)) == "2"
    assert a == 2


# --- refusals ------------------------------------------------------------------------------


ran = []


@byref("x")
def record(x):
    ran.append(x)


@pytest.mark.parametrize(
    "call, reason",
    [
        ("record(1)", "a constant"),
        ("record('s')", "a constant"),
        ("record(-1)", "a constant"),
        ("record(a + 1)", "an expression"),
        ("record(len(a_list))", "a call"),
        ("record((w := 3))", r"an assignment expression \(:=\)"),
        ("record(a_list[i])", "a subscript whose key is not a constant"),
        ("record(a_list[0:1])", "a slice"),
        ("record(*a_list)", r"an unpacked \*argument"),
        ("record(**{'x': 1})", r"an unpacked \*\*argument"),
        ("record(x=a + 1)", "an expression"),
        ("record(f'{a}')", "an expression"),
        ("record(len)", "the builtin 'len'"),
    ],
)
def test_refused_arguments(call, reason):
    ran.clear()
    source = f"def caller():\n    a = 1\n    i = 0\n    a_list = [1]\n    {call}\ncaller()\n"
    with pytest.raises(ByRefError, match=reason) as info:
        run_source(source, {"record": record}, name="<refusal>")
    assert ran == [], "the body must not run"
    message = str(info.value)
    assert "'x'" in message and info.value.parameter == "x"
    assert ":5:5" in info.value.site and info.value.site.startswith("<refusal>")
    assert isinstance(info.value, ValueError)


def test_refusal_names_the_file_line_and_column():
    ran.clear()
    with pytest.raises(ByRefError) as info:
        record(1 + 1)
    line = inspect.currentframe().f_lineno - 1
    assert info.value.site == f"{__file__}:{line}:9"
    assert f"{__file__}:{line}:9" in str(info.value)
    assert ran == []


def test_partial_is_refused():
    a = 1
    p = functools.partial(add, a)
    with pytest.raises(ByRefError, match="not a direct call"):
        p(2)
    p2 = functools.partial(add)
    with pytest.raises(ByRefError, match="not a direct call"):
        p2(a, 2)
    assert a == 1


def test_map_and_other_c_callers_are_refused():
    a = 1
    with pytest.raises(ByRefError):
        list(map(inc, [a]))
    with pytest.raises(ByRefError, match="not called by a call expression"):
        for _ in map(inc, [a]):
            pass
    with pytest.raises(ByRefError):
        sorted([a, a], key=inc)
    assert a == 1


def test_python_wrapper_with_star_args_is_refused():
    def wrapper(*args):
        return inc(*args)

    a = 1
    with pytest.raises(ByRefError, match=r"unpacked \*argument"):
        wrapper(a)
    assert a == 1


def test_callee_that_cannot_be_checked_is_refused():
    fs = [inc]
    a = 1
    i = 0
    with pytest.raises(ByRefError, match="not a direct call"):
        fs[i](a)
    assert a == 1


def test_comprehension_variables():
    xs = [1, 2]
    if PY312:
        with pytest.raises(ByRefError, match="comprehension"):
            [inc(x) for x in xs]  # noqa: B018
    else:
        assert [(inc(x), x)[1] for x in xs] == [2, 3]
    # Generator expressions have frames of their own on every version.
    assert list((inc(y), y)[1] for y in xs) == [2, 3]
    # Names of the enclosing function used inside a comprehension are writable.
    total = 0
    [add(total, x) for x in xs]  # noqa: B018
    assert total == 3


def test_source_not_available():
    a = 1
    with pytest.raises(ByRefError, match="source of"):
        exec(compile("add(a, 1)", "<nowhere-byref>", "exec"), {"add": add, "a": a})


def test_decorating_the_wrong_things():
    with pytest.raises(TypeError, match="no parameter 'z'"):
        byref("z")(lambda x: x)
    with pytest.raises(TypeError, match="not 'args'|no parameter 'args'"):

        @byref("args")
        def star(*args):
            pass

    with pytest.raises(TypeError, match="generator and async"):

        @byref("x")
        def gen(x):
            yield x

    with pytest.raises(TypeError, match="generator and async"):

        @byref("x")
        async def coro(x):
            pass

    with pytest.raises(TypeError, match="parameter names"):
        byref(1)
    with pytest.raises(TypeError):
        byref()
    with pytest.raises(TypeError, match="plain functions"):
        byref("x")(classmethod(lambda cls, x: x))


def test_deleted_parameter():
    @byref("x")
    def drop(x):
        del x

    a = 1
    with pytest.raises(ByRefError, match="no value at return"):
        drop(a)
    assert a == 1


# --- exceptions ----------------------------------------------------------------------------


def test_raising_writes_nothing_back():
    @byref("x")
    def fail(x):
        x = 99  # noqa: F841 (by-reference write)
        raise KeyError("boom")

    a = 1
    with pytest.raises(KeyError, match="boom"):
        fail(a)
    assert a == 1


def test_exceptions_keep_their_type_message_and_original_line():
    @byref("x")
    def fail(x):
        x = 2  # noqa: F841 (by-reference write)
        raise LookupError("where")

    a = 1
    with pytest.raises(LookupError) as info:
        fail(a)
    last = traceback.extract_tb(info.value.__traceback__)[-1]
    assert last.filename == __file__
    assert last.lineno == fail.__wrapped__.__code__.co_firstlineno + 3
    assert last.name == "fail"


def test_stop_iteration_from_the_body_stays_stop_iteration():
    @byref("x")
    def stop(x):
        x = 5  # noqa: F841 (by-reference write)
        raise StopIteration("done")

    @byref("x")
    def runtime(x):
        raise RuntimeError("generator raised StopIteration") from StopIteration()

    a = 1
    with pytest.raises(StopIteration, match="done") as info:
        stop(a)
    assert traceback.extract_tb(info.value.__traceback__)[-1].name == "stop"
    with pytest.raises(RuntimeError) as info2:
        runtime(a)
    assert traceback.extract_tb(info2.value.__traceback__)[-1].name == "runtime"
    assert a == 1


def test_wrong_call_arguments_raise_cpythons_type_error():
    with pytest.raises(TypeError, match=r"missing 1 required positional argument: 'y'"):
        add(1)
    with pytest.raises(TypeError, match="positional-only"):
        add(x=1, y=2)


# --- kinds of callers ----------------------------------------------------------------------


def test_generator_caller():
    def gen():
        a = 1
        add(a, 1)
        yield a
        add(a, 10)
        yield a

    assert list(gen()) == [2, 12]


def test_coroutine_caller():
    async def coro():
        a = 1
        await asyncio.sleep(0)
        add(a, 5)
        return a

    assert asyncio.run(coro()) == 6


def test_other_thread():
    results = []

    def worker(start):
        a = start
        for _ in range(100):
            add(a, 1)
        results.append(a)

    threads = [threading.Thread(target=worker, args=(n * 1000,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [100, 1100, 2100, 3100]


@byref("acc")
def fact(n, acc):
    if n > 1:
        fact(n - 1, acc)
    acc *= n


def test_recursion():
    acc = 1
    fact(5, acc)
    assert acc == 120


def test_exec_module_level_and_function():
    ns = run_source("x = 1\nadd(x, 1)\ndef f():\n    y = 5\n    add(y, 1)\n    return y\nz = f()\n")
    assert ns["x"] == 2 and ns["z"] == 6


def test_many_locals_and_other_locals_untouched():
    a, b, c = 1, [2], "3"
    d = object()
    add(a, 1)
    assert (a, b, c) == (2, [2], "3")
    assert d is not None


def test_repeated_calls_reuse_the_site():
    a = 0
    for _ in range(50):
        add(a, 2)
    assert a == 100


# --- the decorated function is the original in everything else ------------------------------


def test_keeps_name_doc_wrapped_signature_lines():
    original = add.__wrapped__
    assert add.__name__ == "add" and add.__qualname__ == "add"
    assert add.__doc__ == "Add y to x, in place."
    assert add.__module__ == __name__
    assert str(inspect.signature(add)) == "(x, y, /)"
    lines, first = inspect.getsourcelines(add)
    assert first == original.__code__.co_firstlineno
    assert lines[0].startswith('@byref("x")')
    assert inspect.getsourcefile(inspect.unwrap(add)) == __file__


def test_frame_inside_the_body_is_at_the_original_lines():
    @byref("x")
    def where(x):
        x = sys._getframe().f_lineno  # noqa: F841 (by-reference write)
        return sys._getframe().f_code.co_name

    a = 0
    assert where(a) == "where"
    assert a == where.__wrapped__.__code__.co_firstlineno + 2


def test_package_exports():
    assert recompyle.byref is byref
    assert callable(recompyle.byref)
    assert recompyle.ByRefError is ByRefError
    assert issubclass(ByRefError, ValueError)
    import recompyle.byref as module

    assert module.byref is not module  # the decorator function inside the module
    assert "byref" in dir(recompyle)


# --- the generator copy runs the body as the original would ---------------------------------


def test_cells_free_variables_and_exception_handlers_in_the_body():
    offset = 100

    @byref("x")
    def busy(x, items):
        read = lambda: x  # noqa: E731  (x is a cell of the body)
        try:
            items[99]
        except IndexError:
            x = read() + offset  # offset is a free variable
        with open(__file__) as f:
            x += len(f.readline()) * 0
        for i in items:
            try:
                if i == 2:
                    raise ValueError(i)
            except ValueError:
                x += 1
            finally:
                x += 10
        return read()

    a = 1
    assert busy(a, [1, 2]) == 122
    assert a == 122


def test_recursion_through_the_body_and_kwargs_defaults():
    @byref("acc")
    def total(n, *, acc=0, step=1):
        if n:
            total(n - 1, acc=acc, step=step)
        acc += step

    acc = 0
    total(4, acc=acc, step=2)
    assert acc == 10


def test_instrumented_caller_through_recompyle():
    """Calls rewritten by recompyle's import hook reach byref the same way, with a handler
    listening (the call goes through the native proxy) and without."""
    from recompyle.handlers import handler
    from recompyle.loader import instrument_source

    source = (
        "from recompyle import byref\n"
        "@byref('x')\n"
        "def add(x, y):\n"
        "    x += y\n"
        "v = 1\n"
        "add(v, 2)\n"
        "class K:\n"
        "    def m(self):\n"
        "        w = 3\n"
        "        self.add(w, 4)\n"
        "        return w\n"
        "    add = staticmethod(add)\n"
        "r = K().m()\n"
    )
    filename = "<byref-instrumented>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    code = instrument_source(source.encode(), filename, "byref_instrumented")
    seen = []
    for listening in (False, True):
        ns: dict = {"__name__": "byref_instrumented"}
        if listening:
            with handler(before=lambda event: seen.append(event)):
                exec(code, ns)
        else:
            exec(code, ns)
        assert ns["v"] == 3 and ns["r"] == 7
    assert seen, "the handler saw the instrumented calls"


# --- a site's second and later calls take a short path with the same checks ------------------


def _swappable(x):  # replaced by a byref function, then by a partial, in the test below
    return x


def test_repeated_site_sees_the_callee_change():
    global _swappable
    original = _swappable
    _swappable = inc
    try:
        a = 0
        for n in range(6):
            if n == 3:
                _swappable = functools.partial(inc)
            if n < 3:
                _swappable(a)
            else:
                with pytest.raises(ByRefError, match="not a direct call"):
                    _swappable(a)
        assert a == 3
    finally:
        _swappable = original


def test_repeated_method_site_sees_another_class():
    class A:
        @byref("x")
        def m(self, x, y=1):
            x += y

    class B:
        # B().m(a) is A.m(b, 5, a): `a` is y there, and x must not be written to it.
        m = functools.partialmethod(A.m, 5)

    objs = [A(), A(), B(), A()]
    a = 0
    refused = 0
    for obj in objs:
        try:
            obj.m(a)
        except ByRefError:
            refused += 1
    assert (a, refused) == (3, 1)


def test_repeated_site_with_attributes_of_changing_objects():
    boxes = [Box(), Box(), Box()]
    for box in boxes:
        add(box.items[2]["k"], 1)
        add(box.value, 2)
    assert [(b.items[2]["k"], b.value) for b in boxes] == [(6, 3)] * 3


def test_repeated_site_deleting_the_parameter_the_second_time():
    @byref("x")
    def maybe_drop(x, drop):
        if drop:
            del x

    a = 1
    maybe_drop(a, False)
    with pytest.raises(ByRefError, match="no value at return"):
        for flag in (False, True):
            maybe_drop(a, flag)
    assert a == 1


def test_multiline_method_calls():
    """3.10 puts a method call on the line of its attribute, 3.9 on the line it starts on,
    3.11+ give the whole span: each is found."""
    c = Counter()
    v = 0
    # fmt: off
    (c
     .add_to(v, 1))
    (c
     .add_to(v,
             n=2))
    (c.
     add_to)(v, 3)
    # fmt: on
    assert v == 6


def test_repeated_keyword_site():
    @byref("x")
    def bump(x, step=1):
        x += step

    a = 0
    for step in (1, 2, 3):
        bump(x=a, step=step)
    assert a == 6
    for step in (1, 2):
        bump(step=step, x=a)  # another site, keywords in another order
    assert a == 9


def test_lambda_caller_writes_its_free_variable():
    a = 1
    (lambda: add(a, 2))()
    assert a == 3


def test_not_direct_calls_are_refused_before_the_body():
    ran.clear()
    a = 1
    with pytest.raises(ByRefError, match="not a direct call"):
        functools.partial(record)(a)
    with pytest.raises(ByRefError):
        list(map(record, [a]))
    assert ran == []


def test_one_variable_for_two_parameters_gets_the_last_named():
    @byref("p", "q")
    def two(p, q):
        p, q = "p", "q"  # noqa: F841 (by-reference write)

    v = 0
    two(v, v)
    assert v == "q"
