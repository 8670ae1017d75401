"""The profiler's Python face: ``Profiler`` objects, per-site rows and the call tree.

Timing happens in the trampoline (two reads of the CPU's time-stamp counter around each
call, ``crates/recompyle_python/src/profiler.rs``), which keeps one native record per
process: a flat row per call site and a calling-context tree per thread. This module turns
raw counts into named rows, and gives each ``Profiler`` its own view of them: the native
recording runs while any profiler is started (a count), and each profiler subtracts the
counts it found when it started, so profilers nest and overlap and a new one starts at
zero. Longest-call figures cannot be subtracted: when a profiler starts, the running ones
fold the current maxima into their own and the native maxima start again from zero.

Times are inclusive (a call's time includes everything it called); ``self_ns`` is a call's
time minus the time of the reported calls made inside it.
"""

from __future__ import annotations

import _thread
import os
import sys
import time
from dataclasses import dataclass

if False:  # typing only: the run's profiler is made at start-up, keep the imports light
    from typing import Any

from recompyle import _core

__all__ = [
    "CallNode",
    "CallRoot",
    "Profiler",
    "ProfileView",
    "SiteStats",
    "TimelineEvent",
    "Timeline",
    "snapshot",
    "whole_view",
]


@dataclass(frozen=True)
class SiteStats:
    """What the profiler saw at one call site. Columns are 0-based UTF-8 byte offsets.

    ``calls`` counts every call, ``untimed`` of them made deeper than the reporting limit
    (200 nested reported calls): counted, their time inside the enclosing reported call's.
    """

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
    self_ns: int = 0
    untimed: int = 0
    site_id: int = 0

    @property
    def mean_ns(self) -> float:
        timed = self.calls - self.untimed
        return self.total_ns / timed if timed > 0 else 0.0


@dataclass(frozen=True)
class CallNode:
    """One call-site path: ``site`` reached through the chain of its ancestors' sites.

    A call at a site already on the path is counted at that ancestor (recursion is
    collapsed); its time is not added to ``total_ns`` again. ``self_ns`` is the time of
    this node's calls minus the time of reported calls made inside them.
    """

    site: SiteStats
    calls: int
    total_ns: int
    self_ns: int
    max_ns: int
    raised: int
    untimed: int
    children: tuple[CallNode, ...]

    @property
    def callee(self) -> str:
        return self.site.callee


@dataclass(frozen=True)
class CallRoot:
    """One thread's or asyncio task's tree: ``kind`` is ``"thread"`` or ``"task"``,
    ``name`` the thread's or task's name (``Task-3``), ``thread_id`` the thread it ran on."""

    kind: str
    name: str
    thread_id: int
    total_ns: int
    children: tuple[CallNode, ...]


@dataclass(frozen=True)
class TimelineEvent:
    """One call: ``root`` and ``site`` index ``ProfileView.roots`` and ``.sites``; times
    are nanoseconds from the profiler's start."""

    root: int
    site: int
    start_ns: int
    end_ns: int
    raised: bool


@dataclass(frozen=True)
class Timeline:
    dropped: int
    events: tuple[TimelineEvent, ...]


@dataclass(frozen=True)
class ProfileView:
    """Everything one profiler saw: sites (longest total first), roots, and the timeline
    when one was recorded."""

    sites: list[SiteStats]
    roots: list[CallRoot]
    timeline: Timeline | None
    wall_ns: int | None


# ------------------------------------------------------------------ raw counts arithmetic

# Per site: [calls, ticks, max_ticks, raised, untimed]; per node: [calls, ticks, self_ticks,
# max_ticks, raised, untimed]. The max is at index MAX of each.
_SITE_MAX = 2
_NODE_MAX = 3


@dataclass(frozen=True)
class _RawCounts:
    """``_core.Counts`` read once: its attributes build a new list on every access."""

    ns_per_tick: float
    sites: list[tuple[int, ...]]
    nodes: list[tuple[int, ...]]
    roots: list[tuple[int, int, str | None, str]]
    epoch: int
    now: int


def _counts() -> _RawCounts:
    c = _core.profiler_counts()
    return _RawCounts(c.ns_per_tick, c.sites, c.nodes, c.roots, c.epoch, c.now)


def _site_rows(counts: Any) -> dict[int, list[int]]:
    return {row[0]: list(row[1:]) for row in counts.sites}


def _node_rows(counts: Any) -> dict[int, list[int]]:
    return {i: list(row[3:]) for i, row in enumerate(counts.nodes)}


def _sub(now: dict[int, list[int]], base: dict[int, list[int]], imax: int) -> dict:
    out = {}
    for key, row in now.items():
        old = base.get(key)
        diff = list(row) if old is None else [a - b for a, b in zip(row, old)]
        diff[imax] = row[imax]  # maxima are kept apart (see _fold_max)
        if diff[0] or diff[imax]:
            out[key] = diff
    return out


def _merge(into: dict[int, list[int]], more: dict[int, list[int]], imax: int) -> None:
    for key, row in more.items():
        have = into.get(key)
        if have is None:
            into[key] = list(row)
        else:
            for i, v in enumerate(row):
                have[i] = max(have[i], v) if i == imax else have[i] + v


def _max_of(rows: dict[int, list[int]], imax: int) -> dict[int, int]:
    return {k: r[imax] for k, r in rows.items() if r[imax]}


# Profilers started and not stopped, oldest first.
_running: list[Profiler] = []


def _fold_max(counts: Any) -> None:
    """A profiler is starting: the running ones keep the maxima so far, and the native
    maxima restart from zero, so the new one sees only its own calls' maxima."""
    sites, nodes = _site_rows(counts), _node_rows(counts)
    for prof in _running:
        prof._fold(sites, nodes, counts.epoch)
    _core.profiler_clear_max()


_forks_reset = False


def _reset_in_forked_children() -> None:
    """A process forked from this one starts with an empty profile, not a copy of its
    parent's: whoever reports the child's calls (or merges them with the parent's) then
    counts each call once."""
    global _forks_reset
    if not _forks_reset:
        os.register_at_fork(after_in_child=_core.profiler_reset)
        _forks_reset = True


class Profiler:
    """Times every instrumented call while running; a context manager too.

    Each profiler reports what happened while *it* was running: profilers nest and
    overlap (the one ``python -m recompyle run`` starts included), and a new one starts
    at zero. ``reset()`` forgets what this profiler collected so far (the others keep
    theirs). ``timeline=True`` also records the begin and end of each call (at most
    ``timeline_cap`` events, calls shorter than ``min_duration_ns`` left out; the tree
    stays exact past the cap and the number dropped is reported).
    """

    def __init__(
        self,
        timeline: bool = False,
        timeline_cap: int = 2_000_000,
        min_duration_ns: int = 0,
        *,
        tree: bool = True,
    ) -> None:
        if timeline_cap < 0 or min_duration_ns < 0:
            raise ValueError("timeline_cap and min_duration_ns must be >= 0")
        self.timeline = timeline
        self.timeline_cap = timeline_cap
        self.min_duration_ns = min_duration_ns
        self.tree_enabled = tree
        self._clear()

    def _clear(self) -> None:
        self._sites: dict[int, list[int]] = {}
        self._nodes: dict[int, list[int]] = {}
        self._epoch: int | None = None
        self._base: Any = None
        self._site_max: dict[int, int] = {}
        self._node_max: dict[int, int] = {}
        self._windows: list[tuple[int, int, int, int]] = []  # generation, first, end, dropped
        self._tl_open: tuple[int, int, int] | None = None
        self._origin_tick: int | None = None
        self._wall_ns = 0
        self._wall_start: int | None = None

    def start(self) -> Profiler:
        if self in _running:
            return self
        _reset_in_forked_children()
        _core.profiler_start(self.tree_enabled)
        counts = _counts()
        _fold_max(counts)
        self._base = counts
        if self._epoch != counts.epoch:
            self._sites, self._nodes = {}, {}
            self._site_max, self._node_max = {}, {}
            self._epoch = counts.epoch
        if self._origin_tick is None:
            self._origin_tick = counts.now
        if self.timeline:
            self._tl_open = _core.timeline_acquire(self.timeline_cap, self.min_duration_ns)
        self._wall_start = time.perf_counter_ns()
        _running.append(self)
        return self

    def stop(self) -> None:
        if self not in _running:
            return
        _running.remove(self)
        self._collect(_counts(), closing=True)
        _core.profiler_stop(self.tree_enabled)

    def _fold(self, sites: dict, nodes: dict, epoch: int) -> None:
        if epoch != self._epoch:
            return
        for key, v in _max_of(sites, _SITE_MAX).items():
            self._site_max[key] = max(self._site_max.get(key, 0), v)
        for key, v in _max_of(nodes, _NODE_MAX).items():
            self._node_max[key] = max(self._node_max.get(key, 0), v)

    def _collect(self, counts: Any, closing: bool) -> tuple[dict, dict]:
        """This profiler's counts (ticks): what it kept plus the running window."""
        if self._base is not None and counts.epoch != self._epoch:
            # The native record was reset while this profiler ran (a forked child starts
            # empty): what it kept is gone with it, and its window starts from zero.
            self._sites, self._nodes, self._site_max, self._node_max = {}, {}, {}, {}
            self._epoch = counts.epoch
            self._base = _RawCounts(counts.ns_per_tick, [], [], [], counts.epoch, counts.now)
        sites = {k: list(v) for k, v in self._sites.items()}
        nodes = {k: list(v) for k, v in self._nodes.items()}
        if self in _running or closing:
            if counts.epoch == self._epoch and self._base is not None:
                now_s, now_n = _site_rows(counts), _node_rows(counts)
                _merge(sites, _sub(now_s, _site_rows(self._base), _SITE_MAX), _SITE_MAX)
                _merge(nodes, _sub(now_n, _node_rows(self._base), _NODE_MAX), _NODE_MAX)
        for rows, kept, imax in ((sites, self._site_max, _SITE_MAX),
                                 (nodes, self._node_max, _NODE_MAX)):  # fmt: skip
            for key, v in kept.items():
                if key in rows:
                    rows[key][imax] = max(rows[key][imax], v)
        if closing:
            self._sites, self._nodes = sites, nodes
            self._site_max, self._node_max = {}, {}
            self._base = None
            if self._tl_open is not None:
                gen, first, dropped0 = self._tl_open
                gen2, end, dropped1 = _core.timeline_release()
                if gen2 == gen:
                    self._windows.append((gen, first, end, dropped1 - dropped0))
                self._tl_open = None
            if self._wall_start is not None:
                self._wall_ns += time.perf_counter_ns() - self._wall_start
                self._wall_start = None
        return sites, nodes

    def reset(self) -> None:
        """Forget what this profiler collected; if running, it goes on from zero."""
        running = self in _running
        if running:
            self.stop()
        self._clear()
        if running:
            self.start()

    @property
    def running(self) -> bool:
        return self in _running

    def view(self) -> ProfileView:
        """Sites, thread trees and timeline as this profiler saw them."""
        counts = _counts()
        sites_raw, nodes_raw = self._collect(counts, closing=False)
        return _build_view(self, counts, sites_raw, nodes_raw)

    def stats(self) -> list[SiteStats]:
        """Every site called while this profiler ran, longest total time first."""
        return self.view().sites

    def tree(self) -> list[CallRoot]:
        """One root per thread that made reported calls, children longest total first."""
        return self.view().roots

    def document(self, argv: list[str] | None = None) -> dict[str, Any]:
        """The profile document (``recompyle.report.build_document``), without files."""
        from recompyle.report import build_document

        return build_document(self.view(), argv=argv)

    def __enter__(self) -> Profiler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _site_stats(site_id: int, row: list[int], self_ns: int, scale: float) -> SiteStats | None:
    try:
        file, module, line, col, end_line, end_col, callee, caller = _core.site_info(site_id)
    except ValueError:
        return None
    calls, ticks, max_ticks, raised, untimed = row
    return SiteStats(
        file, module, line, col, end_line, end_col, callee, caller,
        calls, round(ticks * scale), round(max_ticks * scale), raised,
        self_ns, untimed, site_id,
    )  # fmt: skip


def _build_view(prof: Profiler, counts: Any, sites_raw: dict, nodes_raw: dict) -> ProfileView:
    scale = counts.ns_per_tick
    site_ids = [row[0] for row in counts.sites]
    self_by_site: dict[int, int] = {}
    for index, row in nodes_raw.items():
        dense = counts.nodes[index][1] if index < len(counts.nodes) else -1
        if dense >= 0:
            sid = site_ids[dense]
            self_by_site[sid] = self_by_site.get(sid, 0) + round(row[2] * scale)
    stats: dict[int, SiteStats] = {}
    for sid, row in sites_raw.items():
        if row[0] <= 0:
            continue
        s = _site_stats(sid, row, self_by_site.get(sid, 0), scale)
        if s is not None:
            stats[sid] = s
    sites = sorted(stats.values(), key=lambda r: (-r.total_ns, r.file, r.line, r.col))

    children: dict[int, list[int]] = {}
    for index in nodes_raw:
        if index < len(counts.nodes):
            parent = counts.nodes[index][0]
            if parent >= 0:
                children.setdefault(parent, []).append(index)

    def build(index: int) -> CallNode | None:
        parent, dense, _root = counts.nodes[index][:3]
        site = stats.get(site_ids[dense])
        row = nodes_raw.get(index)
        if site is None or row is None or row[0] <= 0:
            return None
        calls, ticks, self_ticks, max_ticks, raised, untimed = row
        kids = [c for c in (build(i) for i in children.get(index, ())) if c is not None]
        kids.sort(key=lambda n: -n.total_ns)
        return CallNode(
            site, calls, round(ticks * scale), round(self_ticks * scale),
            round(max_ticks * scale), raised, untimed, tuple(kids),
        )  # fmt: skip

    roots: list[CallRoot] = []
    root_index: dict[int, int] = {}
    for number, (node, thread_id, name, kind) in enumerate(counts.roots):
        kids = [c for c in (build(i) for i in children.get(node, ())) if c is not None]
        if not kids:
            continue
        kids.sort(key=lambda n: -n.total_ns)
        root_index[number] = len(roots)
        roots.append(
            CallRoot(
                kind,
                name or (f"Task {number}" if kind == "task" else _thread_name(thread_id)),
                thread_id,
                sum(k.total_ns for k in kids),
                tuple(kids),
            )
        )
    return ProfileView(sites, roots, _timeline(prof, counts, stats, sites, root_index),
                       _wall(prof))  # fmt: skip


def _thread_name(thread_id: int) -> str:
    """A name for a thread ``threading`` did not know when it was first seen: the main
    thread leaves ``threading``'s table at exit, when the report is written, and without
    ``threading`` imported the thread writing the report at exit is the main one."""
    threading = sys.modules.get("threading")
    if threading is not None:
        if threading.main_thread().ident == thread_id:
            return threading.main_thread().name
    elif _thread.get_ident() == thread_id:
        return "MainThread"
    return f"Thread {thread_id}"


def _wall(prof: Profiler) -> int | None:
    wall = prof._wall_ns
    if prof._wall_start is not None:
        wall += time.perf_counter_ns() - prof._wall_start
    return wall if wall or prof._wall_start is not None else None


def _timeline(
    prof: Profiler,
    counts: Any,
    stats: dict[int, SiteStats],
    sites: list[SiteStats],
    root_index: dict[int, int],
) -> Timeline | None:
    if not prof.timeline:
        return None
    windows = list(prof._windows)
    if prof._tl_open is not None:
        gen, first, dropped0 = prof._tl_open
        # Peek at the open window without closing it.
        gen2, end, dropped1 = _core.timeline_acquire(prof.timeline_cap, prof.min_duration_ns)
        _core.timeline_release()
        windows.append((gen, first, end, dropped1 - dropped0))
    scale = counts.ns_per_tick
    origin = prof._origin_tick or 0
    site_pos = {s.site_id: i for i, s in enumerate(sites)}
    site_ids = [row[0] for row in counts.sites]
    dropped = 0
    events: list[TimelineEvent] = []
    for gen, first, end, lost in windows:
        dropped += lost
        got_gen, raw = _core.timeline_events(first, end)
        if got_gen != gen:
            continue
        for node, start, stop, raised in raw:
            if node >= len(counts.nodes):
                continue
            _parent, dense, root = counts.nodes[node][:3]
            pos = site_pos.get(site_ids[dense]) if dense >= 0 else None
            where = root_index.get(root)
            if pos is None or where is None:
                continue
            events.append(
                TimelineEvent(
                    where, pos, max(0, round((start - origin) * scale)),
                    max(0, round((stop - origin) * scale)), raised,
                )
            )  # fmt: skip
    events.sort(key=lambda e: (e.root, e.start_ns, -e.end_ns))
    return Timeline(dropped, tuple(events))


def whole_view() -> ProfileView:
    """Everything any profiler recorded (the native record since the process started or
    its last ``_core.profiler_reset()``)."""
    counts = _counts()
    sites = {row[0]: list(row[1:]) for row in counts.sites}
    return _build_view(Profiler(), counts, sites, _node_rows(counts))


def snapshot() -> list[SiteStats]:
    """Every site called so far by any profiler, longest total time first."""
    return whole_view().sites
