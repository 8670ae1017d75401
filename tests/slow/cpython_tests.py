#!/usr/bin/env python3
"""Run CPython's own regression tests plain and under ``RECOMPYLE_MODULES='*'`` and compare.

For each interpreter and each test module this runs ``PY -m test -v --timeout 600 MODULE``
twice, once with every ``RECOMPYLE_*`` variable removed from the environment ("plain") and once
with ``RECOMPYLE_MODULES='*'`` ("instrumented": the start-up hook rewrites every module imported
from source after start-up, including the ``test`` package and the stdlib modules under test).
The verbose unittest output is parsed per test, and the summary prints one line per module::

    test_json  plain=PASS  instrumented=FAIL(2)

followed, for modules whose outcomes differ, by the test ids that fail only instrumented (and,
for information, those that fail only plain). Tests that inspect bytecode the rewrite changes
by design are listed in ``KNOWN`` with their reasons and marked as such. Exit status 1 if any
other test fails only instrumented, else 0.

Usage::

    python tests/slow/cpython_tests.py [--python PATH]... [--only MOD,...] [--results DIR]
                                       [--jobs N] [--timeout SECONDS]

``--python`` is repeatable and defaults to ``target/test-env/venv-cp311/bin/python``.
``--results DIR`` keeps every log as ``DIR/<version>/<module>.<mode>.log`` plus a
``summary.json``; without it the logs go to a temporary directory that is deleted.

This file is a stand-alone script (not collected by pytest): it only needs the standard library
and the interpreters given, which must have recompyle installed and the ``test`` package.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PYTHON = ROOT / "target" / "test-env" / "venv-cp311" / "bin" / "python"

MODULES = (
    "test_json test_textwrap test_fractions test_difflib test_argparse test_dataclasses "
    "test_enum test_functools test_statistics test_collections test_string test_csv "
    "test_contextlib test_typing test_traceback test_inspect test_warnings test_logging "
    "test_exceptions test_sys_settrace test_super test_scope test_descr test_generators "
    "test_coroutines test_asyncgen test_grammar test_fstring"
).split()

MODES = ("plain", "instrumented")

# "test_x (test.mod.Class.test_x) ... ok" (3.11+) or "test_x (test.mod.Class) ... ok" (<= 3.10).
# With a docstring the description spans two lines and " ... status" ends the second one; a
# test that prints may push the status further down, so statuses are matched to the last
# header seen.
HEADER_RE = re.compile(r"^(?P<name>\w+) \((?P<where>[\w.]+)\)")
STATUS_RE = re.compile(
    r" \.\.\. (?P<status>ok|FAIL|ERROR|skipped|expected failure|unexpected success)\b"
)
# When the test wrote to stderr after " ... ", the status ends up alone on a later line.
LONE_STATUS_RE = re.compile(
    r"^(?P<status>ok|FAIL|ERROR|skipped|expected failure|unexpected success)\b(?: .*)?$"
)
# Lines of unittest's final report: "FAIL: test_x (test.mod.Class.test_x)" possibly followed
# by a subtest description "(i=1)"; also class/module fixtures "ERROR: setUpClass (test.mod.C)".
REPORT_RE = re.compile(
    r"^(?P<kind>FAIL|ERROR|UNEXPECTED SUCCESS): (?P<name>\S+) \((?P<where>[\w.]+)\)"
)
# regrtest per-module verdicts for things unittest never reports (import errors, crashes, ...).
REGRTEST_BAD_RE = re.compile(
    r"^(?:\d+:\d+:\d+ (?:load avg: [\d.]+ )?)?(?:\[[ \d/]+\] )?(?P<mod>test_\w+) "
    r"(?P<what>crashed|failed \(env changed\)|failed|timed out|skipped|skipped \(resource denied\))"
    r"\b"
)


def test_id(name: str, where: str) -> str:
    """Normalise the 3.9/3.10 "(module.Class)" and 3.11+ "(module.Class.name)" forms."""
    if where.endswith("." + name):
        return where
    return f"{where}.{name}"


@dataclass
class Outcome:
    module: str
    mode: str
    rc: int | None
    seconds: float
    statuses: dict = field(default_factory=dict)  # test id -> ok/FAIL/ERROR/skipped/...
    failed: set = field(default_factory=set)  # test ids that failed or errored
    verdict: str = ""  # regrtest's per-module verdict if bad (crashed, env changed, ...)
    log: str = ""

    @property
    def passed(self) -> bool:
        return self.rc == 0 and not self.failed

    def label(self) -> str:
        if self.rc is None:
            return "TIMEOUT"
        if self.passed:
            return "PASS"
        if self.verdict == "skipped" and not self.failed and self.rc == 0:
            return "SKIP"
        return f"FAIL({len(self.failed)})"


def parse(module: str, mode: str, rc: int | None, seconds: float, text: str) -> Outcome:
    out = Outcome(module, mode, rc, seconds, log=text)
    current = None
    for line in text.splitlines():
        m = HEADER_RE.match(line)
        if m:
            current = test_id(m["name"], m["where"])
        s = STATUS_RE.search(line) or LONE_STATUS_RE.match(line)
        if s and current is not None:
            status = s["status"]
            # A later "ok" from a re-run must not hide an earlier failure, and vice versa
            # keep the worst status seen.
            if out.statuses.get(current) not in ("FAIL", "ERROR"):
                out.statuses[current] = status
            if status in ("FAIL", "ERROR", "unexpected success"):
                out.failed.add(current)
            current = None
        r = REPORT_RE.match(line)
        if r:
            tid = test_id(r["name"], r["where"])
            out.failed.add(tid)
            if out.statuses.get(tid) not in ("FAIL", "ERROR"):
                out.statuses[tid] = "FAIL" if r["kind"] == "FAIL" else "ERROR"
        b = REGRTEST_BAD_RE.match(line)
        if b and b["mod"] == module:
            out.verdict = b["what"]
    if rc is None:
        out.failed.add(f"<{module}: timed out>")
    elif rc != 0 and not out.failed:
        # Nothing attributable to a single test: import error, crash, env changed, ...
        out.failed.add(f"<{module}: {out.verdict or f'exit status {rc}'}>")
    return out


def existing_modules(python: str, modules: list[str]) -> tuple[str, list[str]]:
    code = (
        "import sys, importlib.util\n"
        "print('%d.%d' % sys.version_info[:2])\n"
        "for m in sys.argv[1:]:\n"
        "    if importlib.util.find_spec('test.' + m) is not None: print(m)\n"
    )
    res = subprocess.run(
        [python, "-c", code, *modules], env=clean_env(), capture_output=True, text=True, check=True
    )
    lines = res.stdout.split()
    return lines[0], lines[1:]


def clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMPYLE_")}
    env.pop("PYTHONWARNINGS", None)
    return env


def run_one(python: str, module: str, mode: str, timeout: float, workdir: Path) -> Outcome:
    env = clean_env()
    if mode == "instrumented":
        env["RECOMPYLE_MODULES"] = "*"
    cwd = Path(tempfile.mkdtemp(prefix=f"{module}-{mode}-", dir=workdir))
    cmd = [python, "-m", "test", "-v", "--timeout", "600", module]
    start = time.monotonic()
    try:
        res = subprocess.run(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
        rc, raw = res.returncode, res.stdout
    except subprocess.TimeoutExpired as exc:
        rc, raw = None, exc.stdout or b""
    seconds = time.monotonic() - start
    shutil.rmtree(cwd, ignore_errors=True)
    text = raw.decode("utf-8", "replace")
    header = f"$ {'RECOMPYLE_MODULES=* ' if mode == 'instrumented' else ''}{' '.join(cmd)}\n"
    header += f"# exit status {rc}, {seconds:.1f} s\n"
    return parse(module, mode, rc, seconds, header + text)


#: Tests that inspect bytecode, which the rewrite changes by design; each with its reason.
#: A listed test failing only instrumented is reported as known, not as a regression.
KNOWN: dict[str, str] = {
    "test.test_inspect.TestGetClosureVars.test_generator_closure": (
        "getclosurevars() lists every name in co_names; the selectors __recompyle__ and "
        "__recompyle_m__ are names the rewritten code loads, found in builtins"
    ),
    "test.test_inspect.TestGetClosureVars.test_method_closure": "as test_generator_closure",
    "test.test_inspect.TestGetClosureVars.test_name_resolution": "as test_generator_closure",
    "test.test_inspect.test_inspect.TestGetClosureVars.test_generator_closure": (
        "as test.test_inspect.TestGetClosureVars.test_generator_closure"
    ),
    "test.test_inspect.test_inspect.TestGetClosureVars.test_method_closure": (
        "as test.test_inspect.TestGetClosureVars.test_generator_closure"
    ),
    "test.test_inspect.test_inspect.TestGetClosureVars.test_name_resolution": (
        "as test.test_inspect.TestGetClosureVars.test_generator_closure"
    ),
    # New in 3.14's suite; the same cause.
    "test.test_inspect.test_inspect.TestGetClosureVars.test_attribute_same_name_as_global_var": (
        "as test.test_inspect.TestGetClosureVars.test_generator_closure"
    ),
    "test.test_inspect.test_inspect.TestSignatureBind.test_signature_bind_implicit_arg": (
        "takes the comprehension's code object as co_consts[1]; the site id constant of "
        "the rewritten call comes first"
    ),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", action="append", help="interpreter (repeatable)")
    ap.add_argument("--only", help="comma-separated test modules (default: all)")
    ap.add_argument("--results", help="directory to keep logs and summary.json in")
    ap.add_argument("--jobs", type=int, default=2, help="concurrent regrtest runs (default 2)")
    ap.add_argument("--timeout", type=float, default=1800, help="wall-clock limit per run, seconds")
    args = ap.parse_args(argv)

    # Absolute (the runs chdir) but not resolved: a venv's python is a symlink to the base one.
    pythons = [os.path.abspath(p) for p in (args.python or [str(DEFAULT_PYTHON)])]
    modules = MODULES if not args.only else [m.strip() for m in args.only.split(",") if m.strip()]
    results_dir = Path(args.results).resolve() if args.results else None
    workdir = Path(tempfile.mkdtemp(prefix="recompyle-cpython-tests-"))
    summary: dict = {}
    any_regression = False
    try:
        for python in pythons:
            version, present = existing_modules(python, modules)
            missing = [m for m in modules if m not in present]
            print(f"== Python {version} ({python})", flush=True)
            if missing:
                print(f"   not on this version, skipped: {' '.join(missing)}", flush=True)
            jobs = [(m, mode) for m in present for mode in MODES]
            with ThreadPoolExecutor(max(1, args.jobs)) as pool:
                futures = {
                    job: pool.submit(run_one, python, job[0], job[1], args.timeout, workdir)
                    for job in jobs
                }
                vsum = summary.setdefault(version, {})
                width = max(len(m) for m in present) if present else 0
                for module in present:
                    plain = futures[(module, "plain")].result()
                    instr = futures[(module, "instrumented")].result()
                    only_instr = sorted(instr.failed - plain.failed)
                    only_plain = sorted(plain.failed - instr.failed)
                    any_regression |= any(tid not in KNOWN for tid in only_instr)
                    print(
                        f"{module:<{width}} plain={plain.label()} instrumented={instr.label()}"
                        f"   ({plain.seconds:.0f}s / {instr.seconds:.0f}s,"
                        f" {len(plain.statuses)}/{len(instr.statuses)} tests)",
                        flush=True,
                    )
                    for tid in only_instr:
                        status = instr.statuses.get(tid, "?")
                        reason = KNOWN.get(tid)
                        note = f"  [known: {reason}]" if reason else ""
                        print(f"    only instrumented {status}: {tid}{note}", flush=True)
                    for tid in only_plain:
                        print(f"    only plain: {tid}", flush=True)
                    vsum[module] = {
                        mode: {
                            "label": o.label(),
                            "rc": o.rc,
                            "seconds": round(o.seconds, 1),
                            "tests": len(o.statuses),
                            "failed": sorted(o.failed),
                        }
                        for mode, o in (("plain", plain), ("instrumented", instr))
                    }
                    vsum[module]["only_instrumented"] = only_instr
                    vsum[module]["only_plain"] = only_plain
                    if results_dir is not None:
                        d = results_dir / version
                        d.mkdir(parents=True, exist_ok=True)
                        for o in (plain, instr):
                            (d / f"{module}.{o.mode}.log").write_text(o.log, encoding="utf-8")
        if results_dir is not None:
            results_dir.mkdir(parents=True, exist_ok=True)
            (results_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        "RESULT:",
        "tests fail only instrumented" if any_regression else "no instrumented-only failures",
    )
    return 1 if any_regression else 0


if __name__ == "__main__":
    sys.exit(main())
