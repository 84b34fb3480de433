"""Unit tests for plugins/module_utils/health_format.py."""

from __future__ import annotations

import json

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils.health_format import (
    MAX_BODY_BYTES,
    HealthFormatError,
    ProbeConfigError,
    failing_checks,
    http_status_for,
    meets_expectation,
    normalize_health,
    normalize_status,
    parse_health,
    worst_status,
)
from ansible_collections.unitehub.platform.tests.support.health_endpoints import SYSTEM_FAIL, SYSTEM_PASS


# ---------------------------------------------------------------------------
# Statuses and aggregation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ("pass", "pass"), ("warn", "warn"), ("fail", "fail"),
    ("ok", "pass"), ("UP", "pass"), (" Pass ", "pass"), ("down", "fail"), ("Error", "fail"),
])
def test_normalize_status_accepts_statuses_and_aliases(value, expected):
    assert normalize_status(value) == expected


@pytest.mark.parametrize("value, message", [
    ("great", "'great' is not a health status; use one of pass, warn, fail"),
    ("", "'' is not a health status"),
    (1, "status must be a string, one of pass, warn, fail; got number 1"),
    (None, "status must be a string, one of pass, warn, fail; got null"),
    (True, "got boolean True"),
])
def test_normalize_status_rejects_other_values(value, message):
    with pytest.raises(HealthFormatError) as err:
        normalize_status(value)
    assert message in str(err.value)


def test_http_status_mapping_is_pass_200_warn_206_fail_503():
    assert [http_status_for(s) for s in ("pass", "warn", "fail")] == [200, 206, 503]
    assert http_status_for("up") == 200
    assert http_status_for("down") == 503


def test_worst_status_orders_fail_over_warn_over_pass():
    assert worst_status([]) == "pass"
    assert worst_status(["pass", "pass"]) == "pass"
    assert worst_status(["pass", "warn", "pass"]) == "warn"
    assert worst_status(["warn", "fail", "pass"]) == "fail"
    assert worst_status(["ok", None, "down"]) == "fail"


@pytest.mark.parametrize("status, expect, met", [
    ("pass", "pass", True), ("warn", "pass", False), ("fail", "pass", False),
    ("pass", "pass_or_warn", True), ("warn", "pass_or_warn", True), ("fail", "pass_or_warn", False),
])
def test_meets_expectation(status, expect, met):
    assert meets_expectation(status, expect) is met


def test_meets_expectation_rejects_unknown_expectation():
    with pytest.raises(ProbeConfigError, match="expect 'healthy' is not one of pass, pass_or_warn"):
        meets_expectation("pass", "healthy")


# ---------------------------------------------------------------------------
# Parsing and normalisation
# ---------------------------------------------------------------------------


def test_parse_health_normalises_a_valid_document():
    body = json.dumps({
        "status": "UP",
        "version": "v2",
        "releaseId": "r42",
        "notes": ["blue slot"],
        "checks": {
            "database:responseTime": [{"status": "OK", "observedValue": 3, "observedUnit": "ms",
                                       "time": "2026-01-01T00:00:00Z", "componentId": "db1"}],
            "circuitBreaker:redis": [{"status": "down", "observedValue": "OPEN", "output": "breaker open"}],
            "uptime": [{"observedValue": 12}],
        },
    }).encode()
    doc = parse_health(body)
    assert doc["status"] == "pass"
    assert doc["version"] == "v2"
    assert doc["releaseId"] == "r42"
    assert doc["serviceId"] is None
    assert doc["notes"] == ["blue slot"]
    assert doc["checks"]["database:responseTime"] == [
        {"status": "pass", "observedValue": 3, "observedUnit": "ms", "time": "2026-01-01T00:00:00Z",
         "componentId": "db1"}]
    assert doc["checks"]["circuitBreaker:redis"][0]["status"] == "fail"
    # A check without status (optional in the draft) is kept with status None.
    assert doc["checks"]["uptime"] == [{"observedValue": 12, "status": None}]
    assert normalize_health(doc) == doc


def test_parse_health_accepts_text_and_a_bom():
    assert parse_health('{"status": "warn"}')["status"] == "warn"
    assert parse_health(b'\xef\xbb\xbf{"status": "fail"}')["status"] == "fail"
    assert parse_health(b'{"status": "pass"}')["checks"] == {}


MALFORMED = [
    (b"<html><body>502 Bad Gateway</body></html>", "health body is not JSON (Expecting value at line 1 column 1)"),
    (b'{"status": "pass"', "health body is not JSON"),
    (b"", "health body is empty"),
    (b"   \n", "health body is empty"),
    (b"\xff\xfe\x00garbage", "health body is not UTF-8 text"),
    (b"[1, 2]", "health document must be a JSON object with a status, got list [1, 2]"),
    (b'"pass"', "health document must be a JSON object with a status, got string pass"),
    (b"null", "health document must be a JSON object with a status, got null"),
    (b'{"version": "v2", "checks": {}}', "health document has no 'status' (one of pass, warn, fail); "
                                         "keys present: checks, version"),
    (b"{}", "keys present: none"),
    (b'{"status": 1}', "status must be a string, one of pass, warn, fail; got number 1"),
    (b'{"status": "healthy"}', "status 'healthy' is not a health status"),
    (b'{"status": "pass", "version": 2}', "document.version must be a string, got number 2"),
    (b'{"status": "pass", "output": ["x"]}', "document.output must be a string, got list"),
    (b'{"status": "pass", "notes": "n"}', "notes must be a list of strings, got string n"),
    (b'{"status": "pass", "checks": []}', "checks must be an object keyed component:measurement, got list []"),
    (b'{"status": "pass", "checks": "db"}', "checks must be an object keyed component:measurement, got string"),
    (b'{"status": "pass", "checks": {"": []}}', "checks has an empty key"),
    (b'{"status": "pass", "checks": {"database:responseTime": {"status": "pass"}}}',
     "checks['database:responseTime'] must be a list of objects, got object"),
    (b'{"status": "pass", "checks": {"database:responseTime": ["pass"]}}',
     "checks['database:responseTime'][0] must be an object, got string pass"),
    (b'{"status": "pass", "checks": {"database:responseTime": [{"status": 0}]}}',
     "checks['database:responseTime'][0].status must be a string, one of pass, warn, fail; got number 0"),
    (b'{"status": "pass", "checks": {"a:b": [{"status": "pass"}, {"status": "meh"}]}}',
     "checks['a:b'][1].status 'meh' is not a health status"),
    (b'{"status": "pass", "checks": {"a:b": [{"status": "fail", "output": 42}]}}',
     "checks['a:b'][0].output must be a string, got number 42"),
    (b'{"status": "pass", "checks": {"a:b": [{"observedUnit": 1}]}}',
     "checks['a:b'][0].observedUnit must be a string"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
]


@pytest.mark.parametrize("body, message", MALFORMED, ids=[m[1][:40] for m in MALFORMED])
def test_every_malformed_body_raises_health_format_error_with_a_clear_message(body, message):
    with pytest.raises(HealthFormatError) as err:
        parse_health(body)
    assert message in str(err.value)
    assert "Traceback" not in str(err.value)


def test_parse_health_rejects_a_non_text_body():
    with pytest.raises(HealthFormatError, match="health body must be bytes or text, got object"):
        parse_health({"status": "pass"})


def test_body_over_the_cap_is_refused():
    huge = b'{"status": "pass", "output": "' + b"x" * (MAX_BODY_BYTES) + b'"}'
    with pytest.raises(HealthFormatError, match="larger than the 1048576-byte cap"):
        parse_health(huge)
    with pytest.raises(HealthFormatError, match="larger than the 100-byte cap"):
        parse_health('{"status": "pass", "output": "%s"}' % ("é" * 60), max_bytes=100)
    assert parse_health(b'{"status": "pass"}', max_bytes=18)["status"] == "pass"


def test_failing_checks_lists_failures_with_their_output():
    assert failing_checks(SYSTEM_FAIL) == [{
        "name": "database:responseTime", "status": "fail", "output": "connection refused",
        "observedValue": 2003, "observedUnit": "ms"}]
    assert [(f["name"], f["status"]) for f in failing_checks(SYSTEM_FAIL, include_warn=True)] == [
        ("database:responseTime", "fail"), ("redis:responseTime", "warn")]
    assert failing_checks(SYSTEM_PASS) == []


def test_failing_checks_counts_aliases_and_skips_checks_without_status():
    doc = {"status": "fail", "checks": {"db:up": [{"status": "down"}, {"observedValue": 1}],
                                        "cache:up": [{"status": "error", "output": "gone"}]}}
    assert failing_checks(doc) == [
        {"name": "db:up", "status": "fail", "output": None, "observedValue": None, "observedUnit": None},
        {"name": "cache:up", "status": "fail", "output": "gone", "observedValue": None, "observedUnit": None},
    ]


def test_failing_checks_rejects_a_malformed_document():
    with pytest.raises(HealthFormatError, match="checks must be an object"):
        failing_checks({"status": "fail", "checks": ["database:responseTime"]})
