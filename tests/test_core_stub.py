"""``python/recompyle/_core.pyi`` describes the built ``recompyle._core``: every public name of
the module is in the stub and every name of the stub is in the module, with the same
parameters where the native object states them; and, when mypy is installed (scripts/test.sh
installs it), mypy's ``stubtest`` agrees."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from recompyle import _core

STUB = Path(_core.__file__).with_name("_core.pyi")
if not STUB.exists():  # an installed wheel keeps the stub beside the package's sources
    STUB = Path(__file__).parents[1] / "python" / "recompyle" / "_core.pyi"


def _public(names: object) -> set[str]:
    return {n for n in names if not n.startswith("_")}  # type: ignore[attr-defined]


def stub_tree() -> ast.Module:
    return ast.parse(STUB.read_text(encoding="utf-8"))


def _holds_here(test: ast.expr) -> bool:
    """The value, on this interpreter, of a stub's ``if sys.version_info ...`` condition."""
    return bool(eval(compile(ast.Expression(test), str(STUB), "eval"), {"sys": sys}))


def stub_names(tree: ast.Module) -> dict[str, ast.stmt]:
    """The names the stub defines at module level (not its imports), in the branches of its
    version checks that hold on this interpreter."""
    names: dict[str, ast.stmt] = {}
    body = list(tree.body)
    while body:
        node = body.pop(0)
        if isinstance(node, ast.If):
            body[:0] = node.body if _holds_here(node.test) else node.orelse
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names[target.id] = node
    return names


def test_every_public_name_of_the_module_is_in_the_stub_and_back() -> None:
    in_stub = _public(stub_names(stub_tree()))
    in_module = _public(dir(_core))
    assert sorted(in_module - in_stub) == [], "in _core but not in _core.pyi"
    assert sorted(in_stub - in_module) == [], "in _core.pyi but not in _core"


def _stub_parameters(node: ast.FunctionDef) -> list[tuple[str, str]]:
    args = node.args
    params = [(a.arg, "POSITIONAL_ONLY") for a in args.posonlyargs]
    params += [(a.arg, "POSITIONAL_OR_KEYWORD") for a in args.args]
    if args.vararg:
        params.append((args.vararg.arg, "VAR_POSITIONAL"))
    params += [(a.arg, "KEYWORD_ONLY") for a in args.kwonlyargs]
    if args.kwarg:
        params.append((args.kwarg.arg, "VAR_KEYWORD"))
    return params


def test_functions_take_the_parameters_the_stub_names() -> None:
    """Names and kinds, for every function whose native signature is known (pyo3 states a
    ``__text_signature__`` for each ``#[pyfunction]``)."""
    checked = 0
    for name, node in stub_names(stub_tree()).items():
        obj = getattr(_core, name, None)
        if not isinstance(node, ast.FunctionDef) or not callable(obj):
            continue
        try:
            signature = inspect.signature(obj)
        except (TypeError, ValueError):
            continue
        native = [(p.name, p.kind.name) for p in signature.parameters.values()]
        assert native == _stub_parameters(node), name
        checked += 1
    assert checked > 20


@pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None,
    reason="mypy is not installed (scripts/test.sh installs it)",
)
def test_stubtest_agrees(tmp_path: Path) -> None:
    """Types, parameters, defaults, ``@final`` classes: what mypy's ``stubtest`` compares."""
    allowlist = Path(__file__).with_name("core_stub_allowlist.txt")
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "recompyle._core", "--allowlist", str(allowlist)],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # no project config: the stub alone against the module
    )
    assert result.returncode == 0, result.stdout + result.stderr
