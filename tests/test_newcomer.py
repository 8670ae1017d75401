"""Issue 21: the API as a newcomer meets it. One test (or a few) per item: nothing a README
reader does may fail silently. Each runs a small program in a fresh interpreter, with a
``myapp`` package in a temporary directory (the one ``tests/test_readme.py`` uses)."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from conftest import run_python
from test_readme import write_myapp


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return write_myapp(tmp_path)


def run(app: Path, source: str, *args: str, env: dict[str, str] | None = None):
    script = app / "script.py"
    script.write_text(textwrap.dedent(source), encoding="utf-8")
    return run_python(*args, str(script), env={"PYTHONPATH": str(app), **(env or {})}, cwd=app)


def run_cli(app: Path, source: str, *options: str, env: dict[str, str] | None = None):
    return run(app, source, "-m", "recompyle", "run", *options, env=env)


# 1. ---------------------------------------------------------------------------------------


def test_tracer_with_modules_sets_up_tracking(app):
    proc = run(
        app,
        """
        import json, recompyle
        tracer = recompyle.Tracer(modules="myapp.*")
        import myapp
        with tracer as t:
            myapp.compute(42)
        t.graph.write("g.json")
        print(t.graph.reads())
        """,
        "-W",
        "error::RuntimeWarning",
    )
    assert proc.returncode == 0, proc.stderr
    assert "'function:myapp.util:helper', 'value:myapp.util:FACTOR:sha256:" in proc.stdout
    graph = json.loads((app / "g.json").read_text())
    nodes = {n["id"]: n for n in graph["nodes"]}
    # The entry function's source is hashed even though it was entered from the script.
    assert nodes["function:myapp:compute"]["source_hash"]


def test_tracer_over_untracked_modules_says_so_once(app):
    proc = run(
        app,
        """
        import recompyle
        recompyle.install("myapp.*")
        import myapp
        for _ in range(2):
            with recompyle.Tracer() as t:
                myapp.compute(42)
        print(t.graph.reads())
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert proc.stderr.count("RecompyleWarning") == 1, proc.stderr
    assert (
        "script.py:6: RecompyleWarning: recompyle: no module's globals are tracked" in proc.stderr
    )
    assert 'Tracer(modules="myapp.*")' in proc.stderr


def test_cli_deps_does_not_warn_about_tracking(app):
    proc = run_cli(app, "import myapp; myapp.main()\n", "--modules", "myapp.*", "--deps", "d.json")
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr


# 3. ---------------------------------------------------------------------------------------


def test_install_of_the_running_script_warns(app):
    proc = run(app, "import recompyle\nrecompyle.install('__main__')\n")
    assert proc.returncode == 0
    assert "script.py:2: RecompyleWarning: recompyle: __main__ is the running script" in proc.stderr
    assert "python -m recompyle run" in proc.stderr


def test_cli_modules_main_is_not_warned(app):
    proc = run_cli(app, "print(len('ab'))\n", "--modules", "__main__")
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr and "no module matching" not in proc.stderr
    assert re.search(r"script\.py:1:7\s+len", proc.stderr), proc.stderr


# 4. ---------------------------------------------------------------------------------------


def test_unmatched_pattern_is_named_at_exit(app):
    proc = run_cli(app, "import myapp; myapp.main()\n", "--modules", "myap.*,myapp.util")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[-1] == (
        "recompyle: no module matching 'myap.*' was imported, so it instrumented nothing "
        "(a typo in the pattern?)"
    )
    assert "'myapp.util'" not in proc.stderr


def test_unmatched_pattern_from_the_api_and_env(app):
    proc = run(app, "import recompyle\nrecompyle.install('nosuch.*,myapp')\nimport myapp\n")
    assert proc.stderr.count("no module matching") == 1
    assert "'nosuch.*'" in proc.stderr
    env = {"RECOMPYLE_MODULES": "myapp.*,nope", "RECOMPYLE_OUTPUT": "r.json"}
    proc = run(app, "import myapp\n", env=env)
    assert "no module matching 'nope'" in proc.stderr
    assert "myapp.*" not in proc.stderr
    # Without a report, the variable may be set for a whole suite whose subprocesses'
    # stderr is compared: nothing is said.
    proc = run(app, "import myapp\n", env={"RECOMPYLE_MODULES": "myapp.*,nope"})
    assert proc.stderr == ""
    # Already imported counts as matched (that has its own warning); -m's own additions
    # (`pkg.__main__`) and a bare `*` are never named.
    proc = run(app, "import recompyle, json\nrecompyle.install('json,*')\n")
    assert "no module matching" not in proc.stderr
    (app / "tool.py").write_text("print('tool')\n")
    proc = run_python("-m", "recompyle", "run", "-m", "tool", env={"PYTHONPATH": str(app)}, cwd=app)
    assert proc.returncode == 0 and "no module matching" not in proc.stderr, proc.stderr


# 5. ---------------------------------------------------------------------------------------


def test_relative_outputs_are_resolved_when_the_run_starts(app):
    (app / "elsewhere").mkdir()
    src = "import os, myapp\nos.chdir('elsewhere')\nmyapp.main()\n"
    proc = run_cli(app, src, "--modules", "myapp.*", "-o", "r.json", "--deps", "d.json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((app / "r.json").read_text())["sites"]
    assert json.loads((app / "d.json").read_text())
    proc = run(
        app,
        src.replace("r.json", ""),
        env={"RECOMPYLE_MODULES": "myapp.*", "RECOMPYLE_OUTPUT": "e.json"},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((app / "e.json").read_text())["sites"]
    assert not list((app / "elsewhere").iterdir())


# 7. ---------------------------------------------------------------------------------------


def test_text_report_column_counts_characters(app):
    proc = run_cli(app, "x = 'é'; y = len(x)\n")
    assert proc.returncode == 0, proc.stderr
    # `len` starts at character 14 (byte offset 14: `é` is two bytes).
    assert re.search(r"script\.py:1:14\s+len", proc.stderr), proc.stderr


def test_text_report_says_what_it_left_out(app):
    calls = "".join(f"f{i}()\n" for i in range(45))
    defs = "".join(f"def f{i}(): pass\n" for i in range(45))
    proc = run_cli(app, defs + calls)
    assert proc.returncode == 0, proc.stderr
    assert (
        "  ... 5 more sites not shown (40 of 45 shown, longest first; -o FILE or "
        "RECOMPYLE_OUTPUT=FILE writes them all)"
    ) in proc.stderr


def test_long_callee_is_cut_in_the_middle():
    from recompyle.report import shorten_middle

    text = "self.session.adapters_registry.default_transport_adapter.retry_policy.send_request"
    short = shorten_middle(text, 60)
    assert len(short) == 60 and short.endswith(".send_request") and "..." in short
    assert short.startswith("self.session")
    assert shorten_middle("f", 60) == "f"


# 8. ---------------------------------------------------------------------------------------


def test_names_import_from_the_package(app):
    proc = run(
        app,
        """
        from recompyle import (RewriteError, default_below_log, default_above_log, ByRefError,
                               HandlerWarning, RecompyleWarning)
        import recompyle
        print(recompyle.deps.hash_value(1)[0][:7], issubclass(RewriteError, ValueError))
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["sha256:", "True"]


# 10. --------------------------------------------------------------------------------------


def test_warnings_point_at_the_users_line(app):
    proc = run(app, "import recompyle, myapp\nrecompyle.install('myapp.*')\n")
    assert "script.py:2: RecompyleWarning: recompyle: already imported" in proc.stderr
    proc = run(app, "import recompyle, myapp\nrecompyle.track_globals('myapp.*')\n")
    assert "script.py:2: RecompyleWarning" in proc.stderr


def test_uninstrumentable_module_warns_at_the_import(app):
    proc = run(
        app,
        """
        import recompyle, recompyle.loader
        recompyle.loader._try_instrument = lambda *args, **kwargs: "forced by the test"
        recompyle.install("myapp.*")
        import myapp
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert "script.py:5: RecompyleWarning: recompyle: " in proc.stderr
    assert "runs uninstrumented: forced by the test" in proc.stderr


def test_handler_warning_names_the_handlers_line(app):
    proc = run(
        app,
        """
        import recompyle
        recompyle.install("myapp.*")
        import myapp
        def before(event):
            event.nosuch
        with recompyle.handler(before=before):
            myapp.main()
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert "raised AttributeError(" in proc.stderr
    assert "script.py:6 in before" in proc.stderr
    # It points at the instrumented call being reported.
    assert "myapp/__init__.py:5: HandlerWarning" in proc.stderr


# 11. --------------------------------------------------------------------------------------


def test_deps_alone_prints_no_profile(app):
    proc = run_cli(app, "import myapp; myapp.main()\n", "--modules", "myapp.*", "--deps", "d.json")
    assert proc.returncode == 0, proc.stderr
    assert "flat profile" not in proc.stderr
    assert (app / "d.json").exists()
    proc = run_cli(
        app, "import myapp; myapp.main()\n", "--modules", "myapp.*", "--deps", "d.json",
        "--format", "text",
    )  # fmt: skip
    assert "flat profile" in proc.stderr


def test_no_report(app):
    proc = run_cli(app, "import myapp; myapp.main()\n", "--modules", "myapp.*", "--no-report")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "result 128\n" and proc.stderr == ""


@pytest.mark.parametrize("value", ["yes", "true", "2"])
def test_strict_accepts_documented_values_only(app, value):
    proc = run_cli(app, "print(1)\n", env={"RECOMPYLE_STRICT": value})
    assert proc.returncode == 2
    assert proc.stderr == (f"recompyle run: error: RECOMPYLE_STRICT={value!r} is not one of 0, 1\n")
    proc = run(app, "print(1)\n", env={"RECOMPYLE_STRICT": value, "RECOMPYLE_MODULES": "myapp"})
    assert proc.returncode == 0 and proc.stdout == "1\n"
    assert proc.stderr.splitlines()[0] == (
        f"recompyle: RECOMPYLE_STRICT={value!r} is not one of 0, 1; modules that cannot be "
        "instrumented only warn"
    )


def test_strict_raises_the_documented_error(monkeypatch):
    from recompyle import loader

    monkeypatch.setenv("RECOMPYLE_STRICT", "1")
    with pytest.raises(RuntimeError, match="runs uninstrumented"):
        loader._warn_uninstrumented("p.py", "p", "because")


def test_documented_small_things(app):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for text in ("`recompyle run script.py`", "--version", ".module", "Profiler.reset()",
                 "raises `RuntimeError`"):  # fmt: skip
        assert text in readme
    arch = (Path(__file__).resolve().parent.parent / "ARCHITECTURE.md").read_text()
    startup = arch.split("1. **Start-up**", 1)[1].split("2. **Finder**", 1)[0]
    assert "RECOMPYLE_TRACK_GLOBALS" in startup


# 12. --------------------------------------------------------------------------------------


HANDLED = """
import recompyle
recompyle.install("myapp.*")
import myapp, myapp.util
seen = []
before, after = lambda e: seen.append(e.source), lambda e: seen.append(e.result)
with recompyle.handler(before=before, after=after, {filter}):
    myapp.main()
print(seen)
"""


@pytest.mark.parametrize(
    ("filter", "seen"),
    [
        ("callee=myapp.util.helper", ["util.helper", 126]),
        ("callee='helper'", ["util.helper", 126]),
        ("callee='myapp.util.helper'", ["util.helper", 126]),
        ("callee='other.helper'", []),
        ("callee=len", ["len", 2]),
        ("module='myapp.util'", []),
        (
            "module='myapp'",
            ["compute", "util.helper", 126, "str", "42", "len", 2, 128, "print", None],
        ),
        ("module='myapp', callee=str", ["str", "42"]),
    ],
)
def test_handler_filter(app, filter, seen):
    proc = run(app, HANDLED.format(filter=filter))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == repr(seen)


def test_handler_filter_on_methods_and_bad_input(tmp_path, instrumented):
    import recompyle

    mod = instrumented(
        """
        class C:
            def m(self, x):
                return x
            @classmethod
            def k(cls):
                return cls
        def run(c):
            f = c.m
            return c.m(1), f(2), C.k(), c.m(3)
        """,
        name="filtered_methods",
    )
    seen = []
    c = mod.C()
    with recompyle.handler(before=lambda e: seen.append(e.args), callee=c.m):
        mod.run(c)
    assert seen == [(1,), (2,), (3,)]
    seen.clear()
    with recompyle.handler(before=lambda e: seen.append(e.source), callee=mod.C.__dict__["k"]):
        mod.run(c)
    assert seen == ["C.k"]
    seen.clear()
    with recompyle.handler(before=lambda e: seen.append(e.source), callee="C.m"):
        mod.run(c)
    assert seen == ["c.m", "f", "c.m"]
    with pytest.raises(TypeError, match="callee= must be a callable or a qualified name"):
        recompyle.add_handler(before=print, callee=3)
    with pytest.raises(ValueError, match="invalid module pattern"):
        recompyle.add_handler(before=print, module="a b")
    with pytest.raises(ValueError, match="needs at least one pattern"):
        recompyle.add_handler(before=print, module=" , ")
    assert not recompyle._core.handlers()


def test_report_modules_filter(app):
    proc = run_cli(
        app, "import myapp; myapp.main()\nlen('x')\n", "--modules", "myapp.*",
        "--report-modules", "myapp.util", "-o", "r.json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    sites = json.loads((app / "r.json").read_text())["sites"]
    # myapp.util makes no call: nothing of the rest is shown.
    assert sites == []
    proc = run_cli(
        app, "import myapp; myapp.main()\nlen('x')\n", "--modules", "myapp.*",
        "--report-modules", "myapp",
    )  # fmt: skip
    assert "myapp/__init__.py" in proc.stderr and "script.py" not in proc.stderr
    proc = run_cli(app, "pass\n", "--report-modules", "a b")
    assert proc.returncode == 2 and "--report-modules: invalid module pattern" in proc.stderr


def test_handler_filters_with_the_profiler_and_other_handlers(instrumented):
    import recompyle

    mod = instrumented(
        """
        class Named:
            def __getattr__(self, name):
                if name == "__qualname__":
                    return str("Named")  # a call recompyle itself causes: not reported
                raise AttributeError(name)
            def __call__(self):
                return 7
        named = Named()
        def f():
            return 1
        def g():
            return 2
        def run():
            return f(), g(), named(), len("ab")
        """,
        name="filter_mix",
    )
    seen_f, seen_all, seen_named = [], [], []
    with recompyle.Profiler() as prof:
        prof.reset()
        with recompyle.handler(before=lambda e: seen_f.append(e.source), callee=mod.f):
            with recompyle.handler(before=lambda e: seen_named.append(e.source), callee="Named"):
                assert mod.run() == (1, 2, 7, 2)
                with recompyle.handler(before=lambda e: seen_all.append(e.source)):
                    mod.run()
    assert seen_f == ["f", "f"]
    assert seen_named == ["named", "named"]
    assert seen_all == ["f", "g", "named", "len"]
    calls = {s.callee: s.calls for s in prof.stats() if s.module == "filter_mix"}
    assert calls == {"f": 2, "g": 2, "named": 2, "len": 2}
