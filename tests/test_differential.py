"""Differential tests: every program in tests/programs/ must behave byte-for-byte the same
instrumented as it does plain (stdout, stderr, exit status, tracebacks with their carets).

Each program is run four times, all with the same interpreter (``sys.executable``), the same
working directory and the same spelling of the program's path, so the paths printed in
tracebacks are identical. The working directory is a per-session copy of ``tests/programs``
without any ``__pycache__``, so stale bytecode (which the plain runs would load and the
instrumented ones never do) cannot make the runs differ:

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

``globals`` route (tracked module globals, nothing listening)
    as ``env``, with ``RECOMPYLE_TRACK_GLOBALS=PROG,dthelpers.*`` instead: the program and
    the helpers run in tracked namespaces, with the transform's write and class-body reports.

``deps`` route (a dependency graph recorded over the whole run)
    as ``run``, plus ``--deps GRAPH.json``: every call and every global read is an event a
    Python handler records; the graph must be written.

Markers read from the first lines of a program (comments):

``# requires: 3.11``   skip on older Pythons.
``# exit: N``          the exit status the program is written to have (default 0); checked on the
                       plain run so a program that stops doing what it was written for is noticed.
``# args: a "b c"``    command-line arguments (shlex syntax).
``# quiet``            the program prints nothing and makes no instrumented call (it does not
                       compile); otherwise it must print something and its own file must have
                       call sites with calls in the report.

Files in tests/programs whose names start with ``_`` are not programs; ``dthelpers`` is a
helper package some programs import (instrumented too).

Known recompyle bugs are listed in ``XFAIL`` below, per (program, route) and range of Python
versions, each with its diagnosis; they are strict, so a fix makes the suite fail until the
entry is removed. ``test_env_route_really_instruments`` checks that the env route does
instrument (otherwise its comparisons would pass vacuously).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import difflib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROGRAMS_DIR = Path(__file__).resolve().parent / "programs"
HELPER_PATTERN = "dthelpers.*"
ROUTES = ("run", "env", "globals", "deps")
TIMEOUT = 120
MARKER_LINES = 12
REPORT_SITE_KEYS = ("file", "line", "col", "callee", "calls", "total_ns")


@dataclasses.dataclass(frozen=True)
class Known:
    """A genuine recompyle bug a case shows, on the Python versions in [since, before)."""

    reason: str
    since: tuple[int, int] = (3, 0)
    before: tuple[int, int] = (4, 0)

    def applies(self) -> bool:
        return self.since <= sys.version_info[:2] < self.before


# (program stem, route) -> diagnosis. Strict xfails: a fix turns them into failures until the
# entry is removed.
XFAIL: dict[tuple[str, str], Known] = {}


def _known(name: str, routes: str, reason: str, **versions: tuple[int, int]) -> None:
    for route in routes.split(","):
        XFAIL[(name, route)] = Known(reason, **versions)


_known(
    "audit_hooks",
    "run,env",
    "Importing an instrumented module looks different to PEP 578 audit hooks: "
    "RecompyleLoader opens its own cache file (__pycache__/*.recompyle-<version>-<config>"
    ".pyc, recompyle/cache.py) where the plain SourceFileLoader opens the plain .pyc (both "
    "raise an 'open' event even when the file is absent), and the 'compile' event carries "
    "the rewritten source "
    '(`__recompyle_m__(ID, warnings,"warn")(...)`) instead of the file\'s text, because '
    "loader.instrument_source compiles the transformed string.",
)
_known(
    "excepthook_last_value",
    "run",
    "Same cause as module_level_frames-run: the script's module frame runs under "
    "recompyle's CLI frames, so the first traceback frame's f_back is cli._run_script, not "
    "None (sys.last_* and the hook call are as the interpreter does them).",
)
_known(
    "module_level_frames",
    "run",
    "`recompyle run` execs the script inside its own frames (runpy x2, recompyle/__main__.py, "
    "cli.main, cli.run, cli._run_script), so the module frame's f_back is _run_script, not "
    "None: inspect.stack()/traceback.print_stack()/logging stack_info show those frames, and "
    "warnings.warn with a stacklevel past the module is attributed to cli.py / __main__.py "
    "instead of 'sys:1'.",
)
_known(
    "recursion_limit",
    "run",
    "RecursionError comes earlier under `recompyle run`: the script starts ~8 levels deeper "
    "(runpy x2, recompyle/__main__.py, cli.main/run/_run_script, exec), so plain recursion "
    "stops at 991 instead of 999; and with the profiler on every call goes through the "
    "native CallProxy, whose PyObject_Vectorcall of a builtin (`sorted`) takes CPython's "
    "generic cfunction path that charges one more recursion level per call (recursion "
    "through sorted(key=...) 330 -> 247 on 3.11).",
)
_known(
    "recursion_uncaught",
    "run",
    "Same as recursion_limit-run: under `recompyle run` the RecursionError is raised ~8 "
    "levels earlier (recompyle's CLI frames under the module), so the uncaught traceback "
    "has fewer repeated ping/pong entries.",
)
_known(
    "refcounts_and_methods",
    "run",
    "With the profiler on, calls go through the native CallProxy, which forwards with "
    "PyObject_Vectorcall from C: the callee's frame takes new references to the arguments "
    "while the caller's evaluation stack keeps its own until the call returns (3.11+ "
    "interpreters hand them over), so inside the callee each argument has one more "
    "reference (sys.getrefcount 3 -> 4, 2 -> 3) and an argument the callee `del`s is not "
    "freed.",
    since=(3, 11),
)
_known(
    "tracing_setprofile",
    "run",
    "With the profiler on (run route) a builtin callee is called by the native CallProxy, "
    "not by the interpreter, so sys.setprofile gets no c_call/c_return events for it "
    "(len, max, sorted disappear from the event list).",
)
_known(
    "tracing_setprofile",
    "env",
    "From 3.11 the selectors `__recompyle__`/`__recompyle_m__` are builtin functions (the "
    "interpreter specialises their calls; a vectorcall object of recompyle's own type, "
    "used before 3.11, costs ~8 ns more per call), so sys.setprofile sees a c_call/c_return "
    "pair for them before each instrumented call.",
    since=(3, 11),
)


_known(
    "refcounts_and_methods",
    "deps",
    "The dependency tracer is a Python handler: the CallEvent it is given for each call holds "
    "the callee and a tuple of the arguments until the call returns, so inside the callee "
    "sys.getrefcount sees two more references (4 -> 6, 2 -> 3 for a bound method's self), "
    "and an argument the callee `del`s is not freed (the same as any before/after handler).",
)
for _route in ("globals", "deps"):
    _known(
        "many_constants_lines",
        _route,
        "3.9's peephole optimizer gives up on a whole code object when its line table holds "
        "a 255 byte (a line whose bytecode spans 255+ bytes): each of the class body's lines "
        "calls d() 20 times, and with tracking each `d` is also wrapped in "
        "__recompyle_gr__(ID, d), which takes a line past 255 bytes, so the method's "
        "defaults (None, 'line', False) are not folded into one constant and their own "
        "lines (40, 41) get line events (compile.c/peephole.c `memchr(lnotab, 255, ...)`).",
        since=(3, 9),
        before=(3, 10),
    )
# The deps route is the run route with a dependency graph; the globals route the env route
# with tracked namespaces: each inherits its route's known differences.
for (_name, _route), _known_bug in list(XFAIL.items()):
    _twin = {"run": "deps", "env": "globals"}.get(_route)
    if _twin is not None:
        XFAIL.setdefault((_name, _twin), _known_bug)


@dataclasses.dataclass(frozen=True)
class Program:
    path: Path
    requires: tuple[int, int] | None
    exit_code: int
    args: tuple[str, ...]
    quiet: bool

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def helper_pattern(self) -> str:
        """``dthelpers.*`` for a program that imports the helper package, else nothing: a
        pattern matching no imported module is named on stderr at exit (issue 21)."""
        uses = b"dthelpers" in self.path.read_bytes()
        return HELPER_PATTERN if uses else ""


def _read_markers(path: Path) -> Program:
    # Markers are ASCII comments; decode as latin-1 so any source encoding (and a BOM) is fine.
    head = path.read_bytes().decode("latin-1").splitlines()[:MARKER_LINES]
    requires = None
    exit_code = 0
    args: tuple[str, ...] = ()
    quiet = False
    for line in head:
        if re.search(r"#\s*quiet\b", line):
            quiet = True
        m = re.search(r"#\s*requires:\s*(\d+)\.(\d+)", line)
        if m:
            requires = (int(m.group(1)), int(m.group(2)))
        m = re.search(r"#\s*exit:\s*(-?\d+)", line)
        if m:
            exit_code = int(m.group(1))
        m = re.search(r"#\s*args:\s*(.*?)\s*$", line)
        if m:
            args = tuple(shlex.split(m.group(1)))
    return Program(path, requires, exit_code, args, quiet)


def discover() -> list[Program]:
    return [
        _read_markers(p) for p in sorted(PROGRAMS_DIR.glob("*.py")) if not p.name.startswith("_")
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


def _commands(
    case: Case, report: Path
) -> tuple[list[str], list[str], dict[str, str], dict[str, str]]:
    prog = case.program
    exe = sys.executable
    env = _base_env()
    if case.route in ("run", "deps"):
        plain = [exe, prog.path.name, *prog.args]
        deps = ["--deps", str(report.with_suffix(".deps.json"))] if case.route == "deps" else []
        instrumented = [
            exe,
            "-m",
            "recompyle",
            "run",
            *(["--modules", prog.helper_pattern] if prog.helper_pattern else []),
            *deps,
            "-o",
            str(report),
            "--format",
            "json",
            prog.path.name,
            *prog.args,
        ]
        return plain, instrumented, env, env
    plain = [exe, "-m", prog.name, *prog.args]
    variable = "RECOMPYLE_TRACK_GLOBALS" if case.route == "globals" else "RECOMPYLE_MODULES"
    instr_env = dict(env, **{variable: f"{prog.name},{HELPER_PATTERN}"})
    return plain, list(plain), env, instr_env


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=TIMEOUT,
    )


def _execute(case: Case, workdir: Path, report_dir: Path) -> Outcome:
    report = report_dir / f"{case.id}.json"
    plain_cmd, instr_cmd, plain_env, instr_env = _commands(case, report)
    plain = _run(plain_cmd, plain_env, workdir)
    instrumented = _run(instr_cmd, instr_env, workdir)
    return Outcome(plain, instrumented, report if case.route in ("run", "deps") else None)


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
            known = XFAIL.get((prog.name, route))
            if known is not None and known.applies():
                marks.append(pytest.mark.xfail(reason=known.reason, strict=True))
            params.append(pytest.param(case, id=case.id, marks=marks))
    return params


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    """A fresh copy of tests/programs (no __pycache__) where the programs run."""
    target = tmp_path_factory.mktemp("differential") / "programs"
    shutil.copytree(PROGRAMS_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture(scope="session")
def outcomes(request, tmp_path_factory, workdir: Path) -> dict[str, Outcome]:
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
        futures = {
            cid: pool.submit(_execute, case, workdir, report_dir) for cid, case in wanted.items()
        }
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
def test_differential(case: Case, outcomes: dict[str, Outcome], workdir: Path) -> None:
    outcome = outcomes[case.id]
    plain, instrumented = outcome.plain, outcome.instrumented

    # The harness' own sanity: the plain program does what it was written to do.
    assert plain.returncode == case.program.exit_code, (
        f"plain run of {case.program.name} did not exit with the status its '# exit:' marker "
        f"says ({case.program.exit_code}):\n{_describe(plain)}"
    )
    if case.program.quiet:
        assert not plain.stdout, f"quiet {case.program.name} printed:\n" + _describe(plain)
    else:
        assert plain.stdout, f"plain run of {case.program.name} printed nothing:\n" + _describe(
            plain
        )

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
        _check_report(case, outcome.report, workdir)
    if case.route == "deps" and outcome.report is not None:
        graph = json.loads(outcome.report.with_suffix(".deps.json").read_text(encoding="utf-8"))
        assert graph["format"] == "recompyle-deps" and isinstance(graph["edges"], list)


def _check_report(case: Case, report: Path, workdir: Path) -> None:
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
    if case.program.quiet:
        return
    # Every program calls at least print(), so its own file has sites that were called.
    program_file = str(workdir / case.program.path.name)
    own = [s for s in sites if s["file"] == program_file and s["calls"] > 0]
    assert own, (
        f"no call site of {program_file} recorded a call; files in report: "
        f"{sorted({s['file'] for s in sites})}"
    )


def test_env_route_really_instruments(tmp_path: Path, workdir: Path) -> None:
    """The env-route comparisons mean something only if the start-up hook instruments a program
    run with ``-m`` (and the helper package): ask it for a profile report too, and look."""
    prog = next(p for p in PROGRAMS if p.name == "module_getattr")
    report = tmp_path / "env-report.json"
    cmd = [sys.executable, "-m", prog.name]
    plain = _run(cmd, _base_env(), workdir)
    env = dict(
        _base_env(),
        RECOMPYLE_MODULES=f"{prog.name},{HELPER_PATTERN}",
        RECOMPYLE_FORMAT="json",
        RECOMPYLE_OUTPUT=str(report),
    )
    instrumented = _run(cmd, env, workdir)
    assert (instrumented.returncode, instrumented.stdout, instrumented.stderr) == (
        plain.returncode,
        plain.stdout,
        plain.stderr,
    ), _describe(instrumented)
    _check_report(Case(prog, "env"), report, workdir)
    sites = json.loads(report.read_text(encoding="utf-8"))["sites"]
    helper_dir = str(workdir / "dthelpers")
    assert any(s["file"].startswith(helper_dir) and s["calls"] > 0 for s in sites), sites


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
    "src_cookie_line2.py": lambda b: b"\n# vim: set fileencoding=iso-8859-15 :\n" in b
    and b"\xa4" in b,
    "src_crlf.py": lambda b: b.count(b"\r\n") == b.count(b"\n") > 20,
    "src_mixed_newlines.py": lambda b: b"\r\n" in b
    and re.search(rb"\r[^\n]", b) is not None
    and re.search(rb"[^\r]\n", b) is not None,
    "src_bom.py": lambda b: b.startswith(b"\xef\xbb\xbf"),
    "src_tabs_formfeed.py": lambda b: b"\t" in b and b"\x0c" in b and b"\\\n" in b,
    "src_no_newline.py": lambda b: not b.endswith(b"\n"),
    "src_no_newline_error.py": lambda b: not b.endswith(b"\n"),
    "src_tab_error.py": lambda b: b"\n        if x:\n\t    return" in b,
    "src_unicode_idents.py": lambda b: "größe".encode() in b and "\ufb01".encode() in b,
}


@pytest.mark.parametrize("name", sorted(SPECIAL_BYTES))
def test_special_source_bytes_intact(name: str) -> None:
    """Editors and git must not have normalised the byte-level test material (regenerate with
    tests/programs/_make_special_sources.py)."""
    assert SPECIAL_BYTES[name]((PROGRAMS_DIR / name).read_bytes())
