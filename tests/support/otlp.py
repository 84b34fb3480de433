# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An OTLP/HTTP receiver on loopback, for the exporter tests and the APM bench.

It takes JSON (the deploy_events callback) and protobuf (the app's OpenTelemetry SDK);
protobuf is decoded with opentelemetry-proto into the OTLP/JSON shape (hex ids, enums as
numbers), so a test reads both alike.

    receiver = OtlpReceiver()          # a free port; OtlpReceiver(port) comes back on a known one
    ...                                # point the exporter at receiver.endpoint
    receiver.spans()                   # every span received, in arrival order
    receiver.metrics()                 # every metric received, in arrival order
    receiver.close()                   # from here on the endpoint refuses connections
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
from typing import NamedTuple

from ansible_collections.unitehub.platform.tests.support.loopback import HttpServer

SIGNAL_PATHS = ("/v1/traces", "/v1/metrics")
JSON = "application/json"
PROTOBUF = "application/x-protobuf"
ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def decode_protobuf(path, body):
    """An OTLP protobuf export request as the dict its OTLP/JSON form would give."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    message = ExportTraceServiceRequest() if path == "/v1/traces" else ExportMetricsServiceRequest()
    message.ParseFromString(body)
    return _hex_ids(MessageToDict(message, use_integers_for_enums=True))


def _hex_ids(value):
    """OTLP/JSON writes trace and span ids in hex; protobuf's JSON mapping writes bytes in base64."""
    if isinstance(value, list):
        return [_hex_ids(item) for item in value]
    if isinstance(value, dict):
        return {k: base64.b64decode(v).hex() if k in ID_FIELDS else _hex_ids(v) for k, v in value.items()}
    return value


class OtlpPost(NamedTuple):
    """One accepted export: its path, Content-Type, decoded body and Authorization header."""

    path: str
    content_type: str
    body: dict
    authorization: str | None


class OtlpReceiver:
    """Keeps each JSON or protobuf POST to /v1/traces or /v1/metrics in ``received`` and answers
    it with ``status``. Any other path is answered 404, any other Content-Type 415; both are kept
    in ``rejected`` (their paths), so a test can show that nothing went astray."""

    def __init__(self, port=0, status=200):
        self.received: list[OtlpPost] = []
        self.rejected: list[str] = []
        self.bytes_received = 0  # body bytes of the accepted exports
        lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                content_type = self.headers.get("Content-Type")
                if self.path not in SIGNAL_PATHS or content_type not in (JSON, PROTOBUF):
                    with lock:
                        receiver.rejected.append(self.path)
                    self._reply(404 if self.path not in SIGNAL_PATHS else 415)
                    return
                decoded = json.loads(body) if content_type == JSON else decode_protobuf(self.path, body)
                post = OtlpPost(self.path, content_type, decoded, self.headers.get("Authorization"))
                with lock:
                    receiver.received.append(post)
                    receiver.bytes_received += len(body)
                self._reply(status)

            def _reply(self, code):
                self.send_response(code)
                # No keep-alive: once close() returns, no open connection still takes exports.
                self.send_header("Connection", "close")
                self.send_header("Content-Type", JSON)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self._http = HttpServer(Handler, port)
        self.port = self._http.port
        self.endpoint = self._http.url

    def resource_spans(self):
        return [rs for post in list(self.received) if post.path == "/v1/traces" for rs in post.body["resourceSpans"]]

    def spans(self):
        return [span for rs in self.resource_spans() for ss in rs["scopeSpans"] for span in ss["spans"]]

    def metrics(self):
        return [metric for post in list(self.received) if post.path == "/v1/metrics"
                for rm in post.body["resourceMetrics"] for sm in rm["scopeMetrics"] for metric in sm["metrics"]]

    def close(self):
        self._http.close()
