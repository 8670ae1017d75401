"""The finder and loader: selection, what an instrumented module still looks like, errors."""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import recompyle
from conftest import run_python
from recompyle import _core
from recompyle.loader import RecompyleLoader


@pytest.mark.parametrize(
    ("patterns", "name", "expected"),
    [
        ("pkg.*", "pkg", True),
        ("pkg.*", "pkg.sub", True),
        ("pkg.*", "pkg.sub.deep", True),
        ("pkg.*", "pkgx", False),
        ("pkg", "pkg", True),
        ("pkg", "pkg.sub", False),
        ("pkg.test_*", "pkg.test_one", True),
        ("pkg.test_*", "pkg.test_one.inner", False),
        ("a, b.*", "b.c", True),
        ("a, b.*", "a", True),
        ("*", "anything.at.all", True),
        ("*", "recompyle.finder", False),
        ("*", "importlib.util", False),
        ("*", "encodings.utf_8", False),
        ("recompyle", "recompyle", False),
        ("", "pkg", False),
    ],
)
def test_module_patterns(patterns, name, expected):
    assert _core.ModuleMatcher(patterns).matches(name) is expected


@pytest.mark.parametrize("bad", ["pkg/sub", "pkg sub", "pkg.[", "p-k"])
def test_bad_patterns_are_clear_errors(bad):
    with pytest.raises(ValueError, match="module pattern"):
        _core.ModuleMatcher(bad)


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package ``hookpkg_<n>`` on sys.path, removed (with its modules) afterwards."""
    made = []

    def make(files: dict[str, str]) -> str:
        name = f"hookpkg_{len(made)}_{tmp_path.name[-8:].replace('-', '_')}"
        root = tmp_path / name
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        made.append(name)
        return name

    monkeypatch.syspath_prepend(str(tmp_path))
    yield make
    recompyle.uninstall()
    for name in list(sys.modules):
        if any(name == m or name.startswith(m + ".") for m in made):
            del sys.modules[name]


def _calls_seen(fn, *args):
    seen = []
    with recompyle.handler(before=lambda e: seen.append(e.source)):
        result = fn(*args)
    return result, seen


def test_package_and_submodules_are_instrumented(package):
    name = package(
        {
            "__init__.py": "from .sub import double\n",
            "sub/__init__.py": "def double(x):\n    return abs(x) * 2\n",
            "data.txt": "payload",
        }
    )
    recompyle.install(f"{name}.*")
    mod = importlib.import_module(name)
    assert isinstance(mod.__spec__.loader, RecompyleLoader)
    assert isinstance(sys.modules[f"{name}.sub"].__spec__.loader, RecompyleLoader)
    result, seen = _calls_seen(mod.double, -4)
    assert (result, seen) == (8, ["abs"])
    # What else looks at a module still works.
    assert inspect.getsource(mod.double) == "def double(x):\n    return abs(x) * 2\n"
    from importlib import resources

    assert resources.files(name).joinpath("data.txt").read_text() == "payload"
    reloaded = importlib.reload(sys.modules[f"{name}.sub"])
    assert _calls_seen(reloaded.double, 3) == (6, ["abs"])


def test_exact_name_selects_only_that_module(package):
    name = package({"__init__.py": "", "a.py": "def f():\n    return len('ab')\n"})
    recompyle.install(name)
    pkg = importlib.import_module(name)
    sub = importlib.import_module(f"{name}.a")
    assert isinstance(pkg.__spec__.loader, RecompyleLoader)
    assert type(sub.__spec__.loader).__name__ == "SourceFileLoader"
    assert _calls_seen(sub.f) == (2, [])


def test_namespace_unchanged(package):
    source = "import os\nX = len('abc')\ndef f():\n    return sorted(globals())\n"
    name = package({"__init__.py": source})
    plain_ns: dict = {"__name__": "plain"}
    exec(compile(source, "plain.py", "exec"), plain_ns)
    recompyle.install(name)
    mod = importlib.import_module(name)
    assert "__recompyle__" not in vars(mod)
    plain_keys = set(plain_ns) - {"__builtins__"}
    inst_keys = set(vars(mod)) - {
        "__builtins__",
        "__file__",
        "__cached__",
        "__path__",
        "__loader__",
        "__spec__",
        "__package__",
        "__doc__",
    }
    assert inst_keys == plain_keys


def test_syntax_errors_are_cpythons_own(package, tmp_path):
    name = package({"__init__.py": "x = 1\ndef broken(:\n    pass\n"})
    with pytest.raises(SyntaxError) as plain:
        importlib.import_module(name)
    sys.modules.pop(name, None)
    importlib.invalidate_caches()
    recompyle.install(name)
    with pytest.raises(SyntaxError) as inst:
        importlib.import_module(name)
    assert (str(inst.value), inst.value.lineno, inst.value.offset, inst.value.text) == (
        str(plain.value),
        plain.value.lineno,
        plain.value.offset,
        plain.value.text,
    )


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="PEP 701 f-strings are valid on 3.12+")
def test_newer_syntax_is_refused_as_cpython_refuses_it(package):
    name = package({"__init__.py": 'x = f"{\'a\' + "b"}"\n'})
    with pytest.raises(SyntaxError) as plain:
        importlib.import_module(name)
    sys.modules.pop(name, None)
    recompyle.install(name)
    with pytest.raises(SyntaxError) as inst:
        importlib.import_module(name)
    assert str(inst.value) == str(plain.value)


def test_install_is_idempotent_and_warns_for_imported_modules(package):
    name = package({"__init__.py": "", "early.py": "X = 1\n"})
    importlib.import_module(f"{name}.early")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recompyle.install(f"{name}.*")
        recompyle.install(f"{name}.*")
    finders = [f for f in sys.meta_path if type(f).__name__ == "RecompyleFinder"]
    assert len(finders) == 1
    messages = [
        str(w.message) for w in caught if issubclass(w.category, recompyle.RecompyleWarning)
    ]
    assert messages and all(f"{name}.early" in m for m in messages)


def test_env_route_instruments_and_reports(tmp_path):
    (tmp_path / "envmod.py").write_text("def f(n):\n    return [abs(i) for i in range(n)]\n")
    report = tmp_path / "out.json"
    proc = run_python(
        "-c",
        "import envmod, atexit; atexit.register(lambda: envmod.f(2)); "
        "print(type(envmod.__loader__).__name__, len(envmod.f(5)))",
        env={
            "RECOMPYLE_MODULES": "envmod",
            "RECOMPYLE_OUTPUT": str(report),
            "PYTHONPATH": str(tmp_path),
        },
        cwd=tmp_path,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "RecompyleLoader 5\n", "")
    doc = json.loads(report.read_text())
    calls = {site["callee"]: site["calls"] for site in doc["sites"]}
    # The program's own atexit handler ran before the report was written.
    assert calls == {"abs": 7, "range": 2}


def test_env_route_bad_input_is_a_clear_message(tmp_path):
    proc = run_python("-c", "print('still runs')", env={"RECOMPYLE_MODULES": "bad pattern"})
    assert proc.returncode == 0 and proc.stdout == "still runs\n"
    assert proc.stderr.startswith("recompyle: RECOMPYLE_MODULES: invalid module pattern")
    proc = run_python("-c", "print(1)", env={"RECOMPYLE_MODULES": "x", "RECOMPYLE_FORMAT": "xml"})
    assert proc.returncode == 0 and "RECOMPYLE_FORMAT='xml'" in proc.stderr


def test_startup_hook_costs_no_import_when_unset(tmp_path):
    proc = run_python("-c", "import sys; print(sorted(m for m in sys.modules if 'recompyle' in m))")
    assert proc.stdout == "[]\n"
    proc = run_python(
        "-c",
        "import sys; print('json' in sys.modules, 'typing' in sys.modules)",
        env={"RECOMPYLE_MODULES": "nothing_here", "RECOMPYLE_OUTPUT": str(tmp_path / "r.txt")},
    )
    assert proc.stdout == "False False\n"


def test_startup_hook_is_installed_with_the_package():
    import site

    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    assert any((Path(d) / "recompyle_startup.pth").exists() for d in dirs)


def _failing_transform(*args, **kwargs):
    raise _core.InternalTransformError("simulated failure")


def test_internal_failure_falls_back_with_one_warning(package, monkeypatch):
    name = package({"__init__.py": "def f():\n    return len('abc')\n"})
    monkeypatch.setattr(_core, "transform", _failing_transform)
    monkeypatch.delenv("RECOMPYLE_STRICT", raising=False)
    recompyle.install(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mod = importlib.import_module(name)
    assert mod.f() == 3
    assert type(mod.__spec__.loader).__name__ == "SourceFileLoader"
    messages = [
        str(w.message) for w in caught if issubclass(w.category, recompyle.RecompyleWarning)
    ]
    assert len(messages) == 1
    assert "__init__.py" in messages[0] and "simulated failure" in messages[0]


def test_strict_mode_raises_instead(package, monkeypatch):
    name = package({"__init__.py": "X = 1\n"})
    monkeypatch.setattr(_core, "transform", _failing_transform)
    monkeypatch.setenv("RECOMPYLE_STRICT", "1")
    recompyle.install(name)
    with pytest.raises(RuntimeError, match="runs uninstrumented: simulated failure"):
        importlib.import_module(name)


def test_star_does_not_warn_about_start_up_modules():
    proc = run_python("-c", "print('quiet')", env={"RECOMPYLE_MODULES": "*"})
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "quiet\n", "")
