"""Tracked module globals: events for reads, writes and deletions, and a tracked module
still passing for a module everywhere (each check also run plain, and compared)."""

from __future__ import annotations

import sys
import textwrap
import types
import warnings
from pathlib import Path

import pytest

import recompyle
from conftest import load_tracked, run_python
from recompyle import _core


@pytest.fixture
def tracked(tmp_path):
    names: list[str] = []

    def load(source: str, name: str = "tmod", events: list | None = None) -> types.ModuleType:
        names.append(name)
        if events is None:
            return load_tracked(tmp_path, source, name)
        with recompyle.handler(globals=lambda e: events.append(_row(e))):
            return load_tracked(tmp_path, source, name)

    yield load
    for name in names:
        sys.modules.pop(name, None)


def _row(e) -> tuple:
    return (e.kind, e.module, e.name, e.value, e.function)


def _events(fn, *args):
    seen: list = []
    with recompyle.handler(globals=lambda e: seen.append(_row(e))):
        result = fn(*args)
    return result, seen


def test_the_namespace_is_a_dict_subclass_of_a_real_module(tracked):
    mod = tracked("X = 1\ndef f():\n    return X\n")
    assert type(mod) is types.ModuleType
    assert type(vars(mod)) is _core.TrackedGlobals
    assert isinstance(vars(mod), dict)
    assert mod.f.__globals__ is vars(mod)
    assert recompyle.is_tracked(mod)
    assert not recompyle.is_tracked(sys)


def test_module_level_writes_reads_and_deletes_are_events(tracked):
    events: list = []
    tracked(
        """
        A = 1
        B = A + 1
        del A
        import os as _os
        """,
        events=events,
    )
    kinds = [(k, n) for k, _, n, _, _ in events]
    assert kinds == [
        ("write", "A"),
        ("read", "A"),
        ("write", "B"),
        ("delete", "A"),
        ("write", "_os"),
    ]
    assert events[0][1] == "tmod" and events[0][4] == "<module>"
    assert events[2][3] == 2


def test_function_reads_name_the_reading_function_and_skip_builtins(tracked):
    mod = tracked(
        """
        A = 23
        class K:
            def m(self):
                return A + len([A])
        def f(x):
            return x + A
        """
    )
    result, events = _events(mod.f, 1)
    assert result == 24
    assert events == [("read", "tmod", "A", 23, "f")]
    _, events = _events(mod.K().m)
    expected = "K.m" if sys.version_info >= (3, 11) else "m"
    assert events == [("read", "tmod", "A", 23, expected)] * 2


def test_writes_under_a_global_statement_are_reported_by_the_transform(tracked):
    mod = tracked(
        """
        N = 0
        def bump():
            global N, M
            N += 1
            M = N * 10
            for N in (5, 6):
                pass
            del M
        """
    )
    _, events = _events(mod.bump)
    writes = [(k, n, v) for k, _, n, v, _ in events if k != "read"]
    assert writes == [
        ("write", "N", 1),
        ("write", "M", 10),
        ("write", "N", 5),
        ("write", "N", 6),
        ("delete", "M", None),
    ]
    assert mod.N == 6 and not hasattr(mod, "M")


def test_class_body_reads_of_globals_are_reported_not_class_names(tracked):
    events: list = []
    tracked(
        """
        BASE = 10
        class C:
            BASE = 1
            own = BASE
            other = [b for b in (BASE,)]
        class D:
            k = BASE
            s = str(BASE)
        """,
        events=events,
    )
    reads = [(n, v, f) for k, _, n, v, f in events if k == "read"]
    assert reads == [("BASE", 10, "D"), ("BASE", 10, "D")]


def test_missing_names_keep_cpythons_errors(tracked):
    mod = tracked(
        """
        def f():
            return undefined_name
        def g():
            return globals()["len"]
        """
    )
    with pytest.raises(NameError, match="name 'undefined_name' is not defined"):
        mod.f()
    with pytest.raises(KeyError) as info:
        mod.g()
    assert info.value.args == ("len",)
    with pytest.raises(KeyError) as info:
        vars(mod)[("a", 1)]
    assert info.value.args == (("a", 1),)


def test_missing_name_errors_are_dicts_own_every_time(tracked):
    mod = tracked(
        """
        def get():
            return globals()["len"]
        def get_while_handling():
            try:
                raise ValueError("inner")
            except ValueError:
                return globals()["len"]
        def uses_builtins(n):
            return [len(range(i)) for i in range(n)]
        """
    )
    errors = []
    for _ in range(3):
        try:
            mod.get()
        except KeyError as e:
            errors.append(e)
    assert len({id(e) for e in errors}) == 3
    first = errors[0]
    tb = first.__traceback__
    assert tb is not None and first.__context__ is None and first.args == ("len",)
    if sys.version_info >= (3, 11):
        first.add_note("kept")
    assert mod.uses_builtins(50)[-1] == 49  # many misses of `len`, `range` later
    assert first.__traceback__ is tb and first.args == ("len",)
    assert getattr(first, "__notes__", ["kept"]) == ["kept"]
    with pytest.raises(KeyError) as info:
        mod.get_while_handling()
    assert isinstance(info.value.__context__, ValueError)
    del errors, first, tb, info
    with pytest.raises(KeyError) as info:
        mod.get()
    assert info.value.__context__ is None and info.value.__cause__ is None
    assert not info.value.__suppress_context__


def test_nothing_is_reported_without_a_globals_callback_nor_to_the_handler_itself(tracked):
    mod = tracked("A = 1\ndef f():\n    return A\n")
    with recompyle.handler(before=lambda e: None):
        assert not _core.handlers()[0].globals
        assert mod.f() == 1
    seen: list = []

    def cb(e):
        seen.append(e.name)
        mod.f()  # the handler's own reads are not events

    with recompyle.handler(globals=cb):
        mod.f()
    assert seen == ["A"]


def test_a_raising_globals_callback_warns_once_and_the_program_goes_on(tracked):
    mod = tracked("A = 1\ndef f():\n    return A + A\n")

    def bad(e):
        raise ValueError("boom")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with recompyle.handler(globals=bad) as h:
            assert mod.f() == 2
            assert mod.f() == 2
    assert h.errors == 4
    assert [w.category for w in caught] == [recompyle.HandlerWarning]


def test_event_describes_its_site(tracked):
    mod = tracked("A = 1\n\ndef f():\n    return A\n")
    seen: list = []
    with recompyle.handler(globals=seen.append):
        mod.f()
    (e,) = seen
    assert (e.kind, e.lineno, e.filename, e.code) == ("read", 4, mod.__file__, mod.f.__code__)
    assert "read tmod.A" in repr(e)
    assert e.site_id is None


def test_untracked_modules_keep_exact_dicts(instrumented):
    mod = instrumented("A = 1\n")
    assert type(vars(mod)) is dict


def test_track_module_refuses_what_is_not_a_module():
    with pytest.raises(TypeError, match="ModuleType"):
        _core.track_module(object())


PACKAGE = {
    "pkg/__init__.py": "",
    "pkg/core.py": '''
        """Everything a module must keep doing when its globals are tracked."""
        import dataclasses
        import typing

        __all__ = ["Point", "double", "LIMIT"]
        LIMIT = 3
        _hidden = 1

        @dataclasses.dataclass
        class Point:
            x: int
            y: "int" = 0

            def norm(self) -> int:
                return abs(self.x) + abs(self.y) + LIMIT

        def double(v: int) -> "typing.List[int]":
            return [v, v]

        def __getattr__(name):
            if name == "lazy":
                return "lazy value"
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

        def __dir__():
            return ["Point", "double", "lazy"]
    ''',
    "pkg/circ_a.py": """
        from pkg import circ_b
        VALUE = 1
    """,
    "pkg/circ_b.py": """
        from pkg.circ_a import VALUE
    """,
    "main.py": """
        import importlib, inspect, pickle, sys, types, typing
        import pkg.core as core
        from recompyle.tracking import is_tracked

        print("tracked", is_tracked(core), file=sys.stderr)
        print(isinstance(core, types.ModuleType), inspect.ismodule(core), type(core).__name__)
        print(sys.modules["pkg.core"] is core, vars(core) is core.__dict__)
        print(core.double.__globals__ is core.__dict__)
        p = core.Point(2, -3)
        print(p, p.norm(), core.Point.__dataclass_fields__.keys())
        print(pickle.loads(pickle.dumps(p)) == p)
        print(pickle.loads(pickle.dumps(core.double)) is core.double)
        print(typing.get_type_hints(core.double), typing.get_type_hints(core.Point))
        print(core.lazy, dir(core))
        try:
            core.missing
        except AttributeError as e:
            print("AttributeError", e)
        ns = {}
        exec("from pkg.core import *", ns)
        print(sorted(k for k in ns if k != "__builtins__"))
        core.LIMIT = 10
        print(core.Point(1).norm())
        again = importlib.reload(core)
        print(again is core, core.LIMIT, core.Point(1).norm())
        print("reloaded tracked", is_tracked(again), file=sys.stderr)
        print(inspect.getsource(core.double).splitlines()[0])
        try:
            import pkg.circ_a
        except ImportError as e:
            print("ImportError", e)
    """,
}


def _write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def test_a_tracked_module_still_passes_for_a_module(tmp_path):
    _write_tree(tmp_path, PACKAGE)
    plain = run_python("main.py", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "tracked False" in plain.stderr
    tracked = run_python("main.py", cwd=tmp_path, env={"RECOMPYLE_TRACK_GLOBALS": "pkg.*"})
    assert tracked.returncode == 0, tracked.stderr
    assert "tracked True" in tracked.stderr
    assert "reloaded tracked True" in tracked.stderr
    assert tracked.stdout == plain.stdout
    assert "partially initialized module 'pkg.circ_a'" in tracked.stdout
    assert "lazy value" in tracked.stdout


def test_cli_and_env_opt_in_and_bad_patterns(tmp_path):
    _write_tree(tmp_path, PACKAGE)
    script = tmp_path / "show.py"
    script.write_text(
        "import pkg.core, sys\nfrom recompyle.tracking import is_tracked\n"
        "print(is_tracked(pkg.core), is_tracked(sys.modules['__main__']))\n"
    )
    out = run_python("-m", "recompyle", "run", "--track-globals", "pkg.*", "show.py", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "True False\n"
    out = run_python(
        "-m", "recompyle", "run", "--track-globals", "pkg.*,__main__", "show.py", cwd=tmp_path
    )
    assert out.stdout == "True True\n", out.stderr
    out = run_python("show.py", cwd=tmp_path, env={"RECOMPYLE_TRACK_GLOBALS": "pkg.core"})
    assert out.stdout == "True False\n", out.stderr
    out = run_python("show.py", cwd=tmp_path, env={"RECOMPYLE_TRACK_GLOBALS": "pkg/*"})
    assert "RECOMPYLE_TRACK_GLOBALS" in out.stderr and "invalid module pattern" in out.stderr
    assert out.stdout == "False False\n"
    out = run_python("-m", "recompyle", "run", "--track-globals", "a b", "show.py", cwd=tmp_path)
    assert out.returncode == 2 and "--track-globals" in out.stderr


def test_tracked_code_is_cached_apart_from_untracked(tmp_path):
    from recompyle import cache

    src = tmp_path / "c.py"
    src.write_text("X = 1\n")
    assert cache.cache_path(str(src), tracked=True) != cache.cache_path(str(src))
