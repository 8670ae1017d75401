"""A hand-made profile document that follows the version-2 contract exactly (see
``recompyle.report``): two threads and an asyncio task, one function called from two sites,
direct recursion, a call that raised, and a callee whose text holds ``;`` and a newline.
Exporter tests read it so that each format is checked on every shape a real program makes,
independently of the profiler that builds real documents.
"""

from __future__ import annotations

import copy
from typing import Any

FILE = "/src/app/prog.py"

# (line, col, end_col, callee, caller)
_SITES = [
    (2, 11, 30, "text.split", "parse"),  # 0
    (5, 11, 24, "parse", "load_config"),  # 1
    (7, 11, 21, "parse", "handle"),  # 2
    (9, 29, 37, "fib", "fib"),  # 3  fib(n-1)
    (9, 40, 48, "fib", "fib"),  # 4  fib(n-2)
    (14, 0, 13, "load_config", "<module>"),  # 5
    (15, 0, 11, "handle", "<module>"),  # 6
    (16, 0, 6, "fib", "<module>"),  # 7
    (17, 4, 10, "fail", "<module>"),  # 8
    (21, 8, 17, "handle", "worker"),  # 9
    (25, 14, 30, "ops[';'](\n  x)", "job"),  # 10
]


def _node(site: int, calls: int, total: int, *children: dict[str, Any], raised: int = 0):
    return {
        "site": site,
        "calls": calls,
        "total_ns": total,
        "self_ns": total - sum(c["total_ns"] for c in children),
        "max_ns": total // calls,
        "raised": raised,
        "children": list(children),
    }


def _roots() -> list[dict[str, Any]]:
    main = [
        _node(5, 1, 3_000_000, _node(1, 1, 2_000_000, _node(0, 1, 500_000))),
        _node(6, 1, 1_000_000, _node(2, 1, 800_000, _node(0, 1, 100_000))),
        _node(
            7,
            1,
            2_000_000,
            _node(3, 1, 1_200_000, _node(3, 1, 600_000), _node(4, 1, 300_000)),
            _node(4, 1, 500_000),
        ),
        _node(8, 1, 50_000, raised=1),
    ]
    worker = [_node(9, 2, 3_000_000, _node(2, 2, 2_000_000))]
    task = [_node(10, 1, 900_000)]
    return [
        {"kind": "thread", "name": "MainThread", "thread_id": 1, "total_ns": 10_000_000,
         "children": main},
        {"kind": "thread", "name": "Thread-1 (worker)", "thread_id": 2, "total_ns": 4_000_000,
         "children": worker},
        {"kind": "task", "name": "Task-1", "thread_id": 1, "total_ns": 1_000_000,
         "children": task},
    ]  # fmt: skip


def _walk(nodes, above=()):
    for n in nodes:
        yield n, above
        yield from _walk(n["children"], (*above, n["site"]))


def _layout(node: dict[str, Any], start: int, root: int, parent_calls: int, out: list) -> int:
    """Events for this node's calls made during one call of its parent, back to back from
    ``start``, each child laid inside its parent; the end of the last one."""
    per_call = node["total_ns"] // node["calls"]
    for _ in range(node["calls"] // parent_calls):
        cursor = start + 1_000
        for child in node["children"]:
            cursor = _layout(child, cursor, root, node["calls"], out)
        out.append(
            {"root": root, "site": node["site"], "start_ns": start,
             "end_ns": start + per_call, "raised": bool(node["raised"])}
        )  # fmt: skip
        start += per_call
    return start


def document(timeline: bool = False, dropped: int = 0) -> dict[str, Any]:
    roots = _roots()
    stats = [{"calls": 0, "total_ns": 0, "self_ns": 0, "max_ns": 0, "raised": 0} for _ in _SITES]
    for root in roots:
        for node, above in _walk(root["children"]):
            s = stats[node["site"]]
            s["calls"] += node["calls"]
            s["self_ns"] += node["self_ns"]
            s["raised"] += node["raised"]
            s["max_ns"] = max(s["max_ns"], node["max_ns"])
            if node["site"] not in above:
                s["total_ns"] += node["total_ns"]
    # longest total first, as the contract orders sites; nodes renumbered to match
    order = sorted(range(len(_SITES)), key=lambda i: (-stats[i]["total_ns"], i))
    new_index = {old: new for new, old in enumerate(order)}
    sites = []
    for old in order:
        line, col, end_col, callee, caller = _SITES[old]
        s = stats[old]
        sites.append(
            {"file": FILE, "line": line, "col": col, "end_line": line, "end_col": end_col,
             "callee": callee, "caller": caller, "module": "__main__", "calls": s["calls"],
             "total_ns": s["total_ns"], "self_ns": s["self_ns"],
             "mean_ns": round(s["total_ns"] / s["calls"], 1), "max_ns": s["max_ns"],
             "raised": s["raised"]}
        )  # fmt: skip
    for root in roots:
        for node, _ in _walk(root["children"]):
            node["site"] = new_index[node["site"]]
    events: list[dict[str, Any]] = []
    if timeline:
        for index, root in enumerate(roots):
            cursor = 5_000 * (index + 1)
            for node in root["children"]:
                cursor = _layout(node, cursor, index, 1, events) + 2_000
        events.sort(key=lambda e: (e["root"], e["start_ns"]))
    return {
        "version": 2,
        "python": "3.11.7",
        "argv": ["prog.py", "--fast"],
        "pid": 4242,
        "wall_ns": 12_000_000,
        "sites": sites,
        "roots": roots,
        "timeline": {"dropped": dropped, "events": events} if timeline else None,
        "files": {FILE: {"sha256": "0" * 64, "source": None}},
    }


def site_index(doc: dict[str, Any], line: int, col: int) -> int:
    return next(i for i, s in enumerate(doc["sites"]) if (s["line"], s["col"]) == (line, col))


def clone(doc: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(doc)
