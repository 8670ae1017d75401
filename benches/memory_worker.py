#!/usr/bin/env python
"""Resident memory across 10 million instrumented calls, a tenth of them raising; prints JSON.

    python benches/memory_worker.py --mode none|profiler|handler [--calls N] [--step S]

Calls ``f(i)`` from instrumented code (``f`` raises ``ValueError`` when ``i % 10 == 0``, and
the caller catches it) in steps of ``S`` calls, and records the process's resident set size
(``/proc/self/statm``) after each step. Memory that leaks per call, per exception or per
event grows with the count; what is allocated once does not. The first step is the
warm-up: ``run_all.py`` judges the growth from the end of the first step to the end.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile

import recompyle
from recompyle import _core

SOURCE = """\
def f(i):
    if i % 10 == 0:
        raise ValueError(i)
    return i


def run(start, stop):
    for i in range(start, stop):
        try:
            f(i)
        except ValueError:
            pass
"""


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=["none", "profiler", "handler"], required=True)
    ap.add_argument("--calls", type=int, default=10_000_000)
    ap.add_argument("--step", type=int, default=1_000_000)
    args = ap.parse_args(argv)

    fd, path = tempfile.mkstemp(prefix="recompyle_mem_", suffix=".py")
    with os.fdopen(fd, "wb") as fh:
        fh.write(SOURCE.encode())
    ns: dict = {"__name__": "memwork", "__file__": path}
    try:
        exec(recompyle.instrument_source(SOURCE.encode(), path, "memwork"), ns)
    finally:
        os.unlink(path)
    events = [0]

    def before(event):
        events[0] += 1

    def after(event):
        events[0] += 1

    handle = None
    if args.mode == "profiler":
        _core.profiler_reset()
        _core.profiler_start()
    elif args.mode == "handler":
        handle = recompyle.add_handler(before=before, after=after)
    samples = []
    done = 0
    while done < args.calls:
        step = min(args.step, args.calls - done)
        ns["run"](done, done + step)
        done += step
        gc.collect()
        samples.append((done, rss_bytes()))
    if handle is not None:
        handle.remove()
    profiled = 0
    if args.mode == "profiler":
        _core.profiler_stop()
        profiled = sum(row[1] for row in _core.profiler_snapshot())
    json.dump(
        {
            "mode": args.mode,
            "calls": done,
            "rss": samples,
            "handler_events": events[0],
            "profiled_calls": profiled,
        },
        sys.stdout,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
