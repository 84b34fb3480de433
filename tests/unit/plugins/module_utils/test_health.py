# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/health.py.

The format layer and ``wait_until`` are tested with fakes (a fake clock drives
the timing tests). The probes are tested against real sockets on 127.0.0.1
started by the tests: an http.server, a socket that never answers, a closed
port, a redis-server and a pgbouncer, each stopped by its PID.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import health
from ansible_collections.unitehub.platform.plugins.module_utils.direct_http import read_at_most
from ansible_collections.unitehub.platform.plugins.module_utils.health import (
    ContainerWatch,
    HealthFormatError,
    ProbeConfigError,
    ProbeResult,
    describe_outcome,
    failing_checks,
    http_status_for,
    judge_http_response,
    meets_expectation,
    normalize_health,
    normalize_status,
    parse_health,
    probe_http,
    probe_pgbouncer,
    probe_postgres,
    probe_redis,
    probe_tcp,
    resolve_target,
    run_target,
    wait_until,
    worst_check_status,
    worst_status,
)
from ansible_collections.unitehub.platform.tests.unit.loopback import serve_http

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


def test_http_status_mapping_follows_the_seed():
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


def test_worst_check_status_aggregates_every_check():
    assert worst_check_status(SYSTEM_FAIL) == "fail"
    assert worst_check_status(SYSTEM_WARN) == "warn"
    assert worst_check_status(SYSTEM_PASS) == "pass"
    assert worst_check_status({"status": "fail"}) == "pass"


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
    huge = b'{"status": "pass", "output": "' + b"x" * (health.MAX_BODY_BYTES) + b'"}'
    with pytest.raises(HealthFormatError, match="larger than the 1048576-byte cap"):
        parse_health(huge)
    with pytest.raises(HealthFormatError, match="larger than the 100-byte cap"):
        parse_health('{"status": "pass", "output": "%s"}' % ("é" * 60), max_bytes=100)
    assert parse_health(b'{"status": "pass"}', max_bytes=18)["status"] == "pass"


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
    assert len(read_at_most(stream, health.MAX_BODY_BYTES + 1)) == health.MAX_BODY_BYTES + 1
    assert stream.read_bytes == health.MAX_BODY_BYTES + 1


def test_read_at_most_returns_a_short_body_whole():
    class Short:
        def __init__(self):
            self.parts = [b'{"status"', b': "pass"}', b""]

        def read(self, size):
            return self.parts.pop(0)

    assert read_at_most(Short(), 100) == b'{"status": "pass"}'


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


# ---------------------------------------------------------------------------
# wait_until with a fake clock
# ---------------------------------------------------------------------------


class FakeClock:
    """Monotonic time that only moves when someone sleeps or a probe takes time."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds > 0, "sleep(%r): the wait loop must not spin" % seconds
        self.sleeps.append(seconds)
        self.now += seconds

    def elapsed(self):
        return self.now - 1000.0


class ScriptedProbe:
    """Returns the next status of a script (the last one repeats); each attempt takes ``latency`` seconds."""

    def __init__(self, clock, statuses, latency=0.1):
        self.clock = clock
        self.statuses = list(statuses)
        self.latency = latency
        self.started = []

    def __call__(self):
        self.started.append(round(self.clock.elapsed(), 6))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        self.clock.now += self.latency
        return ProbeResult(status, error=None if status == "pass" else "HTTP 503")


def test_wait_until_returns_on_the_first_pass():
    clock = FakeClock()
    probe = ScriptedProbe(clock, ["pass"])
    outcome = wait_until(probe, clock=clock, sleep=clock.sleep)
    assert (outcome.ok, outcome.reason, outcome.attempts) == (True, "passed", 1)
    assert outcome.elapsed == pytest.approx(0.1)
    assert clock.sleeps == []


def test_consecutive_successes_reset_on_a_failure():
    clock = FakeClock()
    probe = ScriptedProbe(clock, ["pass", "pass", "fail", "pass", "pass", "pass"])
    outcome = wait_until(probe, timeout=60, interval=5, consecutive_successes=3, clock=clock, sleep=clock.sleep)
    assert outcome.ok and outcome.reason == "passed"
    # Two passes, then a failure resets the streak: three more passes are needed.
    assert outcome.attempts == 6
    assert probe.started == [0, 5, 10, 15, 20, 25]
    assert outcome.elapsed == pytest.approx(25.1)


def test_warn_counts_only_with_pass_or_warn():
    clock = FakeClock()
    outcome = wait_until(ScriptedProbe(clock, ["warn"]), expect="pass", timeout=10, interval=5,
                         clock=clock, sleep=clock.sleep)
    assert (outcome.ok, outcome.reason, outcome.attempts) == (False, "timeout", 3)
    clock = FakeClock()
    outcome = wait_until(ScriptedProbe(clock, ["warn"]), expect="pass_or_warn", clock=clock, sleep=clock.sleep)
    assert (outcome.ok, outcome.attempts) == (True, 1)


def test_timeout_makes_a_last_attempt_at_the_deadline():
    clock = FakeClock()
    probe = ScriptedProbe(clock, ["fail"])
    outcome = wait_until(probe, timeout=12, interval=5, clock=clock, sleep=clock.sleep)
    assert (outcome.ok, outcome.reason) == (False, "timeout")
    assert probe.started == [0, 5, 10, 12]
    assert outcome.elapsed == pytest.approx(12.1)
    assert outcome.last.status == "fail"


def test_timeout_zero_is_a_single_attempt():
    clock = FakeClock()
    probe = ScriptedProbe(clock, ["fail"])
    outcome = wait_until(probe, timeout=0, interval=5, clock=clock, sleep=clock.sleep)
    assert (outcome.reason, outcome.attempts) == ("timeout", 1)


def test_attempts_are_spaced_by_interval_from_their_start_even_when_slow():
    clock = FakeClock()
    probe = ScriptedProbe(clock, ["fail"], latency=1.5)
    wait_until(probe, timeout=20, interval=5, clock=clock, sleep=clock.sleep)
    assert probe.started == [0, 5, 10, 15, 20]
    # A probe slower than the interval is followed at once by the next one.
    clock = FakeClock()
    probe = ScriptedProbe(clock, ["fail"], latency=7)
    wait_until(probe, timeout=20, interval=5, clock=clock, sleep=clock.sleep)
    assert probe.started == [0, 7, 14]  # the third ends past the deadline


def test_a_failing_target_is_noticed_within_one_interval():
    clock = FakeClock()
    breaks_at = 17.3  # seconds after the start

    def probe():
        failing = clock.elapsed() >= breaks_at
        clock.now += 0.05
        return ProbeResult("fail" if failing else "pass", error="connection refused" if failing else None)

    # A stability watch: many passes required, the first failure ends it.
    outcome = wait_until(probe, timeout=30, interval=5, consecutive_successes=7, max_failures=1,
                         clock=clock, sleep=clock.sleep)
    assert (outcome.ok, outcome.reason, outcome.attempts) == (False, "max_failures", 5)
    noticed_after = outcome.elapsed - breaks_at
    assert 0 < noticed_after <= 5 + 0.05


def test_container_exit_is_noticed_within_a_second_even_with_a_5s_interval():
    clock = FakeClock()
    exits_at = 7.1

    def container_check():
        return "container unitehub-green has exited (exit code 1)" if clock.elapsed() >= exits_at else None

    probe = ScriptedProbe(clock, ["fail"])
    outcome = wait_until(probe, timeout=60, interval=5, consecutive_successes=1, container_check=container_check,
                         clock=clock, sleep=clock.sleep)
    assert (outcome.ok, outcome.reason) == (False, "container")
    assert outcome.container_error == "container unitehub-green has exited (exit code 1)"
    assert outcome.attempts == 2
    assert 0 <= outcome.elapsed - exits_at <= 1.0
    assert outcome.elapsed - exits_at <= health.CONTAINER_POLL_INTERVAL
    assert max(clock.sleeps) <= 0.25


def test_container_already_exited_means_no_attempt():
    clock = FakeClock()
    probe = ScriptedProbe(clock, ["pass"])
    outcome = wait_until(probe, container_check=lambda: "container x has exited (exit code 0)",
                         clock=clock, sleep=clock.sleep)
    assert (outcome.reason, outcome.attempts, outcome.last) == ("container", 0, None)
    assert probe.started == []


def test_a_pass_from_a_container_that_died_meanwhile_does_not_count():
    clock = FakeClock()
    calls = []

    def container_check():
        calls.append(clock.elapsed())
        return "container x restarted (RestartCount 0 -> 1, started at t1)" if len(calls) > 1 else None

    outcome = wait_until(ScriptedProbe(clock, ["pass"]), container_check=container_check,
                         clock=clock, sleep=clock.sleep)
    assert (outcome.ok, outcome.reason, outcome.attempts) == (False, "container", 1)


def test_without_container_check_the_wait_sleeps_in_one_go():
    clock = FakeClock()
    wait_until(ScriptedProbe(clock, ["fail"], latency=1), timeout=10, interval=5, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == [pytest.approx(4), pytest.approx(4)]


# ---------------------------------------------------------------------------
# ContainerWatch with a fake inspect document
# ---------------------------------------------------------------------------


def inspect_doc(running=True, restart_count=0, started_at="2026-01-01T00:00:00Z", **state):
    doc_state = {"Status": "running" if running else "exited", "Running": running, "Paused": False,
                 "Restarting": False, "OOMKilled": False, "ExitCode": 0, "StartedAt": started_at, "Error": ""}
    doc_state.update(state)
    return {"RestartCount": restart_count, "State": doc_state}


class FakeInspect:
    def __init__(self, *docs):
        self.docs = list(docs)

    def __call__(self):
        doc = self.docs.pop(0) if len(self.docs) > 1 else self.docs[0]
        if isinstance(doc, Exception):
            raise doc
        return doc


def test_container_watch_is_quiet_while_the_container_runs():
    watch = ContainerWatch("unitehub-green", FakeInspect(inspect_doc(), inspect_doc()))
    assert watch() is None


def test_container_watch_reports_an_exit_with_its_code():
    watch = ContainerWatch("unitehub-green", FakeInspect(
        inspect_doc(), inspect_doc(running=False, ExitCode=137, OOMKilled=True)))
    assert watch() == "container unitehub-green has exited (exit code 137, killed by the OOM killer)"


def test_container_watch_reports_a_container_that_never_started():
    watch = ContainerWatch("app", FakeInspect(inspect_doc(running=False, Status="created")))
    assert watch() == "container app has not started (exit code 0)"


def test_container_watch_reports_a_restart_by_count_or_start_time():
    watch = ContainerWatch("app", FakeInspect(inspect_doc(), inspect_doc(restart_count=1)))
    assert watch() == "container app restarted (RestartCount 0 -> 1, started at 2026-01-01T00:00:00Z)"
    watch = ContainerWatch("app", FakeInspect(inspect_doc(), inspect_doc(started_at="2026-01-01T00:00:09Z")))
    assert watch().startswith("container app restarted (RestartCount 0 -> 0")
    watch = ContainerWatch("app", FakeInspect(inspect_doc(), inspect_doc(Restarting=True, ExitCode=2)))
    assert watch() == "container app is restarting (exit code 2)"


def test_container_watch_reports_removal_pause_and_daemon_errors():
    assert ContainerWatch("app", FakeInspect(inspect_doc(), None))() == "container app was removed"
    assert ContainerWatch("app", FakeInspect(inspect_doc(), inspect_doc(Paused=True)))() == "container app is paused"
    watch = ContainerWatch("app", FakeInspect(inspect_doc(), ConnectionError("daemon socket gone")))
    assert watch() == "cannot inspect container app (daemon socket gone)"


def test_container_watch_refuses_an_unknown_container():
    with pytest.raises(ProbeConfigError, match="container 'unitehub-pink' does not exist"):
        ContainerWatch("unitehub-pink", FakeInspect(None))


# ---------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------


def test_resolve_target_merges_defaults_and_fills_ports():
    spec = resolve_target({"type": "redis", "name": "cache"}, {"timeout": 10, "password": "s3cret", "host": None})
    assert (spec["host"], spec["port"], spec["timeout"], spec["interval"], spec["name"]) == (
        "127.0.0.1", 6379, 10.0, 5.0, "cache")
    assert spec["target"] == "redis://127.0.0.1:6379"
    assert resolve_target({"type": "pgbouncer", "user": "pgbouncer", "password": "pw"})["target"] == \
        "pgbouncer://pgbouncer@127.0.0.1:6432/pgbouncer"
    assert resolve_target({"type": "postgres", "host": "::1", "database": "app"})["target"] == \
        "postgres://[::1]:5432/app"
    spec = resolve_target({"url": "http://127.0.0.1:3008/api/health/system"}, {"type": "http", "timeout": 0})
    assert (spec["name"], spec["timeout"], spec["expect"]) == ("http://127.0.0.1:3008/api/health/system", 0.0, "pass")


def test_target_labels_never_hold_a_password():
    for probe_type in ("redis", "postgres", "pgbouncer", "tcp"):
        spec = resolve_target({"type": probe_type, "port": 1234, "user": "u", "password": "hunter2"})
        assert "hunter2" not in spec["target"]


@pytest.mark.parametrize("target, message", [
    ({"type": "ftp"}, "type 'ftp' is not one of http, tcp, redis, postgres, pgbouncer"),
    ({}, "type None is not one of"),
    ({"type": "http"}, "type http needs url, e.g. http://127.0.0.1:3008/api/health/system"),
    ({"type": "http", "url": "127.0.0.1:3008/health"}, "url '127.0.0.1:3008/health' must be an absolute http://"),
    ({"type": "http", "url": "ftp://x/health"}, "must be an absolute http:// or https:// URL"),
    ({"type": "http", "url": "http:///health"}, "must be an absolute http:// or https:// URL"),
    ({"type": "tcp"}, "type tcp needs port"),
    ({"type": "tcp", "port": 70000}, "port 70000 is not between 1 and 65535"),
    ({"type": "tcp", "port": "abc"}, "port 'abc' is not a number"),
    ({"type": "redis", "interval": 0}, "interval 0 must be more than 0 seconds"),
    ({"type": "redis", "timeout": -1}, "timeout -1 must be 0 (one attempt) or more seconds"),
    ({"type": "redis", "request_timeout": 0}, "request_timeout 0 must be more than 0 seconds"),
    ({"type": "redis", "consecutive_successes": 0}, "consecutive_successes 0 must be 1 or more"),
    ({"type": "redis", "max_failures": 0}, "max_failures 0 must be 1 or more"),
    ({"type": "redis", "expect": "green"}, "expect 'green' is not one of pass, pass_or_warn"),
])
def test_resolve_target_names_the_bad_value(target, message):
    with pytest.raises(ProbeConfigError) as err:
        resolve_target(target)
    assert message in str(err.value)


def test_describe_outcome_for_a_short_streak_and_a_warn():
    spec = resolve_target({"type": "tcp", "port": 9, "consecutive_successes": 3, "timeout": 30})
    outcome = health.WaitOutcome()
    outcome.reason, outcome.attempts, outcome.elapsed, outcome.streak = "timeout", 7, 30.04, 2
    outcome.last = ProbeResult("pass")
    assert describe_outcome(spec, outcome) == (
        "tcp://127.0.0.1:9 is pass after 7 attempts in 30.0 s but only 2 consecutive of the 3 required "
        "before the 30 s timeout")
    spec = resolve_target({"type": "http", "url": "http://127.0.0.1:8080/api/health/system"})
    outcome.last = ProbeResult("warn", checks=normalize_health(SYSTEM_WARN)["checks"])
    assert describe_outcome(spec, outcome) == (
        "http://127.0.0.1:8080/api/health/system is warn (expected pass) after 7 attempts in 30.0 s: "
        "redis:responseTime warn (slow)")
    outcome.last = ProbeResult("fail", output="maintenance")
    assert describe_outcome(spec, outcome).endswith("in 30.0 s: maintenance")
    outcome.last = ProbeResult("fail")
    assert describe_outcome(spec, outcome).endswith(": the health document reports fail with no failing check")


# ---------------------------------------------------------------------------
# Real sockets on loopback
# ---------------------------------------------------------------------------


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


@pytest.fixture(scope="module")
def http_base():
    with serve_http(HealthHandler) as url:
        yield url


@pytest.fixture
def hanging_port():
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
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.parametrize("path, status, code", [
    ("/api/health/system/pass", "pass", 200),
    ("/api/health/system/warn", "warn", 206),
    ("/api/health/system/fail", "fail", 503),
])
def test_probe_http_reads_health_json(http_base, path, status, code):
    result = probe_http(http_base + path, request_timeout=2)
    assert (result.status, result.http_status, result.slot, result.version) == (status, code, "green", "v2")
    assert result.latency_ms is not None and result.latency_ms >= 0


def test_probe_http_reports_failing_checks_of_a_503(http_base):
    result = probe_http(http_base + "/api/health/system/fail")
    assert (result.status, result.http_status, result.error) == ("fail", 503, None)
    assert health.failing_from_checks(result.checks) == [{
        "name": "database:responseTime", "status": "fail", "output": "connection refused",
        "observedValue": 2003, "observedUnit": "ms"}]


def test_probe_http_plain_200_counts_as_pass(http_base):
    result = probe_http(http_base + "/api/health/live")
    assert (result.status, result.http_status, result.error, result.checks) == ("pass", 200, None, {})


def test_probe_http_plain_errors_and_malformed_bodies_fail(http_base):
    broken = probe_http(http_base + "/broken")
    assert (broken.status, broken.error) == ("fail", "HTTP 502")
    missing = probe_http(http_base + "/nope")
    assert (missing.status, missing.error) == ("fail", "HTTP 404")
    malformed = probe_http(http_base + "/not-json")
    assert malformed.status == "fail"
    assert malformed.error.startswith("HTTP 200 with a malformed health body: health body is not JSON")


def test_probe_http_does_not_follow_redirects(http_base):
    result = probe_http(http_base + "/redirect")
    assert result.status == "fail"
    assert result.error == ("HTTP 302 redirect to http://127.0.0.1:1/elsewhere; probe that URL instead "
                            "(redirects are not followed)")


def test_probe_http_refuses_a_huge_body_without_reading_it_all(http_base):
    result = probe_http(http_base + "/huge", request_timeout=5)
    assert result.status == "fail"
    assert "health body is larger than the 1048576-byte cap" in result.error


def test_probe_http_sends_the_host_header(http_base):
    result = probe_http(http_base + "/echo-host", host_header="unitehub.example")
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


def test_probe_tcp(http_base, hanging_port):
    assert probe_tcp("127.0.0.1", int(http_base.rsplit(":", 1)[1])).status == "pass"
    assert probe_tcp("127.0.0.1", hanging_port).status == "pass"
    refused = probe_tcp("127.0.0.1", free_port())
    assert (refused.status, refused.error) == ("fail", "connection refused")


def test_run_target_message_names_the_failing_check(http_base):
    url = http_base + "/api/health/system/fail"
    clock = FakeClock()
    spec = resolve_target({"type": "http", "url": url, "timeout": 10, "interval": 5})
    result = run_target(spec, clock=clock, sleep=clock.sleep)
    assert result["msg"] == "%s is fail after 3 attempts in 10.0 s: database:responseTime fail " \
                            "(connection refused)" % url
    assert (result["ok"], result["status"], result["reason"], result["attempts"], result["http_status"]) == (
        False, "fail", "timeout", 3, 503)
    assert [f["name"] for f in result["failing"]] == ["database:responseTime", "redis:responseTime"]
    assert (result["slot"], result["version"]) == ("green", "v2")


def test_run_target_passes_against_a_healthy_endpoint(http_base):
    spec = resolve_target({"type": "http", "url": http_base + "/api/health/system/warn", "expect": "pass_or_warn"})
    result = run_target(spec)
    assert (result["ok"], result["status"], result["attempts"], result["failing"], result["error"]) == (
        True, "warn", 1, [], None)
    assert result["msg"] == "%s/api/health/system/warn is warn after 1 attempt in %.1f s" % (
        http_base, result["elapsed"])


# --- Redis ---------------------------------------------------------------------------


def start_daemon(argv, port, cwd=None):
    """Start a server in the foreground and wait (bounded) until it accepts connections."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=cwd)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("%s exited with %s before listening" % (argv[0], proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    stop_by_pid(proc)
    raise AssertionError("%s did not listen on 127.0.0.1:%d within 10 s" % (argv[0], port))


def stop_by_pid(proc):
    if proc.poll() is None:
        os.kill(proc.pid, 15)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, 9)
            proc.wait(10)


@pytest.fixture(scope="module")
def redis_port():
    port = free_port()
    proc = start_daemon(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no"], port)
    yield port
    stop_by_pid(proc)


@pytest.fixture(scope="module")
def redis_auth_port():
    port = free_port()
    proc = start_daemon(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no", "--requirepass", "s3cret",
                         "--user", "probe", "on", ">probe-pw", "+ping"], port)
    yield port
    stop_by_pid(proc)


def test_probe_redis_pings_a_real_server(redis_port):
    result = probe_redis("127.0.0.1", redis_port)
    assert (result.status, result.error) == ("pass", None)


def test_probe_redis_auth(redis_auth_port):
    assert probe_redis("127.0.0.1", redis_auth_port, password="s3cret").status == "pass"
    assert probe_redis("127.0.0.1", redis_auth_port, password="probe-pw", user="probe").status == "pass"
    missing = probe_redis("127.0.0.1", redis_auth_port)
    assert missing.status == "fail"
    assert missing.error == "Redis requires authentication (NOAUTH Authentication required.); set password"
    wrong = probe_redis("127.0.0.1", redis_auth_port, password="wrong-pw")
    assert wrong.status == "fail"
    assert wrong.error.startswith("AUTH refused: WRONGPASS")
    assert "wrong-pw" not in wrong.error


def test_probe_redis_auth_against_a_server_without_password(redis_port):
    result = probe_redis("127.0.0.1", redis_port, password="s3cret")
    assert result.status == "fail"
    assert result.error.startswith("AUTH refused: ERR AUTH <password> called without any password configured")


def test_probe_redis_failures(http_base, hanging_port):
    refused = probe_redis("127.0.0.1", free_port())
    assert (refused.status, refused.error) == ("fail", "connection refused")
    started = time.monotonic()
    hung = probe_redis("127.0.0.1", hanging_port, request_timeout=0.5)
    assert (hung.status, hung.error) == ("fail", "timed out after 0.5 s")
    assert time.monotonic() - started < 1.0
    http = probe_redis("127.0.0.1", int(http_base.rsplit(":", 1)[1]))
    assert http.status == "fail"
    assert http.error.startswith("not a Redis server: PING answered '")


def test_run_target_redis_through_wait_until(redis_port):
    result = run_target(resolve_target({"type": "redis", "port": redis_port, "consecutive_successes": 2,
                                        "interval": 0.05}))
    assert (result["ok"], result["status"], result["attempts"]) == (True, "pass", 2)
    assert result["target"] == "redis://127.0.0.1:%d" % redis_port


# --- PgBouncer admin console and PostgreSQL ----------------------------------------


@pytest.fixture(scope="module")
def pgbouncer_port():
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="health-pgbouncer-")
    try:
        os.chmod(workdir, 0o755)
        with open(os.path.join(workdir, "users.txt"), "w", encoding="utf-8") as handle:
            handle.write('"probe" "probe-pw"\n')
        with open(os.path.join(workdir, "pgbouncer.ini"), "w", encoding="utf-8") as handle:
            handle.write(
                "[databases]\n"
                "[pgbouncer]\n"
                "listen_addr = 127.0.0.1\n"
                "listen_port = %d\n"
                "unix_socket_dir =\n"
                "auth_type = scram-sha-256\n"
                "auth_file = %s/users.txt\n"
                "admin_users = probe\n"
                "logfile =\n"
                "pidfile =\n" % (port, workdir)
            )
        argv = ["pgbouncer"]
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            argv += ["-u", "nobody"]
        proc = start_daemon(argv + [os.path.join(workdir, "pgbouncer.ini")], port, cwd=workdir)
        yield port
        stop_by_pid(proc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_probe_pgbouncer_admin_console(pgbouncer_port):
    result = probe_pgbouncer("127.0.0.1", pgbouncer_port, user="probe", password="probe-pw")
    assert (result.status, result.error) == ("pass", None)
    assert result.version.startswith("PgBouncer ")


def test_probe_pgbouncer_wrong_password_fails_with_the_server_message(pgbouncer_port):
    result = probe_pgbouncer("127.0.0.1", pgbouncer_port, user="probe", password="nope")
    assert result.status == "fail"
    assert result.error == "FATAL: SASL authentication failed; check user and password"
    assert "nope" not in result.error


def test_probe_postgres_refused_is_one_clear_line():
    result = probe_postgres("127.0.0.1", free_port(), user="unitehub", password="pw", database="unitehub",
                            request_timeout=1)
    assert (result.status, result.error) == ("fail", "Connection refused")


def test_probe_pgbouncer_without_password_says_to_set_one(pgbouncer_port):
    result = probe_pgbouncer("127.0.0.1", pgbouncer_port, user="probe")
    assert (result.status, result.error) == ("fail", "fe_sendauth: no password supplied; set password")


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
    monkeypatch.setattr(health, "HAS_PSYCOPG", False)
    result = probe_postgres("127.0.0.1", 5432)
    assert (result.status, result.error) == ("fail", "the psycopg (3) Python library is not installed on the target")
