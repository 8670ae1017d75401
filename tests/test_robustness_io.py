"""Regression tests of issue 18 (robustness): forks, the report's temporary file, ``run`` of
a directory or zip archive, control characters in the text report, and configurations that
cannot do what they ask (each says so on stderr in one line)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from conftest import run_python
from recompyle.atomic_file import OutputPathError, resolve_output, write_atomically
from recompyle.profiler import SiteStats
from recompyle.report import render_text, write_text_file


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def calls_by_callee(report: Path) -> dict[str, int]:
    sites = json.loads(report.read_text(encoding="utf-8"))["sites"]
    counts: dict[str, int] = {}
    for site in sites:
        counts[site["callee"]] = counts.get(site["callee"], 0) + site["calls"]
    return counts


# --- 3. fork -----------------------------------------------------------------------------

FORKING = """\
import os, sys, time

def before(): pass
def after(): pass
def in_child(): pass

for _ in range(5):
    before()
pid = os.fork()
if pid == 0:
    for _ in range(7):
        in_child()
    time.sleep(0.3)       # outlive the parent's exit: the child must not replace its report
    sys.exit(0)
for _ in range(3):
    after()
print("parent done", flush=True)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
@pytest.mark.parametrize("fmt", ["json", "text"])
def test_forked_child_neither_overwrites_nor_double_counts(tmp_path, fmt):
    script = write(tmp_path / "forking.py", FORKING)
    report = tmp_path / "r.json"
    out = ["-o", str(report)] if fmt == "json" else []
    proc = run_python("-m", "recompyle", "run", *out, str(script), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    import time

    time.sleep(0.6)  # the orphaned child has exited by now
    if fmt == "text":
        assert proc.stderr.count("recompyle flat profile") == 1, proc.stderr
        return
    counts = calls_by_callee(report)
    # The parent's calls, once each: the child neither rewrote the file with its copy of
    # the parent's profile (before() x 10) nor dropped the parent's later calls. (It ended
    # after the top process merged the parts, so its own calls are not in the report.)
    assert counts["before"] == 5 and counts["after"] == 3, counts
    assert "in_child" not in counts, counts


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
def test_forked_child_profile_starts_empty(tmp_path):
    prog = write(
        tmp_path / "prog.py",
        """\
        import os
        import recompyle
        def f(): pass
        with recompyle.Profiler() as prof:
            for _ in range(4):
                f()
            pid = os.fork()
            if pid == 0:
                f()
                calls = sum(r.calls for r in prof.stats() if r.callee == "f")
                os.write(1, f"child {calls}\\n".encode())
                os._exit(0)
            os.waitpid(pid, 0)
            f()
        print("parent", sum(r.calls for r in prof.stats() if r.callee == "f"))
        """,
    )
    proc = run_python(
        "-c",
        "import recompyle, runpy; recompyle.install('prog'); runpy.run_module('prog')",
        cwd=tmp_path,
        env={"PYTHONPATH": str(prog.parent)},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["child 1", "parent 5"], proc.stdout


# --- 7. the report's temporary file ---------------------------------------------------------


def test_temporary_name_is_unpredictable_and_exclusive(tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    victim = tmp_path / "victim"
    victim.write_text("keep")
    # Links planted at the old predictable names, and at every name this process could
    # have used, must not be followed.
    for name in (f"report.json.{os.getpid()}.tmp", f".report.json.{os.getpid()}.tmp"):
        os.symlink(victim, tmp_path / name)
    opened: list[tuple[str, int]] = []
    real_open = os.open

    def spy(path, flags, *args, **kwargs):
        opened.append((str(path), flags))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    write_text_file(str(target), "{}\n")
    write_text_file(str(target), "[]\n")
    monkeypatch.undo()
    assert target.read_text() == "[]\n" and victim.read_text() == "keep"
    assert len(opened) == 2 and opened[0][0] != opened[1][0]
    for path, flags in opened:
        assert os.path.dirname(path) == str(tmp_path)
        assert flags & os.O_EXCL and flags & os.O_CREAT
    leftovers = sorted(p.name for p in tmp_path.iterdir() if not p.is_symlink())
    assert leftovers == ["report.json", "victim"]


def test_exclusive_create_retries_a_taken_name(tmp_path, monkeypatch):
    names = iter([b"\x00" * 6, b"\x00" * 6, b"\x01" * 6])
    monkeypatch.setattr(os, "urandom", lambda n: next(names))
    (tmp_path / f".out.{os.getpid()}.{'00' * 6}.tmp").write_text("someone else's")
    write_atomically(str(tmp_path / "out"), b"data")
    assert (tmp_path / "out").read_bytes() == b"data"
    assert (tmp_path / f".out.{os.getpid()}.{'00' * 6}.tmp").read_text() == "someone else's"


def test_output_symlink_loop_is_refused(tmp_path):
    loop = tmp_path / "loop.json"
    os.symlink(tmp_path / "other", loop)
    os.symlink(loop, tmp_path / "other")
    with pytest.raises(OutputPathError, match="symlink loop"):
        resolve_output(str(loop))
    script = write(tmp_path / "p.py", "print(len('x'))\n")
    proc = run_python("-m", "recompyle", "run", "-o", str(loop), str(script), cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == "1\n"
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "symlink loop" in lines[0], proc.stderr
    assert loop.is_symlink() and (tmp_path / "other").is_symlink()


def test_symlink_and_device_outputs_keep_their_behaviour(tmp_path):
    real = tmp_path / "real.json"
    link = tmp_path / "link.json"
    os.symlink(real, link)
    write_text_file(str(link), "x\n")
    assert link.is_symlink() and real.read_text() == "x\n"
    assert resolve_output(os.devnull) == (os.devnull, True)
    write_text_file(os.devnull, "nothing\n")
    assert not Path(os.devnull).is_file()


# --- 9. run DIR, run app.zip ----------------------------------------------------------------

MAIN = """\
import sys, os
def main():
    print(sys.argv, __name__, os.path.basename(sys.path[0]), __spec__.name)
    sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
main()
"""


def test_run_directory_with_main(tmp_path):
    write(tmp_path / "app" / "__main__.py", MAIN)
    write(tmp_path / "app" / "helper.py", "def h():\n    return abs(-2)\n")
    report = tmp_path / "r.json"
    plain = run_python("app", "3", cwd=tmp_path)
    inst = run_python("-m", "recompyle", "run", "-o", str(report), "app", "3", cwd=tmp_path)
    assert plain.returncode == 3
    assert (inst.returncode, inst.stdout, inst.stderr) == (
        plain.returncode,
        plain.stdout,
        plain.stderr,
    )
    counts = calls_by_callee(report)
    assert counts["main"] == 1 and counts["print"] == 1, counts


def test_run_zip_archive(tmp_path):
    archive = tmp_path / "app.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("__main__.py", MAIN)
    plain = run_python("app.zip", "4", cwd=tmp_path)
    inst = run_python("-m", "recompyle", "run", "-o", "r.json", "app.zip", "4", cwd=tmp_path)
    assert plain.returncode == 4
    assert (inst.returncode, inst.stdout) == (plain.returncode, plain.stdout)
    # The archive runs; what zipimport loads is not instrumented, and that is said once.
    extra = inst.stderr.replace(plain.stderr, "", 1).splitlines()
    assert len(extra) == 1 and "not instrumented" in extra[0], inst.stderr


def test_run_directory_without_main(tmp_path):
    (tmp_path / "empty").mkdir()
    plain = run_python("empty", cwd=tmp_path)
    inst = run_python("-m", "recompyle", "run", "empty", cwd=tmp_path)
    assert plain.returncode == inst.returncode == 1
    assert inst.stderr == plain.stderr  # python's message, and no "0 calls" profile


# --- 11. control characters in the text report ---------------------------------------------


def _row(file: str, callee: str) -> SiteStats:
    return SiteStats(file, "m", 3, 0, 3, 5, callee, "<module>", 1, 10, 10, 0)


def test_text_report_escapes_control_characters():
    hostile = "\x1b]0;pwned\x07\x1b[2J\x08"
    text = render_text(
        [_row(f"/tmp/{hostile}\tx\ny.py", f"d['{hostile}']"), _row("/tmp/ok.py", "f")]
    )
    body = text.splitlines()
    assert len(body) == 4, text  # title, header, one row per site
    assert not any(c in text for c in "\x1b\x07\x08\t")
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x08\\tx\\ny.py:3:1" in body[2]
    assert "d['\\x1b]0;pwned\\x07\\x1b[2J\\x08']" in body[2]
    assert "/tmp/ok.py:3:1" in body[3] or "ok.py:3:1" in body[3]


def test_text_report_keeps_printable_unicode():
    row = render_text([_row("/tmp/größe.py", "größe")]).splitlines()[2]
    assert "größe.py:3:1" in row and row.endswith("größe")


# --- 12. configurations that cannot do what they ask say so --------------------------------


def test_report_asked_but_nothing_selected(tmp_path):
    write(tmp_path / "p.py", "print(len('ab'))\n")
    for modules in ("", None):
        env = {"RECOMPYLE_OUTPUT": str(tmp_path / "r.json")}
        if modules is not None:
            env["RECOMPYLE_MODULES"] = modules
        proc = run_python("p.py", cwd=tmp_path, env=env)
        assert proc.returncode == 0 and proc.stdout == "2\n"
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and "RECOMPYLE_MODULES is empty" in lines[0], proc.stderr
        assert not (tmp_path / "r.json").exists()


def test_cli_reads_the_output_variable_without_complaint(tmp_path):
    write(tmp_path / "p.py", "print(len('ab'))\n")
    report = tmp_path / "r.json"
    proc = run_python(
        "-m", "recompyle", "run", "p.py", cwd=tmp_path, env={"RECOMPYLE_OUTPUT": str(report)}
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "2\n", "")
    assert calls_by_callee(report)["len"] == 1


@pytest.mark.parametrize(
    "target",
    [["missing.py"], ["-m", "no_such_module_here"], ["bad_syntax.py"]],
    ids=["missing-script", "missing-module", "syntax-error"],
)
@pytest.mark.parametrize("output", [None, "r.json"])
def test_a_run_that_never_started_prints_no_profile(tmp_path, target, output):
    write(tmp_path / "bad_syntax.py", "print(1)\ndef (:\n")
    plain = run_python(*target, cwd=tmp_path)
    out = ["-o", output] if output else []
    inst = run_python("-m", "recompyle", "run", *out, *target, cwd=tmp_path)
    assert plain.returncode != 0
    assert (inst.returncode, inst.stdout) == (plain.returncode, plain.stdout)
    assert "recompyle flat profile" not in inst.stderr
    assert not (tmp_path / "r.json").exists()
    if target[0] != "missing.py":  # python names the script relative to its cwd
        assert inst.stderr == plain.stderr


def test_run_that_started_and_failed_still_reports(tmp_path):
    write(tmp_path / "fails.py", "print(len('x'))\nraise SystemExit(5)\n")
    proc = run_python("-m", "recompyle", "run", "fails.py", cwd=tmp_path)
    assert proc.returncode == 5 and "recompyle flat profile: 3 calls" in proc.stderr


# --- 8. byref and a source file changed since import ----------------------------------------

BYREF_CALLER = """\
from recompyle import byref

@byref("x")
def inc(x):
    x += 1

def caller():
    a = b = 0
    inc(a)
    return a, b
"""


@pytest.mark.parametrize("edit", ["inc(b)", "inc(a)"])
def test_byref_checks_the_source_against_the_running_code(tmp_path, monkeypatch, edit):
    import importlib
    import linecache

    from recompyle import ByRefError

    name = f"byref_stale_{edit[4]}"
    path = write(tmp_path / f"{name}.py", BYREF_CALLER)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    try:
        # The file changes after the import (same length: the call stays where it was).
        path.write_text(BYREF_CALLER.replace("inc(a)", edit), encoding="utf-8")
        linecache.checkcache(str(path))
        if edit == "inc(a)":
            assert module.caller() == (1, 0)
        else:
            # Today's text would write b; the running code passes a: refused, not guessed.
            with pytest.raises(ByRefError, match="does not match the running code"):
                module.caller()
    finally:
        sys.modules.pop(name, None)
