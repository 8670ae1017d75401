"""speedscope's file format (``*.speedscope.json``), as its published schema
(https://www.speedscope.app/file-format-schema.json) describes it.

One profile per root (thread or asyncio task), all sharing ``shared.frames`` (one frame
per call site, named ``callee (file:line:col)``, with file/line/col so speedscope can
show the source position), unit nanoseconds.

- Without a timeline: a ``sampled`` profile from the aggregate call tree, one "sample"
  per tree node weighted by the node's self time, under a bottom frame for the root that
  carries the root's time outside reported calls. speedscope's left-heavy and sandwich
  views then show exact totals; its time-order view has no real order to show.
- With a timeline: an ``evented`` profile per root, open/close events in time order and
  balanced as the format requires. When the timeline dropped events (its cap was
  reached) the sampled profiles follow too, since only they are complete.
"""

from __future__ import annotations

import json
from typing import Any

from recompyle.export._document import (
    Doc,
    Interval,
    frame_name,
    nested_intervals,
    program_name,
    root_label,
    root_self_ns,
    walk,
)

SCHEMA = "https://www.speedscope.app/file-format-schema.json"


def _sampled(root: dict[str, Any], root_frame: int, name: str) -> dict[str, Any]:
    samples: list[list[int]] = []
    weights: list[int] = []
    own = root_self_ns(root)
    if own:
        samples.append([root_frame])
        weights.append(own)
    for visit in walk(root["children"]):
        weight = int(visit.node["self_ns"])
        if weight > 0:
            samples.append([root_frame, *visit.path])
            weights.append(weight)
    return {
        "type": "sampled",
        "name": name,
        "unit": "nanoseconds",
        "startValue": 0,
        "endValue": sum(weights),
        "samples": samples,
        "weights": weights,
    }


def _evented(intervals: list[Interval], name: str) -> dict[str, Any]:
    events: list[dict[str, Any]] = []
    open_stack: list[tuple[int, int]] = []  # (end_ns, frame)
    for iv in intervals:
        while open_stack and open_stack[-1][0] <= iv.start_ns:
            end, frame = open_stack.pop()
            events.append({"type": "C", "at": end, "frame": frame})
        events.append({"type": "O", "at": iv.start_ns, "frame": iv.site})
        open_stack.append((iv.end_ns, iv.site))
    while open_stack:
        end, frame = open_stack.pop()
        events.append({"type": "C", "at": end, "frame": frame})
    start = events[0]["at"] if events else 0
    end = events[-1]["at"] if events else 0
    return {
        "type": "evented",
        "name": name,
        "unit": "nanoseconds",
        "startValue": start,
        "endValue": end,
        "events": events,
    }


def render(doc: Doc) -> str:
    sites = doc["sites"]
    frames: list[dict[str, Any]] = [
        {"name": frame_name(s), "file": s["file"], "line": s["line"], "col": s["col"] + 1}
        for s in sites
    ]
    profiles: list[dict[str, Any]] = []
    timeline = doc.get("timeline")
    roots = doc["roots"]
    if timeline:
        intervals = nested_intervals(doc)
        profiles += [_evented(ivs, root_label(r)) for ivs, r in zip(intervals, roots)]
    if not timeline or timeline.get("dropped"):
        suffix = " (call tree)" if timeline else ""
        for r in roots:
            frames.append({"name": root_label(r)})
            profiles.append(_sampled(r, len(frames) - 1, root_label(r) + suffix))
    from recompyle import __version__

    out = {
        "$schema": SCHEMA,
        "shared": {"frames": frames},
        "profiles": profiles,
        "name": program_name(doc),
        "activeProfileIndex": 0,
        "exporter": f"recompyle {__version__}",
    }
    return json.dumps(out, separators=(",", ":")) + "\n"
