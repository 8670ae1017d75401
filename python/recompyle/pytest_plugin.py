"""The pytest plugin: instrument the code under test, profile each test, report.

Registered through the ``pytest11`` entry point, so installing recompyle is enough; it does
nothing unless one of its options is given (``-p no:recompyle`` disables it altogether;
with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``, ``-p recompyle`` loads it).

``--recompyle=PATTERNS``
    Instrument the modules these patterns select (as ``run --modules``) from before the
    first conftest is loaded, so collection imports them instrumented. Modules that
    were imported earlier (by a plugin, say) cannot be, and are named in the header.
``--recompyle-report=FILE`` (``--recompyle-format``)
    Write the session's profile to FILE.
``--recompyle-top=N``, ``--recompyle-per-test=N``
    The terminal summary: the N slowest call sites (default 10), and the slowest sites of
    each of the N slowest tests.

Each test is profiled from the start of its setup to the end of its teardown (a
``ScopedProfile``, so a profile someone else runs in the process is not disturbed). Under
pytest-xdist every worker writes its part (whole or not at all) to a directory the
controller made and named to it, and the controller merges the parts into the one report
and summary.

Fixtures: ``recompyle_profile`` (the calls of the test, ``.stats()``) and ``recompyle_calls``
(a ``CallLog`` of the test's instrumented calls, for assertions).

This module is the only one that imports pytest: it is not a dependency of recompyle.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import pytest

from recompyle.call_log import CallLog
from recompyle.profiler import SiteStats
from recompyle.scoped import ScopedProfile

__all__ = ["TestProfile", "merge_rows"]

_PLUGIN_NAME = "recompyle-session"
#: Sites shown for each test under ``--recompyle-per-test``.
_SITES_PER_TEST = 5


@dataclass
class TestProfile:
    """What one test called: its node id, wall time (setup to teardown) and sites."""

    nodeid: str
    duration_ns: int
    rows: list[SiteStats]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("recompyle", "recompyle: instrument and profile the code under test")
    group.addoption(
        "--recompyle",
        metavar="PATTERNS",
        default=None,
        help="instrument and profile these modules (comma-separated globs over dotted names, "
        "as 'recompyle run --modules': 'pkg.*' is pkg and its submodules)",
    )
    group.addoption(
        "--recompyle-report",
        metavar="FILE",
        default=None,
        help="write the session's profile to FILE",
    )
    group.addoption(
        "--recompyle-format",
        metavar="FORMAT",
        default=None,
        help="format of --recompyle-report (default: from FILE's name, else text)",
    )
    group.addoption(
        "--recompyle-top",
        metavar="N",
        type=int,
        default=10,
        help="call sites shown in the terminal summary (default 10)",
    )
    group.addoption(
        "--recompyle-per-test",
        metavar="N",
        type=int,
        default=0,
        help="also show the slowest call sites of each of the N slowest tests",
    )


def _asked(option: object) -> bool:
    return bool(
        getattr(option, "recompyle", None)
        or getattr(option, "recompyle_report", None)
        or getattr(option, "recompyle_per_test", 0)
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    """Install before the first conftest is imported (collection imports the code under
    test through conftests and test modules)."""
    _start(early_config, early_config.known_args_namespace)


def pytest_configure(config: pytest.Config) -> None:
    # A plugin loaded too late for the hook above (from a conftest) starts here.
    _start(config, config.option)


def _start(config: pytest.Config, option: object) -> None:
    if not _asked(option) or config.pluginmanager.has_plugin(_PLUGIN_NAME):
        return
    session = SessionProfile(config, option)
    config.pluginmanager.register(session, _PLUGIN_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.pluginmanager.get_plugin(_PLUGIN_NAME)
    if isinstance(session, SessionProfile):
        session.close()
        config.pluginmanager.unregister(session, _PLUGIN_NAME)


class SessionProfile:
    """The profile of one pytest session; registered as a plugin only when asked for."""

    def __init__(self, config: pytest.Config, option: object) -> None:
        from recompyle import report
        from recompyle._core import ModuleMatcher
        from recompyle.finder import _finder, already_imported, install

        self.config = config
        self.patterns: str = getattr(option, "recompyle", None) or ""
        self.output: str | None = getattr(option, "recompyle_report", None)
        fmt = getattr(option, "recompyle_format", None) or report.default_format(self.output)
        if fmt not in report.FORMATS:
            raise pytest.UsageError(
                f"--recompyle-format must be one of {', '.join(report.FORMATS)}, not {fmt!r}"
            )
        self.format = fmt
        if self.output:
            parent = os.path.dirname(os.path.abspath(self.output))
            if not os.path.isdir(parent):
                raise pytest.UsageError(
                    f"--recompyle-report: no directory {parent!r} for {self.output}"
                )
        try:
            ModuleMatcher(self.patterns)
        except ValueError as exc:
            raise pytest.UsageError(f"--recompyle: {exc}") from None
        self.top: int = max(0, getattr(option, "recompyle_top", 10))
        self.per_test: int = max(0, getattr(option, "recompyle_per_test", 0))
        self.already: list[str] = []
        self._installed_finder = False
        if self.patterns:
            self.already = already_imported(self.patterns)
            self._installed_finder = _finder() is None
            install(self.patterns, warn_imported=False)
        self.session = ScopedProfile().start()
        self.tests: list[TestProfile] = []
        self.rows: list[SiteStats] = []
        # Controller: the directory it made for the workers' parts.
        self.parts_dir: str | None = None

    @property
    def workerinput(self) -> dict[str, object] | None:
        """What an xdist worker got from the controller (None elsewhere); xdist sets it
        after this plugin started, so it is read when needed."""
        return getattr(self.config, "workerinput", None)

    # -- per test ------------------------------------------------------------------------

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: object) -> Iterator[None]:
        window = ScopedProfile().start()
        began = time.perf_counter_ns()
        try:
            yield
        finally:
            elapsed = time.perf_counter_ns() - began
            window.stop()
            try:
                self.tests.append(TestProfile(item.nodeid, elapsed, window.stats()))
            except Exception as exc:  # the test's outcome is never ours to change
                _warn(f"no profile for {item.nodeid}: {exc!r}")

    # -- xdist ---------------------------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: object) -> None:
        """Name a directory for the workers' parts (xdist controller)."""
        if self.parts_dir is None:
            self.parts_dir = tempfile.mkdtemp(prefix="recompyle-parts-")
        node.workerinput["recompyle_parts"] = self.parts_dir  # type: ignore[attr-defined]

    # -- end -----------------------------------------------------------------------------

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.session.stop()
        self.rows = self.session.stats()
        workerinput = self.workerinput
        if workerinput is not None:
            parts = workerinput.get("recompyle_parts")
            if isinstance(parts, str):
                self._write_part(parts, str(workerinput.get("workerid", "worker")))
            return
        if self.parts_dir:
            # Distributed: the workers ran the tests; what the controller itself called
            # (loading conftests) the workers called as well.
            self.rows, self.tests = _read_parts(self.parts_dir)
        if self.output:
            self._write_report()

    def _write_part(self, directory: str, workerid: str) -> None:
        from recompyle.report import write_text_file

        part = {
            "sites": [asdict(r) for r in self.rows],
            "tests": [
                {"nodeid": t.nodeid, "duration_ns": t.duration_ns, "sites": _asdicts(t.rows)}
                for t in self.tests
            ],
        }
        path = os.path.join(directory, f"{workerid}-{os.getpid()}.json")
        try:
            write_text_file(path, json.dumps(part))
        except OSError as exc:
            _warn(f"cannot write this worker's profile to {path!r}: {exc}")

    def _write_report(self) -> None:
        from recompyle import report

        assert self.output is not None
        if self.format == "json":
            text = report.render_json(self.rows)
        else:
            text = report.render_text(self.rows)
        try:
            report.write_text_file(self.output, text)
        except OSError as exc:
            _warn(f"cannot write the report to {self.output!r}: {exc}")

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        lines = []
        if self.patterns:
            lines.append(f"recompyle: instrumenting {self.patterns}")
        if self.already:
            lines.append(_already_line(self.already))
        return lines

    def pytest_terminal_summary(self, terminalreporter: object) -> None:
        if self.workerinput is not None:
            return
        from recompyle.report import _duration, render_text

        tr = terminalreporter
        tr.write_sep("=", "recompyle profile")  # type: ignore[attr-defined]
        if self.already:
            tr.write_line(_already_line(self.already))  # type: ignore[attr-defined]
        if self.top:
            lines = render_text(self.rows, limit=self.top).rstrip("\n").split("\n")
            if len(self.rows) > self.top:
                lines[-1] = f"  ... {len(self.rows) - self.top} more sites (--recompyle-report)"
            for line in lines:
                tr.write_line(line)  # type: ignore[attr-defined]
        if self.per_test:
            slowest = sorted(self.tests, key=lambda t: -t.duration_ns)[: self.per_test]
            tr.write_line("")  # type: ignore[attr-defined]
            tr.write_line(  # type: ignore[attr-defined]
                f"slowest call sites of the {len(slowest)} slowest tests:"
            )
            for test in slowest:
                tr.write_line(f"{_duration(test.duration_ns):>12}  {test.nodeid}")  # type: ignore[attr-defined]
                for line in _site_lines(test.rows[:_SITES_PER_TEST]):
                    tr.write_line(line)  # type: ignore[attr-defined]
        if self.output:
            tr.write_line(f"recompyle: profile written to {self.output}")  # type: ignore[attr-defined]

    def close(self) -> None:
        self.session.stop()
        if self._installed_finder:
            from recompyle.finder import uninstall

            uninstall()
        if self.parts_dir:
            shutil.rmtree(self.parts_dir, ignore_errors=True)


def _already_line(names: list[str]) -> str:
    return (
        "recompyle: already imported before instrumentation was installed, so not "
        f"instrumented: {', '.join(names)}"
    )


def _site_lines(rows: list[SiteStats]) -> list[str]:
    from recompyle.report import _display_path, _duration

    if not rows:
        return ["      no instrumented call"]
    return [
        f"{r.calls:>10} {_duration(r.total_ns):>12}  "
        f"{_display_path(r.file)}:{r.line}:{r.col + 1}  {' '.join(r.callee.split())[:60]}"
        for r in rows
    ]


def _warn(message: str) -> None:
    import sys

    sys.stderr.write(f"recompyle: {message}\n")


def _asdicts(rows: list[SiteStats]) -> list[dict[str, object]]:
    return [asdict(r) for r in rows]


def _site_key(row: SiteStats) -> tuple[object, ...]:
    return (row.file, row.line, row.col, row.end_line, row.end_col, row.callee, row.caller)


def merge_rows(groups: list[list[SiteStats]]) -> list[SiteStats]:
    """One row per call site over several profiles (processes): calls, times and raised
    calls added, the longest call the longest of all; longest total time first."""
    merged: dict[tuple[object, ...], SiteStats] = {}
    for rows in groups:
        for row in rows:
            key = _site_key(row)
            seen = merged.get(key)
            if seen is None:
                merged[key] = row
            else:
                merged[key] = SiteStats(
                    seen.file, seen.module, seen.line, seen.col, seen.end_line, seen.end_col,
                    seen.callee, seen.caller, seen.calls + row.calls,
                    seen.total_ns + row.total_ns, max(seen.max_ns, row.max_ns),
                    seen.raised + row.raised,
                )  # fmt: skip
    out = list(merged.values())
    out.sort(key=lambda r: (-r.total_ns, r.file, r.line, r.col))
    return out


def _read_parts(directory: str) -> tuple[list[SiteStats], list[TestProfile]]:
    """The workers' parts: a part is renamed into place whole, so a file that does not
    parse is not one of ours (named on stderr, skipped)."""
    groups: list[list[SiteStats]] = []
    tests: list[TestProfile] = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".json"):
            continue
        path = os.path.join(directory, name)
        try:
            with open(path, encoding="utf-8") as f:
                part = json.load(f)
            groups.append([SiteStats(**d) for d in part["sites"]])
            for t in part["tests"]:
                rows = [SiteStats(**d) for d in t["sites"]]
                tests.append(TestProfile(t["nodeid"], t["duration_ns"], rows))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _warn(f"skipping unreadable worker profile {path!r}: {exc}")
    return merge_rows(groups), tests


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def recompyle_profile() -> Iterator[ScopedProfile]:
    """The profile of this test's instrumented calls (``.stats()``), from the fixture's
    setup to its teardown. Only instrumented modules are timed (``--recompyle``)."""
    with ScopedProfile() as profile:
        yield profile


@pytest.fixture
def recompyle_calls() -> Iterator[CallLog]:
    """A ``CallLog`` of the instrumented calls this test makes (``.calls``, ``.events``,
    ``.to(target)``), from the fixture's setup to its teardown."""
    with CallLog() as log:
        yield log
