# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health endpoints for probe tests: the app's health documents, an HTTP handler that
serves them (plus broken variants), and a socket that accepts and never answers."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler

SYSTEM_FAIL = {
    "status": "fail",
    "version": "v2",
    "releaseId": "r42",
    "checks": {
        "database:responseTime": [
            {"status": "fail", "observedValue": 2003, "observedUnit": "ms", "time": "2026-01-01T00:00:00Z",
             "output": "connection refused"},
        ],
        "redis:responseTime": [
            {"status": "warn", "observedValue": 180, "observedUnit": "ms", "time": "2026-01-01T00:00:00Z",
             "output": "slow"},
        ],
        "ai:config": [{"status": "pass", "observedValue": True, "time": "2026-01-01T00:00:00Z"}],
    },
}
SYSTEM_WARN = {
    "status": "warn",
    "version": "v2",
    "checks": {"redis:responseTime": [{"status": "warn", "observedValue": 180, "observedUnit": "ms",
                                       "output": "slow"}]},
}
SYSTEM_PASS = {
    "status": "pass",
    "version": "v2",
    "releaseId": "r42",
    "checks": {"database:responseTime": [{"status": "pass", "observedValue": 3, "observedUnit": "ms"}]},
}


class HealthHandler(BaseHTTPRequestHandler):
    """Serves the app's health contract, plus a few broken variants."""

    ROUTES = {
        "/api/health/system/pass": (200, "application/health+json", SYSTEM_PASS),
        "/api/health/system/warn": (206, "application/health+json", SYSTEM_WARN),
        "/api/health/system/fail": (503, "application/health+json", SYSTEM_FAIL),
        "/api/health/live": (200, "text/plain", "OK"),
        "/broken": (502, "text/html", "<html>Bad Gateway</html>"),
        "/not-json": (200, "application/health+json", "<html>oops</html>"),
    }

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        if self.path == "/huge":
            self.send_response(200)
            self.send_header("Content-Type", "application/health+json")
            self.end_headers()
            self.wfile.write(b'{"status": "pass", "output": "')
            try:
                for _unused in range(64):  # 4 MiB, far past the cap; the client stops reading
                    self.wfile.write(b"x" * 65536)
            except OSError:
                return
            return
        if self.path == "/echo-host":
            self._send(200, "application/health+json", {"status": "pass", "output": self.headers.get("Host")})
            return
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        code, content_type, body = self.ROUTES.get(self.path, (404, "text/plain", "not found"))
        self._send(code, content_type, body)

    def _send(self, code, content_type, body):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-App-Slot", "green")
        self.send_header("X-App-Version", "v2")
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def hanging_listener():
    """A port on 127.0.0.1 that accepts connections and never answers."""
    """Accepts connections and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
    thread.join(5)
    for conn in accepted:
        conn.close()
    listener.close()
