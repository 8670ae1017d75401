#!/usr/bin/env python
"""Memory of the call tree: 1 million calls through 1000 distinct call-site paths.

    python benches/bench_tree_memory.py [--calls N] [--timeline]

Instrumented code where ``a0..a9`` each call ``b0..b9``, which each call ``c0..c9``: 1110
nodes, 1000 distinct leaf paths. Runs about ``N`` calls under ``recompyle.Profiler()`` and
prints JSON: the resident set size growth from before profiling to the end (everything the
profiler allocated, tree and flat table), the nodes the tree holds and the calls it counted.
With ``--timeline`` the profiler records a timeline too (capped at 2 million events), to
show the cap bounds memory. Target: tree growth under 20 MiB for 1 million calls.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile

import targets as T

import recompyle
from recompyle import _core


def source() -> str:
    lines = []
    for i in range(10):
        lines.append(f"def c{i}():\n    return {i}\n")
    for i in range(10):
        body = "".join(f"    c{j}()\n" for j in range(10))
        lines.append(f"def b{i}():\n{body}")
    for i in range(10):
        body = "".join(f"    b{j}()\n" for j in range(10))
        lines.append(f"def a{i}():\n{body}")
    calls = "".join(f"        a{i}()\n" for i in range(10))
    lines.append(f"def run(n):\n    for _ in range(n):\n{calls}")
    return "\n".join(lines)


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--timeline", action="store_true")
    args = ap.parse_args(argv)
    data = source().encode()
    fd, path = tempfile.mkstemp(prefix="recompyle_tree_", suffix=".py")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    ns: dict = {"__name__": "treework", "__file__": path}
    try:
        exec(recompyle.instrument_source(data, path, "treework"), ns)
    finally:
        os.unlink(path)
    per_round = 10 * (1 + 10 * (1 + 10))  # a, b and c calls of one round
    rounds = max(1, args.calls // per_round)
    ns["run"](1)  # warm the interpreter, not profiled
    gc.collect()
    before = rss_bytes()
    with recompyle.Profiler(timeline=args.timeline) as prof:
        ns["run"](rounds)
    gc.collect()
    after = rss_bytes()
    counts = _core.profiler_counts()
    calls = sum(row[3] for row in counts.nodes)
    doc = prof.document() if args.timeline else None
    growth_mib = (after - before) / 2**20
    # Runs shorter than a million calls are held to the whole limit (fixed costs dominate).
    per_million = growth_mib * 1_000_000 / max(calls, 1_000_000)
    json.dump(
        {
            "target": T.TREE_MEMORY.name,
            "mib_per_million_calls": round(per_million, 2),
            "pass": T.TREE_MEMORY.met(per_million),
            "calls": calls,
            "nodes": len(counts.nodes),
            "rss_growth_mib": round(growth_mib, 2),
            "timeline_events": len(doc["timeline"]["events"]) if doc else None,
            "timeline_dropped": doc["timeline"]["dropped"] if doc else None,
        },
        sys.stdout,
    )
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
