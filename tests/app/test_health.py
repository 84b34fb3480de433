"""Health checks and their aggregation, with probes that pass, fail, or never answer."""

from __future__ import annotations

import json
import threading
import time

import pytest
from unitehub_app.breaker import CircuitBreaker
from unitehub_app.config import load_config
from unitehub_app.health import (
    FAIL,
    PASS,
    WARN,
    CheckResult,
    HealthService,
    IoCheck,
    aggregate,
    filesystem_probe,
)

FULL_ENV = {
    "DATABASE_URL": "postgresql://app:db-secret-pw@127.0.0.1:6432/app",
    "REDIS_URL": "redis://:redis-secret-pw@127.0.0.1:6379/0",
    "ANTHROPIC_API_KEY": "sk-ant-secret-value",
    "HEALTH_CHECK_TIMEOUT_MS": "300",
    "APP_VERSION": "v9",
    "RELEASE_ID": "rel-9",
}
SECRETS = ("db-secret-pw", "redis-secret-pw", "sk-ant-secret-value")


def result(status: str, critical: bool) -> CheckResult:
    return CheckResult("x:y", status, critical)


@pytest.mark.parametrize(
    "statuses, expected",
    [
        ([], PASS),
        ([(PASS, True), (PASS, False)], PASS),
        ([(PASS, True), (FAIL, False)], WARN),  # optional dependency down: degraded
        ([(PASS, True), (WARN, False)], WARN),
        ([(WARN, True), (PASS, False)], WARN),  # a critical check only warning
        ([(FAIL, True), (PASS, False)], FAIL),
        ([(WARN, False), (FAIL, True)], FAIL),  # fail wins whatever the order
    ],
)
def test_aggregation(statuses, expected):
    assert aggregate([result(s, c) for s, c in statuses]) == expected


def service(env=None, checks=None, breakers=None) -> HealthService:
    config = load_config({**FULL_ENV, **(env or {})})
    return HealthService(config, checks or [], breakers or {})


def quick(ms: float = 1.0):
    return lambda: ms


def test_all_passing_is_pass_200_with_the_draft_shape():
    breakers = {"redis": CircuitBreaker("redis"), "database": CircuitBreaker("database")}
    checks = [
        IoCheck("database:responseTime", True, "datastore", quick(2.5)),
        IoCheck("redis:responseTime", False, "datastore", quick(0.5)),
    ]
    status, body = service(checks=checks, breakers=breakers).report()
    assert status == 200
    assert body["status"] == "pass"
    assert (body["version"], body["releaseId"]) == ("v9", "rel-9")
    assert set(body["checks"]) == {
        "database:responseTime", "redis:responseTime", "ai:config", "environment:variables",
        "circuitBreaker:redis", "circuitBreaker:database",
    }
    for key, entries in body["checks"].items():
        assert isinstance(entries, list) and len(entries) == 1, key
        for field in ("status", "observedValue", "observedUnit", "time"):
            assert field in entries[0], (key, field)
    assert body["checks"]["database:responseTime"][0]["observedValue"] == 2.5
    assert body["checks"]["ai:config"][0]["observedValue"] == ["ANTHROPIC_API_KEY"]
    assert body["checks"]["environment:variables"][0]["observedValue"] == ["DATABASE_URL", "REDIS_URL"]
    breaker = body["checks"]["circuitBreaker:redis"][0]
    assert (breaker["observedValue"], breaker["failures"], breaker["trips"], breaker["opened_at"]) == (
        "CLOSED", 0, 0, None,
    )
    assert "output" not in body
    text = json.dumps(body)
    for secret in SECRETS:
        assert secret not in text


def test_optional_failures_degrade_to_warn_206():
    redis_breaker = CircuitBreaker("redis")
    redis_breaker.force_open()

    def redis_down():
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    checks = [
        IoCheck("database:responseTime", True, "datastore", quick()),
        IoCheck("redis:responseTime", False, "datastore", redis_down),
    ]
    status, body = service({"ANTHROPIC_API_KEY": ""}, checks, {"redis": redis_breaker}).report()
    assert (status, body["status"]) == (206, "warn")
    redis = body["checks"]["redis:responseTime"][0]
    assert redis["status"] == "fail" and "Connection refused" in redis["output"]
    assert body["checks"]["ai:config"][0]["status"] == "warn"
    assert body["checks"]["ai:config"][0]["observedValue"] == []
    assert body["checks"]["circuitBreaker:redis"][0]["status"] == "warn"
    assert body["checks"]["circuitBreaker:redis"][0]["observedValue"] == "OPEN"
    assert body["checks"]["circuitBreaker:redis"][0]["opened_at"] is not None


def test_a_critical_failure_is_fail_503_and_secrets_are_scrubbed_from_outputs():
    def db_down():
        raise RuntimeError("password authentication failed for postgresql://app:db-secret-pw@127.0.0.1:6432/app")

    checks = [IoCheck("database:responseTime", True, "datastore", db_down)]
    status, body = service(checks=checks).report()
    assert (status, body["status"]) == (503, "fail")
    output = body["checks"]["database:responseTime"][0]["output"]
    assert output.startswith("RuntimeError: password authentication failed")
    assert "db-secret-pw" not in json.dumps(body)
    assert "***" in output


def test_missing_required_variables_fail_the_environment_check_by_name_only():
    status, body = service({"REDIS_URL": ""}).report()
    env = body["checks"]["environment:variables"][0]
    assert (status, env["status"]) == (503, "fail")
    assert env["observedValue"] == ["DATABASE_URL"]
    assert env["output"] == "missing required variables: REDIS_URL"


def test_an_unavailable_dependency_fails_without_being_probed():
    probed = []
    checks = [IoCheck("database:responseTime", True, "datastore", lambda: probed.append(1) or 1.0,
                      unavailable=lambda: "python module 'psycopg' is not installed")]
    status, body = service(checks=checks).report()
    assert status == 503 and probed == []
    assert body["checks"]["database:responseTime"][0]["output"] == "python module 'psycopg' is not installed"


def test_the_fault_hook_forces_a_failing_check():
    status, body = service({"APP_FAULT_HEALTH": "fail"}).report()
    assert status == 503
    fault = body["checks"]["fault:injected"][0]
    assert fault["status"] == "fail" and "APP_FAULT_HEALTH" in fault["output"]


def test_a_probe_that_never_answers_times_out_on_its_own_deadline():
    never = threading.Event()
    checks = [
        IoCheck("database:responseTime", True, "datastore", lambda: never.wait(30) and 0.0),
        IoCheck("redis:responseTime", False, "datastore", lambda: never.wait(30) and 0.0),
        IoCheck("filesystem:writable", True, "system", quick()),
    ]
    health = service(checks=checks)  # HEALTH_CHECK_TIMEOUT_MS=300
    start = time.monotonic()
    status, body = health.report()
    elapsed = time.monotonic() - start
    never.set()  # let the abandoned probe threads end
    assert 0.29 <= elapsed < 0.6  # the probes themselves would block for 30 s
    assert status == 503
    assert body["checks"]["database:responseTime"][0]["output"] == "no answer within 300 ms"
    assert body["checks"]["redis:responseTime"][0]["output"] == "no answer within 300 ms"
    assert body["checks"]["filesystem:writable"][0]["status"] == "pass"


def test_probes_run_in_parallel():
    def slow():
        time.sleep(0.2)
        return 200.0

    checks = [IoCheck(f"c{i}:responseTime", False, "component", slow) for i in range(3)]
    start = time.monotonic()
    status, _unused = service(checks=checks).report()
    elapsed = time.monotonic() - start
    assert status == 200
    assert elapsed < 0.45  # three 200 ms probes, one after the other, would take 600 ms


def test_filesystem_probe_writes_and_removes_its_file(tmp_path):
    latency = filesystem_probe(str(tmp_path))
    assert latency >= 0
    assert list(tmp_path.iterdir()) == []


def test_filesystem_probe_fails_where_it_cannot_write(tmp_path):
    with pytest.raises(OSError):
        filesystem_probe(str(tmp_path / "does-not-exist"))
