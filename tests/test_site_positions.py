"""Our call sites against CPython's own ``ast``: every site the transform reports is a
``Call`` node of ``ast.parse`` with the same start and end (line, UTF-8 byte column) and the
same callee text, and every ``Call`` node is a site, except the calls inside a
self-documenting f-string expression (``f"{f(x)=}"``), whose text is printed and so is left
as written.

A sample of the standard library runs here; ``python tests/slow/check_positions.py`` runs
the whole of it.
"""

from __future__ import annotations

import ast
import os
import re
import sys
import sysconfig
from pathlib import Path

import pytest

from recompyle import _core

SAMPLE = [
    "argparse.py",
    "ast.py",
    "dataclasses.py",
    "enum.py",
    "functools.py",
    "inspect.py",
    "json/decoder.py",
    "json/encoder.py",
    "string.py",
    "textwrap.py",
    "typing.py",
    "email/_header_value_parser.py",
    "logging/__init__.py",
    "pathlib.py",
    "pprint.py",
    "shlex.py",
    "subprocess.py",
    "traceback.py",
    "unittest/case.py",
    "zipfile.py",
]

_DEBUG_TAIL = re.compile(r"\s*=(?!=)")


def _debug_expression_calls(tree: ast.AST, lines: list[bytes]) -> set[tuple[int, ...]]:
    """Positions of the calls inside ``f"{expr=}"`` expressions."""
    exempt: set[tuple[int, ...]] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.FormattedValue):
            continue
        value = node.value
        end_line, end_col = value.end_lineno, value.end_col_offset
        if end_line is None or end_col is None:
            continue
        rest = lines[end_line - 1][end_col:].decode("utf-8", "replace")
        if _DEBUG_TAIL.match(rest):
            exempt |= {_span(n) for n in ast.walk(value) if isinstance(n, ast.Call)}
    return exempt


def _span(node: ast.AST) -> tuple[int, ...]:
    return (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]


def _segment(lines: list[bytes], span: tuple[int, ...]) -> str | None:
    """The source text at ``span`` (``ast.get_source_segment`` splits the whole text on every
    call, which is quadratic over a file's calls)."""
    line, col, end_line, end_col = span
    if line == end_line:
        raw = lines[line - 1][col:end_col]
    else:
        raw = b"".join([lines[line - 1][col:], *lines[line : end_line - 1]])
        raw += lines[end_line - 1][:end_col]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None  # another source encoding: the positions are still compared


def compare(path: str) -> str | None:
    """What differs between our sites and ``ast``'s calls in the file at ``path`` (None if
    nothing, or if this interpreter does not compile the file)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        tree = ast.parse(data, path)
    except (SyntaxError, ValueError):
        return None
    try:
        out = _core.transform(data, path, sys.version_info[:2])
    except (_core.ParseError, _core.InternalTransformError) as exc:
        return f"transform failed: {exc}"
    lines = data.splitlines(keepends=True)
    calls = {_span(n): n for n in ast.walk(tree) if isinstance(n, ast.Call)}
    ours = {
        (line, col, end_line, end_col): callee
        for line, col, end_line, end_col, callee, _ in out.sites
    }
    extra = sorted(set(ours) - set(calls))
    missing = sorted(set(calls) - set(ours) - _debug_expression_calls(tree, lines))
    wrong = []
    for span, callee in ours.items():
        node = calls.get(span)
        if node is not None:
            expected = _segment(lines, _span(node.func))
            if expected is not None and expected != callee:
                wrong.append((span, callee, expected))
    problems = []
    if extra:
        problems.append(f"sites that are no ast Call: {extra[:3]}")
    if missing:
        problems.append(f"ast Calls that are no site: {missing[:3]}")
    if wrong:
        problems.append(f"callee text differs (ours, ast): {wrong[:3]}")
    return "; ".join(problems) or None


STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.mark.parametrize("relpath", SAMPLE)
def test_sites_are_the_ast_calls(relpath: str) -> None:
    path = STDLIB / relpath
    if not path.exists():
        pytest.skip(f"{relpath} is not in this interpreter's standard library")
    assert compare(str(path)) is None


def test_debug_fstring_calls_are_the_only_exception(tmp_path: Path) -> None:
    source = 'x = f"{len(str(1))=} {abs(-1) == 1} {max(1, 2)!r:>4}"\n'
    path = tmp_path / "fs.py"
    path.write_text(source)
    assert compare(str(path)) is None
    sites = {s[4] for s in _core.transform(source.encode(), str(path), sys.version_info[:2]).sites}
    assert sites == {"abs", "max"}


def test_comparison_can_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check reports a site whose position is off by one column."""
    path = tmp_path / "one.py"
    path.write_text("print(len('x'))\n")
    real = _core.transform

    class Shifted:
        def __init__(self, out: object) -> None:
            self.sites = tuple((a, b + 1, c, d, e, f) for a, b, c, d, e, f in out.sites)  # type: ignore[attr-defined]

    monkeypatch.setattr(_core, "transform", lambda *a, **k: Shifted(real(*a, **k)))
    problem = compare(str(path))
    assert problem is not None and "no ast Call" in problem and "no site" in problem


def stdlib_files(root: Path = STDLIB) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "__pycache__"))
        found += [os.path.join(dirpath, n) for n in sorted(filenames) if n.endswith(".py")]
    return found
