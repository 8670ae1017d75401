#!/usr/bin/env python
"""What ``--otel`` adds to a call that stays under the minimum duration, beside the tree
profiler it is built on, in one process.

The loops of ``bench_calls.py`` are compiled plainly and through
``recompyle.instrument_source``; ``f(i)`` and ``obj.m(i)`` are timed
with no listener (``instr``), under the tree profiler (``tree``: ``Profiler()``'s native
recording) and under ``recompyle.otel.instrument(min_duration=10)`` (``otel``: the same
recording plus the slow-call check; no call here lasts 10 s, so no span is made), the
configurations interleaved and rotated within each repeat. The empty loop's time is
subtracted; "added" is ns per call over the plain loop. The issue's target: ``otel`` adds
at most 20 ns per call more than ``tree``.

    python benches/bench_otel.py [--quick] [-n N] [-r R] [--json FILE]

Needs the OpenTelemetry SDK (``pip install 'recompyle[otel]'``); see benches/README.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time

from bench_calls import _build  # the same loops (run_empty, run_call, run_method)

from recompyle import _core

WORKLOADS = ("call", "method")
CONFIGS = ("plain", "instr", "tree", "otel")
TARGET_NS = 20.0


def _time_once(config: str, fn, n: int) -> int:
    from recompyle import otel

    pc = time.perf_counter_ns
    if config in ("plain", "instr"):
        t0 = pc()
        fn(n)
        return pc() - t0
    _core.profiler_reset()
    if config == "tree":
        _core.profiler_start(True)
    else:
        otel.instrument(10.0)
    try:
        t0 = pc()
        fn(n)
        return pc() - t0
    finally:
        if config == "tree":
            _core.profiler_stop(True)
        else:
            otel.uninstrument()


def measure(n: int, repeats: int) -> dict:
    plain, instr, path = _build()
    try:
        keys = ("empty", *WORKLOADS)
        samples: dict = {(c, k): [] for c in CONFIGS for k in keys}
        for c in CONFIGS:
            for k in keys:
                _time_once(c, (plain if c == "plain" else instr)["run_" + k], max(1000, n // 20))
        gc.collect()
        gc.disable()
        try:
            for r in range(repeats):
                for wi, k in enumerate(keys):
                    shift = (r + wi) % len(CONFIGS)
                    for c in CONFIGS[shift:] + CONFIGS[:shift]:
                        ns = plain if c == "plain" else instr
                        samples[(c, k)].append(_time_once(c, ns["run_" + k], n))
        finally:
            gc.enable()
    finally:
        os.unlink(path)
    per_call = {
        c: {k: min(samples[(c, k)]) / n - min(samples[(c, "empty")]) / n for k in WORKLOADS}
        for c in CONFIGS
    }
    added = {c: {k: per_call[c][k] - per_call["plain"][k] for k in WORKLOADS} for c in CONFIGS[1:]}
    over_tree = {k: added["otel"][k] - added["tree"][k] for k in WORKLOADS}
    ratio = {
        k: added["otel"][k] / added["tree"][k] if added["tree"][k] > 0 else None for k in WORKLOADS
    }
    return {
        "n": n,
        "repeats": repeats,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "per_call_ns": per_call,
        "added_ns": added,
        "otel_over_tree_ns": over_tree,
        "otel_over_tree_ratio": ratio,
        "target_pass": all(v <= TARGET_NS for v in over_tree.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats x 50k iterations")
    parser.add_argument("-n", type=int, help="iterations per timing (default 200000)")
    parser.add_argument("-r", type=int, help="repeats (default 7)")
    parser.add_argument("--json", help="also write the figures as JSON to this file")
    args = parser.parse_args(argv)
    # No call here is slow: no span, so no exporter either.
    os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
    from recompyle.otel import unavailable_reason

    reason = unavailable_reason()
    if reason:
        print(f"bench_otel: {reason}", file=sys.stderr)
        return 2
    n = args.n or (50_000 if args.quick else 200_000)
    repeats = args.r or (3 if args.quick else 7)
    result = measure(n, repeats)
    print(f"CPython {result['python']}, {n} calls x {repeats} repeats (min), ns added per call:")
    print(f"{'':10}{'instr':>9}{'tree':>9}{'otel':>9}{'otel-tree':>11}{'otel/tree':>11}")
    for k in WORKLOADS:
        a = result["added_ns"]
        ratio = result["otel_over_tree_ratio"][k]
        print(
            f"{k:10}{a['instr'][k]:9.1f}{a['tree'][k]:9.1f}{a['otel'][k]:9.1f}"
            f"{result['otel_over_tree_ns'][k]:11.1f}"
            + (f"{ratio:11.2f}" if ratio is not None else f"{'-':>11}")
        )
    verdict = "PASS" if result["target_pass"] else "FAIL"
    print(f"target: otel adds <= {TARGET_NS:.0f} ns per call over tree: {verdict}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
