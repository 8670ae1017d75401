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
    report is asked for here, so this route also covers the selectors without the profiler.
    A third run, the *probe* (``PROBE``: the same variables plus a JSON report, the program
    run by runpy as ``-m`` does), must report calls at the program's own sites: the
    comparison is not vacuous.

``globals`` route (tracked module globals, nothing listening)
    as ``env``, with ``RECOMPYLE_TRACK_GLOBALS=__main__,PROG,dthelpers.*`` instead: the
    program (compiled as ``PROG``, run in the interpreter's ``__main__``) and the helpers run
    in tracked namespaces, with the transform's write and class-body reports. Its probe also
    counts global events with a handler: the program's own file must have some.

``deps`` route (a dependency graph recorded over the whole run)
    as ``run``, plus ``--deps GRAPH.json``: every call and every global read is an event a
    Python handler records; the graph must hold the program's own call and read edges.

Markers read from the first lines of a program (comments):

``# requires: 3.11``   skip on older Pythons.
``# exit: N``          the exit status the program is written to have (default 0); checked on the
                       plain run so a program that stops doing what it was written for is noticed.
``# args: a "b c"``    command-line arguments (shlex syntax).
``# quiet``            the program prints nothing and makes no instrumented call (it does not
                       compile, so ``run`` writes no report); otherwise it must print something
                       and its own file must have call sites with calls in the report.

Files in tests/programs whose names start with ``_`` are not programs; ``dthelpers`` is a
helper package some programs import (instrumented too).

Known recompyle bugs are listed in ``XFAIL`` below, per (program, route) and range of Python
versions, each with its diagnosis; they are strict, so a fix makes the suite fail until the
entry is removed.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import difflib
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
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
    "refcounts_and_methods",
    "deps",
    "The dependency tracer is a Python handler, so every call goes through the native "
    "CallProxy and its handler path. The arguments themselves are borrowed there (the "
    "CallEvent keeps a pointer to the call's argument vector and builds no tuple unless a "
    "handler asks: events.rs `Borrowed`), so the arguments' extra reference is the run "
    "route's, on 3.11+ (the proxy forwards with PyObject_Vectorcall from C: function "
    "refcount 3 -> 4, and an argument the callee `del`s is not freed). What the deps route "
    "adds is for method sites: the CallEvent owns a reference to the object the method is "
    "called on (`bound_self`, events.rs) until the call returns, so inside the method "
    "sys.getrefcount(self) sees one more (3.11: 3 -> 5 with the proxy's, a temporary's "
    "2 -> 4; 3.9: 4 -> 5, a temporary's 3 -> 4).",
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
class Normalise:
    """A documented difference of a case: ``apply`` rewrites the stdout of both runs so that
    exactly this difference goes, and the rest is still compared byte for byte."""

    reason: str
    apply: Callable[[bytes], bytes]


# (program stem, route) -> the normalisation of its documented difference.
NORMALISE: dict[tuple[str, str], Normalise] = {}

_CACHE_OPEN = re.compile(
    rb"\('open', \('(HERE/[^']*/__pycache__/[^'/]+?)\.cpython-\d+(?:\.recompyle-[^']*)?\.pyc', "
)
_IMPORT_COMPILE = re.compile(rb"^\('compile', \(.*, ('HERE/[^']*\.py')\)\)$")


def _audit_events(out: bytes) -> bytes:
    lines = []
    for line in out.splitlines():
        line = _CACHE_OPEN.sub(rb"('open', ('\1.<bytecode cache>.pyc', ", line)
        lines.append(_IMPORT_COMPILE.sub(rb"('compile', (<source of \1>, \1))", line))
    # An import opens its cache file and its source in either order: sort each run of opens.
    runs: list[list[bytes]] = []
    for line in lines:
        if runs and line.startswith(b"('open',") and runs[-1][-1].startswith(b"('open',"):
            runs[-1].append(line)
        else:
            runs.append([line])
    return b"\n".join(b"\n".join(sorted(r)) if len(r) > 1 else r[0] for r in runs) + b"\n"


for _route in ROUTES:
    NORMALISE[("audit_hooks", _route)] = Normalise(
        "Importing an instrumented module looks different to PEP 578 audit hooks: "
        "RecompyleLoader opens its own cache file (__pycache__/*.recompyle-<version>-<config>"
        ".pyc, recompyle/cache.py), after the source, where the plain SourceFileLoader opens "
        "the plain .pyc, before it (both raise an 'open' event even when the file is "
        "absent), and the import's 'compile' event carries the rewritten source "
        "(`(__recompyle_m__(ID, warnings) if __recompyle_on__ else warnings).warn(...)`) "
        "instead of the file's text, because loader.instrument_source compiles the "
        "transformed string. Normalised: the cache file's name, the order of an import's "
        "opens, the text of an import's compile.",
        _audit_events,
    )

_MODULE_SELECTOR_EVENT = re.compile(rb"^c_(call|return):__recompyle(_m)?__ in <module>$")
_C_EVENT = re.compile(rb"^c_(call|return):")


def _without(pattern: re.Pattern[bytes]) -> Callable[[bytes], bytes]:
    return lambda out: b"".join(
        line for line in out.splitlines(keepends=True) if not pattern.match(line)
    )


for _route in ("env", "globals") if sys.version_info >= (3, 11) else ():
    NORMALISE[("tracing_setprofile", _route)] = Normalise(
        "Nothing listens on these routes, so call sites in functions skip their selectors "
        "(`__recompyle_on__` is False) and sys.setprofile sees the plain program's events "
        "there; a site in straight-line module code (run once) calls its selector "
        "`__recompyle__`/`__recompyle_m__` always, and from 3.11 the selectors are builtin "
        "functions, so sys.setprofile sees a c_call/c_return pair for them in <module>. "
        "Normalised: those pairs, in <module> only, are dropped.",
        _without(_MODULE_SELECTOR_EVENT),
    )
for _route in ("run", "deps"):
    NORMALISE[("tracing_setprofile", _route)] = Normalise(
        "With the profiler on (run route) a builtin callee is called by the native CallProxy, "
        "not by the interpreter, so sys.setprofile gets no c_call/c_return events for it "
        "(len, max, sorted, setprofile disappear from the event list), and on 3.11+, where "
        "the selectors `__recompyle__`/`__recompyle_m__` are builtin functions, it sees a "
        "c_call/c_return pair for them before each instrumented call. Normalised: every "
        "c_call/c_return event is dropped; Python calls and returns are compared.",
        _without(_C_EVENT),
    )


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
    probe: subprocess.CompletedProcess | None = None


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
    return plain, list(plain), env, dict(env, **_env_selection(case))


def _env_selection(case: Case) -> dict[str, str]:
    """The variables of the env and globals routes. ``python -m PROG`` runs the program in
    the interpreter's own ``__main__``, which the globals route tracks by that name."""
    if case.route == "globals":
        return {"RECOMPYLE_TRACK_GLOBALS": f"__main__,{case.program.name},{HELPER_PATTERN}"}
    return {"RECOMPYLE_MODULES": f"{case.program.name},{HELPER_PATTERN}"}


# The probe of the env and globals routes: the program run as `python -m PROG` does (runpy,
# in the interpreter's own __main__), with the route's variables, a profile report and, for
# globals, a handler counting global events per file. Its output is not compared (a handler
# listens); it shows that the route's configuration instruments (and tracks) the program.
PROBE = """\
import atexit, collections, json, runpy, sys
import recompyle
events = collections.Counter()
def on_global(event):
    events[event.filename] += 1
if sys.argv[1] == "globals":
    recompyle.add_handler(globals=on_global)
def dump(path=sys.argv[2]):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(dict(events), f)
atexit.register(dump)
name = sys.argv[3]
sys.argv[:] = ["-m", *sys.argv[4:]]
runpy._run_module_as_main(name)
"""


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
    if case.route in ("run", "deps"):
        return Outcome(plain, instrumented, report)
    events = report.with_suffix(".events.json")
    probe_env = dict(instr_env, RECOMPYLE_OUTPUT=str(report), RECOMPYLE_FORMAT="json")
    # exec'd in a namespace of its own: the program runs in __main__ and must not meet (or
    # overwrite) the probe's names there.
    probe = f"exec({PROBE!r}, {{}})"
    probe_cmd = [sys.executable, "-c", probe, case.route, str(events), case.program.name]
    probe = _run([*probe_cmd, *case.program.args], probe_env, workdir)
    return Outcome(plain, instrumented, report, probe)


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
    plain_out, instrumented_out = plain.stdout, instrumented.stdout
    normalise = NORMALISE.get((case.program.name, case.route))
    if normalise is not None:
        plain_out, instrumented_out = normalise.apply(plain_out), normalise.apply(instrumented_out)
        assert (
            plain_out != plain.stdout or instrumented_out != instrumented.stdout
        ), "the normalisation changed nothing: remove it"
    if instrumented_out != plain_out:
        problems.append("stdout differs:\n" + _diff("stdout", plain_out, instrumented_out))
    if instrumented.stderr != plain.stderr:
        problems.append("stderr differs:\n" + _diff("stderr", plain.stderr, instrumented.stderr))
    if instrumented.returncode != plain.returncode:
        problems.append(
            f"exit status differs: plain {plain.returncode}, instrumented {instrumented.returncode}"
        )
    assert not problems, "\n".join(problems)

    if outcome.report is not None:
        _check_report(case, outcome.report, workdir, outcome.probe)
    if case.route == "deps":
        _check_graph(case, outcome.report.with_suffix(".deps.json"))
    if case.route == "globals" and not case.program.quiet:
        events = json.loads(outcome.report.with_suffix(".events.json").read_text("utf-8"))
        program_file = str(workdir / case.program.path.name)
        assert events.get(program_file, 0) > 0, (
            f"no global event from {program_file}: the globals route did not track the "
            f"program (events per file: {events})"
        )


def _check_graph(case: Case, path: Path) -> None:
    """The deps route's graph exists and, for a program that runs, holds the program's own
    calls and global reads (its code runs as ``__main__``)."""
    if case.program.quiet:
        assert not path.exists(), "a run that never started wrote a dependency graph"
        return
    graph = json.loads(path.read_text(encoding="utf-8"))
    assert graph["format"] == "recompyle-deps" and isinstance(graph["edges"], list)
    mine = {e["kind"] for e in graph["edges"] if e["from"].startswith("function:__main__:")}
    assert mine == {
        "call",
        "read",
    }, f"the graph lacks the program's own calls or reads (edge kinds from __main__: {mine})"


def _check_report(
    case: Case, report: Path, workdir: Path, probe: subprocess.CompletedProcess | None = None
) -> None:
    if case.program.quiet:
        # Quiet programs do not compile. Under `run` that is a run that never started, which
        # writes no profile; the start-up hook cannot tell, and writes an empty one.
        if case.route in ("run", "deps"):
            assert not report.exists(), f"a run that never started wrote {report}"
        return
    assert report.is_file(), f"no JSON report written at {report}" + (
        "\n" + _describe(probe) if probe is not None else ""
    )
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
    _check_html(doc)
    # Every program calls at least print(), so its own file has sites that were called.
    program_file = str(workdir / case.program.path.name)
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


def _check_html(doc: dict) -> None:
    """The report's ``files`` section holds each site's file as the interpreter read it (so
    every site's span lies inside its recorded lines, columns as UTF-8 bytes), and its HTML
    page renders, self-contained."""
    from recompyle.export import html
    from recompyle.sources import check_files, read_source

    files = doc["files"]
    for site in doc["sites"]:
        entry = files.get(site["file"])
        assert entry is not None, f"no files entry for {site['file']}"
        with open(site["file"], "rb") as f:
            data = f.read()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["source"] == read_source(data)
        lines = [line.encode("utf-8") for line in entry["source"].split("\n")]
        assert site["end_line"] <= len(lines), site
        assert site["col"] <= len(lines[site["line"] - 1]), site
        assert site["end_col"] <= len(lines[site["end_line"] - 1]), site
    checks = check_files(doc)
    assert {c.status for c in checks.values()} <= {"same"}, checks
    page = html.render(doc, file_status=checks)
    static = re.sub(r'<script type="application/json".*?</script>', "", page, flags=re.S)
    assert "http" not in static and page.count("<script") == 2
