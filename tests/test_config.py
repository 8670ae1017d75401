"""``recompyle.config``: the one reader of the ``RECOMPYLE_*`` variables that the CLI and the
start-up hook share."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from recompyle import config
from recompyle.config import Config, from_env

PACKAGE = Path(config.__file__).parent


def test_reads_each_variable_stripped_and_empty_as_unset() -> None:
    env = {
        "RECOMPYLE_MODULES": " pkg.*, app ",
        "RECOMPYLE_TRACK_GLOBALS": "\tpkg.core\n",
        "RECOMPYLE_FORMAT": " json ",
        "RECOMPYLE_OUTPUT": " out.json",
        "UNRELATED": "x",
    }
    assert from_env(env) == Config("pkg.*, app", "pkg.core", "json", "out.json")
    assert from_env({}) == Config("", "", None, None)
    blank = {name: "  " for name in env}
    assert from_env(blank) == Config()


def test_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOMPYLE_FORMAT", "tree")
    monkeypatch.delenv("RECOMPYLE_OUTPUT", raising=False)
    assert from_env().format == "tree"
    assert from_env().output is None


def test_asks_report_and_the_variable_a_message_names() -> None:
    assert not Config("pkg").asks_report
    assert Config(format="json").asks_report
    assert Config(output="o.json").asks_report
    assert Config(format="json").report_variable == "RECOMPYLE_FORMAT"
    assert Config(format="json", output="o").report_variable == "RECOMPYLE_OUTPUT"


def test_is_an_immutable_named_record() -> None:
    cfg = Config("a", "b", "json", None)
    with pytest.raises(AttributeError):
        cfg.modules = "c"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del cfg.format
    assert cfg == Config(modules="a", track_globals="b", format="json")
    assert cfg != Config("a")
    assert hash(cfg) == hash(Config("a", "b", "json"))
    assert repr(cfg) == (
        "Config(modules='a', track_globals='b', format='json', output=None, otel='', "
        "otel_min_duration=None)"
    )


def _environment_reads(path: Path) -> list[str]:
    """Every ``RECOMPYLE_MODULES``-like variable name ``path`` passes to ``os.environ`` /
    ``os.getenv`` itself (a string constant inside ``environ.get(...)``, ``environ[...]``
    or ``getenv(...)``)."""
    names = (config.ENV_MODULES, config.ENV_TRACK_GLOBALS, config.ENV_FORMAT, config.ENV_OUTPUT)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            args = node.args[:1]
        elif isinstance(node, ast.Subscript):
            args = [node.slice]
        else:
            continue
        text = ast.unparse(node)
        if "environ" not in text and "getenv" not in text:
            continue
        found += [a.value for a in args if isinstance(a, ast.Constant) and a.value in names]
    return found


@pytest.mark.parametrize("module", ["cli.py", "_startup.py"])
def test_the_cli_and_the_start_up_hook_read_the_variables_only_through_config(
    module: str,
) -> None:
    assert _environment_reads(PACKAGE / module) == []


def test_the_read_check_sees_a_read(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        'import os\nos.environ.get("RECOMPYLE_FORMAT")\nos.environ["RECOMPYLE_OUTPUT"]\n'
        'os.getenv("RECOMPYLE_MODULES")\n',
        encoding="utf-8",
    )
    assert _environment_reads(sample) == [
        "RECOMPYLE_FORMAT",
        "RECOMPYLE_OUTPUT",
        "RECOMPYLE_MODULES",
    ]


def test_imports_nothing_start_up_has_not_loaded() -> None:
    """The start-up hook imports it in every child of a profiled run: no ``typing``,
    ``dataclasses`` or other module a bare interpreter has not loaded."""
    code = (
        "import sys; before = set(sys.modules); import recompyle.config; "
        "print(sorted(set(sys.modules) - before))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    new = set(ast.literal_eval(out))
    assert new <= {"recompyle", "recompyle.config", "recompyle._core"}, new
