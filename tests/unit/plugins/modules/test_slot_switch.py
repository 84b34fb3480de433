# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the verification GET of the unitehub.platform.slot_switch module.

``make_fetch`` reads the X-Upstream-Slot header that the load balancer sets from
the server it reached; headers the app sets do not count. It runs here against an http.server on 127.0.0.1; the switch logic
itself is tested in tests/unit/plugins/module_utils/test_slot_switch.py.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

import pytest

from ansible_collections.unitehub.platform.plugins.modules.slot_switch import make_fetch
from ansible_collections.unitehub.platform.tests.support.loopback import free_port, serve_http
from ansible_collections.unitehub.platform.tests.support.tls import make_ca, serve_https


class Handler(BaseHTTPRequestHandler):
    """/ answers 200 from green; /down answers 503 from blue; /app-only carries only the app's
    own X-App-Slot header, as an answer that did not pass the collection's nginx site."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        code, slot = (503, "blue") if self.path == "/down" else (200, "green")
        body = b"ok"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-App-Slot", slot)
        if self.path != "/app-only":
            self.send_header("X-Upstream-Slot", slot)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(name="server")
def server_fixture():
    with serve_http(Handler) as url:
        yield url


def test_reads_the_slot_of_a_success(server):
    assert make_fetch(server + "/")() == ("green", None)


def test_reads_the_slot_of_an_error_status(server):
    assert make_fetch(server + "/down")() == ("blue", "HTTP 503")


def test_the_apps_own_slot_header_does_not_count(server):
    assert make_fetch(server + "/app-only")() == (None, None)


def test_refused_connection_is_an_error_naming_the_url():
    url = "http://127.0.0.1:%d/api/version" % free_port()
    slot, error = make_fetch(url, timeout=1.0)()
    assert slot is None
    assert error.startswith(url + ": ")
    assert "refused" in error.lower()


def test_proxy_environment_is_ignored(server, monkeypatch):
    # A proxy that refuses every connection: the answer can only come from the server itself.
    proxy = "http://127.0.0.1:%d" % free_port()
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert make_fetch(server + "/")() == ("green", None)


def test_https_is_verified_with_ca_path(tmp_path):
    ca = make_ca(tmp_path)
    with serve_https(Handler, ca) as url:
        assert make_fetch(url + "/", ca_path=ca.ca_path)() == ("green", None)
        slot, error = make_fetch(url + "/")()  # the system's CAs do not know this one
        assert slot is None and "CERTIFICATE_VERIFY_FAILED" in error
