"""The calling-context tree, awaited calls, composable profilers, deep recursion, timeline."""

from __future__ import annotations

import json
import sys
import threading

import pytest

import recompyle
from conftest import run_python
from recompyle.profiler import CallNode, CallRoot

PROGRAM = """
import asyncio
import threading
import time

def nap(s):
    time.sleep(s)

def leaf(x):
    return x

def mid(n):
    for i in range(n):
        leaf(i)

def top():
    mid(3)
    mid(2)

def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)

def ping(n):
    return 0 if n == 0 else pong(n - 1)

def pong(n):
    return 0 if n == 0 else ping(n - 1)

def fails():
    raise ValueError("no")

def catches():
    for _ in range(3):
        try:
            fails()
        except ValueError:
            pass

def depth(n):
    return 0 if n == 0 else 1 + depth(n - 1)

def helper(i):
    return i

def gen(n):
    for i in range(n):
        yield helper(i)

def consume():
    return sum(gen(4))

def in_thread(name):
    t = threading.Thread(target=top, name=name)
    t.start()
    t.join()

async def slow(delay):
    await asyncio.sleep(delay)
    return leaf(delay)

async def a_work(i):
    await asyncio.sleep(0)
    return leaf(i)

async def b_work(i):
    await asyncio.sleep(0)
    return mid(1)

async def task_a(i):
    for _ in range(3):
        await a_work(i)
        await asyncio.sleep(0)

async def task_b(i):
    for _ in range(3):
        await b_work(i)
        await asyncio.sleep(0)

async def many():
    await asyncio.gather(*[task_a(i) if i % 2 else task_b(i) for i in range(100)])

async def waits():
    return await slow(0.05) + 1

async def cancel_me():
    t = asyncio.ensure_future(slow(10))
    await asyncio.sleep(0)
    t.cancel()
    try:
        await t
    except asyncio.CancelledError:
        return "cancelled"

async def awaits_cancelled():
    try:
        return await slow_cancelled()
    except asyncio.CancelledError:
        return "propagated"

class Suspend:
    def __await__(self):
        yield "suspended"

class Marker:
    pass

async def inner(marker):
    await Suspend()

async def outer(marker):
    await inner(marker)

async def slow_cancelled():
    task = asyncio.current_task()
    asyncio.get_running_loop().call_later(0.01, task.cancel)
    await asyncio.sleep(10)

async def fetch(delay):
    await asyncio.sleep(delay)
    return leaf(delay)

async def fan_out():
    first = await fetch(0.02)
    both = await asyncio.gather(fetch(0.03), fetch(0.06))
    task = asyncio.create_task(fetch(0.01), name="single")
    return first, both, await task

async def short(i):
    await asyncio.sleep(0)
    return leaf(i)

async def one_by_one(n):
    for i in range(n):
        await asyncio.create_task(short(i))

async def in_batches(n, size):
    for start in range(0, n, size):
        await asyncio.gather(*[short(i) for i in range(start, start + size)])

async def kept(n):
    tasks = [asyncio.create_task(short(i)) for i in range(n)]
    for t in tasks:
        await t
    return tasks

async def shared_context(n):
    import contextvars
    ctx = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    for i in range(n):
        await loop.create_task(short(i), context=ctx)

import contextvars
VAR = contextvars.ContextVar("VAR")

async def holds_value(marker):
    VAR.set(marker)
    await asyncio.sleep(0)
    return leaf(1)

async def run_holder(marker):
    return await asyncio.create_task(holds_value(marker))

async def flat_waits():
    return await slow(0.05) + await Suspend2()

class Suspend2:
    def __await__(self):
        yield
        return 2
"""


@pytest.fixture
def prog(instrumented):
    return instrumented(PROGRAM, "ctprog")


def by_callee(nodes: tuple[CallNode, ...] | list[CallNode], callee: str) -> list[CallNode]:
    return [n for n in nodes if n.callee == callee]


def only(nodes, callee: str) -> CallNode:
    found = by_callee(nodes, callee)
    assert len(found) == 1, (callee, [n.callee for n in nodes])
    return found[0]


def main_root(roots: list[CallRoot]) -> CallRoot:
    return next(r for r in roots if r.thread_id == threading.main_thread().ident)


def walk(nodes):
    for n in nodes:
        yield n
        yield from walk(n.children)


def all_nodes(roots: list[CallRoot]) -> list[CallNode]:
    return [n for r in roots for n in walk(r.children)]


def task_roots(roots: list[CallRoot]) -> list[CallRoot]:
    return [r for r in roots if r.kind == "task"]


def assert_well_nested(events: list[dict]) -> None:
    """Within each root (thread or task), every event ends before the one enclosing it."""
    stacks: dict[int, list[dict]] = {}
    for e in events:
        stack = stacks.setdefault(e["root"], [])
        while stack and stack[-1]["end_ns"] <= e["start_ns"]:
            stack.pop()
        if stack:
            assert e["end_ns"] <= stack[-1]["end_ns"], "well nested"
        stack.append(e)


def assert_within_parents(roots: list[CallRoot]) -> None:
    """No node (nor its children together) takes more time than its parent: no share
    above 100%. Recursion is collapsed, so a parent never repeats below itself."""

    def check(total: int, children: tuple[CallNode, ...]) -> None:
        assert sum(c.total_ns for c in children) <= total
        for c in children:
            check(c.total_ns, c.children)

    for r in roots:
        check(r.total_ns, r.children)


def test_tree_shape_counts_and_self_time(prog):
    with recompyle.Profiler() as p:
        prog.top()
    root = main_root(p.tree())
    assert root.kind == "thread" and root.name == "MainThread"
    mids = root.children  # top() itself is called from here, not from a call site
    assert [n.callee for n in mids] == ["mid", "mid"]
    assert sorted(n.site.line for n in mids) == [17, 18]
    first = next(n for n in mids if n.site.line == 17)
    assert (
        first.calls,
        only(first.children, "leaf").calls,
        only(first.children, "range").calls,
    ) == (1, 3, 1)
    for n in walk(root.children):  # each figure is rounded to the nanosecond on its own
        assert abs(n.self_ns - (n.total_ns - sum(c.total_ns for c in n.children))) <= 4
    rows = {(r.callee, r.line): r for r in p.stats()}
    assert rows[("leaf", 14)].calls == 5
    # self is the sum of the site's nodes' (each rounded), total is rounded once
    assert abs(rows[("leaf", 14)].self_ns - rows[("leaf", 14)].total_ns) <= 2
    assert rows[("mid", 17)].self_ns < rows[("mid", 17)].total_ns


def test_threads_get_their_own_named_roots(prog):
    with recompyle.Profiler() as p:
        prog.in_thread("worker-1")
        prog.in_thread("worker-2")
    roots = {r.name: r for r in p.tree()}
    assert {"worker-1", "worker-2", "MainThread"} <= set(roots)
    for name in ("worker-1", "worker-2"):
        tops = roots[name].children
        assert [n.callee for n in tops] == ["mid", "mid"] or [n.callee for n in tops] == ["top"]
        assert sum(n.calls for n in walk(tops) if n.callee == "leaf") == 5
    main = roots["MainThread"]
    assert not [n for n in walk(main.children) if n.callee == "leaf"]
    doc = p.document()
    assert {r["name"] for r in doc["roots"]} >= {"worker-1", "worker-2"}


def test_recursion_is_collapsed_and_not_double_counted(prog):
    with recompyle.Profiler() as p:
        prog.fact(30)
        prog.ping(40)
    root = main_root(p.tree())
    nodes = list(walk(root.children))
    fact = [n for n in nodes if n.callee == "fact"]
    # The outer call (from the test, not instrumented) is not a site: 29 calls at line 21,
    # all in one node.
    assert len(fact) == 1 and fact[0].calls == 29 and fact[0].children == ()
    ping = [n for n in nodes if n.callee in ("ping", "pong")]
    assert len(ping) == 2, [(n.callee, n.calls) for n in ping]
    assert sum(n.calls for n in ping) == 40
    flat = {r.callee: r for r in p.stats()}
    assert flat["fact"].total_ns >= fact[0].total_ns  # flat adds each call's inclusive time
    assert flat["fact"].self_ns == fact[0].self_ns
    assert sum(n.self_ns for n in nodes) <= root.total_ns + len(nodes)


def test_flat_rows_are_the_flat_only_calls_plus_the_sites_nodes(prog):
    """The tree records a call once, in its node, and a site's flat row sums its nodes when
    read (with the calls a flat-only profiler recorded alone): every call is counted once
    in mixed flat-only and tree windows, a site reached through one path has its node's
    totals, and a recursive site's row still adds each call's inclusive time."""
    outer = recompyle.Profiler(tree=False).start()
    prog.top()  # flat only: 5 calls of leaf
    with recompyle.Profiler() as inner:
        prog.top()
        prog.top()
        prog.fact(30)
        prog.catches()
    prog.top()
    outer.stop()

    def row(p, callee):
        return next(r for r in p.stats() if r.callee == callee)

    assert (row(outer, "leaf").calls, row(inner, "leaf").calls) == (20, 10)
    assert row(outer, "leaf").total_ns >= row(inner, "leaf").total_ns
    nodes = list(walk(main_root(inner.tree()).children))
    assert sum(n.calls for n in nodes if n.callee == "leaf") == 10  # two paths, via mid(3), mid(2)
    (fails,) = [n for n in nodes if n.callee == "fails"]
    one = row(inner, "fails")
    assert (fails.calls, fails.total_ns, fails.max_ns, fails.raised) == (
        one.calls, one.total_ns, one.max_ns, one.raised,
    ) == (3, one.total_ns, one.max_ns, 3)  # fmt: skip
    (fact,) = [n for n in nodes if n.callee == "fact"]
    assert row(inner, "fact").calls == fact.calls == 29
    assert row(inner, "fact").total_ns > fact.total_ns  # the re-entries' time, added again
    assert row(inner, "fact").max_ns == fact.max_ns


def test_exceptions_are_counted_as_raised(prog):
    with recompyle.Profiler() as p:
        prog.catches()
    node = only(main_root(p.tree()).children, "fails")
    assert (node.calls, node.raised) == (3, 3)
    assert {r.callee: r.raised for r in p.stats()}["fails"] == 3


def test_generator_calls_are_children_of_the_call_that_resumes_it(prog):
    with recompyle.Profiler() as p:
        assert prog.consume() == 6
    consume_children = only(main_root(p.tree()).children, "sum").children
    helper = only(consume_children, "helper")
    assert helper.calls == 4


def test_awaited_call_is_timed_until_its_result_is_ready(prog):
    import asyncio

    with recompyle.Profiler() as p:
        asyncio.run(prog.waits())
    (task,) = task_roots(p.tree())
    nodes = list(walk(task.children))
    slow = next(n for n in nodes if n.callee == "slow")
    assert slow.total_ns >= 50_000_000
    sleep = only(slow.children, "asyncio.sleep")
    assert sleep.total_ns >= 50_000_000
    assert only(slow.children, "leaf").calls == 1
    row = next(r for r in p.stats() if r.callee == "slow")
    assert row.total_ns >= 50_000_000 and row.self_ns < 10_000_000


def test_interleaved_tasks_keep_their_calls_apart(prog):
    import asyncio

    with recompyle.Profiler() as p:
        asyncio.run(prog.many())
    roots = p.tree()
    tasks = {r.name: r for r in task_roots(roots)}
    # The tasks of one coroutine add up under one root: the main task's and the 50 and 50
    # gathered ones'.
    assert sorted(tasks) == ["many", "task_a", "task_b"]
    assert_within_parents(roots)
    # Each gathered task's own calls are the top of its coroutine's tree.
    assert {c.callee for c in tasks["task_a"].children} == {"a_work", "asyncio.sleep", "range"}
    assert {c.callee for c in tasks["task_b"].children} == {"b_work", "asyncio.sleep", "range"}
    assert only(tasks["task_a"].children, "a_work").calls == 150
    assert only(tasks["task_a"].children, "range").calls == 50
    nodes = all_nodes(roots)
    a_work = [n for n in nodes if n.callee == "a_work"]
    b_work = [n for n in nodes if n.callee == "b_work"]
    assert sum(n.calls for n in a_work) == 150 and sum(n.calls for n in b_work) == 150
    for n in a_work:
        assert {c.callee for c in n.children} == {"asyncio.sleep", "leaf"}
        assert only(n.children, "leaf").calls == n.calls
    for n in b_work:
        assert {c.callee for c in n.children} == {"asyncio.sleep", "mid"}
    # leaf is called by a_work's body and by mid under b_work, never elsewhere.
    parents = {
        parent.callee for parent in nodes for child in parent.children if child.callee == "leaf"
    }
    assert parents == {"a_work", "mid"}


def test_tasks_have_roots_and_awaited_time_stays_at_the_await_site(prog):
    """The rule: a call awaited at its site is timed until its result is ready, in the
    awaiting task's tree; a coroutine only created at a site (gather, create_task) is timed
    there for its creation, and its own calls are the top of the tree of the task running
    it."""
    import asyncio

    with recompyle.Profiler(timeline=True) as p:
        asyncio.run(prog.fan_out())
    roots = p.tree()
    assert_within_parents(roots)
    tasks = {r.name: r for r in task_roots(roots)}
    assert len(tasks) == 4 and "single" in tasks
    main = next(r for r in tasks.values() if any(c.callee == "asyncio.gather" for c in r.children))
    gather = only(main.children, "asyncio.gather")
    assert gather.total_ns >= 60_000_000, "the wait is at the await site"
    fetches = by_callee(main.children, "fetch")
    awaited = [n for n in fetches if n.total_ns >= 20_000_000]
    created = [n for n in fetches if n.total_ns < 20_000_000]
    assert len(awaited) == 1 and only(awaited[0].children, "asyncio.sleep").calls == 1
    assert len(created) == 3 and all(not n.children for n in created), "creation only"
    assert only(main.children, "asyncio.create_task").total_ns < 20_000_000
    others = [r for r in tasks.values() if r is not main]
    waits = sorted(only(r.children, "asyncio.sleep").total_ns for r in others)
    assert waits[0] >= 10_000_000 and waits[1] >= 30_000_000 and waits[2] >= 60_000_000
    for r in others:
        assert only(r.children, "leaf").calls == 1
        assert r.total_ns >= only(r.children, "asyncio.sleep").total_ns
    # The timeline has the awaited calls too, well nested in each task's lane.
    doc = p.document()
    events = doc["timeline"]["events"]
    callees = {doc["sites"][e["site"]]["callee"] for e in events}
    assert {"asyncio.gather", "asyncio.sleep", "fetch", "leaf"} <= callees
    assert_well_nested(events)
    wait = next(e for e in events if doc["sites"][e["site"]]["callee"] == "asyncio.gather")
    assert wait["end_ns"] - wait["start_ns"] >= 60_000_000


def test_cancellation_through_an_awaited_call(prog):
    import asyncio

    with recompyle.Profiler() as p:
        assert asyncio.run(prog.cancel_me()) == "cancelled"
        assert asyncio.run(prog.awaits_cancelled()) == "propagated"
    nodes = all_nodes(p.tree())
    slow_cancelled = next(n for n in nodes if n.callee == "slow_cancelled")
    assert (slow_cancelled.calls, slow_cancelled.raised) == (1, 1)
    assert slow_cancelled.total_ns >= 10_000_000


def test_profilers_nest_overlap_and_start_at_zero(prog):
    outer = recompyle.Profiler().start()
    prog.top()
    with recompyle.Profiler() as inner:
        prog.top()
    prog.top()
    overlap = recompyle.Profiler().start()
    prog.top()
    outer.stop()
    prog.top()
    overlap.stop()
    fresh = recompyle.Profiler()

    def leaf_calls(p):
        return sum(r.calls for r in p.stats() if r.callee == "leaf")

    assert (leaf_calls(outer), leaf_calls(inner), leaf_calls(overlap), leaf_calls(fresh)) == (
        20, 5, 10, 0,
    )  # fmt: skip
    assert not outer.running and not recompyle._core.profiler_running()
    overlap.reset()
    assert leaf_calls(overlap) == 0
    with overlap:
        prog.top()
    assert leaf_calls(overlap) == 5


def test_max_is_per_profiler(prog):
    outer = recompyle.Profiler().start()
    prog.nap(0.05)
    with recompyle.Profiler() as inner:
        prog.nap(0.001)
    outer.stop()
    assert next(r for r in outer.stats() if r.callee == "time.sleep").max_ns >= 50_000_000
    assert next(r for r in inner.stats() if r.callee == "time.sleep").max_ns < 50_000_000
    assert [r.calls for r in inner.stats() if r.callee == "time.sleep"] == [1]


def test_a_profiler_reads_only_what_its_calls_touched(prog):
    """Profilers' baselines are native windows: starting one copies nothing, and reading it
    back returns the nodes and sites its calls changed, whatever the tree's size (the
    pytest plugin starts one per test)."""
    with recompyle.Profiler():
        prog.top()
        prog.catches()
        prog.consume()
        prog.fact(20)
        prog.in_thread("other")
    whole = recompyle._core.profiler_counts()
    assert len(whole.nodes) > 15
    epoch, seq, _now, _scale = recompyle._core.profiler_window_open()
    recompyle._core.profiler_start(True)
    try:
        prog.mid(2)
        window = recompyle._core.profiler_window(seq)
    finally:
        recompyle._core.profiler_stop(True)
        recompyle._core.profiler_window_close(seq)
    assert window.epoch == epoch
    assert sorted((row[4], row[5] > 0) for row in window.nodes) == [(1, True), (2, True)]
    assert sorted(row[1] for row in window.sites) == [1, 2], "range once, leaf twice"
    (root,) = window.roots
    assert root[4] == "thread" and root[3] == threading.current_thread().name
    # A maximum seen before the window is not the window's.
    with recompyle.Profiler():
        prog.nap(0.02)
    with recompyle.Profiler() as p:
        prog.nap(0)
    assert next(r for r in p.stats() if r.callee == "time.sleep").max_ns < 20_000_000


def test_calls_deeper_than_the_reporting_limit_are_counted(prog):
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(5000)
    try:
        with recompyle.Profiler() as p:
            assert prog.depth(1000) == 1000
    finally:
        sys.setrecursionlimit(limit)
    row = next(r for r in p.stats() if r.callee == "depth")
    assert row.calls == 1000
    assert 1000 - 200 <= row.untimed < 1000
    node = next(n for n in walk(main_root(p.tree()).children) if n.callee == "depth")
    assert (node.calls, node.untimed) == (1000, row.untimed)
    doc = p.document()
    assert doc["sites"][0]["untimed"] == row.untimed


def test_timeline_events_nest_and_the_cap_drops(prog):
    with recompyle.Profiler(timeline=True) as p:
        prog.top()
    doc = p.document()
    events = doc["timeline"]["events"]
    assert doc["timeline"]["dropped"] == 0
    assert len(events) == 2 + 2 + 5  # mid x2, range x2, leaf x5 (top is called from here)
    assert_well_nested(events)
    assert {doc["sites"][e["site"]]["callee"] for e in events} == {"mid", "range", "leaf"}
    with recompyle.Profiler(timeline=True, timeline_cap=4) as capped:
        prog.top()
    doc = capped.document()
    assert len(doc["timeline"]["events"]) == 4 and doc["timeline"]["dropped"] == 5
    assert sum(s["calls"] for s in doc["sites"]) == 9, "the tree stays exact"
    with recompyle.Profiler(timeline=True, min_duration_ns=10**9) as slow_only:
        prog.top()
    assert slow_only.document()["timeline"]["events"] == []
    assert recompyle.Profiler().document()["timeline"] is None


def test_document_is_version_2_and_consistent(prog):
    with recompyle.Profiler() as p:
        prog.top()
        prog.catches()
    doc = json.loads(json.dumps(p.document()))
    assert doc["version"] == 2 and doc["wall_ns"] > 0
    assert {"python", "argv", "pid", "sites", "roots", "timeline"} <= set(doc)
    sites = doc["sites"]
    per_site_self: dict[int, int] = {}

    def visit(node):
        per_site_self[node["site"]] = per_site_self.get(node["site"], 0) + node["self_ns"]
        for c in node["children"]:
            visit(c)

    for root in doc["roots"]:
        for c in root["children"]:
            visit(c)
    for i, s in enumerate(sites):
        assert s["self_ns"] == per_site_self[i]
    assert [s["total_ns"] for s in sites] == sorted((s["total_ns"] for s in sites), reverse=True)


def test_a_profiler_inside_the_cli_run_does_not_stop_the_cli_profiler(tmp_path):
    (tmp_path / "inner.py").write_text(
        "import recompyle\n"
        "def f():\n    return 1\n"
        "f()\n"
        "with recompyle.Profiler() as p:\n    f()\n"
        "print(sum(r.calls for r in p.stats() if r.callee == 'f'))\n"
        "f()\nf()\n",
        encoding="utf-8",
    )
    out = tmp_path / "r.json"
    proc = run_python(
        "-m", "recompyle", "run", "-o", str(out), "--format", "json", "inner.py", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "1\n"
    doc = json.loads(out.read_text())
    assert doc["version"] == 2
    assert sum(s["calls"] for s in doc["sites"] if s["callee"] == "f") == 4
    assert doc["roots"][0]["name"] == "MainThread"


def test_an_abandoned_awaited_call_in_a_cycle_is_collected(prog):
    import gc
    import weakref

    with recompyle.Profiler():
        marker = prog.Marker()
        coro = prog.outer(marker)
        assert coro.send(None) == "suspended"
        assert type(coro.cr_await).__name__ == "AwaitedCall"
        marker.coro = coro  # a cycle through the awaiting coroutine's frame
        alive = weakref.ref(marker)
        del coro, marker
        gc.collect()
    assert alive() is None


def test_awaited_call_steps_by_next_and_send(prog):
    """What the interpreter uses when tracing (and 3.9 always): __next__ and send."""
    with recompyle.Profiler():
        for step in (next, lambda w: w.send(None)):
            coro = prog.outer(prog.Marker())
            assert coro.send(None) == "suspended"
            awaited = coro.cr_await
            with pytest.raises(StopIteration):
                step(awaited)
            coro.close()


def test_a_native_reset_while_running_starts_the_view_from_zero(prog):
    with recompyle.Profiler() as p:
        prog.top()
        recompyle._core.profiler_reset()  # what a forked child does
        prog.mid(1)
    assert sorted((r.callee, r.calls) for r in p.stats()) == [("leaf", 1), ("range", 1)]


def _node_rows() -> int:
    from recompyle import _core

    return len(_core.profiler_counts().nodes)


@pytest.mark.parametrize("shape", ["one_by_one", "in_batches", "kept"])
def test_many_tasks_keep_the_tree_bounded_and_the_totals_exact(prog, shape):
    """Tasks of one coroutine share a root, and a finished task's stack is freed: the tree
    grows with distinct paths, not with tasks, and its counts are every task's calls."""
    import asyncio

    from recompyle import _core

    def run(n: int):
        if shape == "one_by_one":
            return prog.one_by_one(n)
        if shape == "in_batches":
            return prog.in_batches(n, 100)
        return prog.kept(n)

    with recompyle.Profiler():  # the sites and the loop's own paths, once
        asyncio.run(run(100))
    _core.profiler_reset()
    with recompyle.Profiler() as p:
        asyncio.run(run(100))
    nodes_at_100 = _node_rows()
    with recompyle.Profiler() as p:
        asyncio.run(run(10_000))
    counts = _core.profiler_counts()
    assert len(counts.nodes) == nodes_at_100, "no node per task"
    # The thread's root and the three coroutines' (main, short, the loop's own if any).
    assert len(counts.roots) == len({(t, n) for _, t, n, _, _ in counts.roots}) <= 4
    assert sum(r[4] for r in counts.roots if r[3] == "task") == 101 + 10_001, "both runs"
    # Stacks are freed by a sweep when the stacks kept have doubled, and when the last
    # profiler stops (the program held all 10,000 tasks of "kept" at once).
    assert counts.task_stacks <= 300, "finished tasks' stacks are freed"
    roots = p.tree()
    (short,) = [r for r in task_roots(roots) if r.name == "short"]
    assert short.tasks == 10_000
    leaf = only(short.children, "leaf")
    sleep = only(short.children, "asyncio.sleep")
    assert (leaf.calls, sleep.calls) == (10_000, 10_000)
    flat = {r.callee: r for r in p.stats()}
    # Exact: the tree's nodes of a site add up to its flat row, call for call.
    for callee, node in (("leaf", leaf), ("asyncio.sleep", sleep)):
        assert (node.calls, node.total_ns, node.max_ns) == (
            flat[callee].calls,
            flat[callee].total_ns,
            flat[callee].max_ns,
        )
    assert_within_parents(roots)


def test_flat_only_mode_times_an_awaited_call_until_its_result_is_ready(prog):
    """Without the tree, an awaited call's row still counts the wait (suspensions
    included), once per call; a call only creating a coroutine keeps its creation time."""
    import asyncio

    with recompyle.Profiler(tree=False) as p:
        assert asyncio.run(prog.flat_waits()) == 2.05
        assert asyncio.run(prog.fan_out())[0] == 0.02
    assert p.tree() == []
    rows = {r.callee: r for r in p.stats()}
    assert rows["slow"].calls == 1 and rows["slow"].total_ns >= 50_000_000
    assert rows["Suspend2"].calls == 1, "an awaitable object's call is counted once"
    fetches = sorted((r for r in p.stats() if r.callee == "fetch"), key=lambda r: (r.line, r.col))
    # fetch(0.02) awaited (>= 20 ms); fetch(0.03), fetch(0.06) and fetch(0.01) only created
    # at their sites (wrapped in tasks by gather and create_task).
    assert [r.calls for r in fetches] == [1, 1, 1, 1]
    assert fetches[0].total_ns >= 20_000_000
    assert all(r.total_ns < 10_000_000 for r in fetches[1:])
    gather = rows["asyncio.gather"]
    assert gather.calls == 1 and gather.total_ns >= 60_000_000
    with recompyle.Profiler() as tree:
        asyncio.run(prog.flat_waits())
    assert {r.callee: r.calls for r in tree.stats()}["slow"] == 1


@pytest.mark.skipif(sys.version_info < (3, 11), reason="create_task(context=) is 3.11+")
def test_tasks_sharing_a_context_keep_their_stacks_until_it_is_released(prog):
    """Tasks given one ``context=``: the stacks stay while the context is held (a call may
    still reach them through it), every call is counted, and once it is released the stacks
    are freed by the next sweep."""
    import asyncio

    from recompyle import _core

    _core.profiler_reset()
    with recompyle.Profiler() as p:
        asyncio.run(prog.shared_context(500))
        (short,) = [r for r in task_roots(p.tree()) if r.name == "short"]
        assert only(short.children, "leaf").calls == 500 and short.tasks == 500
        asyncio.run(prog.one_by_one(2000))
    assert _core.profiler_counts().task_stacks <= 300
    roots = p.tree()
    (short,) = [r for r in task_roots(roots) if r.name == "short"]
    assert only(short.children, "leaf").calls == 2500
    assert_within_parents(roots)


def test_a_finished_task_s_context_is_released_when_profiling_stops(prog):
    """The profiler holds a task's context while the task may still make calls; once the
    task is gone and the last profiler stopped, the context (and its variables' values) is
    released as without the profiler."""
    import asyncio
    import gc
    import weakref

    marker = prog.Marker()
    ref = weakref.ref(marker)
    with recompyle.Profiler() as p:
        assert asyncio.run(prog.run_holder(marker)) == 1
        del marker
        gc.collect()
    gc.collect()
    assert ref() is None
    assert any(r.name == "holds_value" for r in task_roots(p.tree()))
