"""The Chrome Trace Event format (``*.trace.json``) that Perfetto and ``chrome://tracing``
load: the JSON object form, ``{"traceEvents": [...]}``.

A trace is a timeline, so this format needs one (``--timeline``, which ``--format chrome``
turns on). Each recorded call is a complete event (``ph: "X"``) with ``ts`` and ``dur`` in
microseconds (fractions keep the nanoseconds), named ``callee (file:line:col)``, with the
site's file, line, 1-based column, callee, caller and whether it raised in ``args``. Each
root (thread, or asyncio task: tasks on one thread overlap in time, so each gets its own
lane) is a ``tid`` named by a ``thread_name`` metadata event (``ph: "M"``), ordered by a
``thread_sort_index``; the process is named by ``process_name``. Events are well nested per
lane, as complete events must be.
"""

from __future__ import annotations

import json
from typing import Any

from recompyle.export._document import (
    Doc,
    callee_text,
    frame_name,
    nested_intervals,
    program_name,
    require_timeline,
    root_label,
)


def _us(ns: int) -> float:
    return ns / 1000


def render(doc: Doc) -> str:
    timeline = require_timeline(doc, "chrome")
    pid = int(doc.get("pid") or 1)
    sites = doc["sites"]
    names = [frame_name(s) for s in sites]
    events: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
         "args": {"name": f"python {program_name(doc)}"}},
    ]  # fmt: skip
    for index, root in enumerate(doc["roots"]):
        tid = index + 1
        label = root_label(root)
        if root.get("kind", "thread") != "thread":
            label = f"{label} on thread {root.get('thread_id')}"
        events.append(
            {"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": label}}
        )
        events.append(
            {"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid,
             "args": {"sort_index": index}}
        )  # fmt: skip
        for iv in nested_intervals(doc, index):
            site = sites[iv.site]
            events.append(
                {
                    "ph": "X",
                    "name": names[iv.site],
                    "cat": "call,raised" if iv.raised else "call",
                    "ts": _us(iv.start_ns),
                    "dur": _us(iv.end_ns - iv.start_ns),
                    "pid": pid,
                    "tid": tid,
                    "args": {
                        "file": site["file"],
                        "line": site["line"],
                        "col": site["col"] + 1,
                        "callee": callee_text(site),
                        "caller": site.get("caller", ""),
                        "raised": iv.raised,
                    },
                }
            )
    out = {
        "traceEvents": events,
        "displayTimeUnit": "ns",
        "otherData": {
            "generator": "recompyle",
            "argv": [str(a) for a in doc.get("argv") or []],
            "python": doc.get("python"),
            "dropped_events": int(timeline.get("dropped", 0)),
        },
    }
    return json.dumps(out, separators=(",", ":")) + "\n"
