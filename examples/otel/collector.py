"""A tiny OTLP/HTTP collector for trying ``--otel`` out: it listens on 127.0.0.1 (port 4318,
OTLP/HTTP's own, or the first argument), decodes each export with ``opentelemetry-proto``
and prints the spans it received as a tree, one line per span.

    python examples/otel/collector.py [PORT]
"""

from __future__ import annotations

import http.server
import sys
from typing import Callable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def value(any_value) -> object:
    return getattr(any_value, any_value.WhichOneof("value") or "string_value")


def walk(children: dict[bytes, list], parent: bytes, depth: int) -> None:
    """Print the spans under ``parent``, earliest first, indented by depth."""
    for scope, span in sorted(children.get(parent, []), key=lambda s: s[1].start_time_unix_nano):
        attrs = {a.key: value(a.value) for a in span.attributes}
        where = ""
        if "code.file.path" in attrs:
            where = (
                f"  {attrs['code.file.path'].rsplit('/', 1)[-1]}:"
                f"{attrs['code.line.number']}:{attrs['code.column.number']}"
            )
        ms = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
        error = "  ERROR " + span.status.message if span.status.code == 2 else ""
        print(f"{'  ' * depth}{span.name}  {ms:.1f} ms  [{scope}]{where}{error}")
        walk(children, span.span_id, depth + 1)


def show(request: ExportTraceServiceRequest) -> None:
    for resource_spans in request.resource_spans:
        service = {a.key: value(a.value) for a in resource_spans.resource.attributes}
        spans = [
            (scope_spans.scope.name, span)
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        ids = {span.span_id for _, span in spans}
        children: dict[bytes, list] = {}
        for scope, span in spans:
            parent = span.parent_span_id if span.parent_span_id in ids else b""
            children.setdefault(parent, []).append((scope, span))

        print(f"service {service.get('service.name')}: {len(spans)} spans")
        walk(children, b"", 1)
    sys.stdout.flush()


class Collector(http.server.ThreadingHTTPServer):
    """An OTLP/HTTP receiver on 127.0.0.1: each export request, decoded, goes to
    ``on_export(path, request)``, and the sender gets an empty success answer."""

    def __init__(
        self, port: int, on_export: Callable[[str, ExportTraceServiceRequest], None]
    ) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 -- http.server's name
                request = ExportTraceServiceRequest()
                length = int(self.headers.get("Content-Length", 0))
                request.ParseFromString(self.rfile.read(length))
                on_export(self.path, request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", port), Handler)


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 4318
    Collector(port, lambda path, request: show(request)).serve_forever()
