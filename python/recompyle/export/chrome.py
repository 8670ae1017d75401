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


def render(doc: Doc) -> str:
    timeline = require_timeline(doc, "chrome")
    pid = int(doc.get("pid") or 1)
    dumps = json.dumps
    meta: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
         "args": {"name": f"python {program_name(doc)}"}},
    ]  # fmt: skip
    for index, root in enumerate(doc["roots"]):
        label = root_label(root)
        if root.get("kind", "thread") != "thread":
            label = f"{label} on thread {root.get('thread_id')}"
        meta.append(
            {"ph": "M", "name": "thread_name", "pid": pid, "tid": index + 1,
             "args": {"name": label}}
        )  # fmt: skip
        meta.append(
            {"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": index + 1,
             "args": {"sort_index": index}}
        )  # fmt: skip
    # A call's event is its site's constant part (name, args) around its times: built once
    # per site, since a timeline holds up to millions of calls.
    heads, tails = [], []
    for site in doc["sites"]:
        args = {"file": site["file"], "line": site["line"], "col": site["col"] + 1,
                "callee": callee_text(site), "caller": site.get("caller", "")}  # fmt: skip
        heads.append(f'{{"ph":"X","name":{dumps(frame_name(site))},"pid":{pid},')
        tails.append(f',"args":{dumps(args, separators=(",", ":"))[:-1]},"raised":')
    parts = [dumps(m, separators=(",", ":")) for m in meta]
    for index, intervals in enumerate(nested_intervals(doc)):
        for iv in intervals:
            raised = "true" if iv.raised else "false"
            cat = "call,raised" if iv.raised else "call"
            parts.append(
                f'{heads[iv.site]}"tid":{index + 1},"cat":"{cat}","ts":{iv.start_ns / 1000!r},'
                f'"dur":{(iv.end_ns - iv.start_ns) / 1000!r}{tails[iv.site]}{raised}}}}}'
            )
    other = {
        "generator": "recompyle",
        "argv": [str(a) for a in doc.get("argv") or []],
        "python": doc.get("python"),
        "dropped_events": int(timeline.get("dropped", 0)),
    }
    return (
        '{"traceEvents":[' + ",\n".join(parts) + '],"displayTimeUnit":"ns","otherData":'
        + dumps(other, separators=(",", ":")) + "}\n"
    )  # fmt: skip
