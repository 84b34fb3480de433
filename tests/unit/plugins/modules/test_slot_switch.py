# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the verification GET of the unitehub.platform.slot_switch module.

``make_fetch`` reads the slot and version headers that the load balancer's answer
carries. It runs here against an http.server on 127.0.0.1; the switch logic
itself is tested in tests/unit/plugins/module_utils/test_slot_switch.py.
"""

from __future__ import annotations

import socket
from http.server import BaseHTTPRequestHandler

import pytest

from ansible_collections.unitehub.platform.plugins.modules.slot_switch import make_fetch
from ansible_collections.unitehub.platform.tests.unit.loopback import serve_http


class Handler(BaseHTTPRequestHandler):
    """/api/version answers 200 from green v2; /down answers 503 from blue v1."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/down":
            code, slot, version = 503, "blue", "v1"
        else:
            code, slot, version = 200, "green", "v2"
        body = b'{"version": "%s", "slot": "%s"}' % (version.encode(), slot.encode())
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-App-Slot", slot)
        self.send_header("X-App-Version", version)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(name="server")
def server_fixture():
    with serve_http(Handler) as url:
        yield url


def closed_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_reads_slot_and_version_of_a_success(server):
    assert make_fetch(server + "/api/version")() == ("green", "v2", None)


def test_reads_slot_and_version_of_an_error_status(server):
    assert make_fetch(server + "/down")() == ("blue", "v1", "HTTP 503")


def test_refused_connection_is_an_error_naming_the_url():
    url = "http://127.0.0.1:%d/api/version" % closed_port()
    slot, version, error = make_fetch(url, timeout=1.0)()
    assert (slot, version) == (None, None)
    assert error.startswith(url + ": ")
    assert "refused" in error.lower()


def test_proxy_environment_is_ignored(server, monkeypatch):
    # A proxy that refuses every connection: the answer can only come from the server itself.
    proxy = "http://127.0.0.1:%d" % closed_port()
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert make_fetch(server + "/api/version")() == ("green", "v2", None)
