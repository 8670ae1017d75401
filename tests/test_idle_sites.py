"""Idle call sites: a rewritten site tests the builtin ``__recompyle_on__`` before it calls
a selector (``(__recompyle__(ID, f) if __recompyle_on__ else f)(x)``, or
``(__recompyle_ml__(ID, obj, 'm')(x) if __recompyle_on__ else obj.m(x))``), so nothing at
all runs at a site while nobody listens. The flag must follow every way of listening: code the
interpreter has already specialised while the flag was ``False`` (run 10000 times) still
reports its calls once anyone listens, and is idle again once the last listener leaves.
"""

from __future__ import annotations

import builtins
import marshal
import sys
import traceback
import warnings

import pytest

import recompyle
from conftest import load_tracked
from recompyle import _core

SOURCE = """
class C:
    def m(self, x):
        return x

obj = C()
seq = [1, 2, 3]

def f(x):
    return x

def g(x, k=0):
    return x

def work():
    f(1)
    g(2, k=1)
    len(seq)
    obj.m(3)

def warm():
    for _ in range(10000):
        work()
"""

#: The callee text of each site in ``work``, as a handler's ``event.source`` names it.
WORK_SITES = {"f", "g", "len", "obj.m"}


def flag() -> object:
    return builtins.__dict__[_core.LISTENING_NAME]


@pytest.fixture
def warmed(instrumented):
    """The module, its ``work`` specialised while nothing listened."""
    assert flag() is False, "something listens before the test"
    mod = instrumented(SOURCE, "idle_mod")
    mod.warm()
    assert flag() is False
    return mod


@pytest.fixture
def tracked(tmp_path):
    """Load source instrumented in a tracked namespace, as module ``idle_tmod``."""
    yield lambda source: load_tracked(tmp_path, source, "idle_tmod")
    sys.modules.pop("idle_tmod", None)


def work_sources(mod, events: list) -> set[str]:
    return {e.source for e in events if e.filename == mod.__file__ and e.caller == "work"}


def test_the_flag_is_a_false_builtin_while_nothing_listens():
    assert _core.LISTENING_NAME == "__recompyle_on__"
    assert flag() is False


def test_a_handler_added_after_warm_up_sees_every_site_and_leaving_makes_it_idle(warmed):
    seen: list = []
    h = recompyle.add_handler(before=seen.append)
    try:
        assert flag() is True
        warmed.work()
    finally:
        recompyle.remove_handler(h)
    assert work_sources(warmed, seen) == WORK_SITES
    assert flag() is False
    count = len(seen)
    warmed.work()
    assert len(seen) == count


def test_an_after_only_handler_and_a_filtered_one_turn_the_flag_on(warmed):
    seen: list = []
    with recompyle.handler(after=seen.append):
        assert flag() is True
        warmed.work()
    assert work_sources(warmed, seen) == WORK_SITES
    filtered: list = []
    with recompyle.handler(before=filtered.append, callee=warmed.g):
        assert flag() is True
        warmed.work()
    assert [e.source for e in filtered] == ["g"]
    assert flag() is False


def test_two_handlers_the_flag_stays_on_until_the_last_leaves(warmed):
    first: list = []
    second: list = []
    a = recompyle.add_handler(before=first.append)
    b = recompyle.add_handler(before=second.append)
    recompyle.remove_handler(a)
    assert flag() is True
    warmed.work()
    recompyle.remove_handler(b)
    assert flag() is False
    assert work_sources(warmed, first) == set()
    assert work_sources(warmed, second) == WORK_SITES


def test_a_globals_only_handler_leaves_call_sites_idle(tracked):
    mod = tracked(SOURCE)
    mod.warm()
    reads: list = []
    with recompyle.handler(globals=reads.append):
        assert flag() is False
        mod.work()
    names = {e.name for e in reads}
    assert {"f", "g", "obj", "seq"} <= names
    assert _core.LISTENING_NAME not in names


def test_a_tracked_namespace_answers_the_flag_without_reporting_it(tracked):
    mod = tracked(SOURCE)
    mod.warm()
    assert _core.LISTENING_NAME not in vars(mod)
    calls: list = []
    reads: list = []
    with recompyle.handler(before=calls.append, globals=reads.append):
        mod.work()
    assert work_sources(mod, calls) == WORK_SITES
    assert _core.LISTENING_NAME not in {e.name for e in reads}
    assert flag() is False


def _site_calls(profiler, mod) -> dict[str, int]:
    return {
        s.callee: s.calls for s in profiler.stats() if s.file == mod.__file__ and s.caller == "work"
    }


@pytest.mark.parametrize("tree", [True, False])
def test_a_profiler_started_after_warm_up_counts_every_site(warmed, tree):
    with recompyle.Profiler(tree=tree) as p:
        assert flag() is True
        warmed.work()
        warmed.work()
    assert flag() is False
    assert _site_calls(p, warmed) == dict.fromkeys(WORK_SITES, 2)


def test_nested_profilers_keep_the_flag_until_the_outer_stops(warmed):
    outer = recompyle.Profiler().start()
    try:
        with recompyle.Profiler(tree=False):
            warmed.work()
        assert flag() is True
        warmed.work()
    finally:
        outer.stop()
    assert flag() is False
    assert _site_calls(outer, warmed) == dict.fromkeys(WORK_SITES, 2)


def test_slow_calls_listening_is_what_opentelemetry_starts(warmed):
    """``recompyle.otel`` starts the profiler's tree and listens for slow calls natively."""
    seen: list = []

    def on_slow(call):
        seen.append(call)
        return [None] * len(call.opened)

    _core.profiler_start(tree=True)
    _core.slow_calls_listen(on_slow, 0)
    try:
        assert flag() is True
        warmed.work()
    finally:
        _core.slow_calls_listen(None)
        _core.profiler_stop(tree=True)
    assert flag() is False
    assert len(seen) >= len(WORK_SITES)


def test_a_dependency_tracer_turns_the_flag_on(warmed):
    from recompyle.deps import Tracer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Tracer():
            assert flag() is True
            warmed.work()
    assert flag() is False


def direct_flag() -> object:
    return builtins.__dict__[_core.DIRECT_CALLS_NAME]


DEEP = """
import builtins

def down(n, seen):
    if n == 0:
        seen.append(builtins.__recompyle_c_on__)
        return 0
    return down(n - 1, seen) + 1

def run(n, seen):
    total = 0
    for _ in range(1):
        total += down(n, seen)
    return total
"""


def test_direct_calls_only_while_the_profiler_alone_listens_within_the_nesting_bound(
    instrumented,
):
    """``__recompyle_c__`` makes a call only while ``__recompyle_c_on__`` is True: the
    profiler alone listens and reported calls may nest deeper. Deeper (or with a handler)
    the selector decides, and a call it does not report is the interpreter's, with no
    native frame; the deepest calls are still counted."""
    mod = instrumented(DEEP, "idle_deep")
    assert direct_flag() is False
    seen: list = []
    with recompyle.Profiler() as prof:
        assert direct_flag() is True
        assert mod.run(50, seen) == 50
        assert mod.run(500, seen) == 500
        assert direct_flag() is True
        with recompyle.handler(before=lambda event: None):
            assert flag() is True and direct_flag() is False
        assert direct_flag() is True
    assert seen == [True, False]
    assert flag() is False and direct_flag() is False
    down = [row for row in prof.stats() if row.callee == "down"]
    assert sum(row.calls for row in down) == 2 + 50 + 500
    assert "__recompyle_c__" in _names(mod.run.__code__) | _names(mod.down.__code__)


def _names(code) -> set[str]:
    """The names ``code`` and the code objects inside it load."""
    found = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            found |= _names(const)
    return found


def test_class_bodies_exec_and_a_marshalled_copy_report_when_listening(tmp_path):
    """A class body loads the flag by name (LOAD_NAME, in a loop: straight-line module and
    class code runs once and calls the selector alone); ``exec``'d code and a code object
    through ``marshal`` (as the cache stores it) find it in the builtins like any module."""
    path = tmp_path / "bodies.py"
    path.write_text(
        "def f(x):\n    return x\nclass K:\n    for v in (1,):\n        w = f(v)\n"
        "for u in (2,):\n    f(u)\nf(3)\n",
        "utf-8",
    )
    code = recompyle.instrument_source(path.read_bytes(), str(path), "bodies")
    class_body = next(c for c in code.co_consts if getattr(c, "co_name", None) == "K")
    assert _core.LISTENING_NAME in class_body.co_names
    assert _core.LISTENING_NAME in code.co_names
    copy = marshal.loads(marshal.dumps(code))
    assert _names(copy) == _names(code)
    for runnable in (code, copy):
        exec(runnable, {"__name__": "bodies"})  # idle
        seen: list = []
        with recompyle.handler(before=seen.append):
            exec(runnable, {"__name__": "bodies"})
        assert [(e.caller, e.source) for e in seen] == [
            ("K", "f"),
            ("<module>", "f"),
            ("<module>", "f"),
        ]


BROKEN = """\
class Box:
    pass

def reach(o):
    return o.inner.method(1)

def call(o):
    return o.fn(1)
"""


def _traceback(code, listening: bool) -> list[str]:
    ns: dict = {"__name__": "broken"}
    exec(code, ns)
    box = ns["Box"]()
    lines = []
    for name in ("reach", "call"):
        try:
            if listening:
                with recompyle.handler(before=lambda e: None):
                    ns[name](box)
            else:
                ns[name](box)
        except AttributeError as exc:
            lines += traceback.format_exception(type(exc), exc, exc.__traceback__)[2:]
    return lines


@pytest.mark.parametrize("listening", [False, True])
def test_an_error_in_the_callee_has_the_plain_traceback(tmp_path, listening):
    """The callee is written twice; whichever copy runs, an error in it has the original
    positions (3.11+ carets included)."""
    path = tmp_path / "broken.py"
    path.write_text(BROKEN, "utf-8")
    plain = compile(BROKEN, str(path), "exec", dont_inherit=True)
    instrumented = recompyle.instrument_source(path.read_bytes(), str(path), "broken")
    expected = _traceback(plain, False)
    assert len(expected) >= 4
    if sys.version_info >= (3, 11):
        assert any("^" in line for line in expected)
    assert _traceback(instrumented, listening) == expected


# --- 3.13+: a site listened to gets the plain call's specialisation back -----------------

RESPECIALISE = """
import weakref

class P:
    def __init__(self, x):
        self.x = x

class L(list):
    pass

seq = [1, 2, 3]
lst = []
text = "abc"

def f(x):
    return x

def work(n):
    for i in range(n):
        len(seq)
        isinstance(i, int)
        lst.append(i)
        text.startswith("a")
        f(i)
        P(i)

def boom():
    raise ValueError("boom")

def abandon():
    # The method site is selected (its object looked up) before the argument raises.
    obj = L()
    ref = weakref.ref(obj)
    try:
        obj.append(boom())
    except ValueError:
        pass
    del obj
    return ref
"""

#: What plain 3.13-3.15 code specialises each call of ``work``'s loop to, in order.
PLAIN_CALLS = [
    "CALL_LEN",
    "CALL_ISINSTANCE",
    "CALL_LIST_APPEND",
    "CALL_METHOD_DESCRIPTOR_FAST",
    "CALL_PY_EXACT_ARGS",
    "CALL_ALLOC_AND_ENTER_INIT",
]


def _calls(fn) -> dict[int, str]:
    """``fn``'s CALL instructions as the interpreter has specialised them, by offset."""
    import dis

    return {
        i.offset: i.opname
        for i in dis.get_instructions(fn, adaptive=True)
        if i.opname.startswith("CALL")
    }


@pytest.mark.skipif(sys.version_info < (3, 13), reason="CALL_NON_PY_GENERAL is 3.13+")
@pytest.mark.parametrize("how", ["handler", "profiler"])
def test_a_site_listened_to_gets_the_plain_specialisation_back(instrumented, how):
    """While something listens, the interpreter calls a proxy at each site; 3.13's
    specialiser turns a call instruction that sees it into CALL_NON_PY_GENERAL, which
    builtins pass too, so an idle ``len(x)`` that shared that instruction kept the generic
    call. Idle again (for longer than any backoff: 4,096 runs at most), each site's idle
    call has the specialisation plain code gets."""
    plain: dict = {}
    exec(compile(RESPECIALISE, "<plain>", "exec", dont_inherit=True), plain)
    plain["work"](5000)
    assert set(PLAIN_CALLS) <= set(_calls(plain["work"]).values()), "CPython differs"
    mod = instrumented(RESPECIALISE, "respecialise_mod")
    mod.work(5000)
    idle = {at: op for at, op in _calls(mod.work).items() if op in PLAIN_CALLS}
    assert sorted(idle.values()) == sorted(PLAIN_CALLS)
    events: list = []
    if how == "handler":
        handler = recompyle.add_handler(before=events.append)
        try:
            mod.work(300)
        finally:
            handler.remove()
        sources = {e.source for e in events if e.filename == mod.__file__}
        assert {"len", "isinstance", "lst.append", "text.startswith", "f", "P"} <= sources
    else:
        with recompyle.Profiler() as p:
            mod.work(300)
        counts = {s.callee: s.calls for s in p.stats() if s.file == mod.__file__}
        assert counts["len"] == counts["lst.append"] == counts["P"] == 300
    assert flag() is False
    listened = _calls(mod.work)
    # A builtin's idle call was not turned into the generic call (a Python function's may
    # be: CALL_NON_PY_GENERAL deopts on a function by itself).
    assert not [
        at for at, op in idle.items()
        if op != "CALL_PY_EXACT_ARGS" and listened[at] == "CALL_NON_PY_GENERAL"
    ]  # fmt: skip
    mod.work(5000)
    after = _calls(mod.work)
    assert {at: after[at] for at in idle} == idle


def test_a_call_whose_argument_raised_releases_its_object(instrumented):
    """A listened call that never happens (its argument raised after the method's object
    was selected) keeps nothing alive: the object dies with the frame's stack, as in plain
    code, whichever branch selected it."""
    mod = instrumented(RESPECIALISE, "respecialise_mod2")
    assert mod.abandon()() is None
    handler = recompyle.add_handler(before=lambda event: None)
    try:
        assert mod.abandon()() is None
    finally:
        handler.remove()
