#!/usr/bin/env python
"""Per-call cost of ``@byref``, measured in one process against a plain call.

Loops of ``n`` calls (``for _ in range(n): add(a, 1)``) of the same function, plain and
decorated, for each kind of by-reference argument: a local, a global, an attribute and a
constant-key item; a keyword argument and a method call too. Every call after the first at
a site reuses the site's analysis, so the figure is the steady cost: the wrapper, binding
the arguments into the generator copy, the checks, and the write-back. Configurations are
interleaved within each repeat and the minimum over the repeats is shown. Times are the
thread's CPU time (``thread_time_ns``), so other processes on a busy machine do not count.
The issue's target is at most 5 µs added per call (the original byref costs 0.3–5 ms).

    python benches/bench_byref.py            # 7 repeats x 20k calls
    python benches/bench_byref.py --quick --json out.json --check
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time

import targets as T

from recompyle import byref

TARGET_NS = T.BYREF_CALL.limit


def plain_add(x, y):  # noqa: ANN001, ANN201
    x += y
    return x


@byref("x")
def add(x, y):  # noqa: ANN001, ANN201
    x += y
    return x


class Box:
    def __init__(self) -> None:
        self.value = 0
        self.items = [0]

    def plain_m(self, x, y):  # noqa: ANN001, ANN201
        x += y
        return x

    @byref("x")
    def m(self, x, y):  # noqa: ANN001, ANN201
        x += y
        return x


G = 0


def loop_plain(n: int) -> None:
    a = 0
    for _ in range(n):
        plain_add(a, 1)


def loop_local(n: int) -> None:
    a = 0
    for _ in range(n):
        add(a, 1)
    assert a == n


def loop_global(n: int) -> None:
    global G
    G = 0
    for _ in range(n):
        add(G, 1)
    assert G == n


def loop_attribute(n: int) -> None:
    box = Box()
    for _ in range(n):
        add(box.value, 1)
    assert box.value == n


def loop_item(n: int) -> None:
    box = Box()
    for _ in range(n):
        add(box.items[0], 1)
    assert box.items[0] == n


def loop_keyword(n: int) -> None:
    a = 0
    for _ in range(n):
        add(x=a, y=1)
    assert a == n


def loop_keyword_plain(n: int) -> None:
    a = 0
    for _ in range(n):
        plain_add(x=a, y=1)


def loop_method_plain(n: int) -> None:
    box = Box()
    a = 0
    for _ in range(n):
        box.plain_m(a, 1)


def loop_method(n: int) -> None:
    box = Box()
    a = 0
    for _ in range(n):
        box.m(a, 1)
    assert a == n


LOOPS = {
    "plain call": loop_plain,
    "local": loop_local,
    "global": loop_global,
    "attribute": loop_attribute,
    "item": loop_item,
    "plain keyword call": loop_keyword_plain,
    "keyword": loop_keyword,
    "plain method call": loop_method_plain,
    "method, local": loop_method,
}


def measure(n: int, repeats: int) -> dict[str, float]:
    """Nanoseconds per call of each loop (minimum over the repeats)."""
    for f in LOOPS.values():
        f(100)
    best = {name: float("inf") for name in LOOPS}
    gc.disable()
    try:
        for r in range(repeats):
            names = list(LOOPS)
            names = names[r % len(names) :] + names[: r % len(names)]
            for name in names:
                t0 = time.thread_time_ns()
                LOOPS[name](n)
                best[name] = min(best[name], (time.thread_time_ns() - t0) / n)
    finally:
        gc.enable()
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=20_000, help="calls per loop (default 20,000)")
    ap.add_argument("-r", "--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="3 repeats x 5,000 calls")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--check", action="store_true", help="exit 1 above the target")
    args = ap.parse_args(argv)
    n, repeats = (5_000, 3) if args.quick else (args.n, args.repeats)
    best = measure(n, repeats)
    added = {}
    print(f"python {sys.version.split()[0]}, {n} calls x {repeats} repeats, ns per call")
    for name, ns in best.items():
        base = best["plain call"]
        if name.startswith("method"):
            base = best["plain method call"]
        elif name.startswith("keyword"):
            base = best["plain keyword call"]
        extra = "" if name.startswith("plain") else f"  (+{ns - base:,.0f} ns)"
        if not name.startswith("plain"):
            added[name] = ns - base
        print(f"  {name:<20} {ns:>9,.0f}{extra}")
    worst = max(added.values())
    verdict = "PASS" if worst <= TARGET_NS else "FAIL"
    print(f"worst added cost {worst:,.0f} ns per call; target <= {TARGET_NS:,.0f} ns: {verdict}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"ns_per_call": best, "added_ns": added, "target_ns": TARGET_NS}, f)
    return 1 if args.check and verdict == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
