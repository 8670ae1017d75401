#!/usr/bin/env python
"""Merging cost: 100 parts of 10,000 sites each (and a tree node per site), as a run with 100
worker processes would leave them; prints the time to combine them (target: under 2 s).

    python benches/bench_combine.py [--parts 100] [--sites 10000]
"""

from __future__ import annotations

import argparse
import random
import time

from recompyle.combine import combine, new_part_id


def part(pid: int, nsites: int, rng: random.Random) -> dict:
    sites = []
    for i in range(nsites):
        calls = rng.randint(1, 1000)
        total = calls * rng.randint(50, 5000)
        sites.append(
            {
                "file": f"/app/mod{i % 97}.py",
                "line": i // 97 + 1,
                "col": 4,
                "end_line": i // 97 + 1,
                "end_col": 12,
                "callee": f"f{i}",
                "caller": f"g{i % 13}",
                "module": f"mod{i % 97}",
                "calls": calls,
                "total_ns": total,
                "self_ns": total // 2,
                "mean_ns": total / calls,
                "max_ns": total,
                "raised": 0,
            }
        )
    # A tree ten levels deep: each node's children are the next sites.
    nodes = [
        {"site": i, "calls": 1, "total_ns": 1, "self_ns": 1, "max_ns": 1, "raised": 0,
         "children": []}
        for i in range(nsites)
    ]  # fmt: skip
    for i in range(nsites - 1, 9, -1):
        nodes[i // 10]["children"].append(nodes[i])
    roots = [{"kind": "thread", "name": "MainThread", "thread_id": 1, "total_ns": 1,
              "children": nodes[:10]}]  # fmt: skip
    return {"version": 2, "pid": pid, "parts": [new_part_id(pid)], "sites": sites,
            "roots": roots, "timeline": None, "files": {}}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", type=int, default=100)
    ap.add_argument("--sites", type=int, default=10_000)
    args = ap.parse_args()
    rng = random.Random(1)
    parts = [part(pid, args.sites, rng) for pid in range(args.parts)]
    t0, c0 = time.perf_counter(), time.process_time()
    merged = combine(parts)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert len(merged["sites"]) == args.sites
    print(
        f"combine: {args.parts} parts x {args.sites} sites in {elapsed:.2f} s "
        f"({cpu:.2f} s CPU; target: under 2 s)"
    )


if __name__ == "__main__":
    main()
