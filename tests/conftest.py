"""Shared helpers: run Python in a subprocess, and load source instrumented in-process."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import recompyle

# The corpus runner's checkouts of real packages (tests/corpus/run_corpus.sh, ignored by git).
_CORPUS_WORK = Path(__file__).resolve().parent / "corpus" / "work"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The corpus checkouts hold their own test suites, not ours to collect, unless pytest
    runs inside one: the corpus runner runs each package's suite there, and pytest, finding
    no configuration of the package's own, takes this project's (and this file) as its
    rootdir's; ignoring the checkouts then left those suites with no tests."""
    if _in_corpus_work(collection_path) and not _in_corpus_work(config.invocation_params.dir):
        return True
    return None


def _in_corpus_work(path: Path) -> bool:
    return path == _CORPUS_WORK or _CORPUS_WORK in path.parents


def load_instrumented(
    tmp_path: Path, source: str, name: str = "mod", *, tracked: bool = False
) -> types.ModuleType:
    """Write ``source`` to ``tmp_path/name.py`` and execute it instrumented as module ``name``;
    with ``tracked``, in a tracked namespace, as the loader would."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    code = recompyle.instrument_source(path.read_bytes(), str(path), name, track_globals=tracked)
    module = types.ModuleType(name)
    if tracked:
        recompyle._core.track_module(module)
    module.__file__ = str(path)
    # A spec and loader as an import gives (3.15's linecache warns about module globals
    # without ``__spec__.loader`` when a traceback is formatted from them).
    module.__spec__ = importlib.util.spec_from_file_location(name, path)
    module.__loader__ = module.__spec__.loader if module.__spec__ else None
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load_tracked(tmp_path: Path, source: str, name: str = "tmod") -> types.ModuleType:
    """``load_instrumented`` in a tracked namespace."""
    return load_instrumented(tmp_path, source, name, tracked=True)


@pytest.fixture
def instrumented(tmp_path, request):
    names: list[str] = []

    def load(source: str, name: str = "mod") -> types.ModuleType:
        names.append(name)
        return load_instrumented(tmp_path, source, name)

    yield load
    for name in names:
        sys.modules.pop(name, None)


def run_python(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMPYLE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )
