"""No import cycle among the ``recompyle`` modules (read from their source, so every import
counts, including the ones deferred into functions to keep start-up light)."""

from __future__ import annotations

import ast
import importlib.util
import types
from pathlib import Path

import recompyle

PACKAGE = Path(recompyle.__file__).parent


def _load_script(name: str) -> types.ModuleType:
    """A script of ``scripts/`` as a module (the directory is not a package)."""
    path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_rust_module_cycles = _load_script("check_module_cycles")

#: Modules tied in a cycle by imports deferred into functions: none (the profile document
#: has its own module, ``recompyle.document``, and ``combine``'s command line is in ``cli``).
KNOWN_DEFERRED_CYCLES: set[frozenset[str]] = set()


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports(name: str, path: Path, known: set[str], *, deferred: bool) -> set[str]:
    """The ``recompyle`` modules that module ``name`` imports: at import time only (module
    level, ``if`` blocks included), or with ``deferred`` also inside functions. An import
    of the package itself (``from recompyle import __version__``) is not an edge: a package
    is initialised before any of its submodules runs. Imports under ``if TYPE_CHECKING:``
    are for the type checker only, never run, and are not edges."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            node.body = [ast.Pass()]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    if deferred:
        nodes = list(ast.walk(tree))
    else:
        nodes = []
        todo = list(tree.body)
        while todo:
            node = todo.pop()
            nodes.append(node)
            if isinstance(node, (ast.If, ast.Try)):
                todo += [n for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt)]
                todo += getattr(node, "orelse", []) + getattr(node, "finalbody", [])
                for handler in getattr(node, "handlers", []):
                    todo += handler.body
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
    return {m for m in found if m in known and m != name and m != "recompyle"}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module: the same search
    ``scripts/check_module_cycles.py`` runs on the Rust crates' modules."""
    return [frozenset(c) for c in _rust_module_cycles.cycles(graph)]


def graph(*, deferred: bool) -> dict[str, set[str]]:
    names = module_names()
    return {n: imports(n, p, set(names), deferred=deferred) for n, p in names.items()}


def test_the_graph_is_read() -> None:
    g = graph(deferred=False)
    assert "recompyle.loader" in g["recompyle.finder"]
    assert "recompyle.qualnames" in graph(deferred=True)["recompyle.loader"]


def test_cycles_are_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_cycle_at_import_time() -> None:
    assert cycles(graph(deferred=False)) == []


def test_no_cycle_through_deferred_imports_but_the_known_ones() -> None:
    assert set(cycles(graph(deferred=True))) == KNOWN_DEFERRED_CYCLES
