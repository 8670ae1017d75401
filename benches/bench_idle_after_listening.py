#!/usr/bin/env python
"""What an idle call site costs before and after something listened to it, in one process.

``bench_calls.py`` times one instrumented loop under every configuration in turn, so its
idle (``instr``) column measures sites that handlers and profilers have already gone
through. On CPython 3.13+ that matters: the interpreter's call after the site's branch has
then seen the call proxy, and the specialiser may have chosen a generic call that also
accepts the plain callee (``CALL_NON_PY_GENERAL`` accepts builtins such as ``len``, so a
site sharing one call instruction between the flag's branches never returned to
``CALL_LEN``, nor ``lst.append(x)`` to ``CALL_LIST_APPEND``; from 3.13 such a call with
duplicable arguments has a call in each branch, ``rewrite.rs``'s ``select_call``). This
bench times the same loops, plus a builtin method's, instrumented, while idle: first never
listened to, then after one run under a no-op handler, each against the plain loop and the
empty loop in the same round.

    python benches/bench_idle_after_listening.py [--repeats 15] [-n 200000] [--cpu 1]
    python benches/bench_idle_after_listening.py --callgrind [--configs plain,handler,...]

``--callgrind`` instead counts the instructions of one iteration of the builtin method's
loop under each configuration (valgrind's callgrind, as ``callgrind_calls.py`` does for
``bench_calls.py``'s loops, which have no builtin method): what a listened call of a builtin
method costs.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time

# The loops and their two compilations are bench_calls.py's (a script's own directory is
# first on sys.path), so both benches time the same code.
from bench_calls import WORKLOADS as CALL_WORKLOADS
from bench_calls import _build, _warm_code

import recompyle

# A builtin method through the method form, which bench_calls.py does not time.
EXTRA = ("append", "lst.append(i)  builtin method")
EXTRA_SOURCE = """
lst = []

def run_append(n):
    for i in range(n):
        lst.append(i)
    lst.clear()
"""


def _build_extra(plain: dict, instr: dict) -> str:
    """Add ``run_append``, plain and instrumented, to the namespaces; return its file."""
    data = EXTRA_SOURCE.encode()
    fd, path = tempfile.mkstemp(prefix="recompyle_bench_", suffix=".py")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    exec(compile(data, path, "exec", dont_inherit=True), plain)
    exec(recompyle.instrument_source(data, path, "bench_extra"), instr)
    return path


WORKLOADS = [*CALL_WORKLOADS, EXTRA]


def _added(plain: dict, instr: dict, n: int, repeats: int) -> dict[str, float]:
    """ns per call the idle instrumented loop adds to the plain one, min over ``repeats``."""
    fns = {"empty": plain["run_empty"]}
    for key, _ in WORKLOADS:
        fns["plain " + key] = plain["run_" + key]
        fns["instr " + key] = instr["run_" + key]
    for fn in fns.values():
        _warm_code(fn)
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter_ns()
            fn(n)
            best[name] = min(best[name], (time.perf_counter_ns() - t0) / n)
    return {key: best["instr " + key] - best["plain " + key] for key, _ in WORKLOADS} | {
        "plain " + key: best["plain " + key] - best["empty"] for key, _ in WORKLOADS
    }


def _callgrind_one(config: str, n: int) -> None:
    """Inside valgrind: ``run_append(n)`` once under ``config``, set up as bench_calls.py
    sets up each configuration (warmed first, as callgrind_calls.py does)."""
    from bench_calls import _time_once

    plain, instr, path = _build()
    extra_path = _build_extra(plain, instr)
    try:
        fn = (plain if config in ("plain", "cprofile") else instr)["run_append"]
        _warm_code(fn)
        _time_once(config, fn, 200)
        _time_once(config, fn, n)
    finally:
        os.unlink(path)
        os.unlink(extra_path)


def _callgrind(configs: list[str], small: int = 20_000, large: int = 120_000) -> int:
    import callgrind_run

    me = os.path.abspath(__file__)
    per = {}
    for config in ["plain"] + [c for c in configs if c != "plain"]:
        counts = [
            callgrind_run.instructions([me, "--callgrind-one", config, str(n)], f"{config} {n}")
            for n in (small, large)
        ]
        per[config] = (counts[1] - counts[0]) / (large - small)
    print(f"{EXTRA[1].split('  ')[0]}: instructions per iteration, Python "
          f"{sys.version.split()[0]}, callgrind (others added to plain)")  # fmt: skip
    print("".join(f"{c:>10}" for c in per))
    print("".join(f"{v:10.0f}" if c == "plain" else f"{v - per['plain']:+10.0f}"
                  for c, v in per.items()))  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("-n", "--iterations", type=int, default=200_000)
    ap.add_argument("--cpu", type=int, help="pin the process to this CPU (Linux)")
    ap.add_argument("--callgrind", action="store_true", help="count instructions instead")
    ap.add_argument("--configs", default="plain,instr,handler,profiler,tree")
    ap.add_argument("--callgrind-one", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.callgrind_one:
        _callgrind_one(args.callgrind_one[0], int(args.callgrind_one[1]))
        return 0
    if args.callgrind:
        return _callgrind(args.configs.split(","))
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    gc.disable()
    plain, instr, path = _build()
    extra_path = _build_extra(plain, instr)
    before = _added(plain, instr, args.iterations, args.repeats)
    handler = recompyle.add_handler(before=lambda event: None, after=lambda event: None)
    try:
        for key, _ in WORKLOADS:
            instr["run_" + key](1000)
    finally:
        handler.remove()
    after = _added(plain, instr, args.iterations, args.repeats)
    os.unlink(path)
    os.unlink(extra_path)
    print(
        f"idle call sites, Python {sys.version.split()[0]}: ns added to the plain call, "
        f"min of {args.repeats} x {args.iterations}"
    )
    print(f"{'workload':<14} {'plain':>8} {'never listened':>15} {'after listening':>16}")
    for key, label in WORKLOADS:
        label = label.split("  ")[0]  # "g(i, k=1)  keyword call" -> "g(i, k=1)"
        print(
            f"{label:<14} {before['plain ' + key]:>6.1f}ns {before[key]:>+13.1f}ns "
            f"{after[key]:>+14.1f}ns"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
