"""A call tree for the terminal, like pyinstrument's text output: per thread or task, each
reported call site reached through its chain of callers, with total time, share of the
root, self time and calls; the slowest branch first.

Nodes under ``min_percent`` of their root's time are left out (with a line saying how much
was left out), since a full tree of a real program is thousands of lines; the default of
1% shows where the time went. ``min_percent=0`` shows everything.
"""

from __future__ import annotations

from typing import Any

from recompyle.export._document import Doc, Node, duration, frame_name, root_label

DEFAULT_MIN_PERCENT = 1.0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _node_line(node: Node, names: list[str], root_total: int) -> str:
    share = 100.0 * node["total_ns"] / root_total if root_total else 0.0
    extra = [_plural(node["calls"], "call"), f"self {duration(node['self_ns'])}"]
    if node.get("raised"):
        extra.append(f"raised {node['raised']}")
    return (
        f"{duration(node['total_ns'])} {share:5.1f}%  {names[node['site']]}  [{', '.join(extra)}]"
    )


def _count(node: Node) -> int:
    stack, n = [node], 0
    while stack:
        cur = stack.pop()
        n += 1
        stack.extend(cur["children"])
    return n


def _branch(
    children: list[Node], prefix: str, threshold: float, names: list[str], total: int
) -> list[str]:
    """Lines for ``children`` (slowest first) and, under each, its own children; the ones
    under ``threshold`` are summed into one line. Recursion depth is the tree's depth,
    which the profiler bounds (200 nested reported calls)."""
    shown = sorted(
        (c for c in children if c["total_ns"] >= threshold), key=lambda c: -c["total_ns"]
    )
    hidden = [c for c in children if c["total_ns"] < threshold]
    lines: list[str] = []
    for i, node in enumerate(shown):
        last = i == len(shown) - 1 and not hidden
        lines.append(f"{prefix}{'└─' if last else '├─'} {_node_line(node, names, total)}")
        lines += _branch(
            node["children"], prefix + ("   " if last else "│  "), threshold, names, total
        )
    if hidden:
        count = sum(_count(n) for n in hidden)
        spent = duration(sum(n["total_ns"] for n in hidden))
        lines.append(f"{prefix}└─ ... {_plural(count, 'node')} under the threshold, {spent}")
    return lines


def render(doc: Doc, min_percent: float = DEFAULT_MIN_PERCENT) -> str:
    """The tree as text; ``min_percent`` (0-100) of a root's time is the smallest node shown."""
    if not 0 <= min_percent <= 100:
        raise ValueError(f"min_percent must be between 0 and 100, not {min_percent}")
    names = [frame_name(s) for s in doc["sites"]]
    roots: list[dict[str, Any]] = doc["roots"]
    # Threads and tasks, and the pytest plugin's roots (one per test, and the session's).
    kinds = {"thread": 0, "task": 0}
    for r in roots:
        kind = str(r.get("kind", "thread"))
        # A task root holds every task of its coroutine (``tasks``; older reports: one).
        kinds[kind] = kinds.get(kind, 0) + (int(r.get("tasks") or 1) if kind == "task" else 1)
    counts = [_plural(n, kind) for kind, n in kinds.items() if n] or ["0 threads"]
    head = f"recompyle call tree: {', '.join(counts)}"
    if doc.get("wall_ns") is not None:
        head += f", wall {duration(doc['wall_ns'])}"
    if min_percent:
        head += f"; calls under {min_percent:g}% of their root hidden (--min-percent)"
    lines = [head]
    if not roots:
        lines.append("  no instrumented call was made")
    for root in roots:
        total = int(root.get("total_ns", 0)) or sum(c["total_ns"] for c in root["children"])
        tasks = int(root.get("tasks") or 0) if root.get("kind") == "task" else 0
        held = f"  [{_plural(tasks, 'task')}]" if tasks > 1 else ""
        lines.append(f"{root_label(root)}  {duration(total)}{held}")
        threshold = total * min_percent / 100.0
        lines += _branch(root["children"], "", threshold, names, total)
    return "\n".join(lines) + "\n"
