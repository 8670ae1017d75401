"""What every exporter reads from the profile document the same way: the name a viewer shows
for a call site, the name of a thread or task, the walk of a call tree, and a root's timeline
events as well-nested intervals.

A viewer keys frames by name, so the name carries the site: ``callee (file:line:col)``
with a 1-based column keeps two calls of one function at different sites apart, which is
what a call-site profiler has over a function-level one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Doc = dict[str, Any]
Node = dict[str, Any]

_CALLEE_MAX = 60


def display_path(path: str) -> str:
    """Relative to the working directory when under it (shorter names in viewers), as the
    text report shows files."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def callee_text(site: dict[str, Any]) -> str:
    """The callee's source text on one line, shortened: it is a name in a viewer, and a
    multi-line lambda as a frame name would break line-based formats."""
    text = " ".join(str(site.get("callee", "")).split())
    return text if len(text) <= _CALLEE_MAX else text[: _CALLEE_MAX - 3] + "..."


def frame_name(site: dict[str, Any]) -> str:
    """``callee (file:line:col)``, column 1-based as editors show it."""
    return f"{callee_text(site)} ({display_path(site['file'])}:{site['line']}:{site['col'] + 1})"


def root_label(root: dict[str, Any]) -> str:
    """``MainThread`` for a thread, ``Task-3 (task)`` for an asyncio task's root."""
    name = " ".join(str(root.get("name", "")).split()) or "?"
    return name if root.get("kind", "thread") == "thread" else f"{name} ({root['kind']})"


def duration(ns: float) -> str:
    """A time as people read it: ``1.234 ms``."""
    if ns >= 1e9:
        return f"{ns / 1e9:.3f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.3f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3f} us"
    return f"{ns:.0f} ns"


def program_name(doc: Doc) -> str:
    argv = doc.get("argv") or []
    return " ".join(str(a) for a in argv) or "python"


def root_self_ns(root: dict[str, Any]) -> int:
    """Time of the root spent outside every reported call (never negative)."""
    return max(0, int(root.get("total_ns", 0)) - sum(c["total_ns"] for c in root["children"]))


@dataclass(frozen=True)
class Visit:
    """One node of a call tree reached through ``path`` (the site indexes from the root's
    first call down to this node, this node's site last)."""

    node: Node
    path: tuple[int, ...]
    parent_site: int | None
    recursive: bool  # this node's site is already on the path above it


def walk(children: list[Node]) -> Iterator[Visit]:
    """Every node under a root, parents before children; iterative, so a deep tree cannot
    hit the interpreter's recursion limit at exit."""
    stack: list[tuple[Node, tuple[int, ...]]] = [(n, ()) for n in reversed(children)]
    while stack:
        node, above = stack.pop()
        site = node["site"]
        path = (*above, site)
        yield Visit(node, path, above[-1] if above else None, site in above)
        stack.extend((c, path) for c in reversed(node["children"]))


class Interval:
    """One timeline event made well nested (a slotted class: there may be millions)."""

    __slots__ = ("site", "start_ns", "end_ns", "raised", "depth")

    def __init__(self, site: int, start_ns: int, end_ns: int, raised: bool, depth: int) -> None:
        self.site = site
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.raised = raised
        self.depth = depth


def nested_intervals(doc: Doc) -> list[list[Interval]]:
    """The timeline events of each root (by root index), ordered by start (a parent before
    a child that starts at the same instant) and clipped so that each lies inside the one
    enclosing it: viewers reject or misdraw a child that outlives its parent, and clock
    reads taken on either side of a return may disagree by a tick."""
    timeline = doc.get("timeline") or {}
    by_root: list[list[dict[str, Any]]] = [[] for _ in doc["roots"]]
    for e in timeline.get("events", ()):
        by_root[e["root"]].append(e)
    result = []
    for events in by_root:
        events.sort(key=lambda e: (e["start_ns"], -e["end_ns"]))
        out: list[Interval] = []
        open_ends: list[int] = []
        for e in events:
            start = int(e["start_ns"])
            while open_ends and open_ends[-1] <= start:
                open_ends.pop()
            end = max(start, int(e["end_ns"]))
            if open_ends:
                end = min(end, open_ends[-1])
            out.append(Interval(e["site"], start, end, bool(e["raised"]), len(open_ends)))
            open_ends.append(end)
        result.append(out)
    return result


def require_timeline(doc: Doc, fmt: str) -> dict[str, Any]:
    timeline = doc.get("timeline")
    if not timeline:
        raise ValueError(f"the {fmt} format needs a timeline: profile with --timeline")
    return timeline
