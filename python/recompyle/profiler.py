"""The profiler's Python face: ``Profiler`` objects, per-site rows and the call tree.

Timing happens in the call-site selector (two reads of the CPU's time-stamp counter around each
call, ``crates/recompyle_python/src/profiler.rs``), which keeps one native record per
process: a flat row per call site and a calling-context tree per thread and per coroutine
run as asyncio tasks (the tasks of one coroutine add up under one root). This module turns
raw counts into named rows, and gives each ``Profiler`` its own view of them: the native
recording runs while any profiler is started (a count), and each started profiler has a
native *window* (copy on write: the first change to a node or site after a window opens
saves its totals), so profilers nest and overlap, a new one starts at zero, and starting,
stopping or reading one costs in proportion to what its calls touched, not to the size of
the tree (the pytest plugin runs one per test).

Times are inclusive (a call's time includes everything it called); ``self_ns`` is a call's
time minus the time of the reported calls made inside it.
"""

from __future__ import annotations

import _thread
import os
import sys
import time
from dataclasses import dataclass

from recompyle import _core

# A constant of our own rather than `typing.TYPE_CHECKING`: type checkers treat any name
# TYPE_CHECKING as true, and `typing` is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing only: the run's profiler is made at start-up, keep the imports light
    from typing import Any

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
    """One thread's tree, or asyncio tasks': ``kind`` is ``"thread"`` or ``"task"``,
    ``thread_id`` the thread it ran on. The tasks of one coroutine function on one thread
    share a root, named by its qualified name (``handle``, ``Server.serve``), so the tree
    grows with the distinct call paths, not with the number of tasks a server ever ran;
    ``tasks`` says how many tasks it holds. While a timeline with room records, each task
    has a root (its timeline lane) of its own instead, named by the task (``Task-3``, or
    the ``name=`` given to ``create_task``)."""

    kind: str
    name: str
    thread_id: int
    total_ns: int
    children: tuple[CallNode, ...]
    tasks: int = 0


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

# Per site (by site id): [calls, ticks, max_ticks, raised, untimed]; per node (by native
# node index): [parent, site_id, root, calls, ticks, self_ticks, max_ticks, raised,
# untimed]. Counts add up, maxima combine by max.
_SITE_MAX = 2
_NODE_FIRST = 3  # the counts of a node row start here
_NODE_MAX = 6


@dataclass(frozen=True)
class _Raw:
    """Counts (ticks) with their structure, as a view is built from them."""

    ns_per_tick: float
    epoch: int
    sites: dict[int, list[int]]
    nodes: dict[int, list[int]]
    # root -> node, thread, name, kind, tasks begun under it
    roots: dict[int, tuple[int, int, str | None, str, int]]


def _window(seq: int) -> _Raw:
    """What changed since the native window ``seq`` opened (only what its calls touched:
    starting, stopping and reading a profiler cost in proportion to that, not to the
    whole tree)."""
    w = _core.profiler_window(seq)
    return _Raw(
        w.ns_per_tick,
        w.epoch,
        {row[0]: list(row[1:]) for row in w.sites},
        {row[0]: list(row[1:]) for row in w.nodes},
        {
            root: (node, thread, name, kind, tasks)
            for root, node, thread, name, kind, tasks in w.roots
        },
    )


def _add_rows(
    into: dict[int, list[int]], more: dict[int, list[int]], first: int, imax: int
) -> None:
    for key, row in more.items():
        have = into.get(key)
        if have is None:
            into[key] = list(row)
            continue
        for i in range(first, len(row)):
            have[i] = max(have[i], row[i]) if i == imax else have[i] + row[i]


def _add_roots(
    into: dict[int, tuple[int, int, str | None, str, int]],
    more: dict[int, tuple[int, int, str | None, str, int]],
) -> dict[int, tuple[int, int, str | None, str, int]]:
    """Roots of two windows: the newer description, the tasks of both."""
    out = dict(into)
    for key, (node, thread, name, kind, tasks) in more.items():
        had = out.get(key)
        out[key] = (node, thread, name, kind, tasks + (had[4] if had else 0))
    return out


# Profilers started and not stopped, oldest first.
_running: list[Profiler] = []


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
    stays exact past the cap and the number dropped is reported). ``tree=False`` keeps
    only the per-site table, which costs less per call; an awaited call's row still
    counts the wait until its result is ready, as with the tree.
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
        # What the closed windows counted (see _Raw), and the open window's start number.
        self._sites: dict[int, list[int]] = {}
        self._nodes: dict[int, list[int]] = {}
        self._roots: dict[int, tuple[int, int, str | None, str, int]] = {}
        self._epoch: int | None = None
        self._seq: int | None = None
        self._scale = 1.0
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
        epoch, self._seq, now, self._scale = _core.profiler_window_open()
        if self._epoch != epoch:
            self._sites, self._nodes, self._roots = {}, {}, {}
            self._epoch = epoch
        if self._origin_tick is None:
            self._origin_tick = now
        if self.timeline:
            self._tl_open = _core.timeline_acquire(self.timeline_cap, self.min_duration_ns)
        self._wall_start = time.perf_counter_ns()
        _running.append(self)
        return self

    def stop(self) -> None:
        if self not in _running:
            return
        _running.remove(self)
        self._collect(closing=True)
        _core.profiler_stop(self.tree_enabled)

    def _collect(self, closing: bool) -> _Raw:
        """This profiler's counts: what its closed windows kept plus the open one."""
        sites, nodes, roots = self._sites, self._nodes, self._roots
        scale = self._scale
        epoch = self._epoch
        if self._seq is not None:
            w = _window(self._seq)
            scale = w.ns_per_tick
            if w.epoch != self._epoch:
                # The native record was reset while this profiler ran (a forked child
                # starts empty): what it kept is gone with it; the window counts from zero.
                sites, nodes, roots = {}, {}, {}
                epoch = w.epoch
            sites = {k: list(v) for k, v in sites.items()}
            nodes = {k: list(v) for k, v in nodes.items()}
            roots = _add_roots(roots, w.roots)
            _add_rows(sites, w.sites, 0, _SITE_MAX)
            _add_rows(nodes, w.nodes, _NODE_FIRST, _NODE_MAX)
        if closing:
            if self._seq is not None:
                _core.profiler_window_close(self._seq)
            self._sites, self._nodes, self._roots = sites, nodes, roots
            self._epoch, self._seq = epoch, None
            if self._tl_open is not None:
                gen, first, dropped0 = self._tl_open
                gen2, end, dropped1 = _core.timeline_release()
                if gen2 == gen:
                    self._windows.append((gen, first, end, dropped1 - dropped0))
                self._tl_open = None
            if self._wall_start is not None:
                self._wall_ns += time.perf_counter_ns() - self._wall_start
                self._wall_start = None
        return _Raw(scale, epoch or 0, sites, nodes, roots)

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
        """Sites, thread and task trees and timeline as this profiler saw them."""
        return _build_view(self, self._collect(closing=False))

    def stats(self) -> list[SiteStats]:
        """Every site called while this profiler ran, longest total time first."""
        return self.view().sites

    def tree(self) -> list[CallRoot]:
        """One root per thread, and per coroutine run as asyncio tasks (``CallRoot``), that
        made reported calls; children longest total first."""
        return self.view().roots

    def document(self, argv: list[str] | None = None) -> dict[str, Any]:
        """The profile document (``recompyle.document``), without files."""
        from recompyle.document import build_document

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


def _build_view(prof: Profiler, raw: _Raw) -> ProfileView:
    scale = raw.ns_per_tick
    self_by_site: dict[int, int] = {}
    for row in raw.nodes.values():
        self_by_site[row[1]] = self_by_site.get(row[1], 0) + round(row[5] * scale)
    stats: dict[int, SiteStats] = {}
    for sid, row in raw.sites.items():
        if row[0] <= 0:
            continue
        s = _site_stats(sid, row, self_by_site.get(sid, 0), scale)
        if s is not None:
            stats[sid] = s
    sites = sorted(stats.values(), key=lambda r: (-r.total_ns, r.file, r.line, r.col))

    children: dict[int, list[int]] = {}
    for index, row in raw.nodes.items():
        if row[0] >= 0:
            children.setdefault(row[0], []).append(index)

    def build(index: int) -> CallNode | None:
        row = raw.nodes[index]
        site = stats.get(row[1])
        if site is None or row[_NODE_FIRST] <= 0:
            return None
        calls, ticks, self_ticks, max_ticks, raised, untimed = row[_NODE_FIRST:]
        kids = [c for c in (build(i) for i in children.get(index, ())) if c is not None]
        kids.sort(key=lambda n: -n.total_ns)
        return CallNode(
            site, calls, round(ticks * scale), round(self_ticks * scale),
            round(max_ticks * scale), raised, untimed, tuple(kids),
        )  # fmt: skip

    roots: list[CallRoot] = []
    root_index: dict[int, int] = {}
    for number in sorted(raw.roots):
        node, thread_id, name, kind, tasks = raw.roots[number]
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
                tasks,
            )
        )
    return ProfileView(sites, roots, _timeline(prof, raw, sites, root_index), _wall(prof))


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
    prof: Profiler, raw: _Raw, sites: list[SiteStats], root_index: dict[int, int]
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
    scale = raw.ns_per_tick
    origin = prof._origin_tick or 0
    site_pos = {s.site_id: i for i, s in enumerate(sites)}
    dropped = 0
    events: list[TimelineEvent] = []
    for gen, first, end, lost in windows:
        dropped += lost
        got_gen, events_raw = _core.timeline_events(first, end)
        if got_gen != gen:
            continue
        for node, start, stop, raised in events_raw:
            row = raw.nodes.get(node)
            if row is None:
                continue
            pos = site_pos.get(row[1])
            where = root_index.get(row[2])
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
    c = _core.profiler_counts()
    site_ids = [row[0] for row in c.sites]
    nodes = {
        i: [row[0], site_ids[row[1]], *row[2:]] for i, row in enumerate(c.nodes) if row[1] >= 0
    }
    raw = _Raw(
        c.ns_per_tick,
        c.epoch,
        {row[0]: list(row[1:]) for row in c.sites},
        nodes,
        {
            i: (node, thread, name, kind, tasks)
            for i, (node, thread, name, kind, tasks) in enumerate(c.roots)
        },
    )
    return _build_view(Profiler(), raw)


def snapshot() -> list[SiteStats]:
    """Every site called so far by any profiler, longest total time first."""
    return whole_view().sites
