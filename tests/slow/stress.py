"""Slow stress suite (issue 18): what threads, signals, exits, processes and long runs do to
an instrumented program. Each case runs in fresh interpreters and must pass on every run.

    python tests/slow/stress.py [--runs N] [--calls N] [CASE ...]

Cases (default: all; ``--runs`` repeats each, default 1; the issue asks for 20 in a row):

``threads``   8 threads make instrumented calls with the profiler on while the main thread
              adds and removes a Python handler 2000 times; every call is counted once.
``signals``   a Python signal handler that makes instrumented calls runs every millisecond
              (``setitimer``) during a hot instrumented loop with a handler listening; the
              loop's calls are all counted and the program ends normally.
``daemons``   daemon threads inside instrumented calls while the interpreter exits, with the
              profiler and a handler listening: exit status 0, never an abort (SIGABRT).
``processes`` 32 processes import the same fresh (never cached) modules at once, racing to
              write their cache files, and write their report to the same file: each runs
              right, the file is one whole report, no temporary file is left.
``memory``    10 million instrumented calls with the profiler on: resident memory after them
              is within 2 MiB of what it was after the first million.

Exits 1 if any run of any case failed, printing what it saw.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

TIMEOUT = 300


def _python(
    code: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMPYLE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def _module(cwd: Path, name: str, source: str) -> None:
    (cwd / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")


def _numbers(cwd: Path, name: str, source: str, *args: int) -> list[int] | str:
    """Write module ``name`` with ``source``, import it instrumented in a fresh interpreter,
    print ``name.main(*args)``: the numbers it returns, or what went wrong."""
    _module(cwd, name, source)
    proc = _python(f"{_load(name)}; import {name}; print(*{name}.main(*{args!r}))", cwd)
    if proc.returncode != 0:
        return f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    return [int(n) for n in proc.stdout.split()]


def _load(name: str) -> str:
    """Code that imports ``name`` instrumented (the module file is in the cwd)."""
    return f"import sys; sys.path.insert(0, '.'); import recompyle; recompyle.install({name!r})"


def case_threads(cwd: Path, calls: int) -> str | None:
    n = max(1, calls // 80)
    got = _numbers(
        cwd,
        "st_threads",
        """\
        import threading
        import recompyle

        def work(i):
            return i + 1

        def worker(n, stop, made):
            # At least n calls, and on until the main thread has churned enough.
            i = 0
            while i < n or not stop.is_set():
                work(i)
                i += 1
            made.append(i)

        def main(n):
            seen = [0]
            def before(event):
                seen[0] += 1
            prof = recompyle.Profiler().start()
            stop = threading.Event()
            made = []
            threads = [
                threading.Thread(target=worker, args=(n, stop, made)) for _ in range(8)
            ]
            for t in threads:
                t.start()
            for churn in range(2000):
                handle = recompyle.add_handler(before=before)
                handle.remove()
            stop.set()
            for t in threads:
                t.join()
            prof.stop()
            counted = sum(r.calls for r in prof.stats() if r.callee == "work")
            return counted, sum(made), seen[0]
        """,
        n,
    )
    if isinstance(got, str):
        return got
    counted, made, _seen = got
    if counted != made:
        return f"profiler counted {counted} calls of work, the threads made {made}"
    return None


def case_signals(cwd: Path, calls: int) -> str | None:
    n = max(1, calls // 10)
    got = _numbers(
        cwd,
        "st_signals",
        """\
        import signal
        import recompyle

        def tick():
            return 1

        def f(i):
            return i

        def main(n):
            ticks = [0]
            def on_alarm(signum, frame):
                ticks[0] += tick()
            def before(event):
                pass
            signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
            prof = recompyle.Profiler().start()
            with recompyle.handler(before=before):
                for i in range(n):
                    f(i)
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            prof.stop()
            rows = {r.callee: r.calls for r in prof.stats()}
            return rows.get("f", 0), ticks[0]
        """,
        n,
    )
    if isinstance(got, str):
        return got
    counted, ticks = got
    if counted != n:
        return f"profiler counted {counted} calls of f, expected {n}"
    if ticks < 10:
        return f"the signal handler ran only {ticks} times"
    return None


def case_daemons(cwd: Path, calls: int) -> str | None:
    _module(
        cwd,
        "st_daemons",
        """\
        import threading
        import time
        import recompyle

        def spin():
            time.sleep(0)
            return 1

        def worker():
            while True:
                spin()

        def main():
            recompyle.add_handler(before=lambda event: None)
            for _ in range(4):
                threading.Thread(target=worker, daemon=True).start()
            time.sleep(0.05)
            print("exiting", flush=True)
        """,
    )
    proc = _python(
        f"""\
        {_load("st_daemons")}
        from recompyle.report import report_at_exit
        report_at_exit("json", "daemons.json")
        import st_daemons
        st_daemons.main()
        """,
        cwd,
    )
    if proc.returncode != 0:
        return f"exit {proc.returncode} (-6 is SIGABRT): {proc.stderr[-2000:]}"
    if proc.stdout != "exiting\n":
        return f"output {proc.stdout!r}"
    doc = json.loads((cwd / "daemons.json").read_text(encoding="utf-8"))
    if not any(s["callee"] == "spin" and s["calls"] > 0 for s in doc["sites"]):
        return "the report has no calls of spin"
    return None


def case_processes(cwd: Path, calls: int) -> str | None:
    package = cwd / "st_fresh"
    package.mkdir(exist_ok=True)
    for i in range(8):
        (package / f"m{i}.py").write_text(
            f"def f{i}(x):\n    return abs(x) + len(str(x))\n\n"
            f"VALUE = sum(f{i}(j) for j in range(100))\n",
            encoding="utf-8",
        )
    (package / "__init__.py").write_text(
        "from . import " + ", ".join(f"m{i}" for i in range(8)) + "\n", encoding="utf-8"
    )
    report = cwd / "shared.json"
    code = "import st_fresh; print(sum(getattr(st_fresh, f'm{i}').VALUE for i in range(8)))"
    # Bytecode writes on: the processes race to write the same cache files too.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RECOMPYLE_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(RECOMPYLE_MODULES="st_fresh.*", RECOMPYLE_OUTPUT=str(report))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(32)
    ]
    outs = [p.communicate(timeout=TIMEOUT) for p in procs]
    expected = str(sum(sum(abs(j) + len(str(j)) for j in range(100)) for _ in range(8))) + "\n"
    for p, (out, err) in zip(procs, outs):
        if p.returncode != 0 or out != expected or err:
            return f"a process exited {p.returncode} printing {out!r}, stderr {err[-2000:]!r}"
    doc = json.loads(report.read_text(encoding="utf-8"))  # one whole report, or this raises
    calls_of_abs = sum(s["calls"] for s in doc["sites"] if s["callee"] == "abs")
    if calls_of_abs != 800:
        return f"the report counts {calls_of_abs} calls of abs, one process made 800"
    cached = sorted(p.name for p in (package / "__pycache__").glob("*.pyc"))
    if len(cached) != 9 or not all(".recompyle-" in name for name in cached):
        return f"expected the 9 modules' cache files, found {cached}"
    debris = [p.name for p in [*cwd.iterdir(), *(package / "__pycache__").iterdir()]]
    debris = [name for name in debris if name.endswith(".tmp")]
    if debris:
        return f"temporary files left: {debris}"
    return None


def case_memory(cwd: Path, calls: int) -> str | None:
    got = _numbers(
        cwd,
        "st_memory",
        """\
        import os
        import recompyle

        def f(i):
            return i

        def run(n):
            for i in range(n):
                f(i)

        def rss():
            with open("/proc/self/statm") as s:
                return int(s.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

        def main(calls):
            prof = recompyle.Profiler().start()
            run(1_000_000)
            first = rss()
            run(calls - 1_000_000)
            last = rss()
            prof.stop()
            return first, last, sum(r.calls for r in prof.stats() if r.callee == "f")
        """,
        max(calls, 1_000_000),
    )
    if isinstance(got, str):
        return got
    first, last, counted = got
    print(
        f"    memory: {first / 2**20:.1f} MiB after 1M calls, "
        f"{last / 2**20:.1f} MiB after {counted}"
    )
    if counted != max(calls, 1_000_000):
        return f"profiler counted {counted} calls, expected {max(calls, 1_000_000)}"
    if last - first > 2 * 2**20:
        return f"resident memory grew by {(last - first) / 2**20:.1f} MiB"
    return None


CASES: dict[str, Callable[[Path, int], str | None]] = {
    "threads": case_threads,
    "signals": case_signals,
    "daemons": case_daemons,
    "processes": case_processes,
    "memory": case_memory,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", metavar="CASE", help=", ".join(CASES))
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--calls", type=int, default=10_000_000)
    args = parser.parse_args(argv)
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    failures = 0
    for name in args.cases or list(CASES):
        failed = []
        start = time.perf_counter()
        for run in range(args.runs):
            with tempfile.TemporaryDirectory(prefix=f"stress-{name}-") as tmp:
                problem = CASES[name](Path(tmp), args.calls)
            if problem is not None:
                failed.append(f"run {run + 1}: {problem}")
        elapsed = time.perf_counter() - start
        print(f"{name}: {args.runs - len(failed)}/{args.runs} passed ({elapsed:.1f} s)")
        for line in failed:
            print("   ", line)
        failures += len(failed)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
