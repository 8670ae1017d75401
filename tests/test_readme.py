"""Every Python example of README.md runs as written, and prints what the README says.

Each ```python block is run as a script of its own, in a fresh interpreter, in a temporary
directory holding a small ``myapp`` package (below): the program a newcomer would write from
that block alone. Conventions, in HTML comments that GitHub does not show:

* ``<!-- readme-test: skip: REASON -->`` on the line before a block skips it; the reason is
  required (and shown in the test's id), so no example is left out silently.
* ``<!-- readme-test: output -->`` on the line before a ```text block makes it the expected
  output (stdout and stderr together, as a terminal shows them) of the Python block before
  it; ``...`` stands for any text (doctest's ELLIPSIS), whitespace runs compare equal.
"""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"

MYAPP = {
    "myapp/__init__.py": """\
        from myapp import util


        def main():
            total = compute(42)
            print("result", total)
            return total


        def compute(x):
            return util.helper(x) + len(str(x))
        """,
    "myapp/util.py": """\
        FACTOR = 3


        def helper(x):
            return x * FACTOR
        """,
}

_FENCE = re.compile(r"^```(\w*)\s*$")
_SKIP = re.compile(r"^<!--\s*readme-test:\s*skip:\s*(.*?)\s*-->\s*$")
_OUTPUT = re.compile(r"^<!--\s*readme-test:\s*output\s*-->\s*$")
_MARKER = re.compile(r"^<!--\s*readme-test:")


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip: str | None = None  # the reason
    expected: str | None = None


def parse(text: str) -> list[Block]:
    """The fenced blocks of ``text``, with their markers applied."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    marker: str | None = None
    while i < len(lines):
        line = lines[i]
        m = _FENCE.match(line)
        if m is None:
            if line.strip():
                if _MARKER.match(line.strip()):
                    if not (_SKIP.match(line.strip()) or _OUTPUT.match(line.strip())):
                        raise ValueError(f"README.md:{i + 1}: unknown readme-test marker {line!r}")
                    marker = line.strip()
                else:
                    marker = None
            i += 1
            continue
        start = i
        i += 1
        body = []
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"README.md:{start + 1}: unclosed code block")
        block = Block(start + 1, m.group(1), "\n".join(body) + "\n")
        if marker is not None:
            skip = _SKIP.match(marker)
            if skip is not None:
                if not skip.group(1):
                    raise ValueError(f"README.md:{start}: a skip marker needs a reason")
                block.skip = skip.group(1)
            elif block.lang != "text":
                raise ValueError(
                    f"README.md:{start}: an output marker must precede a ```text block"
                )
            else:
                python = [b for b in blocks if b.lang == "python"]
                if not python or python[-1].skip is not None:
                    raise ValueError(f"README.md:{start}: output marker without a Python block")
                python[-1].expected = block.code
        marker = None
        blocks.append(block)
        i += 1
    return blocks


def python_blocks() -> list[Block]:
    return [b for b in parse(README.read_text(encoding="utf-8")) if b.lang == "python"]


def _id(block: Block) -> str:
    return f"line{block.line}" + (f"-skip({block.skip})" if block.skip else "")


def write_myapp(directory: Path) -> Path:
    """Write the ``myapp`` package into ``directory``; returns ``directory``."""
    for name, text in MYAPP.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return directory


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    return write_myapp(tmp_path)


@pytest.mark.parametrize("block", python_blocks(), ids=_id)
def test_readme_example(block: Block, app_dir: Path) -> None:
    if block.skip is not None:
        pytest.skip(f"README.md:{block.line}: {block.skip}")
    script = app_dir / "example.py"
    script.write_text(block.code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMPYLE_")}
    env["PYTHONPATH"] = str(app_dir)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=app_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"README.md:{block.line} failed:\n{proc.stdout}"
    if block.expected is not None:
        checker = doctest.OutputChecker()
        flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        assert checker.check_output(
            block.expected, proc.stdout, flags
        ), f"README.md:{block.line} printed:\n{proc.stdout}\nthe README shows:\n{block.expected}"


def test_the_extractor_reads_markers() -> None:
    text = textwrap.dedent(
        """\
        <!-- readme-test: skip: needs a network -->
        ```python
        import nosuch
        ```

        ```python
        print(1)
        ```
        <!-- readme-test: output -->
        ```text
        1
        ```
        """
    )
    skipped, shown, output = parse(text)
    assert skipped.skip == "needs a network"
    assert shown.expected == "1\n" and shown.skip is None
    assert output.lang == "text"
    with pytest.raises(ValueError, match="needs a reason"):
        parse("<!-- readme-test: skip: -->\n```python\nx\n```\n")
    with pytest.raises(ValueError, match="unknown readme-test marker"):
        parse("<!-- readme-test: nothing -->\n```python\nx\n```\n")
    with pytest.raises(ValueError, match="unclosed"):
        parse("```python\nx\n")


def test_the_readme_has_examples() -> None:
    blocks = python_blocks()
    assert len([b for b in blocks if b.skip is None]) >= 6
    assert len([b for b in blocks if b.expected is not None]) >= 5
