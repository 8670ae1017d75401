"""``python -m recompyle run``: the target behaves as under ``python``, and the report."""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from conftest import run_python


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def both(tmp_path: Path, *target: str, env: dict[str, str] | None = None, report: str = "r.json"):
    plain = run_python(*target, cwd=tmp_path, env=env)
    inst = run_python(
        "-m", "recompyle", "run", "-o", str(tmp_path / report), *target, cwd=tmp_path, env=env
    )
    return plain, inst


SCRIPT = """\
import sys, os
def main():
    print(sys.argv, os.path.basename(sys.path[0]), __name__, __file__ == os.path.abspath(__file__))
    print(sorted(k for k in globals() if k.startswith('__')))
    sys.stdout.flush()
    sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
main()
"""


def test_script_runs_as_under_python(tmp_path):
    write(tmp_path / "sub" / "prog.py", SCRIPT)
    plain, inst = both(tmp_path, "sub/prog.py", "3", "--flag")
    assert (inst.returncode, inst.stdout, inst.stderr) == (
        plain.returncode,
        plain.stdout,
        plain.stderr,
    )
    assert plain.returncode == 3
    doc = json.loads((tmp_path / "r.json").read_text())
    assert {"version", "python", "argv", "sites"} <= set(doc)
    callees = {s["callee"] for s in doc["sites"]}
    assert {"main", "print", "sys.exit", "sorted"} <= callees
    for site in doc["sites"]:
        assert {
            "file",
            "line",
            "col",
            "end_line",
            "end_col",
            "callee",
            "caller",
            "module",
            "calls",
            "total_ns",
            "mean_ns",
            "max_ns",
            "raised",
        } <= set(site)
    totals = [s["total_ns"] for s in doc["sites"]]
    assert totals == sorted(totals, reverse=True)


def test_module_runs_as_under_python_dash_m(tmp_path):
    write(tmp_path / "mpkg" / "__init__.py", "")
    write(tmp_path / "mpkg" / "tool.py", SCRIPT)
    plain, inst = both(tmp_path, "-m", "mpkg.tool", "4")
    assert (inst.returncode, inst.stdout, inst.stderr) == (
        plain.returncode,
        plain.stdout,
        plain.stderr,
    )
    doc = json.loads((tmp_path / "r.json").read_text())
    assert any(s["file"].endswith("tool.py") for s in doc["sites"])


def test_package_main_with_dash_m(tmp_path):
    write(tmp_path / "app" / "__init__.py", "")
    write(
        tmp_path / "app" / "__main__.py",
        "import sys\nprint('main of', __package__, sys.argv[1:])\n",
    )
    plain, inst = both(tmp_path, "-m", "app", "x")
    assert (inst.returncode, inst.stdout, inst.stderr) == (
        plain.returncode,
        plain.stdout,
        plain.stderr,
    )
    doc = json.loads((tmp_path / "r.json").read_text())
    assert any(s["callee"] == "print" for s in doc["sites"])


UNCAUGHT = """\
class Thing:
    def method(self, x):
        return {"a": 1}[x]

def outer():
    t = Thing()
    return 1 + t.method(
        "b")

outer()
"""


def test_uncaught_exception_traceback_and_exit_code(tmp_path):
    write(tmp_path / "boom.py", UNCAUGHT)
    plain, inst = both(tmp_path, "boom.py")
    assert plain.returncode == 1 and "KeyError: 'b'" in plain.stderr
    assert (inst.returncode, inst.stdout, inst.stderr) == (
        plain.returncode,
        plain.stdout,
        plain.stderr,
    )


def test_uncaught_exception_under_dash_m(tmp_path):
    write(tmp_path / "boommod.py", UNCAUGHT)
    plain, inst = both(tmp_path, "-m", "boommod")
    assert (inst.returncode, inst.stdout, inst.stderr) == (
        plain.returncode,
        plain.stdout,
        plain.stderr,
    )


def test_syntax_error_in_script(tmp_path):
    write(tmp_path / "bad.py", "print('x')\nif True\n    pass\n")
    plain, inst = both(tmp_path, "bad.py")
    assert plain.returncode == 1
    assert (inst.returncode, inst.stdout, inst.stderr) == (
        plain.returncode,
        plain.stdout,
        plain.stderr,
    )


def test_missing_module_under_dash_m(tmp_path):
    plain, inst = both(tmp_path, "-m", "no_such_module_here")
    assert (inst.returncode, inst.stderr) == (plain.returncode, plain.stderr)


@pytest.mark.skipif(sys.platform == "win32", reason="signals")
def test_keyboard_interrupt_exits_like_python(tmp_path):
    write(tmp_path / "intr.py", "def f():\n    raise KeyboardInterrupt\nf()\n")
    plain, inst = both(tmp_path, "intr.py")
    assert plain.returncode == -signal.SIGINT
    assert (inst.returncode, inst.stdout, inst.stderr) == (
        plain.returncode,
        plain.stdout,
        plain.stderr,
    )
    assert json.loads((tmp_path / "r.json").read_text())["sites"]


def test_text_report_goes_to_stderr(tmp_path):
    write(tmp_path / "t.py", "def f():\n    return sum(range(10))\nprint(f())\n")
    proc = run_python("-m", "recompyle", "run", "t.py", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == "45\n"
    assert proc.stderr.startswith("recompyle flat profile: 4 calls at 4 call sites")
    assert "t.py:2:12  sum" in proc.stderr


def test_modules_option_instruments_imports(tmp_path):
    write(tmp_path / "lib_a" / "__init__.py", "def work():\n    return sorted([3, 1, 2])\n")
    write(tmp_path / "main.py", "import lib_a\nprint(lib_a.work())\n")
    proc = run_python(
        "-m",
        "recompyle",
        "run",
        "--modules",
        "lib_a.*",
        "--format",
        "json",
        "-o",
        "out.json",
        "main.py",
        cwd=tmp_path,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "[1, 2, 3]\n", "")
    doc = json.loads((tmp_path / "out.json").read_text())
    where = {(Path(s["file"]).name, s["callee"]) for s in doc["sites"]}
    assert {("main.py", "lib_a.work"), ("__init__.py", "sorted")} <= where


def test_report_waits_for_threads_and_atexit(tmp_path):
    write(
        tmp_path / "th.py",
        """\
        import atexit, threading, time
        def late():
            return abs(-1)
        def worker():
            time.sleep(0.2)
            late()
        atexit.register(late)
        threading.Thread(target=worker).start()
        """,
    )
    proc = run_python("-m", "recompyle", "run", "-o", "o.json", "th.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    calls = {
        s["callee"]: s["calls"] for s in json.loads((tmp_path / "o.json").read_text())["sites"]
    }
    assert calls["abs"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "nothing to run"),
        (["--bogus", "x.py"], "unknown option --bogus"),
        (["--format", "xml", "x.py"], "--format: unknown format 'xml'; choose from text, json"),
        (["-m"], "-m needs a module name"),
        (["--modules", "a b", "x.py"], "invalid module pattern"),
        (["-o", "/no/such/dir/r.json", "x.py"], "no directory"),
    ],
)
def test_usage_errors(tmp_path, args, message):
    write(tmp_path / "x.py", "print(1)\n")
    proc = run_python("-m", "recompyle", "run", *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_script(tmp_path):
    proc = run_python("-m", "recompyle", "run", "nope.py", cwd=tmp_path)
    plain = run_python("nope.py", cwd=tmp_path)
    assert proc.returncode == plain.returncode == 2
    assert "can't open file" in proc.stderr and "nope.py" in proc.stderr


def test_help_and_version():
    assert run_python("-m", "recompyle", "run", "--help").stdout.startswith("usage:")
    assert run_python("-m", "recompyle", "--version").stdout.startswith("recompyle ")
    assert run_python("-m", "recompyle", "frobnicate").returncode == 2


def test_unwritable_output_is_reported_not_raised(tmp_path):
    write(tmp_path / "x.py", "print(1)\n")
    (tmp_path / "taken").mkdir()  # a directory where the report file should go
    (tmp_path / "taken" / "f").write_text("")
    proc = run_python("-m", "recompyle", "run", "-o", "taken", "x.py", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "1\n")
    assert proc.stderr.startswith("recompyle: cannot write the report to 'taken'")
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken", "x.py"]


def test_output_to_devices_fifos_and_symlinks_is_written_through(tmp_path):
    # The report and the graph are renamed over their file, whole or nothing; as root,
    # renaming over /dev/null would replace the device with a regular file. Devices and
    # FIFOs are written in place, and a symlink's target gets the text, the link stays.
    write(tmp_path / "x.py", "len([1])\n")
    if os.geteuid() == 0:  # a null device of our own: a regression must not break the real one
        os.mknod(tmp_path / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        for option in ("-o", "--deps"):
            proc = run_python("-m", "recompyle", "run", option, "null", "x.py", cwd=tmp_path)
            assert proc.returncode == 0, proc.stderr
            assert stat.S_ISCHR(os.stat(tmp_path / "null").st_mode)
        os.unlink(tmp_path / "null")
    (tmp_path / "real.json").write_text("")
    os.symlink("real.json", tmp_path / "link.json")
    proc = run_python("-m", "recompyle", "run", "-o", "link.json", "x.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert os.path.islink(tmp_path / "link.json")
    assert json.loads((tmp_path / "real.json").read_text())["sites"]
    os.mkfifo(tmp_path / "pipe")
    received: list[str] = []
    reader = threading.Thread(
        target=lambda: received.append((tmp_path / "pipe").read_text()), daemon=True
    )
    reader.start()
    proc = run_python(
        "-m", "recompyle", "run", "-o", "pipe", "--format", "json", "x.py", cwd=tmp_path
    )
    reader.join(timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe").st_mode)
    assert json.loads(received[0])["sites"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "pipe", "real.json", "x.py"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="plain recursion uses the C stack too")
@pytest.mark.parametrize(
    "call",
    [
        "f(n - 1)",  # the flag form: __recompyle__ selects the callee
        # A call whose arguments can be written twice, which __recompyle_c__ makes while
        # reported calls may nest deeper: past the reporting limit the selector's branch
        # runs, as a call made by the builtin there would stack a C frame per call (3.11
        # crashed, 3.12+ raised RecursionError).
        "f(m)",
    ],
)
def test_deep_recursion_under_the_profiler_does_not_overflow_the_c_stack(tmp_path, call):
    write(
        tmp_path / "deep.py",
        f"""\
        import sys
        sys.setrecursionlimit(120000)
        def f(n):
            m = n - 1
            return 0 if n == 0 else 1 + {call}
        print(f(100000))
        """,
    )
    plain, inst = both(tmp_path, "deep.py")
    assert (inst.returncode, inst.stdout, inst.stderr) == (0, "100000\n", "")
    assert (plain.returncode, plain.stdout) == (0, "100000\n")
    rows = [s for s in json.loads((tmp_path / "r.json").read_text())["sites"] if s["callee"] == "f"]
    # The outer calls are reported; the deepest run unreported but are still counted.
    assert sum(s["calls"] for s in rows) == 100001
    assert 100001 - 200 <= sum(s["untimed"] for s in rows) < 100001
