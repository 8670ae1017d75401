"""The flat profiler's Python face: start, stop, and per-site statistics.

Timing happens in the trampoline (two reads of the CPU's time-stamp counter around each
call); this module only turns the native table into ``SiteStats`` rows. Times are inclusive:
a call's time includes everything it called.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from recompyle import _core

__all__ = ["Profiler", "SiteStats", "snapshot", "start"]


@dataclass(frozen=True)
class SiteStats:
    """What the profiler saw at one call site. Columns are 0-based UTF-8 byte offsets."""

    file: str
    module: str
    line: int
    col: int
    end_line: int
    end_col: int
    callee: str
    caller: str
    calls: int
    total_ns: int
    max_ns: int
    raised: int

    @property
    def mean_ns(self) -> float:
        return self.total_ns / self.calls if self.calls else 0.0


def snapshot() -> list[SiteStats]:
    """Every site called so far, longest total time first."""
    rows = []
    for site_id, calls, total_ns, max_ns, raised in _core.profiler_snapshot():
        try:
            file, module, line, col, end_line, end_col, callee, caller = _core.site_info(site_id)
        except ValueError:
            continue
        rows.append(
            SiteStats(
                file, module, line, col, end_line, end_col, callee, caller,
                calls, total_ns, max_ns, raised,
            )
        )  # fmt: skip
    rows.sort(key=lambda r: (-r.total_ns, r.file, r.line, r.col))
    return rows


_forks_reset = False


def start() -> None:
    """Start the process's profile. A process forked from this one starts with an empty
    profile, not a copy of its parent's: whoever reports the child's calls (or merges them
    with the parent's) then counts each call once."""
    global _forks_reset
    if not _forks_reset and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_core.profiler_reset)
        _forks_reset = True
    _core.profiler_start()


class Profiler:
    """Times every instrumented call while running; a context manager too.

    There is one profile per process: two ``Profiler`` objects share it.
    """

    def start(self) -> Profiler:
        start()
        return self

    def stop(self) -> None:
        _core.profiler_stop()

    def reset(self) -> None:
        _core.profiler_reset()

    @property
    def running(self) -> bool:
        return _core.profiler_running()

    def stats(self) -> list[SiteStats]:
        return snapshot()

    def __enter__(self) -> Profiler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
