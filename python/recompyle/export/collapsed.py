"""Collapsed ("folded") stacks (``*.collapsed``, ``*.folded``), the input of Brendan Gregg's
``flamegraph.pl``, inferno's ``inferno-flamegraph`` and speedscope's importer: one line per
distinct stack, ``root;frame;frame <weight>``, the weight being the stack's self time in
nanoseconds.

The first frame is the thread or task (one tower per root), then ``callee (file:line:col)``
per call site. ``;`` separates frames and the last space the weight, so names are made
safe: whitespace runs become one space and ``;`` becomes ``；`` (a full-width semicolon,
still readable as one).
"""

from __future__ import annotations

from recompyle.export._document import Doc, frame_name, root_label, root_self_ns, walk


def _safe(name: str) -> str:
    return " ".join(name.split()).replace(";", "\uff1b")


def render(doc: Doc) -> str:
    names = [_safe(frame_name(s)) for s in doc["sites"]]
    weights: dict[str, int] = {}
    for root in doc["roots"]:
        top = _safe(root_label(root))
        own = root_self_ns(root)
        if own:
            weights[top] = weights.get(top, 0) + own
        for visit in walk(root["children"]):
            weight = int(visit.node["self_ns"])
            if weight > 0:
                stack = ";".join([top, *(names[i] for i in visit.path)])
                weights[stack] = weights.get(stack, 0) + weight
    return "".join(f"{stack} {weight}\n" for stack, weight in sorted(weights.items()))
