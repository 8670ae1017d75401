"""OpenTelemetry spans for slow calls (``recompyle.otel``): parents, times, lazily made
ancestors, exceptions, threads, asyncio tasks, a manual span as root; the CLI and the
environment route; end to end over OTLP/HTTP to a receiver on 127.0.0.1; a Flask app under
OpenTelemetry's own instrumentation."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import run_python

pytest.importorskip(
    "opentelemetry.sdk.trace",
    reason="the OpenTelemetry SDK does not install here (it needs Python 3.10+ in its "
    "current releases)",
)

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode  # noqa: E402

from recompyle import otel  # noqa: E402

# Slow calls sleep 30 ms, the minimum is 15 ms: a fast call (microseconds) stays far below.
MIN = "15ms"

PROGRAM = """
import asyncio
import time

def nap():
    time.sleep(0.03)

def fast():
    return 1

def mid():
    fast()
    nap()
    fast()

def top():
    fast()
    mid()
    return fast()

def main():
    return top()

def boom():
    nap()
    raise ValueError("no good")

def catches():
    try:
        boom()
    except ValueError as exc:
        return str(exc)

def guarded():
    return catches()

def outer(callback):
    return callback()

async def slow_async():
    await asyncio.sleep(0.03)
    return 2

async def job():
    await asyncio.sleep(0)
    nap()
    await asyncio.sleep(0)
    return await slow_async()
"""

_EXPORTER = InMemorySpanExporter()


class _StartHook(SpanProcessor):
    """Runs `hook(span)` as each span starts, when a test sets it (the provider is the
    process's, set once)."""

    hook: Callable[[Any], None] | None = None

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if self.hook is not None:
            self.hook(span)


_START_HOOK = _StartHook()


def _provider() -> None:
    """One provider for the process (OpenTelemetry sets it once), exporting to memory."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(_START_HOOK)
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)


@pytest.fixture
def spans(instrumented):
    _provider()
    _EXPORTER.clear()
    mod = instrumented(PROGRAM, "otel_prog")
    otel.instrument(MIN)
    try:
        yield mod
    finally:
        _START_HOOK.hook = None
        otel.uninstrument()


def finished() -> list:
    return list(_EXPORTER.get_finished_spans())


def named(all_spans: list, name: str) -> list:
    return [s for s in all_spans if s.name == name]


def one(all_spans: list, name: str):
    found = named(all_spans, name)
    assert len(found) == 1, [s.name for s in all_spans]
    return found[0]


def parent_of(all_spans: list, span):
    if span.parent is None:
        return None
    return next(s for s in all_spans + [] if s.context.span_id == span.parent.span_id)


def assert_inside(child, parent) -> None:
    assert parent.start_time <= child.start_time <= child.end_time <= parent.end_time


def test_slow_call_nests_under_lazily_made_ancestors(spans):
    import time

    before = time.time_ns()
    assert spans.main() == 1
    after = time.time_ns()
    got = finished()
    assert sorted(s.name for s in got) == ["mid", "nap", "time.sleep", "top"], "fast calls: none"
    top, mid, nap, sleep = (one(got, n) for n in ("top", "mid", "nap", "time.sleep"))
    assert top.parent is None
    assert parent_of(got, mid) is top and parent_of(got, nap) is mid
    assert parent_of(got, sleep) is nap
    assert len({s.context.trace_id for s in got}) == 1
    for child, parent in ((mid, top), (nap, mid), (sleep, nap)):
        assert_inside(child, parent)
    # The call's own times, in epoch ns: the sleep lasts its 30 ms, inside the test's window.
    assert before <= top.start_time and top.end_time <= after
    assert 30_000_000 <= sleep.end_time - sleep.start_time < 1_000_000_000
    # The ancestors began before the slow call (not when their spans were made).
    assert top.start_time < mid.start_time < nap.start_time < sleep.start_time
    attrs = dict(nap.attributes)
    # The called function's qualified name (the span's name is the callee as written).
    assert attrs["code.function.name"] == "otel_prog.nap"
    assert dict(sleep.attributes)["code.function.name"] == "time.sleep"
    assert dict(top.attributes)["code.function.name"] == "otel_prog.top"  # a lazy ancestor
    assert attrs["code.file.path"].endswith("otel_prog.py")
    assert (attrs["code.line.number"], attrs["code.column.number"]) == (13, 5)
    assert attrs["recompyle.caller"] == "mid"
    assert attrs["recompyle.site"] == f"nap ({attrs['code.file.path']}:13:5)"


def test_each_call_gets_its_own_tree(spans):
    spans.main()
    spans.main()
    got = finished()
    tops = named(got, "top")
    assert len(tops) == 2 and tops[0].context.trace_id != tops[1].context.trace_id
    for mid in named(got, "mid"):
        assert parent_of(got, mid) in tops


def test_exception_recorded_with_error_status(spans):
    assert spans.guarded() == "no good"
    got = finished()
    boom = one(got, "boom")
    assert boom.status.status_code is StatusCode.ERROR
    assert "ValueError: no good" in boom.status.description
    (event,) = [e for e in boom.events if e.name == "exception"]
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "no good"
    assert parent_of(got, boom) is one(got, "catches")
    assert one(got, "catches").status.status_code is StatusCode.UNSET
    assert one(got, "nap").status.status_code is StatusCode.UNSET


def test_manual_span_is_the_root_and_earlier_calls_stay_outside(spans):
    tracer = trace.get_tracer("test")

    def inside():
        with tracer.start_as_current_span("request"):
            return spans.main()

    assert spans.outer(inside) == 1
    got = finished()
    request = one(got, "request")
    assert request.parent is None
    top = one(got, "top")
    assert parent_of(got, top) is request
    assert_inside(top, request)
    # `callback()` began before the request span: not made its parent (the span exists
    # already), nor put inside it; being slow, it is a span of its own.
    callback = one(got, "callback")
    assert callback.parent is None and callback.context.trace_id != request.context.trace_id


def test_threads_keep_their_own_parents(spans):
    tracer = trace.get_tracer("test")
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            with tracer.start_as_current_span(name):
                spans.main()
        except BaseException as exc:  # noqa: B036 -- reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"thread-{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    got = finished()
    tops = named(got, "top")
    assert len(tops) == 3
    assert {parent_of(got, t).name for t in tops} == {"thread-0", "thread-1", "thread-2"}
    for top in tops:
        assert_inside(top, parent_of(got, top))
        (mid,) = [m for m in named(got, "mid") if parent_of(got, m) is top]
        assert_inside(mid, top)


def test_slow_call_ending_while_another_thread_makes_its_spans(spans):
    # The span processor of one thread's report waits (releasing the GIL, as an exporter's
    # lock or I/O does) until another thread's slow call has ended: that call is reported
    # too, with its parent, not dropped because a report was under way.
    inside, done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold(span: Any) -> None:
        if threading.current_thread() is worker and span.name == "top":
            inside.set()
            done.wait(10)

    def work() -> None:
        try:
            spans.main()
        except BaseException as exc:  # noqa: B036 -- reported by the test
            errors.append(exc)

    _START_HOOK.hook = hold
    worker = threading.Thread(target=work)
    worker.start()
    try:
        assert inside.wait(10), "the worker's slow call was not reported"
        spans.guarded()
    finally:
        done.set()
        worker.join(30)
    assert not errors
    got = finished()
    assert len(named(got, "nap")) == 2, [s.name for s in got]
    assert parent_of(got, one(got, "boom")) is one(got, "catches")
    assert one(got, "catches").context.trace_id != one(got, "top").context.trace_id


def test_asyncio_tasks_keep_their_own_parents(spans):
    tracer = trace.get_tracer("test")

    async def task(name: str) -> int:
        with tracer.start_as_current_span(name):
            return await spans.job()

    async def main() -> list[int]:
        return await asyncio.gather(task("task-a"), task("task-b"))

    assert asyncio.run(main()) == [2, 2]
    got = finished()
    for name in ("task-a", "task-b"):
        parent = one(got, name)
        children = [s for s in got if s.parent and s.parent.span_id == parent.context.span_id]
        for child in children:
            assert_inside(child, parent)
        # `await asyncio.sleep(0)` lasts as long as the other task's step (a 30 ms nap): a
        # span too, beside `nap` and `slow_async`.
        assert {c.name for c in children} == {"asyncio.sleep", "nap", "slow_async"}, name
        assert [c.name for c in children].count("nap") == 1
        (awaited,) = [c for c in children if c.name == "slow_async"]
        # An awaited call's span lasts until its result is ready, and what it awaited
        # is inside it.
        assert awaited.end_time - awaited.start_time >= 30_000_000
        (inner,) = [s for s in got if s.parent and s.parent.span_id == awaited.context.span_id]
        assert inner.name == "asyncio.sleep" and inner.end_time - inner.start_time >= 30_000_000
        assert_inside(inner, awaited)


def test_under_the_minimum_no_span_and_min_changes(spans):
    otel.instrument(1.0)  # a second: nothing here is that slow
    spans.main()
    assert finished() == []
    otel.instrument("0")
    spans.top()
    assert sorted(s.name for s in finished()) == ["fast"] * 4 + ["mid", "nap", "time.sleep"]


def test_bad_minimum_is_refused():
    with pytest.raises(ValueError, match="not a duration"):
        otel.instrument("fast")
    with pytest.raises(ValueError):
        otel.instrument(-1)


SCRIPT = """
import time

def nap():
    time.sleep(0.03)

def handle():
    nap()

handle()
print("done")
"""


def test_cli_otel_prints_spans_with_console_exporter(tmp_path):
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "demo"}
    proc = run_python("-m", "recompyle", "run", "--otel-min-duration", MIN, str(script), env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("done\n")
    names = [line for line in proc.stdout.splitlines() if line.startswith('    "name"')]
    assert sorted(names) == sorted(
        ['    "name": "handle",', '    "name": "nap",', '    "name": "time.sleep",']
    )
    assert '"service.name": "demo"' in proc.stdout
    assert proc.stderr == "", "--otel alone writes no flat profile"


def test_env_route(tmp_path):
    (tmp_path / "appmod.py").write_text(SCRIPT)
    env = {
        "OTEL_TRACES_EXPORTER": "console",
        "RECOMPYLE_MODULES": "appmod",
        "RECOMPYLE_OTEL": "1",
        "RECOMPYLE_OTEL_MIN_DURATION": MIN,
    }
    proc = run_python("-c", "import appmod", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert '"name": "handle"' in proc.stdout and '"name": "nap"' in proc.stdout
    bad = run_python(
        "-c", "import appmod", env={**env, "RECOMPYLE_OTEL_MIN_DURATION": "soon"}, cwd=tmp_path
    )
    assert bad.returncode == 0 and '"name"' not in bad.stdout
    assert bad.stderr.splitlines()[0].startswith("recompyle: RECOMPYLE_OTEL: ")
    assert "'soon' is not a duration" in bad.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--otel-min-duration", "soon"], {}, "--otel-min-duration: 'soon' is not a duration"),
        (["--otel"], {"OTEL_TRACES_EXPORTER": "nope"}, "no span exporter 'nope' is installed"),
        (
            ["--otel"],
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"},
            "OTEL_EXPORTER_OTLP_PROTOCOL='carrier-pigeon' is not grpc or http/protobuf",
        ),
    ],
)
def test_cli_refuses_bad_settings(tmp_path, args, env, message):
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    proc = run_python("-m", "recompyle", "run", *args, str(script), env=env)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr


EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "otel"


class _Receiver:
    """The README's collector (``examples/otel/collector.py``) on a free port of 127.0.0.1,
    keeping each export it decodes."""

    def __init__(self) -> None:
        sys.path.insert(0, str(EXAMPLES))
        try:
            from collector import Collector
        finally:
            sys.path.remove(str(EXAMPLES))
        self.requests: list = []
        self.server = Collector(0, lambda path, request: self.requests.append((path, request)))

    def __enter__(self) -> _Receiver:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> list[tuple[str, object, object]]:
        """Every span received: (service name, scope name, span)."""
        found = []
        for _, request in self.requests:
            for rs in request.resource_spans:
                service = next(
                    a.value.string_value for a in rs.resource.attributes if a.key == "service.name"
                )
                for ss in rs.scope_spans:
                    found.extend((service, ss.scope.name, span) for span in ss.spans)
        return found


def test_otlp_http_end_to_end(tmp_path):
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="no OTLP/HTTP exporter")
    pytest.importorskip("opentelemetry.proto", reason="no opentelemetry-proto")
    script = tmp_path / "app.py"
    script.write_text(SCRIPT.replace("handle()\n", "handle()\nhandle()\n"))
    with _Receiver() as receiver:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": "checkout",
        }
        proc = run_python(
            "-m", "recompyle", "run", "--otel", "--otel-min-duration", MIN, str(script), env=env
        )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "done\n" and proc.stderr == ""
    assert {path for path, _ in receiver.requests} == {"/v1/traces"}
    got = receiver.spans()
    assert {(service, scope) for service, scope, _ in got} == {("checkout", "recompyle")}
    spans = [span for _, _, span in got]
    assert sorted(s.name for s in spans) == ["handle", "handle", "nap", "nap", "time.sleep"] * 1 + [
        "time.sleep"
    ]
    by_id = {s.span_id: s for s in spans}
    for handle in (s for s in spans if s.name == "handle"):
        assert handle.parent_span_id == b""
        (nap,) = [s for s in spans if s.parent_span_id == handle.span_id]
        (sleep,) = [s for s in spans if s.parent_span_id == nap.span_id]
        assert (nap.name, sleep.name) == ("nap", "time.sleep")
        for child in (nap, sleep):
            parent = by_id[child.parent_span_id]
            assert parent.trace_id == child.trace_id
            assert parent.start_time_unix_nano <= child.start_time_unix_nano
            assert child.end_time_unix_nano <= parent.end_time_unix_nano
        assert sleep.end_time_unix_nano - sleep.start_time_unix_nano >= 30_000_000
        attrs = {a.key: a.value for a in nap.attributes}
        assert attrs["code.file.path"].string_value == str(script)
        assert attrs["code.line.number"].int_value == 8
        assert attrs["recompyle.caller"].string_value == "handle"


FLASK_APP = """
import time
from flask import Flask

app = Flask(__name__)

def lookup(item):
    time.sleep(0.03)
    return item.upper()

def render(item):
    return "<p>" + lookup(item) + "</p>"

@app.route("/item/<item>")
def item_page(item):
    return render(item)
"""


def test_flask_request_span_is_the_parent(instrumented):
    pytest.importorskip("flask", reason="Flask does not install here")
    flask_otel = pytest.importorskip(
        "opentelemetry.instrumentation.flask", reason="no opentelemetry-instrumentation-flask"
    )
    from werkzeug.serving import make_server

    _provider()
    _EXPORTER.clear()
    mod = instrumented(FLASK_APP, "otel_flask_app")
    flask_otel.FlaskInstrumentor().instrument_app(mod.app)
    server = make_server("127.0.0.1", 0, mod.app)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    otel.instrument(MIN)
    try:
        for item in ("a", "b"):
            url = f"http://127.0.0.1:{server.port}/item/{item}"
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.read() == f"<p>{item.upper()}</p>".encode()
    finally:
        otel.uninstrument()
        server.shutdown()
        flask_otel.FlaskInstrumentor().uninstrument_app(mod.app)
    got = finished()
    requests = named(got, "GET /item/<item>")
    assert len(requests) == 2
    for request in requests:
        (render,) = [s for s in got if s.parent and s.parent.span_id == request.context.span_id]
        assert render.name == "render" and render.context.trace_id == request.context.trace_id
        assert_inside(render, request)
        (lookup,) = [s for s in got if s.parent and s.parent.span_id == render.context.span_id]
        assert lookup.name == "lookup"
        assert_inside(lookup, render)
    assert json.dumps(sorted(s.name for s in got)).count("render") == 2


PROGRAMS = Path(__file__).resolve().parent / "programs"


@pytest.mark.parametrize(
    "program",
    [
        "call_errors.py",
        "asyncio_gather.py",
        "asyncio_awaited.py",
        "async_uncaught.py",
        "generators.py",
        "context_managers.py",
        "eval_order.py",
    ],
)
def test_programs_behave_the_same_with_every_call_a_span(program):
    """Fidelity with a span made for every call (minimum 0): the SDK's work at each call's
    end (and exceptions passing through it) changes nothing the program sees."""
    plain = run_python(program, cwd=PROGRAMS)
    spans = run_python(
        "-m",
        "recompyle",
        "run",
        "--otel-min-duration",
        "0",
        program,
        env={"OTEL_TRACES_EXPORTER": "none"},
        cwd=PROGRAMS,
    )
    assert (spans.stdout, spans.stderr, spans.returncode) == (
        plain.stdout,
        plain.stderr,
        plain.returncode,
    )


def test_qualified_name_runs_no_code_of_the_program():
    from functools import partial

    from recompyle.otel import qualified_name

    seen = []

    class Spy:
        def method(self):
            pass

        def __getattr__(self, name):
            seen.append(name)
            raise AttributeError(name)

        def __call__(self):
            pass

    spy = Spy()
    assert qualified_name(spy.method) == f"{__name__}.{Spy.method.__qualname__}"
    assert qualified_name(partial(spy.method)) == f"{__name__}.{Spy.method.__qualname__}"
    assert qualified_name(Spy) == f"{__name__}.{Spy.__qualname__}"
    assert qualified_name(spy) == f"{__name__}.{Spy.__qualname__}.__call__"
    assert qualified_name(len) == "builtins.len"
    assert qualified_name([].append) == "list.append"
    assert qualified_name(None) is None
    assert seen == []
