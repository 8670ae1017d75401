"""The callgrind profile format (``callgrind.out.*``) that KCachegrind, QCachegrind and
``gprof2dot -f callgrind`` read.

One event, ``ns`` (nanoseconds), and positions by line. Each call site is a function named
``callee (file:line:col)`` in the site's file, whose self cost sits on the site's line;
each call it made is a ``calls=`` line (call count, then the called site's line) followed by
the inclusive cost on the line of the called site, in the called site's file (``fi=``), so
KCachegrind's source view puts every call on its own line. Each thread or task is a
function of its own (``<thread MainThread>``), calling its first-level sites.
Names and files are written compressed (``fn=(3) name`` once, then ``fn=(3)``).
"""

from __future__ import annotations

from recompyle.export._document import Doc, frame_name, program_name, root_label, root_self_ns, walk


class _Ids:
    """callgrind's name compression: the first use of a name defines its id."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def __call__(self, name: str) -> str:
        known = self.ids.get(name)
        if known is not None:
            return f"({known})"
        self.ids[name] = len(self.ids) + 1
        return f"({len(self.ids)}) {_clean(name)}"


def _clean(text: str) -> str:
    return " ".join(text.split())


class _Func:
    __slots__ = ("file", "line", "self_ns", "calls")

    def __init__(self, file: str, line: int) -> None:
        self.file = file
        self.line = line
        self.self_ns = 0
        # callee function name -> [calls, inclusive ns]
        self.calls: dict[str, list[int]] = {}


def render(doc: Doc) -> str:
    sites = doc["sites"]
    names = [frame_name(s) for s in sites]
    funcs: dict[str, _Func] = {}
    for root in doc["roots"]:
        top_name = f"<{root.get('kind', 'thread')} {root_label(root)}>"
        top = funcs.setdefault(top_name, _Func(f"<{root.get('kind', 'thread')}>", 0))
        top.self_ns += root_self_ns(root)
        for visit in walk(root["children"]):
            site_index = visit.path[-1]
            site = sites[site_index]
            func = funcs.setdefault(names[site_index], _Func(site["file"], int(site["line"])))
            func.self_ns += int(visit.node["self_ns"])
            caller = top if visit.parent_site is None else funcs[names[visit.parent_site]]
            edge = caller.calls.setdefault(names[site_index], [0, 0])
            edge[0] += int(visit.node["calls"])
            edge[1] += int(visit.node["total_ns"])
    total = sum(int(r.get("total_ns", 0)) for r in doc["roots"])
    lines = [
        "# callgrind format",
        "version: 1",
        "creator: recompyle",
        f"pid: {int(doc.get('pid') or 0)}",
        f"cmd: {_clean(program_name(doc))}",
        "positions: line",
        "events: ns",
        f"summary: {total}",
        "",
    ]
    files = _Ids()
    fns = _Ids()
    for name, func in funcs.items():
        lines.append(f"fl={files(func.file)}")
        lines.append(f"fn={fns(name)}")
        lines.append(f"{func.line} {func.self_ns}")
        current_file = func.file
        for callee, (count, inclusive) in func.calls.items():
            target = funcs[callee]
            if target.file != current_file:
                lines.append(f"fi={files(target.file)}")
                current_file = target.file
            lines.append(f"cfl={files(target.file)}")
            lines.append(f"cfn={fns(callee)}")
            lines.append(f"calls={count} {target.line}")
            lines.append(f"{target.line} {inclusive}")
        lines.append("")
    return "\n".join(lines) + "\n"
