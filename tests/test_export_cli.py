"""``recompyle run --format ...`` end to end: a real program with threads, recursion, an
exception and asyncio tasks, profiled into each format, each file read back by its
consumer; bad options refused before the program runs; a program that crashes, exits or is
interrupted still gets its report in every format."""

from __future__ import annotations

import io
import json
import os
import pstats
import re
import signal
import sys
from pathlib import Path

import pytest

from conftest import run_python
from format_readers import check_chrome, check_speedscope, flamegraph_svg, gprof2dot

PROGRAM = """\
import asyncio, sys, threading

def parse(text):
    return text.split(",")

def load_config():
    return parse("a,b,c")

def handle(request):
    return parse(request)

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def fail():
    raise ValueError("boom")

def worker():
    for _ in range(3):
        handle("x,y")

async def slow():
    await asyncio.sleep(0.03)
    return len("ab")

async def job():
    return await slow()

async def amain():
    return await asyncio.gather(job(), job())

def main():
    load_config()
    handle("q")
    fib(5)
    try:
        fail()
    except ValueError:
        pass
    thread = threading.Thread(target=worker, name="worker")
    thread.start()
    thread.join()
    asyncio.run(amain())
    end = sys.argv[1] if len(sys.argv) > 1 else "ok"
    if end == "crash":
        raise RuntimeError("crashed")
    if end == "exit":
        sys.exit(3)
    if end == "interrupt":
        raise KeyboardInterrupt

main()
"""

# Frame names of sites of PROGRAM (1-based columns), as every viewer shows them.
LOAD_PARSE = "parse (prog.py:7:12)"
HANDLE_PARSE = "parse (prog.py:10:12)"
FIB_INNER = "fib (prog.py:13:28)"
FAIL = "fail (prog.py:37:9)"
AWAIT_SLOW = "slow (prog.py:27:18)"
ASYNCIO_RUN = "asyncio.run (prog.py:43:5)"


def profile(tmp_path: Path, *options: str, end: str = "ok", env=None):
    (tmp_path / "prog.py").write_text(PROGRAM, encoding="utf-8")
    return run_python("-m", "recompyle", "run", *options, "prog.py", end, cwd=tmp_path, env=env)


def test_speedscope(tmp_path):
    proc = profile(tmp_path, "-o", "p.speedscope.json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads((tmp_path / "p.speedscope.json").read_text())
    check_speedscope(out)
    names = [f["name"] for f in out["shared"]["frames"]]
    for name in (LOAD_PARSE, HANDLE_PARSE, FIB_INNER, FAIL, AWAIT_SLOW):
        assert name in names
    profiles = {p["name"]: p for p in out["profiles"]}
    assert {"MainThread", "worker"} <= set(profiles)
    assert all(p["type"] == "sampled" for p in profiles.values())
    worker = profiles["worker"]
    stacks = [[names[f] for f in s] for s in worker["samples"]]
    assert ["worker", "handle (prog.py:20:9)", HANDLE_PARSE] in stacks


def test_speedscope_evented_with_timeline(tmp_path):
    proc = profile(tmp_path, "--timeline", "-o", "p.speedscope.json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads((tmp_path / "p.speedscope.json").read_text())
    check_speedscope(out)
    assert {p["type"] for p in out["profiles"]} == {"evented"}
    names = [f["name"] for f in out["shared"]["frames"]]
    opened = [names[e["frame"]] for p in out["profiles"] for e in p["events"] if e["type"] == "O"]
    assert opened.count("fib (prog.py:35:5)") == 1
    assert opened.count(HANDLE_PARSE) == 4


def test_chrome(tmp_path):
    proc = profile(tmp_path, "-o", "p.trace.json")  # chrome implies --timeline
    assert proc.returncode == 0, proc.stderr
    trace = json.loads((tmp_path / "p.trace.json").read_text())
    lanes = check_chrome(trace)
    threads = {e["args"]["name"] for e in trace["traceEvents"] if e.get("name") == "thread_name"}
    assert {"MainThread", "worker"} <= threads
    calls = [e for lane in lanes.values() for e in lane]
    assert len([e for e in calls if e["name"] == HANDLE_PARSE]) == 4
    assert [e["args"]["line"] for e in calls if e["name"] == FAIL] == [37]
    assert [e["args"]["raised"] for e in calls if e["name"] == FAIL] == [True]


def test_pstats(tmp_path):
    proc = profile(tmp_path, "-o", "p.prof")
    assert proc.returncode == 0, proc.stderr
    st = pstats.Stats(str(tmp_path / "p.prof"), stream=io.StringIO())
    entries = {key[2]: value for key, value in st.stats.items()}
    cc, nc, tt, ct, callers = entries[HANDLE_PARSE]
    assert nc == 4  # once from main, three times from the worker
    assert sorted(c[2] for c in callers) == ["handle (prog.py:20:9)", "handle (prog.py:34:5)"]
    assert entries[LOAD_PARSE][1] == 1
    # fib(5) makes 7 calls at fib(n - 1); the recursion, collapsed in the tree, is not
    # counted twice: the inner site's cumulative time is within the outer call's
    cc, nc, tt, ct, callers = entries[FIB_INNER]
    assert nc == 7 and ct <= entries["fib (prog.py:35:5)"][3]
    dot = gprof2dot("pstats", tmp_path / "p.prof")
    assert HANDLE_PARSE in dot and LOAD_PARSE in dot


def test_callgrind(tmp_path):
    proc = profile(tmp_path, "-o", "callgrind.out.1")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "callgrind.out.1").read_text()
    assert re.search(r"cfn=\(\d+\) parse \(prog\.py:7:12\)\ncalls=1 7\n7 \d+\n", text)
    dot = gprof2dot("callgrind", tmp_path / "callgrind.out.1")
    assert HANDLE_PARSE in dot and "&lt;thread worker&gt;" in dot or "<thread worker>" in dot


def test_collapsed(tmp_path):
    proc = profile(tmp_path, "-o", "p.folded")
    assert proc.returncode == 0, proc.stderr
    lines = (tmp_path / "p.folded").read_text().splitlines()
    stacks = {line.rsplit(" ", 1)[0] for line in lines}
    assert f"worker;handle (prog.py:20:9);{HANDLE_PARSE}" in stacks
    assert f"MainThread;main (prog.py:52:1);load_config (prog.py:33:5);{LOAD_PARSE}" in stacks
    # the two awaited slow() calls weigh the time their callers waited (2 x 30 ms sleep)
    awaited = sum(int(line.rsplit(" ", 1)[1]) for line in lines if AWAIT_SLOW in line)
    assert awaited >= 50_000_000
    svg = flamegraph_svg(tmp_path / "p.folded")
    assert HANDLE_PARSE in svg


def test_tree_goes_to_stderr(tmp_path):
    proc = profile(tmp_path, "--format", "tree", "--min-percent", "0")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("recompyle call tree:")
    assert re.search(r"\n[│ ]*[├└]─ .*  " + re.escape(LOAD_PARSE), proc.stderr)
    assert "\nworker  " in proc.stderr


@pytest.mark.parametrize("end", ["crash", "exit", "interrupt"])
@pytest.mark.parametrize(
    "output", ["p.speedscope.json", "p.trace.json", "p.prof", "callgrind.out.2", "p.collapsed"]
)
def test_report_survives_the_end_of_the_program(tmp_path, end, output):
    proc = profile(tmp_path, "-o", output, end=end)
    expected = {"crash": 1, "exit": 3, "interrupt": -signal.SIGINT}[end]
    if sys.platform == "win32" and end == "interrupt":
        pytest.skip("signals")
    assert proc.returncode == expected, proc.stderr
    data = (tmp_path / output).read_bytes()
    if output.endswith(".prof"):
        names = {key[2] for key in pstats.Stats(str(tmp_path / output)).stats}
        assert ASYNCIO_RUN in names and FAIL in names
    else:
        text = data.decode()
        if output.endswith(".json"):
            doc = json.loads(text)
            (check_chrome if "trace" in output else check_speedscope)(doc)
        assert ASYNCIO_RUN in text and FAIL in text
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# -- bad input: refused before the program runs ----------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "flame"], "--format: unknown format 'flame'; choose from text, json"),
        (["-o", "no/such/dir/p.prof"], "no directory"),
        (["--format", "pstats"], "--format pstats writes binary data, not for a terminal"),
        (["--timeline-cap", "0"], "--timeline-cap: '0' is not a positive whole number"),
        (["--timeline-cap", "\u00b2"], "--timeline-cap: '\u00b2' is not a positive whole"),
        (["--min-duration", "fast"], "--min-duration: 'fast' is not a duration like 50us"),
        (["--min-percent", "120"], "--min-percent: '120' is not a percentage from 0 to 100"),
    ],
)
def test_bad_options(tmp_path, args, message):
    (tmp_path / "x.py").write_text("open('ran', 'w').close()\n")
    proc = run_python("-m", "recompyle", "run", *args, "x.py", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert lines[0].startswith("recompyle run: error: ")
    assert not (tmp_path / "ran").exists()


def test_bad_format_from_the_environment(tmp_path):
    (tmp_path / "x.py").write_text("open('ran', 'w').close()\n")
    proc = run_python(
        "-m", "recompyle", "run", "x.py", cwd=tmp_path, env={"RECOMPYLE_FORMAT": "flame"}
    )
    assert proc.returncode == 2 and "RECOMPYLE_FORMAT: unknown format 'flame'" in proc.stderr
    assert not (tmp_path / "ran").exists()


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_binary_format_to_a_terminal_device(tmp_path):
    master, slave = os.openpty()
    try:
        (tmp_path / "x.py").write_text("open('ran', 'w').close()\n")
        tty = os.ttyname(slave)
        proc = run_python("-m", "recompyle", "run", "--format", "pstats", "-o", tty, "x.py",
                          cwd=tmp_path)  # fmt: skip
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 2 and "not for a terminal" in proc.stderr
    assert not (tmp_path / "ran").exists()


def test_env_route_writes_new_formats(tmp_path):
    (tmp_path / "app.py").write_text(PROGRAM, encoding="utf-8")
    proc = run_python(
        "-c",
        "import app",
        cwd=tmp_path,
        env={"RECOMPYLE_MODULES": "app", "RECOMPYLE_OUTPUT": str(tmp_path / "e.prof")},
    )
    assert proc.returncode == 0, proc.stderr
    names = {key[2] for key in pstats.Stats(str(tmp_path / "e.prof")).stats}
    assert "parse (app.py:7:12)" in names
    proc = run_python(
        "-c", "print(1)", env={"RECOMPYLE_MODULES": "x", "RECOMPYLE_FORMAT": "pstats"}
    )
    assert proc.returncode == 0 and proc.stdout == "1\n"
    assert "RECOMPYLE_FORMAT='pstats' is binary: set RECOMPYLE_OUTPUT" in proc.stderr


def test_parse_duration():
    from recompyle.cli import parse_duration

    assert parse_duration("50us") == 50_000
    assert parse_duration("1.5ms") == 1_500_000
    assert parse_duration("2s") == 2_000_000_000
    assert parse_duration("100ns") == parse_duration("100") == 100
    assert parse_duration("3µs") == 3_000
    for bad in ("", "ms", "-1ms", "1h", "nan"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_timeline_cap_and_min_duration(tmp_path):
    proc = profile(tmp_path, "--timeline-cap", "5", "-o", "p.speedscope.json")
    assert proc.returncode == 0, proc.stderr
    dropped = re.findall(r"the timeline kept 5 events and dropped (\d+)", proc.stderr)
    assert len(dropped) == 1 and int(dropped[0]) > 0
    out = json.loads((tmp_path / "p.speedscope.json").read_text())
    check_speedscope(out)
    kinds = [p["type"] for p in out["profiles"]]
    assert "evented" in kinds and "sampled" in kinds  # the exact tree comes along
    assert sum(len(p["events"]) for p in out["profiles"] if p["type"] == "evented") == 10
    proc = profile(tmp_path, "--min-duration", "20ms", "-o", "p.trace.json")
    assert proc.returncode == 0, proc.stderr
    lanes = check_chrome(json.loads((tmp_path / "p.trace.json").read_text()))
    calls = [e for lane in lanes.values() for e in lane]
    assert calls and all(e["dur"] >= 20_000 for e in calls)
    assert "main (prog.py:52:1)" in {e["name"] for e in calls}


def test_child_processes_with_a_viewer_format(tmp_path):
    """A viewer format holds the child processes' calls too (the merged document)."""
    (tmp_path / "helper.py").write_text("def f():\n    return abs(-3)\n")
    (tmp_path / "mp.py").write_text(
        "import subprocess, sys\n"
        "def child():\n"
        "    code = 'import helper; print(helper.f())'\n"
        "    return subprocess.run([sys.executable, '-c', code]).returncode\n"
        "child()\n"
    )
    proc = run_python(
        "-m", "recompyle", "run", "--modules", "helper", "-o", "mp.prof", "mp.py", cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout == "3\n", proc.stderr
    assert "shows this process's calls only" not in proc.stderr
    names = {key[2] for key in pstats.Stats(str(tmp_path / "mp.prof")).stats}
    assert "child (mp.py:5:1)" in names
    assert "abs (helper.py:2:12)" in names


MANY_TASKS = """\
import asyncio

def work(i):
    return i * 2

async def step(i):
    await asyncio.sleep(0)
    return work(i)

async def serve(i):
    total = 0
    for k in range(2):
        total += await step(i + k)
    return total

async def main():
    for start in range(0, 3000, 300):
        await asyncio.gather(*[serve(i) for i in range(start, start + 300)])

asyncio.run(main())
"""


@pytest.mark.parametrize(
    "output",
    [
        "p.json",
        "p.speedscope.json",
        "timeline.speedscope.json",
        "p.trace.json",
        "p.prof",
        "callgrind.out.3",
        "p.collapsed",
        "tree",
        "p.html",
    ],
)
def test_every_format_with_many_tasks(tmp_path, output):
    """3000 interleaved tasks of one coroutine: one root for them (a lane per task while a
    timeline with room records), read back by each format's consumer; every call counted."""
    (tmp_path / "many.py").write_text(MANY_TASKS, encoding="utf-8")
    options = {"tree": ["--format", "tree", "--min-percent", "0"]}.get(output, ["-o", output])
    if output.startswith("timeline."):
        options = ["--timeline", *options]
    proc = run_python("-m", "recompyle", "run", *options, "many.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    step = "step (many.py:13:24)"
    work = "work (many.py:8:12)"
    if output == "tree":
        assert re.search(r"\nserve \(task\)  ", proc.stderr), proc.stderr
        assert "3001 tasks" in proc.stderr.splitlines()[0]
        assert re.search(re.escape(step) + r"  \[6000 calls", proc.stderr)
        return
    path = tmp_path / output
    if output == "p.json":
        doc = json.loads(path.read_text())
        (serve,) = [r for r in doc["roots"] if r["kind"] == "task" and r["name"] == "serve"]
        (node,) = [c for c in serve["children"] if doc["sites"][c["site"]]["callee"] == "step"]
        assert node["calls"] == 6000 and serve["tasks"] == 3000
        (leaf,) = [c for c in node["children"] if doc["sites"][c["site"]]["callee"] == "work"]
        row = next(s for s in doc["sites"] if s["callee"] == "work")
        assert leaf["calls"] == row["calls"] == 6000 and leaf["total_ns"] == row["total_ns"]
        assert len(doc["roots"]) <= 3
    elif output.endswith("speedscope.json"):
        out = json.loads(path.read_text())
        check_speedscope(out)
        names = [f["name"] for f in out["shared"]["frames"]]
        assert step in names and work in names
        if output.startswith("timeline."):
            opened = [
                names[e["frame"]] for p in out["profiles"] for e in p["events"] if e["type"] == "O"
            ]
            assert opened.count(work) == 6000
        else:
            assert "serve (task)" in {p["name"] for p in out["profiles"]}
    elif output == "p.trace.json":
        lanes = check_chrome(json.loads(path.read_text()))
        calls = [e for lane in lanes.values() for e in lane]
        assert len([e for e in calls if e["name"] == work]) == 6000
    elif output == "p.prof":
        st = pstats.Stats(str(path), stream=io.StringIO())
        entries = {key[2]: value for key, value in st.stats.items()}
        assert entries[work][1] == entries[step][1] == 6000
        assert step in gprof2dot("pstats", path)
    elif output.startswith("callgrind"):
        assert step in gprof2dot("callgrind", path)
    elif output == "p.collapsed":
        lines = path.read_text().splitlines()
        assert any(line.startswith(f"serve (task);{step};{work} ") for line in lines)
        assert work in flamegraph_svg(path)
    else:
        from test_html import page_data

        data = page_data(path.read_text(encoding="utf-8"))
        assert ("task", "serve") in {(r["kind"], r["name"]) for r in data["roots"]}
