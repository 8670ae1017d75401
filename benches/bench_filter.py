#!/usr/bin/env python
"""What a handler filter (``add_handler(..., callee=..., module=...)``) costs the calls it
rejects, measured in one process.

Loops of ``f(i)`` and ``obj.m(i)`` calls, compiled plainly and instrumented, timed under: plain; no
handler; a no-op ``before``+``after`` handler without a filter (every call is an event and
two Python calls); and the same handler with a filter the call does not pass: ``callee=``
another function, ``callee=`` a qualified name, ``module=`` another module. The
configurations are interleaved within each repeat (order rotated), timed in thread CPU time
(the machine is shared); the empty loop of the
same configuration is subtracted; the figure is the minimum over repeats, in ns per call.

    python benches/bench_filter.py [--repeats 7] [--n 200000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable

import recompyle

SOURCE = """\
def f(x):
    return x


def other(x):
    return x


def run_empty(n):
    for i in range(n):
        pass


class C:
    def m(self, x):
        return x


obj = C()


def run_call(n):
    for i in range(n):
        f(i)


def run_method(n):
    for i in range(n):
        obj.m(i)
"""

WORKLOADS = {"f(i)": "run_call", "obj.m(i)": "run_method"}


def load(instrumented: bool) -> dict:
    name = "bench_filter_instrumented" if instrumented else "bench_filter_plain"
    path = f"<{name}>"
    if instrumented:
        code = recompyle.instrument_source(SOURCE.encode(), path, name)
    else:
        code = compile(SOURCE, path, "exec")
    namespace: dict = {"__name__": name}
    exec(code, namespace)
    return namespace


def noop(event: object) -> None:
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()

    plain = load(False)
    inst = load(True)
    handler_kwargs: dict[str, dict | None] = {
        "plain": None,
        "no handler": None,
        "handler, no filter": {},
        "handler, callee=other function (rejects)": {"callee": inst["other"]},
        "handler, callee='other' qualname (rejects)": {"callee": "other"},
        "handler, module='nosuch.*' (rejects)": {"module": "nosuch.*"},
        "handler, callee=f (passes)": {"callee": inst["f"]},
    }
    names = list(handler_kwargs)
    # Minimum of each loop separately, then the difference: ns per call of the call alone.
    best_empty: dict[str, float] = {name: float("inf") for name in names}
    best_call = {w: {name: float("inf") for name in names} for w in WORKLOADS}

    def timed(loop: Callable[[int], None], kwargs: dict | None) -> float:
        h = None if kwargs is None else recompyle.add_handler(before=noop, after=noop, **kwargs)
        try:
            loop(1000)  # warm: specialisation, the proxy free list
            t0 = time.thread_time_ns()
            loop(args.n)
            return (time.thread_time_ns() - t0) / args.n
        finally:
            if h is not None:
                h.remove()

    for repeat in range(args.repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in order:
            ns = plain if name == "plain" else inst
            kwargs = handler_kwargs[name]
            best_empty[name] = min(best_empty[name], timed(ns["run_empty"], kwargs))
            for w, loop in WORKLOADS.items():
                best_call[w][name] = min(best_call[w][name], timed(ns[loop], kwargs))
    best = {
        w: {name: calls[name] - best_empty[name] for name in names}
        for w, calls in best_call.items()
    }

    print(f"CPython {platform.python_version()}, min of {args.repeats} repeats x {args.n} calls")
    print("ns per call (empty loop subtracted), and added to the instrumented call with no handler")
    print(f"{'configuration':<46}" + "".join(f" {w:>18}" for w in WORKLOADS))
    for name in names:
        cells = "".join(
            f" {best[w][name]:>8.1f} ({best[w][name] - best[w]['no handler']:>+6.1f})"
            for w in WORKLOADS
        )
        print(f"{name:<46}{cells}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"python": platform.python_version(), "ns_per_call": best}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
