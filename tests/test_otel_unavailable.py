"""``--otel`` where OpenTelemetry cannot be imported (its current SDK needs Python 3.10+):
one line naming what to install, exit status 2, before the program runs. Runs on every
version: where OpenTelemetry is installed, the child interpreter is made unable to import it.
"""

from __future__ import annotations

from conftest import run_python

SCRIPT = 'print("the program ran")\n'


def test_cli_without_opentelemetry_says_so_in_one_line(tmp_path):
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    code = (
        "import sys; sys.modules['opentelemetry'] = None; from recompyle.cli import main; "
        f"sys.exit(main(['run', '--otel', {str(script)!r}]))"
    )
    proc = run_python("-c", code)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("recompyle run: error: OpenTelemetry is not installed")
    assert "pip install 'recompyle[otel]'" in proc.stderr
    assert "needs Python 3.10 or later" in proc.stderr


def test_environment_route_without_opentelemetry_warns_and_runs(tmp_path):
    (tmp_path / "appmod.py").write_text(SCRIPT)
    # Found before site-packages (PYTHONPATH comes first), and before the start-up hook runs.
    (tmp_path / "opentelemetry").mkdir()
    (tmp_path / "opentelemetry" / "__init__.py").write_text(
        "raise ImportError('not here', name='opentelemetry')\n"
    )
    env = {"RECOMPYLE_MODULES": "appmod", "RECOMPYLE_OTEL": "1", "PYTHONPATH": str(tmp_path)}
    proc = run_python("-c", "import appmod", env=env, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == "the program ran\n"
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("recompyle: RECOMPYLE_OTEL: OpenTelemetry is not installed")
