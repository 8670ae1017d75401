#!/usr/bin/env python
"""Instrumenting one-line files of many call sites (generated or minified code).

    python benches/bench_one_line.py [--sites 10000,40000,120000] [--repeat 3]

Each file is ``def f(x): ...`` and one line ``x = [f(0), f(1), ...]``. For each size, the
plain ``compile()`` of the file and ``recompyle.instrument_source`` (transform, compile of the
rewritten text, position remap, site registration) are timed in this process, interleaved,
min over the repeats; the ratio is instrumented / plain. The position remap once scanned a
line's edits for every instruction, quadratic in sites per line (20k sites took 8 s, 120k
never finished): with a binary search the ratio stays flat as the line grows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import recompyle


def _source(sites: int) -> bytes:
    calls = ", ".join(f"f({i})" for i in range(sites))
    return f"def f(x):\n    return x\nx = [{calls}]\n".encode()


def _seconds(fn, *args: object) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", default="10000,40000,120000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, min of {args.repeat}")
    print(f"{'sites':>8} {'line bytes':>11} {'plain s':>8} {'instr s':>8} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sites.split(",")):
            data = _source(n)
            path = os.path.join(tmp, f"one_line_{n}.py")
            with open(path, "wb") as f:
                f.write(data)
            plain = instr = float("inf")
            for _ in range(args.repeat):  # interleaved: plain, then ours, each round
                plain = min(plain, _seconds(compile, data, path, "exec"))
                instr = min(instr, _seconds(recompyle.instrument_source, data, path, "one_line"))
            line = len(data.splitlines()[2])
            print(f"{n:>8} {line:>11} {plain:>8.2f} {instr:>8.2f} {instr / plain:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
