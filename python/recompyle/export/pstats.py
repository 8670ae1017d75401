"""cProfile's stats file (``*.prof``, ``*.pstats``): the marshal'd dict that
``cProfile.Profile.dump_stats`` writes, so ``pstats.Stats(path)``, snakeviz and gprof2dot
read it as one of their own.

The dict maps a function key ``(file, line, name)`` to ``(cc, nc, tt, ct, callers)``:
primitive (non-recursive) calls, all calls, own time and cumulative time in seconds, and
``callers`` mapping each caller's key to ``(nc, cc, tt, ct)`` for the calls it made (the
order cProfile uses there). Here a "function" is a call site: its key is the site's file
and line with the name ``callee (file:line:col)``, so one function called from two places
is two entries, each with its own callers. Each thread or task is a pseudo-function
``('~', 0, '<thread MainThread>')`` (cProfile's file for built-ins), the caller of that
root's first-level calls, so viewers have one entry point per thread.

Recursion as cProfile counts it: a call made while its own site is already on the stack
counts in ``nc`` but not in ``cc``, and its time is not added to ``ct`` again.
"""

from __future__ import annotations

import marshal
from typing import Any

from recompyle.export._document import Doc, frame_name, root_label, root_self_ns, walk

Key = tuple[str, int, str]

_NS = 1e-9


class _Entry:
    """Counters of one function or one caller edge: nc, cc, tt, ct (ns until the end)."""

    __slots__ = ("nc", "cc", "tt", "ct")

    def __init__(self) -> None:
        self.nc = self.cc = self.tt = self.ct = 0

    def add(self, node: dict[str, Any], recursive: bool) -> None:
        self.nc += node["calls"]
        self.tt += node["self_ns"]
        if not recursive:
            self.cc += node["calls"]
            self.ct += node["total_ns"]


def root_key(root: dict[str, Any]) -> Key:
    return ("~", 0, f"<{root.get('kind', 'thread')} {root_label(root)}>")


def site_key(site: dict[str, Any]) -> Key:
    return (site["file"], int(site["line"]), frame_name(site))


def render(doc: Doc) -> bytes:
    keys = [site_key(s) for s in doc["sites"]]
    funcs: dict[Key, _Entry] = {}
    edges: dict[Key, dict[Key, _Entry]] = {}
    for root in doc["roots"]:
        top = root_key(root)
        entry = funcs.setdefault(top, _Entry())
        entry.nc += 1
        entry.cc += 1
        entry.tt += root_self_ns(root)
        entry.ct += int(root.get("total_ns", 0))
        edges.setdefault(top, {})
        for visit in walk(root["children"]):
            key = keys[visit.path[-1]]
            funcs.setdefault(key, _Entry()).add(visit.node, visit.recursive)
            caller = top if visit.parent_site is None else keys[visit.parent_site]
            edges.setdefault(key, {}).setdefault(caller, _Entry()).add(visit.node, visit.recursive)
    stats: dict[Key, tuple[Any, ...]] = {}
    for key, e in funcs.items():
        callers = {caller: (c.nc, c.cc, c.tt * _NS, c.ct * _NS) for caller, c in edges[key].items()}
        stats[key] = (e.cc, e.nc, e.tt * _NS, e.ct * _NS, callers)
    return marshal.dumps(stats)
