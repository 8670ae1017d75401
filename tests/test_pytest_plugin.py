"""The pytest plugin (``recompyle.pytest_plugin``), run in pytest subprocesses (``pytester``):
instrumentation is process-wide, so every session gets its own interpreter."""

from __future__ import annotations

import json
import os

import pytest

pytest_plugins = ["pytester"]

PACKAGE = {
    "mypkg/__init__.py": "",
    "mypkg/core.py": """\
        import time


        def helper(x):
            return x * 2


        def slow(seconds):
            time.sleep(seconds)
            return helper(1)


        def fails():
            raise ValueError("no")
        """,
}

TESTS = """\
    import pytest

    from mypkg import core


    def test_fast():
        assert core.helper(3) == 6


    def test_slow():
        assert core.slow(0.25) == 2
        assert core.helper(2) == 4


    def test_fails():
        core.fails()


    @pytest.mark.xfail(raises=ValueError, strict=True)
    def test_xfail():
        core.fails()


    @pytest.mark.skip(reason="not today")
    def test_skipped():
        core.helper(1)
    """


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    for path, text in PACKAGE.items():
        target = pytester.path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_dedent(text), encoding="utf-8")
    pytester.makepyfile(test_mod=_dedent(TESTS))
    # The subprocess imports the package from here, as a project's own tests do.
    pytester.makeini("[pytest]\npythonpath = .\n")
    return pytester


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text)


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # `-p recompyle` loads the plugin by its entry point name whether or not autoload is on.
    return pytester.runpytest_subprocess("-p", "recompyle", "-p", "no:cacheprovider", *args)


def _outcomes(result: pytest.RunResult) -> dict[str, int]:
    return result.parseoutcomes()


def test_nothing_happens_unless_asked(project: pytest.Pytester) -> None:
    plain = _run(project)
    out = plain.stdout.str()
    assert "recompyle:" not in out and "recompyle profile" not in out
    disabled = project.runpytest_subprocess("-p", "no:recompyle", "-p", "no:cacheprovider")
    assert _outcomes(disabled) == _outcomes(plain)
    # Without the plugin its options do not exist.
    unknown = project.runpytest_subprocess("-p", "no:recompyle", "--recompyle=mypkg.*")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR


def test_summary_and_outcomes(project: pytest.Pytester) -> None:
    plain = _run(project)
    profiled = _run(project, "--recompyle=mypkg.*", "--recompyle-per-test=5")
    assert (
        _outcomes(profiled)
        == _outcomes(plain)
        == {
            "passed": 2,
            "failed": 1,
            "skipped": 1,
            "xfailed": 1,
        }
    )
    out = profiled.stdout.str()
    assert "recompyle: instrumenting mypkg.*" in out
    assert "recompyle profile" in out
    # Only mypkg's own call sites are instrumented, not the test module's.
    assert "mypkg/core.py:9:5  time.sleep" in out
    assert "mypkg/core.py:14:11  ValueError" in out
    # Which test is slowest depends on the machine's load (a failing test's traceback takes
    # time too); each test's block lists its own sites, slowest first.
    lines = profiled.stdout.lines
    first = lines.index("slowest call sites of the 5 slowest tests:")
    (slow,) = [i for i, line in enumerate(lines) if line.endswith("test_mod.py::test_slow")]
    assert slow > first
    assert "time.sleep" in lines[slow + 1] and "helper" in lines[slow + 2]


def test_already_imported_modules_are_named(project: pytest.Pytester) -> None:
    project.makepyfile(early_plugin="import mypkg.core\n")
    result = _run(project, "-p", "early_plugin", "--recompyle=mypkg.*")
    result.stdout.fnmatch_lines(
        ["recompyle: already imported before instrumentation was installed, so not "
         "instrumented: mypkg, mypkg.core"]
    )  # fmt: skip


def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _report_sites(path: str) -> dict[str, int]:
    return {f"{s['line']}:{s['col']} {s['callee']}": s["calls"] for s in _load(path)["sites"]}


def _test_roots(path: str) -> dict[str, dict[str, int]]:
    """Per test root: the callees of its top-level nodes and their calls."""
    doc = _load(path)
    return {
        root["name"]: {doc["sites"][n["site"]]["callee"]: n["calls"] for n in root["children"]}
        for root in doc["roots"]
        if root["kind"] == "test"
    }


def test_json_report(project: pytest.Pytester) -> None:
    report = str(project.path / "profile.json")
    result = _run(project, "--recompyle=mypkg.*", f"--recompyle-report={report}")
    assert _outcomes(result)["passed"] == 2
    assert _report_sites(report) == {
        "9:4 time.sleep": 1,
        "10:11 helper": 1,
        "14:10 ValueError": 2,
    }
    assert f"recompyle: profile written to {report}" in result.stdout.str()
    # Each test is a root named by its node id, whatever its outcome.
    assert _test_roots(report) == {
        "test_mod.py::test_fast": {},
        "test_mod.py::test_slow": {"time.sleep": 1, "helper": 1},
        "test_mod.py::test_fails": {"ValueError": 1},
        "test_mod.py::test_xfail": {"ValueError": 1},
        "test_mod.py::test_skipped": {},
    }
    doc = _load(report)
    assert doc["version"] == 2
    (slow,) = [r for r in doc["roots"] if r["name"].endswith("test_slow")]
    assert slow["total_ns"] >= 250_000_000  # the test's wall time, setup to teardown
    assert [r["kind"] for r in doc["roots"]] == ["test"] * 5  # no call outside the tests


def test_calls_at_collection_have_their_root(project: pytest.Pytester) -> None:
    project.makeconftest("from mypkg import core\n\ncore.slow(0)\n")
    report = str(project.path / "profile.json")
    _run(project, "--recompyle=mypkg.*", f"--recompyle-report={report}", "-k", "fast")
    doc = _load(report)
    assert [r["name"] for r in doc["roots"]] == ["collection", "test_mod.py::test_fast"]
    collection, fast = doc["roots"]
    assert collection["kind"] == "session"
    assert len(collection["children"]) == 2  # slow's sleep and helper, from the conftest
    assert fast["children"] == []


def test_xdist_merges_the_workers(project: pytest.Pytester) -> None:
    pytest.importorskip("xdist", reason="pytest-xdist is not installed")
    serial = str(project.path / "serial.json")
    merged = str(project.path / "merged.json")
    # Enough tests that both workers run some: every one calls helper() once.
    project.makepyfile(
        test_many="\n".join(
            f"from mypkg import core\ndef test_{i}():\n    assert core.helper({i}) == {2 * i}\n"
            for i in range(20)
        )
    )
    _run(project, "--recompyle=mypkg.*", f"--recompyle-report={serial}")
    result = _run(
        project, "-n", "2", "--recompyle=mypkg.*", f"--recompyle-report={merged}",
        "--recompyle-per-test=1",
    )  # fmt: skip
    assert _outcomes(result)["passed"] == 22
    assert _report_sites(merged) == _report_sites(serial)
    assert _test_roots(merged) == _test_roots(serial)
    assert len(_test_roots(merged)) == 25
    # The per-test section is the workers' too (which test is slowest under load is not
    # for this test to say).
    lines = result.stdout.lines
    first = lines.index("slowest call sites of the 1 slowest tests:")
    assert "::test_" in lines[first + 1]
    assert not [n for n in os.listdir(project.path) if n.startswith("recompyle-parts")]


def test_fixtures(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_fixtures="""
        from mypkg import core


        def test_profile(recompyle_profile):
            core.helper(1)
            core.helper(2)
            rows = {r.callee: r.calls for r in recompyle_profile.stats()}
            assert rows == {}  # helper has no instrumented call inside


        def test_profile_sees_calls(recompyle_profile):
            core.slow(0)
            rows = {r.callee: r.calls for r in recompyle_profile.stats()}
            assert rows == {"time.sleep": 1, "helper": 1}
            (root,) = recompyle_profile.tree()
            assert {n.callee for n in root.children} == {"time.sleep", "helper"}


        def test_calls(recompyle_calls):
            core.slow(0)
            try:
                core.slow("x")
            except TypeError:
                pass
            sleeps = recompyle_calls.to("time.sleep")
            assert [c.args for c in sleeps] == [(0,), ("x",)]
            assert sleeps[0].finished and not sleeps[0].raised
            assert isinstance(sleeps[1].exception, TypeError)
            assert [c.result for c in recompyle_calls.to(core.helper)] == [2]
            assert [(e.phase, e.call.callee) for e in recompyle_calls.events] == [
                ("before", "time.sleep"), ("after", "time.sleep"),
                ("before", "helper"), ("after", "helper"),
                ("before", "time.sleep"), ("after", "time.sleep"),
            ]
        """
    )
    result = _run(project, "--recompyle=mypkg.*", "test_fixtures.py")
    assert _outcomes(result) == {"passed": 3}, result.stdout.str()


def test_bad_options(project: pytest.Pytester) -> None:
    bad = _run(project, "--recompyle=mypkg.[")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["ERROR: --recompyle: *"])
    missing = _run(project, "--recompyle=mypkg.*", "--recompyle-report=/no/such/dir/p.json")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    missing.stderr.fnmatch_lines(["ERROR: --recompyle-report: no directory '/no/such/dir'*"])
    fmt = _run(project, "--recompyle=mypkg.*", "--recompyle-format=yaml")
    assert fmt.ret == pytest.ExitCode.USAGE_ERROR
    fmt.stderr.fnmatch_lines(["ERROR: --recompyle-format: unknown format 'yaml'; choose from *"])


def test_viewer_formats(project: pytest.Pytester) -> None:
    """The session's profile in the viewers' formats: a lane (Chrome trace, with its
    timeline) and a profile (speedscope) per test."""
    from format_readers import check_chrome, check_speedscope

    trace = str(project.path / "session.trace.json")
    scope = str(project.path / "session.speedscope.json")
    for report in (trace, scope):
        result = _run(project, "--recompyle=mypkg.*", f"--recompyle-report={report}")
        assert _outcomes(result)["passed"] == 2
    lanes = check_chrome(_load(trace))
    events = _load(trace)["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    (slow_lane,) = [tid for tid, name in names.items() if "test_mod.py::test_slow" in name]
    slow = sorted(e["name"] for e in lanes[slow_lane])
    assert [n.split(" (")[0] for n in slow] == ["helper", "time.sleep"]
    sleep = [e for e in lanes[slow_lane] if e["name"].startswith("time.sleep")][0]
    assert sleep["dur"] >= 250_000  # microseconds: the test's sleep
    page = project.path / "session.html"
    _run(project, "--recompyle=mypkg.*", f"--recompyle-report={page}")
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "test_mod.py::test_slow" in text
    speedscope = _load(scope)
    check_speedscope(speedscope)
    assert any("test_mod.py::test_slow" in p["name"] for p in speedscope["profiles"])
