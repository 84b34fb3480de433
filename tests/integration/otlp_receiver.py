# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real OTLP/HTTP JSON receiver on loopback for the integration tests."""

from __future__ import annotations

import http.server
import json
import threading


class OtlpReceiver:
    """An OTLP/HTTP JSON receiver on loopback: stores each POST to /v1/traces or /v1/metrics."""

    PATHS = ("/v1/traces", "/v1/metrics")

    def __init__(self, port: int = 0):
        self.payloads: list = []  # (path, decoded JSON)
        self.rejected: list = []  # paths that are not OTLP signal paths
        payloads, rejected = self.payloads, self.rejected

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path not in OtlpReceiver.PATHS or self.headers.get("Content-Type") != "application/json":
                    rejected.append(self.path)
                    self._reply(404 if self.path not in OtlpReceiver.PATHS else 415)
                    return
                payloads.append((self.path, json.loads(body)))
                self._reply(200)

            def _reply(self, status):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    def resource_spans(self):
        return [rs for path, body in list(self.payloads) if path == "/v1/traces" for rs in body["resourceSpans"]]

    def spans(self):
        return [span for rs in self.resource_spans() for ss in rs["scopeSpans"] for span in ss["spans"]]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
