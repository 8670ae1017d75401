"""coverage.py reports the same executed lines for an instrumented module as for the plain one.

Each program of ``tests/programs`` listed below is imported as a module by a small driver run
under ``coverage run``: once plain, once with ``RECOMPYLE_MODULES`` naming it (and once more
with the profiler on, so calls go through the native proxy). The JSON reports must list the
same executed and missing lines: the rewrite must neither add line events (a multi-line call
of constants that CPython folds must stay folded) nor lose any.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("coverage")

PROGRAMS = Path(__file__).parent / "programs"
CASES = [
    "syntax_zoo",
    "generators",
    "comprehensions",
    "closures_scopes",
    "class_machinery",
    "eval_order",
    "fstrings",
    "context_managers",
    "call_shapes",
    "long_call_chain",
]
if sys.version_info >= (3, 10):
    CASES.append("match_statement")


def run_coverage(tmp: Path, name: str, env_extra: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECOMPYLE_", "COV"))}
    env.update(env_extra)
    data = tmp / f".coverage-{len(list(tmp.glob('.coverage-*')))}"
    report = data.with_suffix(".json")
    driver = tmp / "driver.py"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "coverage",
            "run",
            f"--data-file={data}",
            f"--include={tmp}/*",
            str(driver),
        ],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    # Not under the run's RECOMPYLE_* variables: this process would write its own (empty)
    # profile over the run's report.
    subprocess.run(
        [sys.executable, "-m", "coverage", "json", f"--data-file={data}", "-o", str(report)],
        cwd=tmp,
        env={k: v for k, v in env.items() if k not in env_extra},
        capture_output=True,
        check=True,
    )
    files = json.loads(report.read_text())["files"]
    entry = next(v for k, v in files.items() if k.endswith(f"{name}.py"))
    return {
        "executed": entry["executed_lines"],
        "missing": entry["missing_lines"],
        "out": run.stdout,
        "loader": run.stderr.splitlines()[-1],
    }


@pytest.mark.parametrize("name", CASES)
def test_coverage_lines_match(tmp_path: Path, name: str) -> None:
    module = f"cov_{name}"
    shutil.copy(PROGRAMS / f"{name}.py", tmp_path / f"{module}.py")
    # The driver names the module's loader on stderr (stdout is compared): the comparison
    # means something only if the instrumented runs were instrumented.
    (tmp_path / "driver.py").write_text(
        f"import sys, {module}\nprint(type({module}.__loader__).__name__, file=sys.stderr)\n"
    )
    plain = run_coverage(tmp_path, module, {})
    instrumented = run_coverage(tmp_path, module, {"RECOMPYLE_MODULES": module})
    report = tmp_path / "report.json"
    profiled = run_coverage(
        tmp_path, module, {"RECOMPYLE_MODULES": module, "RECOMPYLE_OUTPUT": str(report)}
    )
    assert plain.pop("loader") == "SourceFileLoader"
    assert instrumented.pop("loader") == profiled.pop("loader") == "RecompyleLoader"
    assert instrumented == plain
    assert profiled == plain
    sites = json.loads(report.read_text())["sites"]
    assert any(s["file"].endswith(f"{module}.py") and s["calls"] > 0 for s in sites), sites
