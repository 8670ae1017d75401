"""A profile of a window of time: the calls that ended between ``start`` and ``stop``.

The pytest plugin (one window per test, and the ``recompyle_profile`` fixture) and the
IPython magics (one window per cell) need the profile of a stretch of the run, while the
native profiler keeps one table for the whole process (and a session report may be reading
it). A window therefore never resets that table: it keeps the table's numbers at its start
and subtracts them at its end, so windows nest and overlap freely and the process-wide
report is untouched.

What a difference can and cannot say: calls, total time and raised calls of a site are
exact (a call counts in the window it ends in). A longest call is only known when it
happened inside the window (the site's maximum grew); otherwise ``max_ns`` is the site's
process-wide maximum, which is an upper bound, and ``ScopedProfile.max_exact`` says which.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Dict, Tuple

from recompyle import _core
from recompyle.profiler import SiteStats

__all__ = ["ScopedProfile", "SiteTotals", "resolve"]


@dataclass(frozen=True)
class SiteTotals:
    """The native table's numbers for one site id at one moment."""

    calls: int
    total_ns: int
    max_ns: int
    raised: int


#: Site id -> (calls, total_ns, max_ns, raised).
_Table = Dict[int, Tuple[int, int, int, int]]


def _table() -> _Table:
    """Site id -> (calls, total_ns, max_ns, raised), kept as the native tuples: a test
    session takes two of these per test."""
    return {row[0]: row[1:] for row in _core.profiler_snapshot()}


def resolve(site_id: int, totals: SiteTotals) -> SiteStats | None:
    """A ``SiteStats`` row for a site id (None for a site whose module is gone)."""
    try:
        file, module, line, col, end_line, end_col, callee, caller = _core.site_info(site_id)
    except ValueError:
        return None
    return SiteStats(
        file, module, line, col, end_line, end_col, callee, caller,
        totals.calls, totals.total_ns, totals.max_ns, totals.raised,
    )  # fmt: skip


# Windows that asked the native profiler to run, and whether one of them started it: the
# last to stop stops it only then, so a profile someone else runs is never stopped.
_lock = threading.Lock()
_holders = 0
_started_by_us = False


def _hold() -> None:
    global _holders, _started_by_us
    with _lock:
        if _holders == 0 and not _core.profiler_running():
            _core.profiler_start()
            _started_by_us = True
        _holders += 1


def _release() -> None:
    global _holders, _started_by_us
    with _lock:
        _holders -= 1
        if _holders == 0 and _started_by_us:
            _core.profiler_stop()
            _started_by_us = False


class ScopedProfile:
    """The calls of instrumented code that end while this profile is running.

    Starting one starts the native profiler if nobody runs it (and stopping the last one
    stops it again); a context manager too. Only instrumented modules are timed: see
    ``recompyle.install``.
    """

    def __init__(self) -> None:
        self._start: _Table | None = None
        self._end: _Table | None = None

    def start(self) -> ScopedProfile:
        if self.running:
            return self
        _hold()
        self._start = _table()
        self._end = None
        return self

    def stop(self) -> None:
        if not self.running:
            return
        self._end = _table()
        _release()

    @property
    def running(self) -> bool:
        return self._start is not None and self._end is None

    def totals(self) -> dict[int, SiteTotals]:
        """Site id -> the window's numbers (up to now while running), for sites called in
        it. ``max_ns`` is exact only for ids in ``max_exact``."""
        if self._start is None:
            return {}
        end = self._end if self._end is not None else _table()
        return _difference(self._start, end)

    def max_exact(self) -> set[int]:
        """Site ids whose longest call happened inside the window."""
        if self._start is None:
            return set()
        start = self._start
        end = self._end if self._end is not None else _table()
        return {
            site
            for site, now in end.items()
            if now[0] > (start[site][0] if site in start else 0)
            and (site not in start or now[2] > start[site][2])
        }

    def stats(self) -> list[SiteStats]:
        """The window's sites, longest total time first, as ``Profiler.stats()``."""
        rows = [row for site, t in self.totals().items() if (row := resolve(site, t))]
        rows.sort(key=lambda r: (-r.total_ns, r.file, r.line, r.col))
        return rows

    def __enter__(self) -> ScopedProfile:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _difference(start: _Table, end: _Table) -> dict[int, SiteTotals]:
    out = {}
    for site, now in end.items():
        before = start.get(site)
        if before is None or now[0] < before[0]:
            out[site] = SiteTotals(*now)  # new in the window, or the table was reset in it
        elif now[0] > before[0]:
            calls, total_ns, max_ns, raised = now
            out[site] = SiteTotals(
                calls - before[0], total_ns - before[1], max_ns, raised - before[3]
            )
    return out
