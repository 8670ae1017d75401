"""``python -m recompyle.performance``: the original recompyle's measurements, of this package.

The same five functions of ten calls each as the original's script (unwrapped, a do-nothing
``wrap_calls`` wrapper, ``flat_profile`` with no callback, with the default below callback,
and with the default above callback), timed the same way, printed in the same words. The
default callbacks log through ``logging``, left unconfigured as in the original's run (INFO
records are dropped by the level check; the message is still built).

``--count`` and ``--repeat`` default to the original's 100,000 and 100 (about a minute);
``benches/bench_decorators.py`` measures the per-call costs more finely.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from statistics import mean

from recompyle import flat_profile, wrap_calls


def simple_wrapper(__call, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
    return __call(*args, **kwargs)


def other(val1, val2):  # noqa: ANN001, ANN201
    return val1 + val2


def unwrapped() -> None:
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)


@wrap_calls(wrapper=simple_wrapper)
def wrapped_simple() -> None:
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)


@flat_profile(time_limit=100, below_callback=None)
def wrapped_profiler() -> None:
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)


@flat_profile(time_limit=100)  # Default below callback will always run
def wrapped_profiler_below() -> None:
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)


@flat_profile(time_limit=0)  # Default above callback will always run
def wrapped_profiler_above() -> None:
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)
    other(0, val2=1)


CALLS = 10
S_TO_US = 1_000_000


def collect_times(stmt: str, label: str, count: int, repeat: int) -> float:
    times = []
    print(f"\rRunning {label} {count:,} times, repeat 0/{repeat}", end="", flush=True)
    for loop in range(repeat):
        times.append(timeit.timeit(stmt, number=count, globals=globals()))
        print(f"\rRunning {label} {count:,} times, repeat {loop + 1}/{repeat}", end="", flush=True)
    avg = (mean(times) / count) * S_TO_US
    print(": average", avg, "microseconds")
    return avg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recompyle.performance", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--count", type=int, default=100_000, help="calls per timing (default 100,000)"
    )
    parser.add_argument(
        "--repeat", type=int, default=100, help="timings per function (default 100)"
    )
    args = parser.parse_args(argv)
    n, r = args.count, args.repeat
    base_avg_us = collect_times("unwrapped()", "unwrapped function", n, r)
    simple_avg_us = collect_times("wrapped_simple()", "simple wrapper", n, r)
    profiler_avg_us = collect_times("wrapped_profiler()", "flat profiler w/ no callback", n, r)
    profiler_below_us = collect_times(
        "wrapped_profiler_below()", "flat profiler w/ default below callback", n, r
    )
    profiler_above_us = collect_times(
        "wrapped_profiler_above()", "flat profiler w/ default above callback", n, r
    )

    print(
        "\nSimple wrapper call cost is",
        (simple_avg_us - base_avg_us) / CALLS,
        "microseconds per wrapped call",
    )
    print(
        "Flat profiler call cost is",
        (profiler_avg_us - base_avg_us) / CALLS,
        "microseconds per wrapped call",
    )
    print(
        "Flat profiler default below callback costs",
        profiler_below_us - profiler_avg_us,
        "microseconds",
    )
    print(
        "Flat profiler default above callback costs",
        profiler_above_us - profiler_avg_us,
        "microseconds",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
