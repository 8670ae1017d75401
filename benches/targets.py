"""Every benchmark target of recompyle, defined once.

The issues set these limits; ``run_all.py`` and the single benches (``bench_calls.py``,
``bench_decorators.py``, ``bench_globals.py``, ``bench_byref.py``, ``bench_tree_memory.py``,
``bench_html.py``) import them from here, so a target changes in one place and every bench
judges by the same number. Each bench imports this file as ``targets`` (a script's own
directory is first on ``sys.path``).

Added costs are *gross* (time per call under the configuration minus plain, empty loop
subtracted on both) unless the target's name says *net* (then the cost of the Python
functions the tool calls is subtracted too, as measured in the same process).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """A limit on one figure: ``value <= limit`` (or ``>=`` when ``at_least``)."""

    name: str
    limit: float
    unit: str
    at_least: bool = False

    def met(self, value: float) -> bool:
        return value >= self.limit if self.at_least else value <= self.limit

    def verdict(self, value: float) -> str:
        return "PASS" if self.met(value) else "FAIL"


def _idle_limits(version: tuple[int, int]) -> tuple[float, float]:
    """Issue 20: ns an idle call site may add to a call (function, method) on ``version``."""
    if version >= (3, 11):
        return 5.0, 10.0
    return 15.0, 15.0


_IDLE_FUNCTION, _IDLE_METHOD = _idle_limits(sys.version_info[:2])

# Issue 20, "Done when": the three rows run_all.py prints first.
WARM_IMPORT = Target("warm import <= 1.05x plain", 1.05, "x")
IDLE_CALL = Target(
    f"idle call site <= +{_IDLE_FUNCTION:.0f} ns (f(i), g(i, k=1), len(x))", _IDLE_FUNCTION, "ns"
)
IDLE_METHOD = Target(f"idle method call site <= +{_IDLE_METHOD:.0f} ns", _IDLE_METHOD, "ns")
COLD_IMPORT = Target("cold import <= 1.3x plain", 1.3, "x")

# Listening costs (issues 6, 12).
PROFILER = Target("flat profiler <= +60 ns per call (gross)", 60.0, "ns")
HANDLER_NET = Target("Python before+after handler <= +50 ns per call (net)", 50.0, "ns")
TREE_OVER_CPROFILE = Target("tree profiler <= 0.35x what cProfile adds", 0.35, "x")
TIMELINE_OVER_TREE = Target("timeline <= 2x what the tree profiler adds", 2.0, "x")
FLAT_PROFILE_DECORATOR = Target("@flat_profile <= +60 ns per call (gross)", 60.0, "ns")

# Other features.
GLOBAL_READ = Target("tracked global read <= +25 ns", 25.0, "ns")
BYREF_CALL = Target("byref call <= +5000 ns", 5000.0, "ns")
TREE_MEMORY = Target("call tree RSS growth < 20 MiB per million calls", 20.0, "MiB")
RSS_FLAT = Target("RSS flat over the calls (< 1 MiB growth)", 1.0, "MiB")
SUITE_PROFILED = Target("suite under our profiler <= 1.5x plain", 1.5, "x")
TRANSFORM_SPEED = Target("transform >= 80 MB/s single-threaded", 80.0, "MB/s", at_least=True)
GIL_RELEASED = Target("GIL released while transforming (other thread > 50%)", 0.5, "", True)
HTML_SIZE = Target("HTML report of 10,000 nodes < 5 MB", 5.0, "MB")
HTML_FIRST_PAINT = Target("HTML report first paint < 2 s", 2.0, "s")
