#!/usr/bin/env python
"""Start-up cost of a child process of a profiled run: ``python -c pass`` started plain and
as a profiled run's child (``RECOMPYLE_PARTS`` set, so the start-up hook profiles it and it
leaves a part at exit), alternating, min of N wall times (and the medians and quartiles: on
a loaded machine the spread says how far to trust the minimum). Target: at most +15 ms.
``.pyc`` files are written (``PYTHONDONTWRITEBYTECODE`` is dropped), as an installed
package has them.

    python benches/bench_child_startup.py [-n 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def once(env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=20)
    args = ap.parse_args()
    plain = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RECOMPYLE_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    with tempfile.TemporaryDirectory() as parts:
        child = {**plain, "RECOMPYLE_PARTS": parts, "RECOMPYLE_PARTS_OWNER": "1",
                 "RECOMPYLE_MODULES": "nothing_matches_this"}  # fmt: skip
        once(plain), once(child)  # the .pyc files, written once
        times: dict[str, list[float]] = {"plain": [], "child": []}
        for _ in range(args.n):
            times["plain"].append(once(plain))
            times["child"].append(once(child))
        wrote = len(os.listdir(parts)) - 1
    best = {k: min(v) * 1e3 for k, v in times.items()}
    print(
        f"child start-up: plain {best['plain']:.1f} ms, profiled child {best['child']:.1f} ms "
        f"(+{best['child'] - best['plain']:.1f} ms; target +15 ms); {wrote} parts written"
    )
    for name, got in times.items():
        low, _, high = statistics.quantiles([t * 1e3 for t in got], n=4)
        median = statistics.median(got) * 1e3
        print(f"  {name}: median {median:.1f} ms, quartiles {low:.1f}-{high:.1f} ms")
    if wrote != args.n:
        raise SystemExit(f"expected {args.n} parts, found {wrote}")


if __name__ == "__main__":
    main()
