"""A loopback stand-in for one app slot's breaker admin API (the contract in docs/health-and-apm.md).

    with BreakerApp("green", "v2", token="s3cret") as app:
        app.url            # http://127.0.0.1:<port>
        app.breakers       # mutable: {name: {state, failures, ...}}
        app.requests       # [(method, path, authorization header)]
"""

import json
from http.server import BaseHTTPRequestHandler

from ansible_collections.unitehub.platform.tests.support.loopback import HttpServer


def breaker(name, state="CLOSED", failures=0, trips=0):
    return {"name": name, "state": state, "failures": failures, "successes": 0, "trips": trips,
            "opened_at": "2026-01-06T10:00:00Z" if state != "CLOSED" else None, "last_failure_at": None,
            "failure_threshold": 5, "reset_timeout": 60, "success_threshold": 2}


class BreakerApp:
    def __init__(self, slot, version, token="s3cret", breakers=None):
        self.slot, self.version, self.token = slot, version, token
        self.breakers = breakers if breakers is not None else {"redis": breaker("redis"), "database": breaker("database")}
        self.requests = []
        self.list_status = 200
        app = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-App-Slot", app.slot)
                self.send_header("X-App-Version", app.version)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                app.requests.append(("GET", self.path, self.headers.get("Authorization")))
                if self.path != "/api/admin/breakers":
                    return self._send(404, {"error": "not found"})
                if app.list_status != 200:
                    return self._send(app.list_status, {"error": "boom"})
                return self._send(200, {"slot": app.slot, "version": app.version, "breakers": app.breakers})

            def do_POST(self):
                app.requests.append(("POST", self.path, self.headers.get("Authorization")))
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                parts = self.path.strip("/").split("/")
                if len(parts) != 5 or parts[:3] != ["api", "admin", "breakers"] or parts[4] not in ("reset", "open"):
                    return self._send(404, {"error": "not found"})
                if self.headers.get("Authorization") != "Bearer %s" % app.token:
                    return self._send(401, {"error": "unauthorized"})
                name, action = parts[3], parts[4]
                if name not in app.breakers:
                    return self._send(404, {"error": "unknown breaker %s" % name})
                if action == "reset":
                    app.breakers[name] = dict(breaker(name), trips=app.breakers[name]["trips"])
                else:
                    app.breakers[name] = dict(breaker(name, "OPEN"), trips=app.breakers[name]["trips"] + 1)
                return self._send(200, app.breakers[name])

        self.handler = Handler
        self.server = self.url = None

    def posts(self):
        return [r for r in self.requests if r[0] == "POST"]

    def __enter__(self):
        self.server = HttpServer(self.handler)
        self.url = self.server.url
        return self

    def __exit__(self, *exc):
        self.server.close()
