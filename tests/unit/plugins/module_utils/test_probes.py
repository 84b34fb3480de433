"""Unit tests for plugins/module_utils/probes.py."""

from __future__ import annotations

import json
import time

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import postgres_client
from ansible_collections.unitehub.platform.plugins.module_utils.health_format import failing_from_checks
from ansible_collections.unitehub.platform.plugins.module_utils.health_targets import build_probe, resolve_target
from ansible_collections.unitehub.platform.plugins.module_utils.health_wait import run_target
from ansible_collections.unitehub.platform.plugins.module_utils.probes import (
    judge_http_response,
    probe_http,
    probe_pgbouncer,
    probe_postgres,
    probe_tcp,
)
from ansible_collections.unitehub.platform.tests.support.health_endpoints import (
    SYSTEM_FAIL,
    SYSTEM_PASS,
    SYSTEM_WARN,
    HealthHandler,
)
from ansible_collections.unitehub.platform.tests.support.fake_clock import FakeClock
from ansible_collections.unitehub.platform.tests.support.loopback import free_port
from ansible_collections.unitehub.platform.tests.support.tls import make_ca, serve_https


# ---------------------------------------------------------------------------
# Judging an HTTP answer (pure)
# ---------------------------------------------------------------------------

HEALTH_HEADERS = {"Content-Type": "application/health+json; charset=utf-8", "X-App-Slot": "green",
                  "X-App-Version": "v2"}


def test_judge_health_documents_by_their_status():
    passed = judge_http_response(200, HEALTH_HEADERS, json.dumps(SYSTEM_PASS).encode(), 1.5)
    assert (passed.status, passed.http_status, passed.slot, passed.version, passed.error) == (
        "pass", 200, "green", "v2", None)
    assert passed.checks["database:responseTime"][0]["observedValue"] == 3
    assert passed.latency_ms == 1.5
    warned = judge_http_response(206, HEALTH_HEADERS, json.dumps(SYSTEM_WARN).encode())
    assert warned.status == "warn" and warned.error is None
    failed = judge_http_response(503, HEALTH_HEADERS, json.dumps(SYSTEM_FAIL).encode())
    assert failed.status == "fail"
    assert failed.error is None  # the code agrees with the body; the checks say why
    assert "database:responseTime" in failed.checks


def test_judge_a_non_2xx_code_fails_whatever_the_body_says():
    result = judge_http_response(503, HEALTH_HEADERS, json.dumps(SYSTEM_PASS).encode())
    assert result.status == "fail"
    assert result.error == "HTTP 503 although the body says pass"


def test_judge_a_2xx_code_defers_to_the_body():
    result = judge_http_response(200, HEALTH_HEADERS, json.dumps(SYSTEM_FAIL).encode())
    assert result.status == "fail"


def test_judge_takes_the_version_from_the_body_without_the_header():
    result = judge_http_response(200, {"Content-Type": "application/health+json"}, json.dumps(SYSTEM_PASS).encode())
    assert result.version == "v2" and result.slot is None


def test_judge_a_malformed_health_body_fails_with_the_reason():
    result = judge_http_response(200, HEALTH_HEADERS, b'{"checks": {}}')
    assert result.status == "fail"
    assert result.error == ("HTTP 200 with a malformed health body: health document has no 'status' "
                            "(one of pass, warn, fail); keys present: checks")


def test_judge_plain_json_with_a_status_is_a_health_document():
    result = judge_http_response(200, {"Content-Type": "application/json"}, b'{"status": "UP"}')
    assert result.status == "pass"
    result = judge_http_response(200, {"Content-Type": "application/json"}, b'{"status": "down"}')
    assert result.status == "fail"


def test_judge_plain_json_without_a_status_goes_by_the_code():
    assert judge_http_response(200, {"Content-Type": "application/json"}, b'{"version": "v2"}').status == "pass"
    assert judge_http_response(200, {"Content-Type": "application/json"}, b"not json").status == "pass"
    failed = judge_http_response(500, {"Content-Type": "application/json"}, b'{"error": "boom"}')
    assert (failed.status, failed.error) == ("fail", "HTTP 500")


def test_judge_plain_endpoints_pass_on_2xx_only():
    assert judge_http_response(200, {"Content-Type": "text/plain"}, b"OK").status == "pass"
    assert judge_http_response(204, {}, b"").status == "pass"
    failed = judge_http_response(502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>")
    assert (failed.status, failed.error) == ("fail", "HTTP 502")
    redirected = judge_http_response(302, {"Location": "https://example.invalid/health"}, b"")
    assert redirected.status == "fail"
    assert redirected.error == ("HTTP 302 redirect to https://example.invalid/health; probe that URL instead "
                                "(redirects are not followed)")


@pytest.mark.parametrize("path, status, code", [
    ("/api/health/system/pass", "pass", 200),
    ("/api/health/system/warn", "warn", 206),
    ("/api/health/system/fail", "fail", 503),
])
def test_probe_http_reads_health_json(health_endpoint, path, status, code):
    result = probe_http(health_endpoint + path, request_timeout=2)
    assert (result.status, result.http_status, result.slot, result.version) == (status, code, "green", "v2")
    assert result.latency_ms is not None and result.latency_ms >= 0


def test_probe_http_reports_failing_checks_of_a_503(health_endpoint):
    result = probe_http(health_endpoint + "/api/health/system/fail")
    assert (result.status, result.http_status, result.error) == ("fail", 503, None)
    assert failing_from_checks(result.checks) == [{
        "name": "database:responseTime", "status": "fail", "output": "connection refused",
        "observedValue": 2003, "observedUnit": "ms"}]


def test_probe_http_plain_200_counts_as_pass(health_endpoint):
    result = probe_http(health_endpoint + "/api/health/live")
    assert (result.status, result.http_status, result.error, result.checks) == ("pass", 200, None, {})


def test_probe_http_plain_errors_and_malformed_bodies_fail(health_endpoint):
    broken = probe_http(health_endpoint + "/broken")
    assert (broken.status, broken.error) == ("fail", "HTTP 502")
    missing = probe_http(health_endpoint + "/nope")
    assert (missing.status, missing.error) == ("fail", "HTTP 404")
    malformed = probe_http(health_endpoint + "/not-json")
    assert malformed.status == "fail"
    assert malformed.error.startswith("HTTP 200 with a malformed health body: health body is not JSON")


def test_probe_http_does_not_follow_redirects(health_endpoint):
    result = probe_http(health_endpoint + "/redirect")
    assert result.status == "fail"
    assert result.error == ("HTTP 302 redirect to http://127.0.0.1:1/elsewhere; probe that URL instead "
                            "(redirects are not followed)")


def test_probe_http_refuses_a_huge_body_without_reading_it_all(health_endpoint):
    result = probe_http(health_endpoint + "/huge", request_timeout=5)
    assert result.status == "fail"
    assert "health body is larger than the 1048576-byte cap" in result.error


def test_probe_http_sends_the_host_header(health_endpoint):
    result = probe_http(health_endpoint + "/echo-host", host_header="unitehub.example")
    assert result.status == "pass"
    assert result.output == "unitehub.example"


def test_probe_http_times_out_within_request_timeout_on_a_hanging_socket(hanging_port):
    started = time.monotonic()
    result = probe_http("http://127.0.0.1:%d/api/health/system" % hanging_port, request_timeout=0.5)
    took = time.monotonic() - started
    assert (result.status, result.error) == ("fail", "timed out after 0.5 s")
    assert 0.4 <= took < 1.0


def test_probe_http_to_a_closed_port_is_refused_clearly():
    result = probe_http("http://127.0.0.1:%d/api/health/system" % free_port(), request_timeout=1)
    assert (result.status, result.error, result.http_status) == ("fail", "connection refused", None)


def test_probe_https_to_a_plain_socket_fails_without_traceback(hanging_port):
    result = probe_http("https://127.0.0.1:%d/" % hanging_port, request_timeout=0.5)
    assert result.status == "fail" and result.error == "timed out after 0.5 s"


def test_probe_https_target_checks_the_certificate_against_ca_path(tmp_path):
    ca = make_ca(tmp_path)
    with serve_https(HealthHandler, ca) as base:
        url = base + "/api/health/system/pass"
        trusted = build_probe(resolve_target({"type": "http", "url": url, "ca_path": ca.ca_path}))()
        assert (trusted.status, trusted.http_status) == ("pass", 200)
        unknown = build_probe(resolve_target({"type": "http", "url": url}))()
        assert unknown.status == "fail" and unknown.error.startswith("TLS certificate verification failed")
        assert "set ca_path to the certificate of the CA that signed it" in unknown.error


def test_probe_tcp(health_endpoint, hanging_port):
    assert probe_tcp("127.0.0.1", int(health_endpoint.rsplit(":", 1)[1])).status == "pass"
    assert probe_tcp("127.0.0.1", hanging_port).status == "pass"
    refused = probe_tcp("127.0.0.1", free_port())
    assert (refused.status, refused.error) == ("fail", "connection refused")


def test_run_target_message_names_the_failing_check(health_endpoint):
    url = health_endpoint + "/api/health/system/fail"
    clock = FakeClock()
    spec = resolve_target({"type": "http", "url": url, "timeout": 10, "interval": 5})
    result = run_target(spec, clock=clock, sleep=clock.sleep)
    assert result["msg"] == "%s is fail after 3 attempts in 10.0 s: database:responseTime fail " \
                            "(connection refused)" % url
    assert (result["ok"], result["status"], result["reason"], result["attempts"], result["http_status"]) == (
        False, "fail", "timeout", 3, 503)
    assert [f["name"] for f in result["failing"]] == ["database:responseTime", "redis:responseTime"]
    assert (result["slot"], result["version"]) == ("green", "v2")


def test_run_target_passes_against_a_healthy_endpoint(health_endpoint):
    spec = resolve_target({"type": "http", "url": health_endpoint + "/api/health/system/warn", "expect": "pass_or_warn"})
    result = run_target(spec)
    assert (result["ok"], result["status"], result["attempts"], result["failing"], result["error"]) == (
        True, "warn", 1, [], None)
    assert result["msg"] == "%s/api/health/system/warn is warn after 1 attempt in %.1f s" % (
        health_endpoint, result["elapsed"])


def test_probe_postgres_refused_is_one_clear_line():
    result = probe_postgres("127.0.0.1", free_port(), user="unitehub", password="pw", database="unitehub",
                            request_timeout=1)
    assert (result.status, result.error) == ("fail", "Connection refused")


class FakeConnection:
    def __init__(self, row, version="15.10"):
        self.row = row
        self.info = self
        self._version = version
        self.queries = []

    def parameter_status(self, name):
        assert name == "server_version"
        return self._version

    def execute(self, query):
        self.queries.append(query)
        return self

    def fetchone(self):
        return self.row

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_probe_postgres_runs_select_1_with_the_right_parameters():
    seen = {}
    conn = FakeConnection((1,))

    def connect(**kwargs):
        seen.update(kwargs)
        return conn

    result = probe_postgres("127.0.0.1", 5432, "unitehub", "pw", "unitehub", request_timeout=0.5, connect=connect)
    assert (result.status, result.version) == ("pass", "15.10")
    assert conn.queries == ["SELECT 1"]
    assert seen == {"host": "127.0.0.1", "port": 5432, "dbname": "unitehub", "user": "unitehub", "password": "pw",
                    "connect_timeout": 2, "autocommit": True}
    wrong = probe_postgres("127.0.0.1", 5432, connect=lambda **kw: FakeConnection((2,)))
    assert (wrong.status, wrong.error) == ("fail", "SELECT 1 returned (2,)")


def test_probe_pgbouncer_uses_autocommit_and_no_prepared_statements():
    seen = {}
    conn = FakeConnection(("PgBouncer 1.18.0",))

    def connect(**kwargs):
        seen.update(kwargs)
        return conn

    result = probe_pgbouncer("127.0.0.1", 6432, "pgbouncer", None, request_timeout=3.2, connect=connect)
    assert (result.status, result.version) == ("pass", "PgBouncer 1.18.0")
    assert conn.queries == ["SHOW VERSION"]
    assert seen["dbname"] == "pgbouncer" and seen["autocommit"] is True and seen["prepare_threshold"] is None
    assert seen["connect_timeout"] == 4 and "password" not in seen
    not_bouncer = probe_pgbouncer("127.0.0.1", 5432, connect=lambda **kw: FakeConnection(("PostgreSQL 15",)))
    assert not_bouncer.status == "fail"
    assert "not a PgBouncer admin console" in not_bouncer.error


def test_probe_postgres_without_psycopg_says_so(monkeypatch):
    monkeypatch.setattr(postgres_client, "HAS_PSYCOPG", False)
    result = probe_postgres("127.0.0.1", 5432)
    assert (result.status, result.error) == ("fail", "the psycopg (3) Python library is not installed on the target")


# ------------------------------------------------- answers through the load balancer

def test_an_answer_from_the_expected_slot_passes_on_its_own_merits():
    result = judge_http_response(200, {"X-Upstream-Slot": "green", "Content-Type": "text/plain"}, b"ok",
                                 expect_slot="green")
    assert (result.status, result.slot, result.upstream_slot) == ("pass", "green", "green")


def test_an_answer_from_the_backup_fails_whatever_it_says():
    doc = json.dumps(SYSTEM_PASS).encode()
    result = judge_http_response(200, {"X-Upstream-Slot": "blue", "X-App-Slot": "green",
                                       "Content-Type": "application/health+json"}, doc, expect_slot="green")
    assert (result.status, result.error) == ("fail", "HTTP 200 from slot blue, not from slot green")


def test_an_answer_the_load_balancer_does_not_name_fails_when_a_slot_is_expected():
    result = judge_http_response(200, {"X-App-Slot": "green"}, b"ok", expect_slot="green")
    assert result.status == "fail"
    assert result.error == "HTTP 200 from no slot the load balancer names (no X-Upstream-Slot header), not from slot green"


def test_the_slot_reported_is_the_load_balancers_before_the_apps():
    assert judge_http_response(200, {"X-Upstream-Slot": "blue", "X-App-Slot": "green"}, b"").slot == "blue"
    assert judge_http_response(200, {"X-App-Slot": "green"}, b"").slot == "green"
