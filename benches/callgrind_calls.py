#!/usr/bin/env python
"""Instructions per call (valgrind's callgrind), for when timings are unusable.

    python benches/callgrind_calls.py [--configs plain,instr,profiler,...] [--workloads call,method]

A neighbour on a shared machine changes the time a call takes, not the instructions it
executes. For each configuration and workload this runs ``bench_calls.py``'s loop (the same
source, plain and instrumented, the same set-up of each configuration) under
``valgrind --tool=callgrind`` twice, at ``--small`` and ``--large`` iterations, one process
each, and prints (instructions at large - at small) / (large - small): the instructions of
one iteration, start-up and set-up cancelled out. ``added`` is against ``plain`` (the loop's
own instructions included in both). Instructions are not time: a clock read is a handful of
instructions and tens of nanoseconds on some VMs, which weighs on every profiler alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

import callgrind_run

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = ["plain", "instr", "handler", "profiler", "tree", "timeline", "cprofile"]
# two_noops: two plain calls of a no-op Python function per iteration (what a no-op
# before+after handler's own two calls cost), for the handler's net figure.
WORKLOADS = ["call", "kwcall", "method", "builtin", "two_noops"]


def one(config: str, workload: str, n: int) -> None:
    """Inside valgrind: set up as bench_calls.py does and run the loop once, ``n`` times."""
    import bench_calls

    plain_ns, instr_ns, path = bench_calls._build()
    try:
        ns = plain_ns if config in ("plain", "cprofile") else instr_ns
        fn = ns["run_" + workload]
        bench_calls._warm_code(fn)  # 3.9/3.10's opcache on, as bench_calls.py does
        bench_calls._time_once(config, fn, 200)  # warm: specialised before the counted run
        bench_calls._time_once(config, fn, n)
    finally:
        os.unlink(path)


def count(config: str, workload: str, n: int) -> int:
    return callgrind_run.instructions(
        [os.path.abspath(__file__), "--one", config, workload, str(n)],
        f"{config} {workload} {n}",
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--workloads", default="call,method")
    ap.add_argument("--small", type=int, default=20_000)
    ap.add_argument("--large", type=int, default=120_000)
    ap.add_argument("--one", nargs=3, metavar=("CONFIG", "WORKLOAD", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        one(args.one[0], args.one[1], int(args.one[2]))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    configs = [c for c in args.configs.split(",") if c]
    if "plain" not in configs:
        configs.insert(0, "plain")
    workloads = [w for w in args.workloads.split(",") if w]
    bad = (set(configs) - set(CONFIGS)) | (set(workloads) - set(WORKLOADS))
    if bad:
        ap.error(f"unknown configuration or workload: {', '.join(sorted(bad))}")
    per: dict = {}
    for w in workloads:
        for c in configs:
            small, large = count(c, w, args.small), count(c, w, args.large)
            per[(c, w)] = (large - small) / (args.large - args.small)
    print(f"instructions per iteration, Python {sys.version.split()[0]}, callgrind")
    print("workload  " + "".join(f"{c:>12}" for c in configs))
    for w in workloads:
        cells = []
        for c in configs:
            value = per[(c, w)]
            base = per[("plain", w)]
            cells.append(f"{value:12.0f}" if c == "plain" else f"{value - base:+12.0f}")
        print(f"{w:<10}" + "".join(cells))
    print("(plain: the loop iteration with its call; others: added to plain)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
