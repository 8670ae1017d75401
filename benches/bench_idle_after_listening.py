#!/usr/bin/env python
"""What an idle call site costs before and after something listened to it, in one process.

``bench_calls.py`` times one instrumented loop under every configuration in turn, so its
idle (``instr``) column measures sites that handlers and profilers have already gone
through. On CPython 3.13+ that matters: the interpreter's call after the site's branch has
then seen the call proxy, and the specialiser may have chosen a generic call that also
accepts the plain callee (``CALL_NON_PY_GENERAL`` accepts builtins such as ``len``, so a
site that was listened to never returns to ``CALL_LEN``). This bench times the same loops,
instrumented, while idle: first never listened to, then after one run under a no-op
handler, each against the plain loop and the empty loop in the same round.

    python benches/bench_idle_after_listening.py [--repeats 15] [-n 200000] [--cpu 1]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

# The loops and their two compilations are bench_calls.py's (a script's own directory is
# first on sys.path), so both benches time the same code.
from bench_calls import WORKLOADS, _build, _warm_code

import recompyle


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("-n", "--iterations", type=int, default=200_000)
    ap.add_argument("--cpu", type=int, help="pin the process to this CPU (Linux)")
    args = ap.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    gc.disable()
    plain, instr, path = _build()
    before = _added(plain, instr, args.iterations, args.repeats)
    handler = recompyle.add_handler(before=lambda event: None, after=lambda event: None)
    try:
        for key, _ in WORKLOADS:
            instr["run_" + key](1000)
    finally:
        handler.remove()
    after = _added(plain, instr, args.iterations, args.repeats)
    os.unlink(path)
    print(
        f"idle call sites, Python {sys.version.split()[0]}: ns added to the plain call, "
        f"min of {args.repeats} x {args.iterations}"
    )
    print(f"{'workload':<10} {'plain':>8} {'never listened':>15} {'after listening':>16}")
    for key, label in WORKLOADS:
        label = label.split("  ")[0]  # "g(i, k=1)  keyword call" -> "g(i, k=1)"
        print(
            f"{label:<10} {before['plain ' + key]:>6.1f}ns {before[key]:>+13.1f}ns "
            f"{after[key]:>+14.1f}ns"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
