"""Each exporter on a hand-made profile document (``synthetic_profile``), read back by the
consumer of its format: ``pstats.Stats``, gprof2dot, inferno, and the published rules of
speedscope's and Chrome's formats."""

from __future__ import annotations

import io
import json
import marshal
import pstats
import re
from pathlib import Path

import pytest

from format_readers import check_chrome, check_speedscope, flamegraph_svg, gprof2dot
from recompyle.export import FORMATS, format_for_output, get_format
from synthetic_profile import FILE, clone, document, site_index

NAME_LOAD = "parse (/src/app/prog.py:5:12)"
NAME_HANDLE = "parse (/src/app/prog.py:7:12)"


def render(name: str, doc=None, **kw):
    return get_format(name).render(document() if doc is None else doc, **kw)


# -- registry -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "output, name",
    [
        ("out/p.speedscope.json", "speedscope"),
        ("P.SPEEDSCOPE.JSON", "speedscope"),
        ("r.json", "json"),
        ("run.trace.json", "chrome"),
        ("x.prof", "pstats"),
        ("x.pstats", "pstats"),
        ("callgrind.out.1234", "callgrind"),
        ("callgrind.out", "callgrind"),
        ("stacks.collapsed", "collapsed"),
        ("stacks.folded", "collapsed"),
        ("report.txt", "text"),
        (None, "text"),
    ],
)
def test_output_name_selects_format(output, name):
    assert format_for_output(output).name == name


def test_registry_entries():
    names = [f.name for f in FORMATS]
    assert len(names) == len(set(names))
    assert {
        "text",
        "json",
        "speedscope",
        "chrome",
        "pstats",
        "callgrind",
        "collapsed",
        "tree",
    } <= set(names)
    assert [f.name for f in FORMATS if f.binary] == ["pstats"]
    assert [f.name for f in FORMATS if f.needs_timeline] == ["chrome"]
    with pytest.raises(ValueError, match="unknown format 'svg'; choose from text, json"):
        get_format("svg")


# -- speedscope -----------------------------------------------------------------------


def test_speedscope_sampled_from_tree():
    doc = document()
    out = json.loads(render("speedscope", doc))
    check_speedscope(out)
    assert out["name"] == "prog.py --fast"
    frames = out["shared"]["frames"]
    names = [f["name"] for f in frames]
    # one frame per site, the two calls of parse apart; 1-based columns
    assert NAME_LOAD in names and NAME_HANDLE in names
    assert frames[site_index(doc, 5, 11)] == {
        "name": NAME_LOAD, "file": FILE, "line": 5, "col": 12
    }  # fmt: skip
    profiles = out["profiles"]
    assert [p["name"] for p in profiles] == ["MainThread", "Thread-1 (worker)", "Task-1 (task)"]
    for profile, root in zip(profiles, doc["roots"]):
        assert profile["type"] == "sampled" and profile["unit"] == "nanoseconds"
        # self times add up to the root's total: nothing lost, nothing counted twice
        assert sum(profile["weights"]) == root["total_ns"] == profile["endValue"]
    main = profiles[0]
    stacks = {
        tuple(names[f] for f in sample): w for sample, w in zip(main["samples"], main["weights"])
    }
    split = "text.split (/src/app/prog.py:2:12)"
    assert (
        stacks[("MainThread", "load_config (/src/app/prog.py:14:1)", NAME_LOAD, split)] == 500_000
    )
    assert stacks[("MainThread", "load_config (/src/app/prog.py:14:1)", NAME_LOAD)] == 1_500_000
    assert stacks[("MainThread",)] == 10_000_000 - 6_050_000
    fib_a = "fib (/src/app/prog.py:9:30)"
    assert stacks[("MainThread", "fib (/src/app/prog.py:16:1)", fib_a, fib_a)] == 600_000


def test_speedscope_evented_from_timeline():
    doc = document(timeline=True)
    out = json.loads(render("speedscope", doc))
    check_speedscope(out)
    profiles = out["profiles"]
    assert [p["type"] for p in profiles] == ["evented"] * 3
    names = [f["name"] for f in out["shared"]["frames"]]
    main = profiles[0]
    opened = [names[e["frame"]] for e in main["events"] if e["type"] == "O"]
    # time order: load_config's subtree, then handle's, then fib's, then fail
    assert opened[:3] == ["load_config (/src/app/prog.py:14:1)", NAME_LOAD,
                          "text.split (/src/app/prog.py:2:12)"]  # fmt: skip
    assert opened.count("fib (/src/app/prog.py:9:30)") == 2
    assert len(main["events"]) == 2 * sum(1 for e in doc["timeline"]["events"] if e["root"] == 0)
    # the worker's two calls of handle, one after the other
    worker = profiles[1]
    assert [names[e["frame"]].split(" ")[0] + e["type"] for e in worker["events"]] == [
        "handleO", "parseO", "parseC", "handleC", "handleO", "parseO", "parseC", "handleC"
    ]  # fmt: skip


def test_speedscope_with_dropped_events_keeps_the_exact_tree_too():
    out = json.loads(render("speedscope", document(timeline=True, dropped=7)))
    check_speedscope(out)
    assert [p["type"] for p in out["profiles"]] == ["evented"] * 3 + ["sampled"] * 3
    assert out["profiles"][3]["name"] == "MainThread (call tree)"


def test_speedscope_clips_a_child_that_outlives_its_parent():
    doc = document(timeline=True)
    events = doc["timeline"]["events"]
    child = next(e for e in events if e["site"] == site_index(doc, 5, 11))
    child["end_ns"] += 10_000_000  # a clock disagreement: past its parent's end
    check_speedscope(json.loads(render("speedscope", doc)))
    check_chrome(json.loads(render("chrome", doc)))


def test_speedscope_checker_catches_unbalanced_events():
    out = json.loads(render("speedscope", document(timeline=True)))
    events = out["profiles"][0]["events"]
    events[1], events[2] = events[2], events[1]
    with pytest.raises(AssertionError):
        check_speedscope(out)


# -- chrome ---------------------------------------------------------------------------


def test_chrome_trace():
    doc = document(timeline=True, dropped=3)
    trace = json.loads(render("chrome", doc))
    lanes = check_chrome(trace)
    meta = {(e["name"], e["tid"]): e["args"] for e in trace["traceEvents"] if e["ph"] == "M"}
    assert meta[("process_name", 0)] == {"name": "python prog.py --fast"}
    assert meta[("thread_name", 1)] == {"name": "MainThread"}
    assert meta[("thread_name", 2)] == {"name": "Thread-1 (worker)"}
    assert meta[("thread_name", 3)] == {"name": "Task-1 (task) on thread 1"}
    assert sum(len(v) for v in lanes.values()) == len(doc["timeline"]["events"])
    first = min(lanes[1], key=lambda e: e["ts"])
    assert first["name"] == "load_config (/src/app/prog.py:14:1)"
    assert (first["ts"], first["dur"]) == (5.0, 3000.0)  # microseconds
    assert first["args"] == {"file": FILE, "line": 14, "col": 1, "callee": "load_config",
                             "caller": "<module>", "raised": False}  # fmt: skip
    failed = [e for e in lanes[1] if e["args"]["callee"] == "fail"]
    assert failed[0]["args"]["raised"] is True and failed[0]["cat"] == "call,raised"
    assert lanes[3][0]["args"]["callee"] == "ops[';']( x)"
    assert trace["otherData"]["dropped_events"] == 3
    # nanoseconds survive as fractions of a microsecond
    doc["timeline"]["events"][0]["end_ns"] += 1
    again = json.loads(render("chrome", doc))
    assert any(str(e.get("dur", "")).endswith(".001") for e in again["traceEvents"])


def test_chrome_needs_a_timeline():
    with pytest.raises(ValueError, match="chrome format needs a timeline: profile with --timeline"):
        render("chrome", document())


def test_chrome_checker_catches_overlap():
    trace = json.loads(render("chrome", document(timeline=True)))
    xs = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["tid"] == 1]
    xs[1]["dur"] += 10_000.0
    with pytest.raises(AssertionError, match="not nested"):
        check_chrome(trace)


# -- pstats ---------------------------------------------------------------------------


def _pstats_file(tmp_path: Path, doc=None) -> Path:
    data = render("pstats", doc)
    assert isinstance(data, bytes)
    path = tmp_path / "p.prof"
    path.write_bytes(data)
    return path


def test_pstats_reads_it(tmp_path):
    doc = document()
    path = _pstats_file(tmp_path, doc)
    st = pstats.Stats(str(path), stream=io.StringIO())
    by_name = {key[2]: (key, value) for key, value in st.stats.items()}
    key, (cc, nc, tt, ct, callers) = by_name[NAME_LOAD]
    assert key == (FILE, 5, NAME_LOAD)
    assert (cc, nc) == (1, 1)
    assert tt == pytest.approx(1.5e-3) and ct == pytest.approx(2e-3)
    assert list(callers) == [by_name["load_config (/src/app/prog.py:14:1)"][0]]
    # the same function at the other site: its own entry, called from main and the worker
    _, (cc, nc, tt, ct, callers) = by_name[NAME_HANDLE]
    assert (cc, nc) == (3, 3) and ct == pytest.approx(2.8e-3)
    assert {c[2]: v[:2] for c, v in callers.items()} == {
        "handle (/src/app/prog.py:15:1)": (1, 1),
        "handle (/src/app/prog.py:21:9)": (2, 2),
    }
    # recursion as cProfile counts it: 2 calls, 1 primitive, cumulative time once
    _, (cc, nc, tt, ct, callers) = by_name["fib (/src/app/prog.py:9:30)"]
    assert (cc, nc) == (1, 2)
    assert ct == pytest.approx(1.2e-3) and tt == pytest.approx(0.9e-3)
    # a pseudo-function per thread/task is the entry point
    assert by_name["<thread MainThread>"][0] == ("~", 0, "<thread MainThread>")
    _, (cc, nc, tt, ct, callers) = by_name["<task Task-1 (task)>"]
    assert ct == pytest.approx(1e-3)
    # pstats' own views work and totals add up
    assert st.total_tt == pytest.approx((10_000_000 + 4_000_000 + 1_000_000) * 1e-9)
    out = io.StringIO()
    pstats.Stats(str(path), stream=out).sort_stats("cumulative").print_stats()
    pstats.Stats(str(path), stream=out).print_callers(NAME_HANDLE.split(" ")[0])
    text = out.getvalue()
    assert "prog.py:7(parse (/src/app/prog.py:7:12))" in text
    assert "3/1" not in text


def test_pstats_read_by_gprof2dot(tmp_path):
    dot = gprof2dot("pstats", _pstats_file(tmp_path))
    assert dot.startswith("digraph")
    labels = re.findall(r'label="([^"]*)"', dot)
    assert any("parse (/src/app/prog.py:5:12)" in x for x in labels)
    assert any("parse (/src/app/prog.py:7:12)" in x for x in labels)
    assert dot.count(" -> ") >= 10


# -- callgrind ------------------------------------------------------------------------


def test_callgrind_structure():
    doc = document()
    text = render("callgrind", doc)
    assert text.startswith("# callgrind format\n")
    assert "events: ns\n" in text and "positions: line\n" in text
    # every call site is a calls= line followed by the called site's own line
    pairs = re.findall(r"cfn=\((\d+)\)[^\n]*\ncalls=(\d+) (\d+)\n(\d+) (\d+)\n", text)
    lines = {int(cost_line) for _, _, _, cost_line, _ in pairs}
    assert {2, 5, 7, 9, 14, 15, 16, 17, 21, 25} <= lines
    # self costs add up to the roots' totals
    self_costs = re.findall(r"\nfn=[^\n]*\n(\d+) (\d+)\n", text)
    assert sum(int(c) for _, c in self_costs) == 15_000_000


def test_callgrind_read_by_gprof2dot(tmp_path):
    path = tmp_path / "callgrind.out.4242"
    path.write_text(render("callgrind"), encoding="utf-8")
    dot = gprof2dot("callgrind", path)
    labels = re.findall(r'label="([^"]*)"', dot)
    assert any(NAME_LOAD in x for x in labels) and any(NAME_HANDLE in x for x in labels)
    assert any("<thread MainThread>" in x for x in labels)
    assert dot.count(" -> ") >= 10


# -- collapsed ------------------------------------------------------------------------


def test_collapsed_stacks():
    doc = document()
    text = render("collapsed", doc)
    rows = [line.rsplit(" ", 1) for line in text.splitlines()]
    weights = {stack: int(w) for stack, w in rows}
    assert sum(weights.values()) == 15_000_000
    assert weights[f"MainThread;load_config (/src/app/prog.py:14:1);{NAME_LOAD}"] == 1_500_000
    assert weights["Thread-1 (worker);handle (/src/app/prog.py:21:9);" + NAME_HANDLE] == 2_000_000
    # ';' and the newline in a callee's text cannot split a frame or a line
    assert weights["Task-1 (task);ops['\uff1b']( x) (/src/app/prog.py:25:15)"] == 900_000
    assert all(len(stack.split(";")) <= 5 for stack in weights)


def test_collapsed_read_by_inferno(tmp_path):
    path = tmp_path / "p.collapsed"
    path.write_text(render("collapsed"), encoding="utf-8")
    svg = flamegraph_svg(path)
    assert "load_config (/src/app/prog.py:14:1)" in svg
    assert "parse (/src/app/prog.py:7:12)" in svg
    assert "Thread-1 (worker)" in svg


# -- tree -----------------------------------------------------------------------------


def test_tree_text():
    text = render("tree", min_percent=0)
    lines = text.splitlines()
    assert lines[0] == "recompyle call tree: 2 threads, 1 task, wall 12.000 ms"
    assert lines[1] == "MainThread  10.000 ms"
    assert lines[2] == (
        "├─ 3.000 ms  30.0%  load_config (/src/app/prog.py:14:1)  [1 call, self 1.000 ms]"
    )
    assert lines[3] == f"│  └─ 2.000 ms  20.0%  {NAME_LOAD}  [1 call, self 1.500 ms]"
    assert (
        "└─ 50.000 us   0.5%  fail (/src/app/prog.py:17:5)  [1 call, self 50.000 us, raised 1]"
        in text
    )
    assert "Thread-1 (worker)  4.000 ms" in text
    assert "└─ 3.000 ms  75.0%  handle (/src/app/prog.py:21:9)  [2 calls, self 1.000 ms]" in text


def test_tree_hides_small_nodes():
    shown = render("tree")  # default 1%
    assert "fail (" not in shown
    assert "└─ ... 1 node under the threshold, 50.000 us" in shown
    assert "calls under 1% of their root hidden" in shown
    big = render("tree", min_percent=25)
    assert "handle (/src/app/prog.py:15:1)" not in big
    assert "load_config" in big
    with pytest.raises(ValueError, match="min_percent"):
        render("tree", min_percent=-1)


def test_empty_document_renders_in_every_format():
    doc = clone(document(timeline=True))
    doc["sites"], doc["roots"], doc["timeline"]["events"] = [], [], []
    for fmt in FORMATS:
        if fmt.module is None:
            continue
        out = fmt.render(doc)
        if fmt.name == "pstats":
            assert marshal.loads(out) == {}
        elif fmt.name == "speedscope":
            check_speedscope(json.loads(out))
        elif fmt.name == "chrome":
            check_chrome(json.loads(out))


def test_every_format_from_a_profiler_in_process(instrumented, tmp_path):
    mod = instrumented(
        """\
        import threading

        def leaf(n):
            return abs(n)

        def rec(n):
            return leaf(n) if n == 0 else rec(n - 1)

        def boom():
            raise KeyError("k")

        def run():
            rec(3)
            try:
                boom()
            except KeyError:
                pass
            t = threading.Thread(target=rec, args=(2,), name="helper")
            t.start()
            t.join()
        """,
        "exp_inproc",
    )
    from recompyle import Profiler

    with Profiler(timeline=True) as prof:
        mod.run()
    doc = prof.document()
    check_speedscope(json.loads(get_format("speedscope").render(doc)))
    lanes = check_chrome(json.loads(get_format("chrome").render(doc)))
    names = {e["name"].split(" ")[0] for lane in lanes.values() for e in lane}
    assert {"rec", "leaf", "boom", "threading.Thread", "abs"} <= names
    path = tmp_path / "in.prof"
    path.write_bytes(get_format("pstats").render(doc))
    keys = {k[2].split(" ")[0] for k in pstats.Stats(str(path), stream=io.StringIO()).stats}
    assert {"<thread", "rec", "leaf", "boom"} <= keys
    folded = get_format("collapsed").render(doc)
    assert any(line.startswith("helper;rec (") for line in folded.splitlines())
    assert "boom (" in get_format("tree").render(doc, min_percent=0)
