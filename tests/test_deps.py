"""Dependency graphs: call and read edges, value and source hashes, per-thread and per-task
stacks, ``track`` for modules that are not tracked, and ``run --deps``."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import threading

import pytest

import recompyle
from conftest import load_tracked, run_python
from recompyle.deps import hash_value

SEED = """
import math

A = 23
B = 42
CONFIG = {"scale": 2, "names": ["a", "b"]}

def f(x):
    return x + A

class C:
    def __init__(self, x):
        self.x = x + B

    def m(self, y):
        return self.x + y + CONFIG["scale"]

def g(x):
    if x % 2 == 0:
        return C(x).m(x)
    return f(x) + math.floor(1.5)

def boom():
    raise ValueError(A)

def safe():
    try:
        boom()
    except ValueError:
        pass
    return f(1)
"""


@pytest.fixture
def lib(tmp_path):
    module = load_tracked(tmp_path, SEED, "deplib")
    yield module
    sys.modules.pop("deplib", None)


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_the_seed_example_graph(lib):
    with recompyle.Tracer() as t:
        assert lib.g(2) == 2 + 42 + 2 + 2
    g = t.graph
    assert g.calls() == [
        ("class:deplib:C", "function:deplib:C.__init__"),
        ("function:deplib:g", "class:deplib:C"),
        ("function:deplib:g", "function:deplib:C.m"),
    ]
    b_node = f"value:deplib:B:{_sha('int:42')}"
    reads = g.reads()
    assert ("function:deplib:C.__init__", b_node) in reads
    assert ("function:deplib:g", "class:deplib:C") in reads
    config = [r for r in reads if r[1].startswith("value:deplib:CONFIG:")]
    assert [r[0] for r in config] == ["function:deplib:C.m"]
    assert g.nodes[b_node]["hash_method"] == "canonical"
    assert g.nodes[b_node]["type"] == "builtins.int"
    assert g.nodes["function:deplib:g"]["kind"] == "function"
    data = g.to_dict()
    assert data["format"] == "recompyle-deps" and data["version"] == 1
    source_hash = {n["id"]: n.get("source_hash") for n in data["nodes"]}
    import inspect

    assert source_hash["function:deplib:C.m"] == _sha(inspect.getsource(lib.C.m))


def test_modules_and_functions_read_as_globals_are_edges_not_values(lib):
    with recompyle.Tracer() as t:
        lib.g(3)
    reads = t.graph.reads()
    assert ("function:deplib:g", "module:math") in reads
    assert ("function:deplib:g", "function:deplib:f") in reads
    assert ("function:deplib:g", "builtin:math:floor") in t.graph.calls()
    assert not [n for n in t.graph.nodes.values() if n["kind"] == "value" and n["name"] == "f"]


def test_a_call_that_raises_and_is_caught_leaves_the_stack_right(lib):
    with recompyle.Tracer() as t:
        assert lib.safe() == 24
        assert lib.g(3) == 26 + 1
    calls = t.graph.calls()
    assert ("function:deplib:safe", "function:deplib:boom") in calls
    assert ("function:deplib:safe", "function:deplib:f") in calls
    assert not [c for c in calls if c[0] == "function:deplib:boom" and "deplib" in c[1]]
    from recompyle import deps

    assert deps._stack.get() is None


def test_values_that_change_are_separate_nodes_and_nothing_after_the_tracer(lib):
    with recompyle.Tracer() as t:
        lib.f(0)
        lib.A = 24
        lib.f(0)
    lib.f(0)
    a_nodes = sorted(n for n in t.graph.nodes if n.startswith("value:deplib:A:"))
    assert a_nodes == sorted(
        [f"value:deplib:A:{_sha('int:23')}", f"value:deplib:A:{_sha('int:24')}"]
    )
    assert not recompyle._core.handlers()


def test_per_thread_stacks(tmp_path):
    mod = load_tracked(
        tmp_path,
        """
        import threading
        X = 1
        Y = 2
        def leaf_x():
            return X
        def leaf_y():
            return Y
        def run_x(barrier):
            barrier.wait()
            for _ in range(200):
                leaf_x()
        def run_y(barrier):
            barrier.wait()
            for _ in range(200):
                leaf_y()
        """,
        "depthreads",
    )
    try:
        barrier = threading.Barrier(2)
        with recompyle.Tracer() as t:
            threads = [
                threading.Thread(target=mod.run_x, args=(barrier,)),
                threading.Thread(target=mod.run_y, args=(barrier,)),
            ]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
        calls = t.graph.calls()
        assert ("function:depthreads:run_x", "function:depthreads:leaf_x") in calls
        assert ("function:depthreads:run_y", "function:depthreads:leaf_y") in calls
        crossed = [
            c for c in calls if ("_x" in c[0] and "_y" in c[1]) or ("_y" in c[0] and "_x" in c[1])
        ]
        assert crossed == []
    finally:
        sys.modules.pop("depthreads", None)


def test_per_task_stacks(tmp_path):
    mod = load_tracked(
        tmp_path,
        """
        import asyncio
        X = 1
        Y = 2
        def leaf_x():
            return X
        def leaf_y():
            return Y
        async def task_x():
            for _ in range(5):
                await asyncio.sleep(0)
                leaf_x()
        async def task_y():
            for _ in range(5):
                await asyncio.sleep(0)
                leaf_y()
        async def main():
            await asyncio.gather(task_x(), task_y())
        """,
        "deptasks",
    )
    try:
        with recompyle.Tracer() as t:
            asyncio.run(mod.main())
        calls = t.graph.calls()
        assert ("function:deptasks:task_x", "function:deptasks:leaf_x") in calls
        assert ("function:deptasks:task_y", "function:deptasks:leaf_y") in calls
        crossed = [
            c for c in calls if ("_x" in c[0] and "_y" in c[1]) or ("_y" in c[0] and "_x" in c[1])
        ]
        assert crossed == []
    finally:
        sys.modules.pop("deptasks", None)


def test_value_hashes_are_canonical_and_documented():
    assert hash_value(23) == (_sha("int:23"), "canonical", None)
    assert hash_value(None)[0] == _sha("None")
    assert hash_value(1.5)[0] == _sha("float:" + (1.5).hex())
    assert hash_value({"b": 1, "a": [1, 2]}) == hash_value({"a": [1, 2], "b": 1})
    assert hash_value({3, 1, 2}) == hash_value({1, 2, 3})
    assert hash_value((1, 2))[0] != hash_value([1, 2])[0]
    assert hash_value(True)[0] != hash_value(1)[0]
    assert hash_value("x")[0] == _sha("str:1:x")


def test_values_without_a_canonical_form_are_pickled_or_reported_unhashable():
    cyclic: list = [1]
    cyclic.append(cyclic)
    digest, method, error = hash_value(cyclic)
    assert method == "pickle" and digest and error is None
    digest, method, error = hash_value(threading.Lock())
    assert digest is None and method == "none"
    assert "pickle" in error

    class Bad:
        def __reduce__(self):
            raise RuntimeError("no")

    digest, method, error = hash_value(Bad())
    assert (digest, method) == (None, "none")
    assert "would run the program's code" in error and "Bad.__reduce__" in error

    class Chatty:
        def __getstate__(self):
            print("side effect")
            return {}

    assert hash_value({"k": Chatty()})[0] is None


def test_picklable_values_hash_by_content_with_functions_by_name():
    import fractions

    first = hash_value(fractions.Fraction(1, 3))
    assert first[1] == "pickle" and first == hash_value(fractions.Fraction(2, 6))
    with_funcs = hash_value([len, fractions.Fraction(1, 2)])
    assert with_funcs[1] == "pickle" and with_funcs[0]


def test_unhashable_globals_are_reported_never_raised(tmp_path):
    mod = load_tracked(
        tmp_path,
        """
        import threading
        LOCK = threading.Lock()
        def use():
            with LOCK:
                return 1
        """,
        "deplock",
    )
    try:
        with recompyle.Tracer() as t:
            assert mod.use() == 1
        (node,) = [n for n in t.graph.nodes.values() if n.get("name") == "LOCK"]
        assert node["hash"] is None and "hash_error" in node
    finally:
        sys.modules.pop("deplock", None)


def test_track_records_calls_and_static_reads_for_untracked_modules():
    ns: dict = {"__name__": "plainmod", "K": 5}
    exec(
        "def helper(x):\n    return x * K\n" "def top(x):\n    return helper(x) + 1\n",
        ns,
    )
    helper = recompyle.track(ns["helper"])
    ns["helper"] = helper
    top = recompyle.track(ns["top"])
    assert top(2) == 11  # no tracer: plain call
    with recompyle.Tracer() as t:
        assert top(2) == 11
    calls = t.graph.calls()
    assert ("function:plainmod:top", "function:plainmod:helper") in calls
    k = f"value:plainmod:K:{_sha('int:5')}"
    assert ("function:plainmod:helper", k) in t.graph.reads()
    assert t.graph.nodes[k]["static"] is True
    assert top.__name__ == "top" and top.__wrapped__ is ns["top"]


def test_tracers_nest_and_stop(lib):
    with recompyle.Tracer() as outer:
        lib.f(1)
        with recompyle.Tracer() as inner:
            lib.g(3)
        assert not inner.active and outer.active
    assert ("function:deplib:g", "function:deplib:f") in outer.graph.calls()
    assert ("function:deplib:g", "function:deplib:f") in inner.graph.calls()
    assert not [c for c in inner.graph.reads() if c[0] == "function:deplib:f" and "A" not in c[1]]


SCRIPT = """
import helpers

SCALE = 3

def compute(x):
    return helpers.twice(x) * SCALE

print(compute(7))
"""

HELPERS = """
FACTOR = 2

def twice(x):
    return x * FACTOR
"""


@pytest.mark.parametrize("suffix", ["json", "dot"])
def test_run_deps_writes_json_or_dot(tmp_path, suffix):
    (tmp_path / "prog.py").write_text(SCRIPT)
    (tmp_path / "helpers.py").write_text(HELPERS)
    out_file = tmp_path / f"graph.{suffix}"
    out = run_python(
        "-m",
        "recompyle",
        "run",
        "--modules",
        "helpers",
        "--deps",
        str(out_file),
        "prog.py",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "42\n"
    text = out_file.read_text()
    if suffix == "dot":
        assert text.startswith("digraph recompyle_deps {")
        assert '"function:__main__:compute" -> "function:helpers:twice";' in text
        assert "style=dashed" in text
        return
    data = json.loads(text)
    edges = {(e["from"], e["to"], e["kind"]) for e in data["edges"]}
    assert ("function:__main__:compute", "function:helpers:twice", "call") in edges
    assert ("function:__main__:<module>", "function:__main__:compute", "call") in edges
    assert ("function:__main__:compute", "module:helpers", "read") in edges
    assert ("function:helpers:twice", f"value:helpers:FACTOR:{_sha('int:2')}", "read") in edges
    assert ("function:__main__:compute", f"value:__main__:SCALE:{_sha('int:3')}", "read") in edges


def test_reads_in_comprehensions_belong_to_their_function_on_every_version(tmp_path):
    mod = load_tracked(
        tmp_path,
        """
        A = 1
        def f():
            return [A for _ in range(2)] + list(A for _ in range(1))
        """,
        "depcomp",
    )
    try:
        with recompyle.Tracer() as t:
            assert mod.f() == [1, 1, 1]
        a = f"value:depcomp:A:{_sha('int:1')}"
        assert [r for r in t.graph.reads() if r[1] == a] == [("function:depcomp:f", a)]
        assert not [n for n in t.graph.nodes if "<" in n.split(":")[-1]]
    finally:
        sys.modules.pop("depcomp", None)


def test_containers_are_hashed_at_every_read_scalars_and_edges_once(tmp_path):
    mod = load_tracked(
        tmp_path,
        """
        ITEMS = [1]
        def total():
            return sum(ITEMS)
        def via_sorted():
            return sorted([3, 1], key=neg)
        def neg(x):
            return -x * total()
        """,
        "depmut",
    )
    try:
        with recompyle.Tracer() as t:
            mod.total()
            mod.ITEMS.append(2)
            mod.total()
            mod.total()
            mod.via_sorted()
        items = sorted(n for n in t.graph.nodes if n.startswith("value:depmut:ITEMS:"))
        assert items == sorted(
            [
                f"value:depmut:ITEMS:{_sha('list[1](int:1)')}",
                f"value:depmut:ITEMS:{_sha('list[2](int:1,int:2)')}",
            ]
        )
        calls = t.graph.calls()
        assert ("builtin:builtins:sorted", "function:depmut:neg") in calls
        assert ("function:depmut:neg", "function:depmut:total") in calls
    finally:
        sys.modules.pop("depmut", None)


def test_track_on_coroutine_functions_run_by_asyncio():
    ns: dict = {"__name__": "plainasync", "K": 2}
    exec(
        "import asyncio\n"
        "async def inner(x):\n    await asyncio.sleep(0)\n    return x * K\n"
        "async def outer(x):\n    return await inner(x) + 1\n",
        ns,
    )
    ns["inner"] = recompyle.track(ns["inner"])
    outer = recompyle.track(ns["outer"])
    with recompyle.Tracer() as t:
        assert asyncio.run(outer(3)) == 7
    assert ("function:plainasync:outer", "function:plainasync:inner") in t.graph.calls()
    assert ("function:plainasync:inner", f"value:plainasync:K:{_sha('int:2')}") in t.graph.reads()
