"""The IPython magics (``recompyle.ipython``) in a real ``InteractiveShell``, and one
notebook executed by a real kernel (nbclient + ipykernel)."""

from __future__ import annotations

import html
import json
import sys
import textwrap
import traceback
from pathlib import Path

import pytest

from recompyle.finder import installed_patterns

IPython = pytest.importorskip(
    "IPython", reason="IPython is not installed (scripts/test.sh installs it where it runs)"
)


@pytest.fixture(scope="module")
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    from recompyle.finder import _finder, uninstall

    had_finder = _finder() is not None
    ip = InteractiveShell.instance()
    result = ip.run_cell("%load_ext recompyle")
    assert result.success, result.error_in_exec
    yield ip
    if not had_finder:
        uninstall()  # what the magics installed; later tests expect no finder


def run(shell, cell: str):
    return shell.run_cell(textwrap.dedent(cell), store_history=True)


def test_cell_profile_and_value(shell, capsys) -> None:
    capsys.readouterr()
    result = run(
        shell,
        """\
        %%recompyle --format text
        def f(x):
            return x + 1

        total = 0
        for i in range(3):
            total += f(i)
        total * 10
        """,
    )
    assert result.success, result.error_in_exec
    assert result.result == 60  # the last expression's value is the cell's
    out = capsys.readouterr().out
    assert "recompyle flat profile: 4 calls at 2 call sites" in out
    magics = shell.magics_manager.registry["RecompyleMagics"]
    rows = {(r.line, r.col, r.callee): r.calls for r in magics.last_profile.stats()}
    # The cell's own lines (the magic's is line 1) and columns, as written.
    assert rows == {(6, 9, "range"): 1, (7, 13, "f"): 3}


def test_line_magic(shell, capsys) -> None:
    run(shell, "def g(x):\n    return [abs(v) for v in x]\n")
    capsys.readouterr()
    result = run(shell, "%recompyle g([-1, 2])")
    assert result.result == [1, 2]  # an expression's value, as %time gives it
    # The line magic's own statement is instrumented; g was compiled plainly.
    out = capsys.readouterr().out
    # The call tree by default: the statement's call of g, under the main thread.
    assert "recompyle call tree: 1 thread" in out
    assert "MainThread" in out and "g (<ipython-input-" in out


def test_traceback_points_at_the_cell(shell, capsys) -> None:
    source = """\
        %%recompyle
        def boom(x):
            return 1 / x

        values = [1, 0]
        results = [boom(v) for v in values]
        """
    result = run(shell, source)
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    frames = traceback.extract_tb(result.error_in_exec.__traceback__)
    cell_frames = [f for f in frames if f.filename == frames[-1].filename]
    assert [(f.lineno, f.line) for f in cell_frames] == [
        (6, "results = [boom(v) for v in values]"),
        (6, "results = [boom(v) for v in values]"),
        (3, "return 1 / x"),
    ][-len(cell_frames) :]
    if sys.version_info >= (3, 11):
        caller = [f for f in cell_frames if f.line.startswith("results")][-1]
        assert (caller.colno, caller.end_colno) == (11, 18)  # `boom(v)`, as written
        assert (cell_frames[-1].colno, cell_frames[-1].end_colno) == (11, 16)
    out = capsys.readouterr().out
    assert "recompyle call tree" in out  # shown even when the cell raised


def test_top_level_await(shell, capsys) -> None:
    result = run(
        shell,
        """\
        %%recompyle
        import asyncio

        async def fetch(x):
            await asyncio.sleep(0)
            return x * 2

        values = await asyncio.gather(fetch(1), fetch(2))
        sum(values)
        """,
    )
    assert result.success, result.error_in_exec
    assert result.result == 6
    magics = shell.magics_manager.registry["RecompyleMagics"]
    calls = {(r.col, r.callee): r.calls for r in magics.last_profile.stats()}
    assert calls == {
        (15, "asyncio.gather"): 1,
        (30, "fetch"): 1,
        (40, "fetch"): 1,
        (10, "asyncio.sleep"): 2,
        (0, "sum"): 1,
    }


def test_line_magic_awaits(shell, capsys) -> None:
    run(shell, "import asyncio\nasync def later(x):\n    await asyncio.sleep(0)\n    return x\n")
    result = run(shell, "%recompyle --format text await later(5)")
    assert result.success, result.error_in_exec
    assert result.result == 5
    assert "1 calls at 1 call sites" in capsys.readouterr().out


def test_modules_and_output_file(shell, tmp_path: Path, capsys, monkeypatch) -> None:
    pkg = tmp_path / "magicpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("def work(n):\n    return sorted(range(n))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out_file = tmp_path / "cell.json"
    result = run(
        shell,
        f"""\
        %%recompyle --modules magicpkg -o {out_file}
        import magicpkg
        magicpkg.work(3)
        """,
    )
    assert result.success, result.error_in_exec
    with open(out_file, encoding="utf-8") as f:
        sites = {s["callee"]: s["calls"] for s in json.load(f)["sites"]}
    assert sites == {"magicpkg.work": 1, "sorted": 1, "range": 1}
    # A module imported before it was selected cannot be instrumented, and is named.
    (tmp_path / "plainmod.py").write_text("def work():\n    return 1\n")
    run(shell, "import plainmod")
    capsys.readouterr()
    run(shell, "%recompyle_modules plainmod")
    assert "already imported, so not instrumented" in capsys.readouterr().out
    assert "plainmod" in installed_patterns()


def test_bad_options(shell, capsys) -> None:
    for cell in (
        "%%recompyle --format yaml\n1\n",
        "%%recompyle -o /no/such/dir/x.json\n1\n",
        "%%recompyle --modules [\n1\n",
        "%%recompyle --format speedscope\n1\n",  # a file format, without -o
        "%recompyle\n",
    ):
        result = run(shell, cell)
        assert not result.success, cell
    err = capsys.readouterr()
    assert "--format must be one of" in err.out + err.err


def test_notebook(tmp_path: Path) -> None:
    """A notebook run by a real kernel: the magic's output cell holds the profile."""
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext recompyle"),
        nbformat.v4.new_code_cell(
            "%%recompyle\n"
            "import asyncio\n"
            "def square(x):\n"
            "    return x * x\n"
            "await asyncio.sleep(0)\n"
            "sum(square(i) for i in range(4))\n"
        ),
        # A statement that awaits, on the kernel's running loop.
        nbformat.v4.new_code_cell("%recompyle --format text await asyncio.sleep(0, 'done')"),
    ]
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    # The kernel must be this interpreter (where recompyle is installed).
    client.kernel_manager_class = _this_python_kernel()
    client.execute()
    outputs = nb.cells[1].outputs
    results = [o for o in outputs if o.output_type == "execute_result"]
    assert results[0]["data"]["text/plain"] == "14"
    from recompyle.ipython import _has_html

    if _has_html():
        # The HTML report, through the display system, with the tree as plain text.
        (shown,) = [o for o in outputs if o.output_type == "display_data"]
        page = shown["data"]["text/html"]
        assert page.startswith("<iframe") and "srcdoc=" in page
        # The cell's source is in the page (the source view), escaped into the attribute.
        assert "def square(x):" in html.unescape(page)
        text = shown["data"]["text/plain"]
    else:
        text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    # ipykernel runs each cell in an asyncio task: the cell's calls are that task's tree.
    assert "recompyle call tree: 1 task" in text and "(task)" in text, outputs
    assert "sum (" in text and "asyncio.sleep (" in text
    line = nb.cells[2].outputs
    assert [o["data"]["text/plain"] for o in line if o.output_type == "execute_result"] == [
        "'done'"
    ]
    assert "1 calls at 1 call sites" in "".join(o.get("text", "") for o in line)


def _this_python_kernel():
    from jupyter_client.manager import KernelManager

    class ThisPython(KernelManager):
        def format_kernel_cmd(self, extra_arguments=None):
            return [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file]

    return ThisPython
