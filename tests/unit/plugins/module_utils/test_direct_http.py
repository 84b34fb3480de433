"""direct_http: one request to the named host, any status returned, bodies capped,
no proxy from the environment."""

from __future__ import annotations

import ssl
from http.server import BaseHTTPRequestHandler

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils.direct_http import read_at_most, request, url_host
from ansible_collections.unitehub.platform.plugins.module_utils.health_format import MAX_BODY_BYTES
from ansible_collections.unitehub.platform.tests.support.loopback import serve_http
from ansible_collections.unitehub.platform.tests.support.tls import make_ca, serve_https


class Handler(BaseHTTPRequestHandler):
    """Echoes method, path and the agent; /teapot answers 418."""

    def log_message(self, *args):
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        sent = self.rfile.read(length) if length else b""
        body = b"%s %s %s %s" % (self.command.encode(), self.path.encode(),
                                 self.headers["User-Agent"].encode(), sent)
        self.send_response(418 if self.path == "/teapot" else 200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-App-Slot", "green")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer


@pytest.fixture(name="base")
def base_fixture():
    with serve_http(Handler) as url:
        yield url


def test_get_keeps_path_and_query_and_returns_headers(base):
    response = request(base + "/api/version?n=1", agent="probe")
    assert response.status == 200 and response.headers["X-App-Slot"] == "green"
    assert response.body == b"GET /api/version?n=1 probe "


def test_an_error_status_is_an_answer_not_an_exception(base):
    assert request(base + "/teapot").status == 418


def test_post_sends_the_body(base):
    assert request(base + "/x", method="POST", body=b"hi").body.endswith(b"/x unitehub.platform hi")


def test_body_is_read_up_to_the_cap_plus_one(base):
    assert len(request(base + "/" + "a" * 200, max_bytes=10).body) == 11


def test_proxy_environment_is_not_used(base, monkeypatch):
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    assert request(base + "/").status == 200


@pytest.mark.parametrize("url, fragment", [
    ("ftp://127.0.0.1/", "scheme must be http or https"),
    ("http:///path", "there is no host"),
    ("http://127.0.0.1:99999/", "(?i)port out of range"),
])
def test_bad_urls_are_refused(url, fragment):
    with pytest.raises(ValueError, match=fragment):
        request(url)


def test_a_refused_connection_raises_oserror():
    with pytest.raises(ConnectionRefusedError):
        request("http://127.0.0.1:9/", timeout=1)


class EndlessStream:
    """A body that never ends; counts what was read from it."""

    def __init__(self):
        self.read_bytes = 0

    def read(self, size=-1):
        assert size is not None and size > 0, "read_at_most must never read without a limit"
        chunk = min(size, 65536)
        self.read_bytes += chunk
        return b"x" * chunk


def test_read_at_most_never_reads_past_its_limit():
    stream = EndlessStream()
    assert len(read_at_most(stream, MAX_BODY_BYTES + 1)) == MAX_BODY_BYTES + 1
    assert stream.read_bytes == MAX_BODY_BYTES + 1


def test_read_at_most_returns_a_short_body_whole():
    class Short:
        def __init__(self):
            self.parts = [b'{"status"', b': "pass"}', b""]

        def read(self, size):
            return self.parts.pop(0)

    assert read_at_most(Short(), 100) == b'{"status": "pass"}'


def test_url_host_brackets_an_ipv6_literal_once():
    assert [url_host(host) for host in ("127.0.0.1", "localhost", "::1", "[::1]")] == [
        "127.0.0.1", "localhost", "[::1]", "[::1]"]


def test_https_is_checked_against_ca_path_only(tmp_path):
    ca = make_ca(tmp_path)
    with serve_https(Handler, ca) as base:
        assert request(base + "/api/version", ca_path=ca.ca_path, agent="tls").body == b"GET /api/version tls "
        # The system's CAs never signed this certificate, so without ca_path it is refused.
        with pytest.raises(ssl.SSLCertVerificationError):
            request(base + "/")
        assert request(base + "/", validate_certs=False).status == 200


def test_https_with_another_ca_is_refused(tmp_path):
    (tmp_path / "other").mkdir()
    ca, other = make_ca(tmp_path), make_ca(tmp_path / "other")
    with serve_https(Handler, ca) as base:
        with pytest.raises(ssl.SSLCertVerificationError):
            request(base + "/", ca_path=other.ca_path)


def test_a_missing_ca_path_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        request("https://127.0.0.1:9/", ca_path=str(tmp_path / "missing.crt"), timeout=1)
