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

The session's profile is a profile document (``recompyle.report``) whose roots are the
tests: each test is profiled by its own ``Profiler`` from the start of its setup to the end
of its teardown, and its threads' trees are folded into one root (kind ``test``, named by
the node id, ``total_ns`` its wall time); the calls made before the first test (imports
during collection) make one more root, ``collection``. Profilers nest, so one that someone
else runs in the process is not disturbed. Starting and stopping a profiler costs time in
proportion to what the test's calls touched, not to the whole call tree (the native
record keeps each profiler's baseline by copy on write), so every test gets its own
profiler whenever the plugin profiles. Under pytest-xdist every worker writes its document
(whole or not at all) to a directory the controller made and named to it, and the
controller merges them (``recompyle.combine``) into the one report and summary.

Fixtures: ``recompyle_profile`` (a ``Profiler`` of the test, ``.stats()``, ``.tree()``) and
``recompyle_calls`` (a ``CallLog`` of the test's instrumented calls, for assertions).

This module is the only one that imports pytest: it is not a dependency of recompyle.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from recompyle.call_log import CallLog
from recompyle.combine import combine, fold, new_part_id
from recompyle.profiler import Profiler

__all__ = ["SessionProfile", "summary_lines"]

_PLUGIN_NAME = "recompyle-session"
#: Sites shown for each test under ``--recompyle-per-test``.
_SITES_PER_TEST = 5
#: The root of the calls made before the first test (imports during collection).
COLLECTION = "collection"

Doc = dict  # a profile document (``recompyle.document``): dict[str, Any] as json gives it


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
        from recompyle.export import get_format
        from recompyle.finder import _finder, already_imported, install

        self.config = config
        self.patterns: str = getattr(option, "recompyle", None) or ""
        self.output: str | None = getattr(option, "recompyle_report", None)
        fmt = getattr(option, "recompyle_format", None) or report.default_format(self.output)
        try:
            spec = get_format(fmt)
        except ValueError as exc:
            raise pytest.UsageError(f"--recompyle-format: {exc}") from None
        self.format = fmt
        # A timeline (begin and end of each call) only for the formats that draw one.
        self.timeline = spec.needs_timeline
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
        # The session's profiler: the calls made before the first test (collection).
        self.outside = Profiler(timeline=self.timeline).start()
        self.began = time.perf_counter_ns()
        self.tests: list[Doc] = []
        self.offsets: list[int] = []
        self.document: Doc | None = None
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
        """Each test is a root of the session's profile, from its setup to its teardown."""
        self.outside.stop()
        profiler = Profiler(timeline=self.timeline).start()
        began = time.perf_counter_ns()
        try:
            yield
        finally:
            elapsed = time.perf_counter_ns() - began
            profiler.stop()
            try:
                self.tests.append(fold(profiler.document(), "test", item.nodeid, elapsed))
                self.offsets.append(began - self.began)
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

    def _session_document(self) -> Doc:
        self.outside.stop()
        outside = self.outside.document()
        docs, offsets = list(self.tests), list(self.offsets)
        if outside["roots"]:
            docs.insert(0, fold(outside, "session", COLLECTION))
            offsets.insert(0, 0)
        if not docs:
            return {**outside, "roots": []}
        doc = combine(docs, roots="apart", offsets_ns=offsets)
        doc["wall_ns"] = time.perf_counter_ns() - self.began
        return doc

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workerinput = self.workerinput
        if workerinput is not None:
            parts = workerinput.get("recompyle_parts")
            if isinstance(parts, str):
                self._write_part(parts, str(workerinput.get("workerid", "worker")))
            return
        if self.parts_dir:
            # Distributed: the workers ran the tests; what the controller itself called
            # (loading conftests) the workers called as well.
            self.outside.stop()
            self.document = _read_parts(self.parts_dir)
        else:
            self.document = self._session_document()
        if self.output:
            from recompyle.report import add_files

            self._write_report(add_files(self.document))

    def _write_part(self, directory: str, workerid: str) -> None:
        from recompyle.report import write_file

        path = os.path.join(directory, f"{workerid}-{os.getpid()}.json")
        try:
            doc = {**self._session_document(), "parts": [new_part_id()]}
            write_file(path, json.dumps(doc))
        except OSError as exc:
            _warn(f"cannot write this worker's profile to {path!r}: {exc}")

    def _write_report(self, doc: Doc) -> None:
        from recompyle import report

        assert self.output is not None
        try:
            report.write_file(self.output, report.render_document(doc, self.format))
        except OSError as exc:
            _warn(f"cannot write the report to {self.output!r}: {exc}")

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        lines = []
        if self.patterns:
            lines.append(f"recompyle: instrumenting {self.patterns}")
        if self.already:
            lines.append(_already_line(self.already))
        return lines

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.workerinput is not None or self.document is None:
            return
        tr = terminalreporter
        tr.write_sep("=", "recompyle profile")
        if self.already:
            tr.write_line(_already_line(self.already))
        for line in summary_lines(self.document, self.top, self.per_test):
            tr.write_line(line)
        if self.output:
            tr.write_line(f"recompyle: profile written to {self.output}")

    def close(self) -> None:
        self.outside.stop()
        # The tests' documents (a tree per test: hundreds of thousands of dicts for a large
        # suite) are done with: let them go before pytest's own clean-up collects garbage
        # five times over (unraisableexception's gc_collect_harder), which walks them all.
        self.tests, self.offsets, self.document = [], [], None
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


def summary_lines(doc: Doc, top: int, per_test: int) -> list[str]:
    """The terminal summary: the ``top`` slowest call sites, then the slowest sites of
    each of the ``per_test`` slowest tests (the document's ``test`` roots)."""
    from recompyle.export._document import duration
    from recompyle.report import render_document

    lines: list[str] = []
    if top:
        text = render_document(doc, "text", limit=top)
        assert isinstance(text, str)
        lines = text.rstrip("\n").split("\n")
        if len(doc["sites"]) > top:
            lines[-1] = f"  ... {len(doc['sites']) - top} more sites (--recompyle-report)"
    if per_test:
        tests = [r for r in doc["roots"] if r.get("kind") == "test"]
        slowest = sorted(tests, key=lambda r: -r["total_ns"])[:per_test]
        lines += ["", f"slowest call sites of the {len(slowest)} slowest tests:"]
        for root in slowest:
            lines.append(f"{duration(root['total_ns']):>12}  {root['name']}")
            lines += _site_lines(doc["sites"], root)
    return lines


def _site_lines(sites: list[dict[str, Any]], root: dict[str, Any]) -> list[str]:
    """A test root's sites, its calls added up over the tree, longest total first."""
    from recompyle.export._document import display_path, duration

    totals: dict[int, list[int]] = {}

    def walk(nodes: list[dict[str, Any]]) -> None:
        for node in nodes:
            seen = totals.setdefault(node["site"], [0, 0])
            seen[0] += node["calls"]
            seen[1] += node["total_ns"]
            walk(node["children"])

    walk(root["children"])
    if not totals:
        return ["      no instrumented call"]
    ranked = sorted(totals.items(), key=lambda kv: -kv[1][1])[:_SITES_PER_TEST]
    out = []
    for index, (calls, total_ns) in ranked:
        s = sites[index]
        where = f"{display_path(s['file'])}:{s['line']}:{s['col'] + 1}"
        callee = " ".join(s["callee"].split())[:60]
        out.append(f"{calls:>10} {duration(total_ns):>12}  {where}  {callee}")
    return out


def _warn(message: str) -> None:
    import sys

    sys.stderr.write(f"recompyle: {message}\n")


def _read_parts(directory: str) -> Doc:
    """The workers' parts merged: a part is renamed into place whole, so a file that does
    not parse is not one of ours (named on stderr, skipped)."""
    docs: list[Doc] = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".json"):
            continue
        path = os.path.join(directory, name)
        try:
            with open(path, encoding="utf-8") as f:
                docs.append(json.load(f))
        except (OSError, ValueError) as exc:
            _warn(f"skipping unreadable worker profile {path!r}: {exc}")
    if not docs:
        return {"version": 2, "wall_ns": None, "sites": [], "roots": [], "timeline": None}
    return combine(docs, roots="apart")


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def recompyle_profile() -> Iterator[Profiler]:
    """A ``recompyle.Profiler`` of this test's instrumented calls (``.stats()``,
    ``.tree()``), from the fixture's setup to its teardown. Only instrumented modules are
    timed (``--recompyle``)."""
    with Profiler() as profile:
        yield profile


@pytest.fixture
def recompyle_calls() -> Iterator[CallLog]:
    """A ``CallLog`` of the instrumented calls this test makes (``.calls``, ``.events``,
    ``.to(target)``), from the fixture's setup to its teardown."""
    with CallLog() as log:
        yield log
