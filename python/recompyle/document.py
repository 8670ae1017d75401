"""The profile document: what one profiler saw (a ``recompyle.profiler.ProfileView``) as
plain data, the one input of every report format (``recompyle.export``), of the parts that
processes leave (``recompyle.processes``, merged by ``recompyle.combine``) and of the HTML
page. It imports nothing of the package at run time, so the profiler (``Profiler.document``)
and the report stage both use it without importing each other.

JSON report (``--format json``): the *profile document*, one object, version 2 (a
superset of version 1, which had ``version``, ``python``, ``argv`` and ``sites``):

``version``
    Report format version (2).
``python``, ``argv``, ``pid``
    Interpreter version, the profiled program's ``sys.argv``, its process id.
``wall_ns``
    Wall time the profile covers (the profiler's running time), or ``null``.
``sites``
    One object per call site, longest ``total_ns`` first: ``file``, ``line`` (1-based),
    ``col`` (0-based UTF-8 byte offset, as ``ast``), ``end_line``, ``end_col``, ``callee``
    (the callee's source text), ``caller`` (qualified name of the enclosing function,
    ``<module>`` at top level), ``module``, ``calls``, ``total_ns``, ``self_ns`` (the
    calls' time minus the time of reported calls inside them), ``mean_ns``, ``max_ns``,
    ``raised`` (calls that ended in an exception) and ``untimed`` (of ``calls``, those
    made deeper than 200 nested reported calls: counted, their time inside the enclosing
    call's). Times are inclusive: a recursive site's ``total_ns`` counts the inner calls'
    time again, ``self_ns`` does not.
``roots``
    One calling-context tree per thread and per asyncio coroutine run as tasks: ``kind``
    (``"thread"`` or ``"task"``), ``name`` (the thread's name; for tasks the coroutine
    function's qualified name, all its tasks on that thread added up, or while a timeline
    with room was recorded the task's own name), ``thread_id``, ``tasks`` (the asyncio
    tasks it holds; 0 for a thread), ``total_ns`` (its top-level calls' time) and
    ``children``, each
    a node ``{"site": <index into sites>, "calls", "total_ns", "self_ns", "max_ns",
    "raised", "untimed", "children"}``: the site reached through its ancestors' sites.
    A call at a site already on the path is counted at that ancestor (recursion collapsed),
    without adding its time to the ancestor's ``total_ns`` again.
``timeline``
    ``null``, or when a timeline was recorded ``{"dropped": <events over the cap>,
    "events": [{"root", "site", "start_ns", "end_ns", "raised"}, ...]}`` with times from
    the profile's start, ordered by root then start; per root the events nest.
"""

import os
import sys

# A constant of our own rather than `typing.TYPE_CHECKING`: type checkers treat any name
# TYPE_CHECKING as true, and `typing` is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing only
    from collections.abc import Sequence
    from typing import Optional

    from recompyle.profiler import CallNode, ProfileView, SiteStats

__all__ = ["FORMAT_VERSION", "build_document"]

FORMAT_VERSION = 2


def _site_row(r: "SiteStats") -> dict:
    return {
        "file": r.file,
        "line": r.line,
        "col": r.col,
        "end_line": r.end_line,
        "end_col": r.end_col,
        "callee": r.callee,
        "caller": r.caller,
        "module": r.module,
        "calls": r.calls,
        "total_ns": r.total_ns,
        "self_ns": r.self_ns,
        "mean_ns": round(r.mean_ns, 1),
        "max_ns": r.max_ns,
        "raised": r.raised,
        "untimed": r.untimed,
    }


def build_document(view: "ProfileView", argv: "Optional[list[str]]" = None) -> dict:
    """The profile document (version 2, described in this module's docstring) of what one
    profiler saw (``Profiler.view()``); the exporters and the HTML page read only this."""
    index = {id(s): i for i, s in enumerate(view.sites)}

    def nodes(children: "Sequence[CallNode]") -> "list[dict]":
        # A report filtered by module lists fewer sites: other sites' subtrees are left out.
        return [node(c) for c in children if id(c.site) in index]

    def node(n: "CallNode") -> dict:
        return {
            "site": index[id(n.site)],
            "calls": n.calls,
            "total_ns": n.total_ns,
            "self_ns": n.self_ns,
            "max_ns": n.max_ns,
            "raised": n.raised,
            "untimed": n.untimed,
            "children": nodes(n.children),
        }

    timeline = None
    if view.timeline is not None:
        timeline = {
            "dropped": view.timeline.dropped,
            "events": [
                {
                    "root": e.root,
                    "site": e.site,
                    "start_ns": e.start_ns,
                    "end_ns": e.end_ns,
                    "raised": e.raised,
                }
                for e in view.timeline.events
            ],
        }
    return {
        "version": FORMAT_VERSION,
        "python": ".".join(map(str, sys.version_info[:3])),
        "argv": list(sys.argv if argv is None else argv),
        "pid": os.getpid(),
        "wall_ns": view.wall_ns,
        "sites": [_site_row(r) for r in view.sites],
        "roots": [
            {
                "kind": r.kind,
                "name": r.name,
                "thread_id": r.thread_id,
                "tasks": r.tasks,
                "total_ns": r.total_ns,
                "children": nodes(r.children),
            }
            for r in view.roots
        ],
        "timeline": timeline,
    }
