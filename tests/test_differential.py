"""Differential tests: every program in tests/programs/ must behave byte-for-byte the same
instrumented as it does plain (stdout, stderr, exit status, tracebacks with their carets).

Each program is run four times, all with the same interpreter (``sys.executable``), the same
working directory (``tests/programs``) and the same spelling of the program's path, so the
paths printed in tracebacks are identical:

``run`` route
    plain:        ``python PROG.py ARGS``
    instrumented: ``python -m recompyle run --modules dthelpers.* -o REPORT.json --format json
    PROG.py ARGS``; the JSON report must exist and describe the call sites.

``env`` route (the ``recompyle_startup.pth`` start-up hook)
    plain:        ``python -m PROG ARGS``
    instrumented: ``RECOMPYLE_MODULES=PROG,dthelpers.* python -m PROG ARGS``.
    ``python -m`` is the cleanest wrapper: both runs go through the very same runpy frames
    (``<frozen runpy>``), so even tracebacks are comparable verbatim, and it imports the
    program through ``sys.meta_path`` where the hook's finder swaps in its loader. No profile
    report is asked for here, so this route also covers the trampoline without the profiler.

Markers read from the first lines of a program (comments):

``# requires: 3.11``   skip on older Pythons.
``# exit: N``          the exit status the program is written to have (default 0); checked on the
                       plain run so a program that stops doing what it was written for is noticed.
``# args: a "b c"``    command-line arguments (shlex syntax).

Files in tests/programs whose names start with ``_`` are not programs; ``dthelpers`` is a
helper package some programs import (instrumented too).

Known recompyle bugs are listed in ``XFAIL`` below, per (program, route), each with its
diagnosis; they are strict, so a fix makes the suite fail until the entry is removed.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import difflib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

PROGRAMS_DIR = Path(__file__).resolve().parent / "programs"
HELPER_PATTERN = "dthelpers.*"
ROUTES = ("run", "env")
TIMEOUT = 120
MARKER_LINES = 12
REPORT_SITE_KEYS = ("file", "line", "col", "callee", "calls", "total_ns")

# (program stem, route) -> precise diagnosis of a genuine recompyle bug.
XFAIL: dict[tuple[str, str], str] = {}


@dataclasses.dataclass(frozen=True)
class Program:
    path: Path
    requires: tuple[int, int] | None
    exit_code: int
    args: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.path.stem


def _read_markers(path: Path) -> Program:
    # Markers are ASCII comments; decode as latin-1 so any source encoding (and a BOM) is fine.
    head = path.read_bytes().decode("latin-1").splitlines()[:MARKER_LINES]
    requires = None
    exit_code = 0
    args: tuple[str, ...] = ()
    for line in head:
        m = re.search(r"#\s*requires:\s*(\d+)\.(\d+)", line)
        if m:
            requires = (int(m.group(1)), int(m.group(2)))
        m = re.search(r"#\s*exit:\s*(-?\d+)", line)
        if m:
            exit_code = int(m.group(1))
        m = re.search(r"#\s*args:\s*(.*?)\s*$", line)
        if m:
            args = tuple(shlex.split(m.group(1)))
    return Program(path, requires, exit_code, args)


def discover() -> list[Program]:
    return [
        _read_markers(p)
        for p in sorted(PROGRAMS_DIR.glob("*.py"))
        if not p.name.startswith("_")
    ]


PROGRAMS = discover()


@dataclasses.dataclass(frozen=True)
class Case:
    program: Program
    route: str

    @property
    def id(self) -> str:
        return f"{self.program.name}-{self.route}"


@dataclasses.dataclass
class Outcome:
    plain: subprocess.CompletedProcess
    instrumented: subprocess.CompletedProcess
    report: Path | None


def _base_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RECOMPYLE_") and not k.startswith("PYTHON")
    }
    # Identical and deterministic for both runs; no __pycache__ next to the programs.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def _commands(case: Case, report: Path) -> tuple[list[str], list[str], dict[str, str], dict[str, str]]:
    prog = case.program
    exe = sys.executable
    env = _base_env()
    if case.route == "run":
        plain = [exe, prog.path.name, *prog.args]
        instrumented = [
            exe, "-m", "recompyle", "run",
            "--modules", HELPER_PATTERN,
            "-o", str(report), "--format", "json",
            prog.path.name, *prog.args,
        ]
        return plain, instrumented, env, env
    plain = [exe, "-m", prog.name, *prog.args]
    instr_env = dict(env, RECOMPYLE_MODULES=f"{prog.name},{HELPER_PATTERN}")
    return plain, list(plain), env, instr_env


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd,
        cwd=PROGRAMS_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=TIMEOUT,
    )


def _execute(case: Case, report_dir: Path) -> Outcome:
    report = report_dir / f"{case.id}.json"
    plain_cmd, instr_cmd, plain_env, instr_env = _commands(case, report)
    plain = _run(plain_cmd, plain_env)
    instrumented = _run(instr_cmd, instr_env)
    return Outcome(plain, instrumented, report if case.route == "run" else None)


def _case_params() -> list:
    params = []
    for prog in PROGRAMS:
        for route in ROUTES:
            case = Case(prog, route)
            marks = []
            if prog.requires is not None and sys.version_info[:2] < prog.requires:
                marks.append(
                    pytest.mark.skip(reason=f"needs Python {'.'.join(map(str, prog.requires))}+")
                )
            reason = XFAIL.get((prog.name, route))
            if reason is not None:
                marks.append(pytest.mark.xfail(reason=reason, strict=True))
            params.append(pytest.param(case, id=case.id, marks=marks))
    return params


@pytest.fixture(scope="session")
def outcomes(request, tmp_path_factory) -> dict[str, Outcome]:
    """Runs every selected case up front, in parallel threads (the work is in subprocesses)."""
    wanted: dict[str, Case] = {}
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "case" not in callspec.params:
            continue
        if item.get_closest_marker("skip") is not None:
            continue
        case = callspec.params["case"]
        wanted[case.id] = case
    report_dir = tmp_path_factory.mktemp("reports")
    workers = max(4, min(32, (os.cpu_count() or 2) * 2))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {cid: pool.submit(_execute, case, report_dir) for cid, case in wanted.items()}
        return {cid: f.result() for cid, f in futures.items()}


def _text(data: bytes) -> list[str]:
    return data.decode("utf-8", "backslashreplace").splitlines(keepends=True)


def _diff(name: str, plain: bytes, instrumented: bytes) -> str:
    lines = difflib.unified_diff(
        _text(plain), _text(instrumented), f"{name} (plain)", f"{name} (instrumented)"
    )
    return "".join(lines)


def _describe(proc: subprocess.CompletedProcess) -> str:
    return (
        f"exit {proc.returncode}\n--- stdout ---\n"
        + proc.stdout.decode("utf-8", "backslashreplace")
        + "--- stderr ---\n"
        + proc.stderr.decode("utf-8", "backslashreplace")
    )


@pytest.mark.parametrize("case", _case_params())
def test_differential(case: Case, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[case.id]
    plain, instrumented = outcome.plain, outcome.instrumented

    # The harness' own sanity: the plain program does what it was written to do.
    assert plain.returncode == case.program.exit_code, (
        f"plain run of {case.program.name} did not exit with the status its '# exit:' marker "
        f"says ({case.program.exit_code}):\n{_describe(plain)}"
    )
    assert plain.stdout, f"plain run of {case.program.name} printed nothing:\n{_describe(plain)}"

    problems = []
    if instrumented.stdout != plain.stdout:
        problems.append("stdout differs:\n" + _diff("stdout", plain.stdout, instrumented.stdout))
    if instrumented.stderr != plain.stderr:
        problems.append("stderr differs:\n" + _diff("stderr", plain.stderr, instrumented.stderr))
    if instrumented.returncode != plain.returncode:
        problems.append(
            f"exit status differs: plain {plain.returncode}, instrumented {instrumented.returncode}"
        )
    assert not problems, "\n".join(problems)

    if outcome.report is not None:
        _check_report(case, outcome.report)


def _check_report(case: Case, report: Path) -> None:
    assert report.is_file(), f"no JSON report written at {report}"
    doc = json.loads(report.read_text(encoding="utf-8"))
    sites = doc.get("sites")
    assert isinstance(sites, list), f"report has no 'sites' list: {sorted(doc)}"
    for site in sites:
        missing = [k for k in REPORT_SITE_KEYS if k not in site]
        assert not missing, f"site entry lacks {missing}: {site}"
        assert isinstance(site["file"], str)
        assert isinstance(site["callee"], str)
        for key in ("line", "col", "calls", "total_ns"):
            assert isinstance(site[key], int) and site[key] >= 0, f"bad {key} in {site}"
        assert site["line"] >= 1, site
    # Every program calls at least print(), so its own file has sites that were called.
    program_file = str(case.program.path)
    own = [s for s in sites if s["file"] == program_file and s["calls"] > 0]
    assert own, (
        f"no call site of {program_file} recorded a call; files in report: "
        f"{sorted({s['file'] for s in sites})}"
    )


# --- checks of the test material itself ------------------------------------------------------


def test_enough_programs() -> None:
    assert len(PROGRAMS) >= 40, [p.name for p in PROGRAMS]


def test_program_names_do_not_shadow_modules() -> None:
    """Programs run with their directory first on sys.path: a name like ``logging.py`` would
    shadow the standard library and change both runs alike, hiding what we test."""
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    clashes = [p.name for p in PROGRAMS if p.name in stdlib or p.name in sys.builtin_module_names]
    assert not clashes
    assert all(p.name.isidentifier() for p in PROGRAMS), "program names must work with -m"


SPECIAL_BYTES = {
    "src_latin1.py": lambda b: b.startswith(b"# -*- coding: latin-1 -*-\n") and b"\xe9" in b,
    "src_cookie_line2.py": lambda b: b.split(b"\n")[1].startswith(b"# vim: set fileencoding=iso-8859-15")
    and b"\xa4" in b,
    "src_crlf.py": lambda b: b.count(b"\r\n") == b.count(b"\n") > 20,
    "src_mixed_newlines.py": lambda b: b"\r\n" in b
    and re.search(rb"\r[^\n]", b) is not None
    and re.search(rb"[^\r]\n", b) is not None,
    "src_bom.py": lambda b: b.startswith(b"\xef\xbb\xbf"),
    "src_tabs_formfeed.py": lambda b: b"\t" in b and b"\x0c" in b and b"\\\n" in b,
    "src_no_newline.py": lambda b: not b.endswith(b"\n"),
    "src_no_newline_error.py": lambda b: not b.endswith(b"\n"),
    "src_unicode_idents.py": lambda b: "größe".encode() in b and "\ufb01".encode() in b,
}


@pytest.mark.parametrize("name", sorted(SPECIAL_BYTES))
def test_special_source_bytes_intact(name: str) -> None:
    """Editors and git must not have normalised the byte-level test material (regenerate with
    tests/programs/_make_special_sources.py)."""
    assert SPECIAL_BYTES[name]((PROGRAMS_DIR / name).read_bytes())
