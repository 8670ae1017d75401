"""Robustness (issue 18): what a hostile program, file or environment does to recompyle.

Each test is a case that once broke: a daemon thread at exit, a Ctrl-C or ``sys.exit`` inside
a handler, a module the compiler cannot take once rewritten, a path that is not UTF-8, a
comment byte CPython accepts. Subprocesses, so that exits, signals and aborts are real."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import run_python

#: `python -m recompyle run` writing a JSON report to the path that follows.
RUN_JSON = ("-m", "recompyle", "run", "--format", "json", "-o")

# -------------------------------------------------------------------------------------------
# 1. A daemon thread inside an instrumented call when the interpreter exits.
# -------------------------------------------------------------------------------------------

DAEMON_PROGRAM = """
import threading, time
import recompyle

def work(n):
    return sum(i for i in range(n))

def worker():
    while True:
        work(1000)

MODE
for _ in range(4):
    threading.Thread(target=worker, daemon=True).start()
time.sleep(0.05)
print("main done")
"""

DAEMON_MODES = {
    # The profiler listens: CPython 3.9-3.13 pthread_exit()s the daemon threads at exit,
    # unwinding through the proxies' native frames.
    "profiler": "",
    # A Python handler listens: the unwind also meets the handler dispatch.
    "handler": "recompyle.add_handler(before=lambda e: None, after=lambda e: None)",
}


@pytest.mark.parametrize("mode", sorted(DAEMON_MODES))
def test_daemon_threads_inside_calls_at_exit_never_abort(tmp_path, mode):
    """20 runs, each with 4 daemon threads busy in reported calls when the main thread
    ends: every run exits 0 (before, most runs died of SIGABRT, exit 134)."""
    (tmp_path / "prog.py").write_text(DAEMON_PROGRAM.replace("MODE", DAEMON_MODES[mode]))
    codes = []
    for _ in range(20):
        proc = run_python(
            "-m", "recompyle", "run", "-o", os.devnull, "prog.py", cwd=tmp_path, timeout=60
        )
        codes.append(proc.returncode)
        assert "main done" in proc.stdout, proc.stderr
    assert codes == [0] * 20, codes


# -------------------------------------------------------------------------------------------
# 2. KeyboardInterrupt and SystemExit raised inside a handler are the program's.
# -------------------------------------------------------------------------------------------


def _run_program(tmp_path: Path, source: str, *args: str, timeout: float = 60):
    (tmp_path / "prog.py").write_text(textwrap.dedent(source))
    return run_python(*args, "prog.py", cwd=tmp_path, timeout=timeout)


@pytest.mark.parametrize("phase", ["before", "after"])
def test_sys_exit_in_a_handler_exits_with_its_code(tmp_path, phase):
    proc = _run_program(
        tmp_path,
        f"""
        import sys
        import recompyle

        def callee():
            print("callee ran")
            return 1

        def handler(event):
            if event.source == "callee":
                sys.exit(4)

        recompyle.add_handler({phase}=handler)
        try:
            callee()
        finally:
            print("finally ran")
        print("not reached")
        """,
        "-m",
        "recompyle",
        "run",
        "-o",
        os.devnull,
    )
    assert proc.returncode == 4, proc.stderr
    expected = ["callee ran", "finally ran"] if phase == "after" else ["finally ran"]
    assert proc.stdout.split() == " ".join(expected).split()
    assert "HandlerWarning" not in proc.stderr


@pytest.mark.parametrize("phase", ["before", "after"])
def test_keyboard_interrupt_from_a_handler_is_raised_at_the_call(instrumented, phase):
    import recompyle

    mod = instrumented(
        """
        log = []

        def callee():
            log.append("called")
            return 1

        def caller():
            try:
                return callee()
            except KeyboardInterrupt as exc:
                return exc
        """
    )

    def handler(event):
        if event.source == "callee":
            raise KeyboardInterrupt("from the handler")

    with recompyle.handler(**{phase: handler}) as h:
        result = mod.caller()
    assert isinstance(result, KeyboardInterrupt) and result.args == ("from the handler",)
    assert mod.log == (["called"] if phase == "after" else [])
    assert h.errors == 0  # the program's exception, not a handler error


def test_exception_from_a_handler_is_still_contained(instrumented):
    import recompyle

    mod = instrumented(
        """
        def callee():
            return 1

        def caller():
            return callee()
        """
    )
    with pytest.warns(recompyle.HandlerWarning):
        with recompyle.handler(before=lambda e: 1 / 0) as h:
            assert mod.caller() == 1
    assert h.errors == 1


def test_generator_exit_from_a_handler_reaches_the_program(instrumented):
    import recompyle

    mod = instrumented(
        """
        def callee():
            return 1

        def caller():
            try:
                callee()
            except GeneratorExit:
                return "GeneratorExit"
        """
    )

    def handler(event):
        raise GeneratorExit

    with recompyle.handler(after=handler):
        assert mod.caller() == "GeneratorExit"


def test_keyboard_interrupt_in_a_global_handler_reaches_the_program(tmp_path):
    import recompyle
    from conftest import load_tracked

    mod = load_tracked(
        tmp_path,
        """
        value = 1

        def read():
            try:
                return value
            except KeyboardInterrupt:
                return "interrupted"
        """,
        name="tmod_interrupt",
    )
    try:

        def on_global(event):
            if event.name == "value":
                raise KeyboardInterrupt

        with recompyle.handler(globals=on_global):
            assert mod.read() == "interrupted"
    finally:
        sys.modules.pop("tmod_interrupt", None)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_ctrl_c_stops_a_hot_loop_with_a_python_handler(tmp_path):
    """SIGINT, delivered while the loop (and so mostly the handler) runs, ends the program
    with KeyboardInterrupt and its report is written: before, the interrupt was swallowed as
    a handler error and the loop never ended."""
    report = tmp_path / "report.json"
    proc = _run_program(
        tmp_path,
        """
        import os, signal, threading
        import recompyle

        def callee(i):
            return i

        def handler(event):
            for _ in range(20):
                pass

        recompyle.add_handler(before=handler, after=handler)
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        i = 0
        try:
            while True:
                callee(i)
                i += 1
        except KeyboardInterrupt:
            print("interrupted", i > 0)
            raise
        """,
        *RUN_JSON,
        str(report),
        timeout=60,
    )
    assert proc.stdout.strip() == "interrupted True", proc.stderr
    assert "KeyboardInterrupt" in proc.stderr
    assert proc.returncode in (1, -signal.SIGINT, 128 + signal.SIGINT), proc.stderr
    assert report.exists() and '"callee"' in report.read_text()


# -------------------------------------------------------------------------------------------
# 4. A module CPython compiles but not once rewritten; a module that fails plain.
# -------------------------------------------------------------------------------------------


def _import_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"RECOMPYLE_MODULES": "chain*", "PYTHONPATH": str(tmp_path), **extra}


def _chain(kind: str, n: int) -> str:
    if kind == "calls":
        # Each call result is called again: the rewritten text nests a selector per call.
        return "def f(x):\n    return f\n\nv = f(1)" + "(1)" * n + "\n"
    return "class O:\n    def m(self, x):\n        return self\n\nv = O().m(1)" + ".m(1)" * n + "\n"


def _longest_plain_chain(kind: str, where: Path) -> int:
    """The longest chain (up to 6000) this interpreter imports as written, found by
    bisection in a fresh process (the import's own frames count against the limit)."""
    probe = f"""
import sys
sys.path[:0] = [{os.path.dirname(__file__)!r}, {str(where)!r}]
sys.dont_write_bytecode = True
from test_robustness import _chain
low, high = 0, 6000
while low < high:
    mid = (low + high + 1) // 2
    with open({str(where)!r} + f"/probe_{{mid}}.py", "w") as f:
        f.write(_chain({kind!r}, mid))
    try:
        # An import statement, as the test's own (3.12+ charge C calls, not Python frames,
        # against the compiler's limit); exec makes it one level deeper, on the safe side.
        exec(f"import probe_{{mid}}", {{}})
        low = mid
    except RecursionError:
        high = mid - 1
print(low)
"""
    proc = run_python("-c", probe)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout)


@pytest.mark.parametrize("kind", ["calls", "methods"])
def test_a_module_too_deep_once_rewritten_runs_as_written(tmp_path, kind):
    """The longest chain CPython compiles as written: imported under recompyle, it runs,
    instrumented or (when the compiler gives up on the longer rewritten text) as written
    with a RecompyleWarning; before, the compiler's RecursionError failed the import."""
    probes = tmp_path / "probes"
    probes.mkdir()
    n = _longest_plain_chain(kind, probes)
    (tmp_path / f"chain_{kind}.py").write_text(_chain(kind, n))
    program = f"import chain_{kind}; print('imported')"
    proc = run_python("-c", program, env=_import_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "imported\n"
    assert proc.stderr == "" or "RecompyleWarning" in proc.stderr, proc.stderr
    strict = run_python("-c", program, env=_import_env(tmp_path, RECOMPYLE_STRICT="1"))
    if proc.stderr:
        assert strict.returncode == 1 and "runs uninstrumented" in strict.stderr


def test_a_module_that_fails_plain_fails_with_cpythons_own_traceback(tmp_path):
    """Too deep for CPython's compiler as written: the import fails exactly as without
    recompyle, with no frame of recompyle's in the traceback."""
    depth = 200_000
    (tmp_path / "chain_deep.py").write_text("x = " + "-" * depth + "1\n")
    program = "import chain_deep"
    plain = run_python("-c", program, env={"PYTHONPATH": str(tmp_path)})
    assert plain.returncode == 1
    ours = run_python("-c", program, env=_import_env(tmp_path))
    assert (ours.returncode, ours.stdout, ours.stderr) == (1, plain.stdout, plain.stderr)
    assert "recompyle" not in ours.stderr


def test_cli_script_that_fails_plain_has_no_recompyle_frames(tmp_path):
    (tmp_path / "deep.py").write_text("x = " + "-" * 200_000 + "1\n")
    ours = run_python("-m", "recompyle", "run", "-o", os.devnull, "deep.py", cwd=tmp_path)
    assert ours.returncode == 1
    assert "recompyle" not in ours.stderr.replace("recompyle run", ""), ours.stderr
    assert ours.stderr.strip().splitlines()[-1].split(":")[0] in (
        "RecursionError",
        "SyntaxError",
        "MemoryError",
    )


# -------------------------------------------------------------------------------------------
# 5. Paths that are not UTF-8.
# -------------------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that takes any byte")
def test_modules_and_scripts_under_a_non_utf8_directory(tmp_path):
    raw = os.fsencode(tmp_path) + b"/dir\xff"
    os.mkdir(raw)
    with open(raw + b"/naming.py", "w") as f:
        f.write("def f(x):\n    return abs(x)\n\nprint(f(-3))\n")
    with open(raw + b"/main.py", "w") as f:
        f.write("import naming\nprint(naming.f(-4))\n")
    report = tmp_path / "report.json"
    proc = run_python(
        *RUN_JSON,
        str(report),
        "-m",
        "naming",
        env={"PYTHONPATH": os.fsdecode(raw)},
        cwd=tmp_path,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "3\n", "")
    text = report.read_text()
    assert '"abs"' in text and "dir\\udcff" in text  # the path as json writes a surrogate
    proc = run_python(
        os.fsdecode(raw + b"/main.py"),
        env={
            "RECOMPYLE_MODULES": "naming",
            "RECOMPYLE_OUTPUT": str(tmp_path / "report.txt"),
            "PYTHONPATH": os.fsdecode(raw),
        },
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "3\n4\n", "")
    # The text report holds the path's own bytes, as os.fsencode gives them.
    assert b"dir\xff/naming.py" in (tmp_path / "report.txt").read_bytes()
    script = run_python(
        "-m", "recompyle", "run", "-o", str(tmp_path / "s.txt"), os.fsdecode(raw + b"/main.py")
    )
    assert (script.returncode, script.stdout, script.stderr) == (0, "3\n4\n", "")
    assert b"dir\xff/main.py" in (tmp_path / "s.txt").read_bytes()


# -------------------------------------------------------------------------------------------
# 10. A byte that is not UTF-8 inside a comment: compile() (so every import) accepts it.
# -------------------------------------------------------------------------------------------


def test_invalid_utf8_in_a_comment_is_instrumented_as_compile_accepts_it(tmp_path):
    (tmp_path / "latin_comment.py").write_bytes(
        b"# caf\xe9 \xff\ndef f(x):  # \xc3\n    return abs(x)  # \xed\xa0\x80\n\nprint(f(-2))\n"
    )
    report = tmp_path / "r.json"
    proc = run_python(
        "-c",
        "import latin_comment",
        env={
            "RECOMPYLE_MODULES": "latin_comment",
            "RECOMPYLE_STRICT": "1",
            "RECOMPYLE_OUTPUT": str(report),
            "PYTHONPATH": str(tmp_path),
        },
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "2\n", "")
    assert '"abs"' in report.read_text()


def test_invalid_utf8_outside_comments_is_cpythons_error(tmp_path):
    (tmp_path / "latin_string.py").write_bytes(b"# ok\nx = '\xe9'\n")
    program = "import latin_string"
    plain = run_python("-c", program, env={"PYTHONPATH": str(tmp_path)})
    ours = run_python(
        "-c",
        program,
        env={"RECOMPYLE_MODULES": "latin_string", "PYTHONPATH": str(tmp_path)},
    )
    assert plain.returncode == 1 and "SyntaxError" in plain.stderr
    assert (ours.returncode, ours.stderr) == (plain.returncode, plain.stderr)


def test_instrument_source_refuses_str_and_takes_bytes_like():
    """A ``str`` is a one-line ``TypeError`` naming the argument, not a warning and
    uninstrumented code; ``bytearray`` and ``memoryview`` are instrumented like bytes."""
    import recompyle

    source = "x = len([1, 2])\n"
    refused = r"instrument_source\(\) takes the source as bytes.* not str"
    with pytest.raises(TypeError, match=refused):
        recompyle.instrument_source(source, "t.py")
    for data in (source.encode(), bytearray(source.encode()), memoryview(source.encode())):
        code = recompyle.instrument_source(data, "t.py")
        assert "__recompyle__" in code.co_names, type(data)
