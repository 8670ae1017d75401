"""OpenTelemetry spans for the instrumented calls that take at least a minimum duration.

A service on many machines is looked at through its tracing backend, not one profile file:
each slow call becomes a span there, under the request span of OpenTelemetry's own
instrumentation (or a span the code made), with the call's own start and end times, its site
as attributes in OpenTelemetry's conventions for code, and its exception.

The decision "is this call slow?" is native (``crates/recompyle_python/src/slow_calls.rs``,
on the profiler's own per-call times), so a call under the minimum costs what the tree
profiler costs; only a slow call comes here, once, when it ends, with the calls still
running around it that have no span yet: they get theirs then, with their own start times,
so a slow call deep inside fast ones still nests under them. Spans are exported by the SDK's
batch span processor, on its own thread.

Routes: ``python -m recompyle run --otel [--otel-min-duration 1ms]``, ``RECOMPYLE_OTEL=1``
(``RECOMPYLE_OTEL_MIN_DURATION``) with ``RECOMPYLE_MODULES``, and :func:`instrument`. Needs
``pip install 'recompyle[otel]'`` (``opentelemetry-api`` and ``-sdk``). A tracer provider
the program (or ``opentelemetry-instrument``) configured is used as it is; otherwise the SDK
is configured from the standard ``OTEL_*`` variables at the first slow call.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from functools import partial
from types import (
    BuiltinFunctionType,
    ClassMethodDescriptorType,
    FunctionType,
    MethodDescriptorType,
    MethodType,
    MethodWrapperType,
    WrapperDescriptorType,
)
from typing import Any, Union

from recompyle import __version__

DEFAULT_MIN_DURATION_NS = 1_000_000
"""Calls of at least 1 ms get spans unless told otherwise."""

Duration = Union[str, float, int, timedelta]


class OtelUnavailable(RuntimeError):
    """OpenTelemetry (API or SDK) cannot be imported here: the message says what to install."""


def unavailable_reason(need_sdk: bool = True) -> str | None:
    """Why spans cannot be made in this interpreter, in one line; None if they can."""
    try:
        import opentelemetry.trace  # noqa: F401

        if need_sdk:
            import opentelemetry.sdk.trace  # noqa: F401
    except ImportError as exc:
        return (
            f"OpenTelemetry is not installed ({exc.name or exc}): pip install 'recompyle[otel]'"
            " (the OpenTelemetry SDK needs Python 3.10 or later in its current releases; "
            f"this is {sys.version_info[0]}.{sys.version_info[1]})"
        )
    return None


def min_duration_ns(value: Duration) -> int:
    """A minimum duration in ns: text as on the command line (``1ms``, ``250us``), a
    ``timedelta``, or a number of seconds (as ``time.perf_counter`` differences are)."""
    if isinstance(value, str):
        from recompyle.config import parse_duration

        return parse_duration(value)
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"min_duration must be a duration, not {type(value).__name__}")
    if not 0 <= value < float("inf"):
        raise ValueError(f"min_duration must be a non-negative number of seconds, not {value!r}")
    return int(value * 1_000_000_000)


class _Spans:
    """The callback the native side hands slow calls to, with what it keeps between them:
    the tracer (made at the first slow call), each site's name and attributes."""

    def __init__(self, exporters: list[Any] | None) -> None:
        #: Entry points of the exporters to configure the SDK with, if no provider is set by then.
        self.exporters = exporters
        self.tracer: Any = None
        self.sites: dict[int, tuple[str, dict[str, Any]]] = {}
        self.failed = False

    def get_tracer(self) -> Any:
        from opentelemetry import trace

        if self.tracer is None:
            if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
                _configure_sdk(self.exporters or [])
            self.tracer = trace.get_tracer("recompyle", __version__)
        return self.tracer

    def site(self, site: int) -> tuple[str, dict[str, Any]]:
        known = self.sites.get(site)
        if known is None:
            from recompyle._core import site_info

            filename, _, line, col, _, _, callee, caller = site_info(site)
            attributes = {
                "code.function.name": callee,
                "code.file.path": os.fsdecode(filename),
                "code.line.number": line,
                "code.column.number": col + 1,
                # As profile viewers name the frame (the id needs 64 unsigned bits: no OTLP int).
                "recompyle.site": f"{callee} ({os.fsdecode(filename)}:{line}:{col + 1})",
                "recompyle.caller": caller,
            }
            known = self.sites[site] = (callee, attributes)
        return known

    def __call__(self, call: Any) -> list[Any]:
        try:
            return self.handle(call)
        except Exception as exc:  # the program keeps running; said once
            if not self.failed:
                self.failed = True
                sys.stderr.write(
                    f"recompyle: OpenTelemetry spans failed ({type(exc).__name__}: {exc}); "
                    "later failures are not shown\n"
                )
            return [None] * len(call.opened)

    def handle(self, call: Any) -> list[Any]:
        from opentelemetry import context, trace

        tracer = self.get_tracer()
        span = call.span
        made: list[Any] = []
        if span is None:
            base = context.get_current()
            current = trace.get_current_span(base)
            current_start = getattr(current, "start_time", None)
            floor = None
            if call.parent is not None and not (
                current.get_span_context().is_valid
                and isinstance(current_start, int)
                and current_start > call.parent_start_ns
            ):
                # The nearest enclosing call with a span is closer than the current span.
                base = trace.set_span_in_context(call.parent, base)
            elif isinstance(current_start, int):
                # Calls that began before the current span did are outside it: no span.
                floor = current_start
            for opened in call.opened:
                if floor is not None and opened.start_ns < floor:
                    made.append(None)
                    continue
                outer = self.start(tracer, opened.site, opened.start_ns, base)
                made.append(outer)
                base = trace.set_span_in_context(outer, base)
            span = self.start(tracer, call.site, call.start_ns, base)
        name = qualified_name(call.callee)
        if name is not None:
            span.set_attribute("code.function.name", name)
        exc = call.exception
        if exc is not None:
            from opentelemetry.trace import Status, StatusCode

            span.record_exception(exc, timestamp=call.end_ns)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end(end_time=call.end_ns)
        return made

    def start(self, tracer: Any, site: int, start_ns: int, ctx: Any) -> Any:
        # `code.function.name` is the callee text until the call ends and its callee is known
        # (a span made for an enclosing call is ended by that call's own slow-call report).
        name, attributes = self.site(site)
        return tracer.start_span(name, context=ctx, attributes=attributes, start_time=start_ns)


_ACTIVE: list[_Spans] = []


def instrument(min_duration: Duration = DEFAULT_MIN_DURATION_NS / 1e9) -> None:
    """Make a span for every instrumented call lasting at least ``min_duration`` (seconds,
    a ``timedelta`` or text like ``"1ms"``), from now on. Calling it again changes the
    minimum. Raises :class:`OtelUnavailable` when OpenTelemetry cannot be imported, and
    ``ValueError`` for a bad ``OTEL_TRACES_EXPORTER``."""
    _instrument_ns(min_duration_ns(min_duration))


def _instrument_ns(min_ns: int) -> None:
    configured = not _needs_sdk()
    reason = unavailable_reason(need_sdk=not configured)
    if reason:
        raise OtelUnavailable(reason)
    # Exporters are found now, so a wrong OTEL_TRACES_EXPORTER is said before the program runs.
    spans = _Spans(None if configured else exporters_from_env())
    from recompyle._core import profiler_start, slow_calls_listen

    if not _ACTIVE:
        # The native tree is where each call's start and end are taken.
        profiler_start(tree=True)
    else:
        spans.tracer = _ACTIVE[0].tracer
        _ACTIVE.clear()
    _ACTIVE.append(spans)
    slow_calls_listen(spans, min_ns)


def uninstrument() -> None:
    """No more spans (spans of calls still running are not ended)."""
    from recompyle._core import profiler_stop, slow_calls_listen

    if _ACTIVE:
        _ACTIVE.clear()
        slow_calls_listen(None)
        profiler_stop(tree=True)


def _needs_sdk() -> bool:
    """No tracer provider is set yet, so the SDK will configure one."""
    try:
        from opentelemetry import trace
    except ImportError:
        return True
    return isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def _entry_points(group: str) -> dict[str, Any]:
    from importlib import metadata

    # Checked on the version, not with hasattr, so that type checkers see each branch's API.
    if sys.version_info >= (3, 10):
        chosen = metadata.entry_points(group=group)
    else:  # 3.9: a dict of groups
        chosen = metadata.entry_points().get(group, [])
    return {ep.name: ep for ep in chosen}


_PROTOCOLS = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}


def exporters_from_env() -> list[Any]:
    """The span exporters ``OTEL_TRACES_EXPORTER`` names (default ``otlp``), as the SDK's
    own configuration reads it: ``otlp`` is gRPC or HTTP by ``OTEL_EXPORTER_OTLP_PROTOCOL``
    (unset: whichever is installed, gRPC first), ``none`` is none, any other name an
    installed ``opentelemetry_traces_exporter`` entry point (returned unloaded: importing
    an exporter takes time the program has not asked for yet). Raises ``ValueError`` naming
    one that is not installed."""
    names = os.environ.get("OTEL_TRACES_EXPORTER", "otlp")
    available = _entry_points("opentelemetry_traces_exporter")
    makers: list[Any] = []
    for raw in names.split(","):
        name = raw.strip().lower()
        if not name or name == "none":
            continue
        if name == "otlp":
            protocol = (
                os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or ""
            ).strip()
            if protocol:
                if protocol not in _PROTOCOLS:
                    raise ValueError(
                        f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not grpc or http/protobuf"
                    )
                name = _PROTOCOLS[protocol]
            else:
                name = next((n for n in _PROTOCOLS.values() if n in available), name)
        if name not in available:
            hint = "opentelemetry-exporter-otlp-proto-http" if name.startswith("otlp") else ""
            raise ValueError(
                f"OTEL_TRACES_EXPORTER: no span exporter {name!r} is installed"
                + (f" (pip install {hint})" if hint else "")
            )
        makers.append(available[name])
    return makers


def _configure_sdk(exporters: list[Any]) -> None:
    """The SDK set up as its own configuration does from the environment: a resource from
    ``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES``, the sampler from
    ``OTEL_TRACES_SAMPLER``, each exporter behind a batch span processor (exporting on its
    own thread; the provider flushes at exit)."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create())
    for entry_point in exporters:
        provider.add_span_processor(BatchSpanProcessor(entry_point.load()()))
    trace.set_tracer_provider(provider)


_FUNCTION_TYPES = (
    FunctionType,
    BuiltinFunctionType,
    MethodDescriptorType,
    WrapperDescriptorType,
    MethodWrapperType,
    ClassMethodDescriptorType,
)
_TYPE_QUALNAME = type.__dict__["__qualname__"]
_TYPE_MODULE = type.__dict__["__module__"]


def qualified_name(callee: object) -> str | None:
    """The called object's fully qualified name (``module.Class.method``), as OpenTelemetry's
    ``code.function.name`` wants it, or None (then the callee text stays). Read only from
    types whose attributes run no code of the program (functions, builtins, methods,
    ``functools.partial``, classes; any other callable is named by its type's
    ``__call__``): an ``__getattr__`` of the program's must not see the lookups."""
    if callee is None:
        return None
    for _ in range(4):  # a method of a partial of a method...
        kind = type(callee)
        if kind is MethodType:
            callee = callee.__func__  # type: ignore[attr-defined]
        elif kind is partial:
            callee = callee.func  # type: ignore[attr-defined]
        else:
            break
    kind = type(callee)
    if kind in _FUNCTION_TYPES:
        qualname = getattr(callee, "__qualname__", None)
        module = getattr(callee, "__module__", None)
    elif issubclass(kind, type):
        qualname = _TYPE_QUALNAME.__get__(callee, kind)
        module = _TYPE_MODULE.__get__(callee, kind)
    else:
        qualname = _TYPE_QUALNAME.__get__(kind, type(kind)) + ".__call__"
        module = _TYPE_MODULE.__get__(kind, type(kind))
    if not isinstance(qualname, str):
        return None
    return f"{module}.{qualname}" if isinstance(module, str) and module else qualname


def start(min_duration: str | None, option: str) -> str | None:
    """Instrument with ``min_duration`` as typed for ``option`` (None: the default); the
    one-line reason when it cannot (OpenTelemetry missing, a bad duration or exporter),
    else None."""
    try:
        min_ns = DEFAULT_MIN_DURATION_NS if min_duration is None else min_duration_ns(min_duration)
    except ValueError as exc:
        return f"{option}: {exc}"
    try:
        _instrument_ns(min_ns)
    except OtelUnavailable as exc:
        return str(exc)
    except ValueError as exc:
        return str(exc)
    return None
