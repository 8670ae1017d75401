#!/usr/bin/env python
"""Per-call cost of ``flat_profile`` and ``wrap_calls``, measured in one process.

Three copies of one loop (``for i in range(n): g(i, k=1)``): plain, under
``@flat_profile(time_limit=..., below_callback=None)`` and under ``@wrap_calls`` with a
do-nothing wrapper. Each is timed with ``perf_counter_ns`` over ``n`` calls per invocation, so
the per-invocation cost (the shim, the record) is spread thin and the figure is the cost per
timed call; the configurations are interleaved within each repeat and the minimum over the
repeats is shown. The target for ``flat_profile`` is +60 ns per call.

With ``--original DIR`` (a directory holding the original recompyle's ``recompyle`` package,
e.g. ``pip download recompyle==0.2.0`` unpacked: 0.2.0 is the last release with
``flat_profile``), the same loops run under the original in a subprocess, baseline included,
and its figures are printed beside ours.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time

import targets as T

from recompyle import flat_profile, wrap_calls

TARGET_FLAT_PROFILE_NS = T.FLAT_PROFILE_DECORATOR.limit


def g(x, k=0):  # noqa: ANN001, ANN201
    return x


def wrapper(__call, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
    return __call(*args, **kwargs)


def plain(n: int) -> None:
    for i in range(n):
        g(i, k=1)


# Decorator syntax: the original finds its decorator in the source to remove it.
@flat_profile(time_limit=1e9, below_callback=None)
def profiled(n: int) -> None:
    for i in range(n):
        g(i, k=1)


@wrap_calls(wrapper=wrapper)
def wrapped(n: int) -> None:
    for i in range(n):
        g(i, k=1)


def measure(n: int, repeats: int) -> dict[str, float]:
    """Nanoseconds per call of each configuration (minimum over the repeats)."""
    funcs = {"plain": plain, "flat_profile": profiled, "wrap_calls": wrapped}
    for f in funcs.values():
        f(1000)
    best = {name: float("inf") for name in funcs}
    gc.disable()
    try:
        for r in range(repeats):
            names = list(funcs)
            names = names[r % len(names) :] + names[: r % len(names)]
            for name in names:
                t0 = time.perf_counter_ns()
                funcs[name](n)
                best[name] = min(best[name], (time.perf_counter_ns() - t0) / n)
    finally:
        gc.enable()
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=200_000, help="calls per invocation (default 200,000)")
    ap.add_argument("-r", type=int, default=7, help="repeats (default 7)")
    ap.add_argument("--original", help="directory with the original recompyle package")
    ap.add_argument("--check", action="store_true", help="exit 1 if flat_profile misses its target")
    ap.add_argument("--emit-json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    ours = measure(args.n, args.r)
    if args.emit_json:
        print(json.dumps(ours))
        return 0
    theirs = None
    if args.original:
        env = dict(os.environ, PYTHONPATH=os.path.abspath(args.original))
        out = subprocess.run(
            [
                sys.executable,
                os.path.abspath(__file__),
                "-n",
                str(args.n),
                "-r",
                str(args.r),
                "--emit-json",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        theirs = json.loads(out.stdout)

    print(
        f"Python {sys.version.split()[0]}, {args.n:,} calls x {args.r} repeats, ns per call (min)"
    )
    header = f"{'configuration':<14} {'recompyle (this)':>18}"
    if theirs:
        header += f" {'original':>18}"
    print(header)
    for name in ("plain", "flat_profile", "wrap_calls"):
        row = f"{name:<14} {ours[name]:>8.1f} ({ours[name] - ours['plain']:+6.1f})"
        if theirs:
            row += f"   {theirs[name]:>8.1f} ({theirs[name] - theirs['plain']:+6.1f})"
        print(row)
    added = ours["flat_profile"] - ours["plain"]
    verdict = "met" if added <= TARGET_FLAT_PROFILE_NS else "MISSED"
    target = f"<= +{TARGET_FLAT_PROFILE_NS:.0f} ns per call"
    print(f"flat_profile target: {target}: {added:+.1f} ns, {verdict}")
    return 1 if args.check and added > TARGET_FLAT_PROFILE_NS else 0


if __name__ == "__main__":
    sys.exit(main())
