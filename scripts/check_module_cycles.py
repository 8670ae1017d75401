#!/usr/bin/env python3
"""Fail when the modules of a Rust crate import each other in a cycle.

Reads every ``src/*.rs`` of each crate given (default: the three crates of the workspace),
takes each ``crate::NAME`` path outside comments (``use`` lines and paths written inline
alike) as an edge from that file's module to the module ``NAME``, and reports every
strongly connected component of more than one module. A cycle means two stages cannot be
read, tested or changed apart; the fix is to move what both need into a module below them
(as ``cpython.rs`` and ``listeners.rs`` are for the bindings).

    python3 scripts/check_module_cycles.py [--allow A:B ...] [CRATE_DIR ...]

``--allow A:B`` accepts a cycle whose modules are exactly A and B (a known one, named
where the script is called, with the reason and who owns it).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CRATES = ["crates/recompyle_parser", "crates/recompyle_transform", "crates/recompyle_python"]

_COMMENT = re.compile(r"//.*$", re.MULTILINE)
_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_STRING = re.compile(r'"(?:\\.|[^"\\])*"')
_PATH = re.compile(r"\bcrate::(?:\{([^}]*)\}|(\w+))")


def module_graph(src: Path) -> dict[str, set[str]]:
    """Module name -> the modules of the same crate it names with ``crate::``."""
    modules = {p.stem for p in src.glob("*.rs")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for path in sorted(src.glob("*.rs")):
        text = path.read_text(encoding="utf-8")
        text = _STRING.sub('""', _BLOCK_COMMENT.sub("", _COMMENT.sub("", text)))
        for group, single in _PATH.findall(text):
            names = [single] if single else [n.split("::")[0].strip() for n in group.split(",")]
            for name in names:
                if name in modules and name != path.stem:
                    graph[path.stem].add(name)
    # lib.rs declares every module: it is the root, not a stage.
    graph.pop("lib", None)
    for targets in graph.values():
        targets.discard("lib")
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main(argv: list[str]) -> int:
    allowed: list[set[str]] = []
    crates: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--allow":
            allowed.append(set(next(args, "").split(":")))
        else:
            crates.append(arg)
    status = 0
    for crate in crates or DEFAULT_CRATES:
        src = (ROOT / crate / "src") if not Path(crate).is_absolute() else Path(crate) / "src"
        if not src.is_dir():
            print(f"check_module_cycles: no {src}", file=sys.stderr)
            return 2
        graph = module_graph(src)
        for component in cycles(graph):
            if set(component) in allowed:
                print(f"{crate}: known cycle allowed: {' <-> '.join(component)}")
                continue
            status = 1
            edges = ", ".join(
                f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in component
            )
            print(f"{crate}: modules import each other in a cycle: {edges}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
