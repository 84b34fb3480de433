# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health probing against the real stack: the deployed app's /api/health/system
with every dependency up, then with Redis, PostgreSQL and PgBouncer stopped in
turn (each started again afterwards), with a dependency that accepts connections
and never answers, and unitehub.platform.health_probe watching real containers.

Needs the stack of playbooks/site.yml and a deployable release; the module
fixture makes ``it-base`` live (a no-op when it already is). Traffic goes to
127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import re
import threading
import time

import pytest
import redis

from ansible_collections.unitehub.platform.tests.app.conftest import HangingServer, RedisServer, http_request
from ansible_collections.unitehub.platform.tests.integration.ansible_runner import run_module
from ansible_collections.unitehub.platform.tests.integration.docker_helpers import docker_client
from ansible_collections.unitehub.platform.tests.integration.stack_helpers import (
    HEALTH_PATH,
    LB_PORT,
    PGBOUNCER_PORT,
    POSTGRESQL_PORT,
    REDIS_PORT,
    SLOT_PORTS,
    app_container,
    dependency_down,
    epoch,
    get_health,
    not_passing,
)
from ansible_collections.unitehub.platform.tests.integration.deploy_helpers import BASE_RELEASE, ensure_live
from ansible_collections.unitehub.platform.tests.support.loopback import listening
from ansible_collections.unitehub.platform.tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

HEALTH_TYPE = "application/health+json"
EVERY_CHECK = {
    "database:responseTime", "redis:responseTime", "filesystem:writable", "ai:config",
    "environment:variables", "circuitBreaker:redis", "circuitBreaker:database",
}
# The app's health deadline (HEALTH_CHECK_TIMEOUT_MS, 800 ms by default) keeps every
# answer under this, whatever a dependency does.
ANSWER_WITHIN = 1.0
APP_DB = "unitehub"


@pytest.fixture(scope="module")
def live():
    """The port of the live slot, with ``it-base`` live and passing."""
    slot = ensure_live(BASE_RELEASE)
    port = SLOT_PORTS[slot]
    assert get_health(port).json()["status"] == "pass"
    return port


def pool_of_app_db(tmp_path):
    """SHOW POOLS / SHOW STATS of the app's database, read with unitehub.platform.pool_info
    as the inventory's PgBouncer admin."""
    info, run = run_module(tmp_path, "unitehub.platform.pool_info", {
        "admin_user": "pgbouncer_admin",
        "admin_password": "{{ pgbouncer_admin_password }}",
        "admin_port": PGBOUNCER_PORT,
        "gather": ["pools", "stats"],
    })
    assert not info.get("failed"), run.output[-4000:]
    pools = [pool for pool in info["pools"] if pool["database"] == APP_DB]
    stats = [row for row in info["stats"] if row["database"] == APP_DB]
    assert len(pools) == 1 and len(stats) == 1, info
    return pools[0], stats[0]


def test_all_up_is_200_pass_and_the_database_check_goes_through_pgbouncer(live, tmp_path):
    through_lb = get_health(LB_PORT)
    assert through_lb.status == 200, through_lb.text
    assert through_lb.headers["content-type"].startswith(HEALTH_TYPE)
    body = through_lb.json()
    assert body["status"] == "pass" and body["version"] == BASE_RELEASE and body["releaseId"]
    assert through_lb.headers["x-app-slot"] == body["slot"] and through_lb.headers["x-app-version"] == BASE_RELEASE
    assert EVERY_CHECK <= set(body["checks"]), sorted(body["checks"])
    assert not_passing(body) == [], body
    for key, items in body["checks"].items():
        for item in items:
            assert {"status", "observedValue", "observedUnit", "time"} <= set(item), (key, item)
    database = body["checks"]["database:responseTime"][0]
    assert database["pooler"] is True and database["poolerMode"] == "transaction"

    _pool, stats_before = pool_of_app_db(tmp_path)
    for _unused in range(20):
        assert get_health(live).status == 200
    pool, stats_after = pool_of_app_db(tmp_path)
    # Every health check's SELECT 1 is a transaction PgBouncer counted for the app's database,
    # on a client connection the app keeps open to PgBouncer.
    assert stats_after["total_xact_count"] - stats_before["total_xact_count"] >= 20, (stats_before, stats_after)
    assert pool["user"] == APP_DB and pool["pool_mode"] == "transaction"
    assert pool["cl_active"] >= 1 and pool["cl_waiting"] == 0, pool


def test_redis_stopped_is_206_warn_while_pages_still_serve(live):
    with dependency_down("redis-server", REDIS_PORT, live):
        result = get_health(LB_PORT)
        assert result.status == 206, result.text
        body = result.json()
        assert body["status"] == "warn"
        assert not_passing(body) == ["redis:responseTime"], body
        assert body["checks"]["redis:responseTime"][0]["output"]
        assert result.elapsed < ANSWER_WITHIN

        for _unused in range(10):
            page = http_request(LB_PORT, "/", timeout=5)
            assert page.status == 200, page.text
            assert page.json()["cache"] == "degraded" and page.json()["hits"] is None
    assert get_health(LB_PORT).status == 200


@pytest.mark.parametrize("service, port", [("postgresql", POSTGRESQL_PORT), ("pgbouncer", PGBOUNCER_PORT)])
def test_database_path_stopped_is_503_fail(live, service, port):
    with dependency_down(service, port, live):
        result = get_health(LB_PORT)
        assert result.status == 503, result.text
        assert result.headers["content-type"].startswith(HEALTH_TYPE)
        body = result.json()
        assert body["status"] == "fail"
        assert not_passing(body) == ["database:responseTime"], body
        assert body["checks"]["database:responseTime"][0]["output"]
        assert result.elapsed < ANSWER_WITHIN, result.elapsed
    assert get_health(LB_PORT).status == 200


@pytest.mark.parametrize("dependency, http_status, status", [("redis", 206, "warn"), ("database", 503, "fail")])
def test_a_dependency_that_never_answers_still_gets_an_answer_within_1s(
        live, tmp_path, dependency, http_status, status):
    silent = HangingServer()
    try:
        if dependency == "redis":
            secret_env = {"REDIS_URL": "redis://127.0.0.1:%d/0" % silent.port}
        else:
            secret_env = {"DATABASE_URL": "postgresql://unitehub:unused@127.0.0.1:%d/unitehub" % silent.port}
        with app_container(tmp_path, BASE_RELEASE, secret_env=secret_env) as app:
            answers = [get_health(app.port) for _unused in range(3)]
    finally:
        silent.close()
    assert silent.accepted, "the app never connected to the silent %s" % dependency
    key = "%s:responseTime" % dependency
    for answer in answers:
        body = answer.json()
        assert (answer.status, body["status"]) == (http_status, status), answer.text
        assert not_passing(body) == [key], body
        # The app's deadline, or the client's own socket timeout when it fires first: a timeout either way.
        assert re.search(r"no answer within 800 ms|Timeout", body["checks"][key][0]["output"]), body["checks"][key]
        assert answer.elapsed < ANSWER_WITHIN, [round(a.elapsed, 3) for a in answers]


def _ping_calls(client):
    return client.info("commandstats").get("cmdstat_ping", {}).get("calls", 0)


def test_probe_sees_a_failing_target_within_one_interval(live, tmp_path):
    interval = 2.0
    dependency = RedisServer(str(tmp_path)).start()
    outcome = {}
    try:
        with app_container(tmp_path, BASE_RELEASE, secret_env={"REDIS_URL": dependency.url}) as app:
            assert get_health(app.port).json()["status"] == "pass"
            probe_args = {
                "type": "http", "url": "http://127.0.0.1:%d%s" % (app.port, HEALTH_PATH), "expect": "pass",
                "interval": interval, "timeout": 60, "consecutive_successes": 100, "max_failures": 1,
            }

            def probe():
                outcome["result"], outcome["run"] = run_module(tmp_path, "unitehub.platform.health_probe", probe_args)

            thread = threading.Thread(target=probe, daemon=True)
            thread.start()
            # Each probe attempt makes the app PING its Redis once: wait for two passing attempts.
            counter = redis.Redis(port=dependency.port, socket_timeout=2)
            try:
                baseline = _ping_calls(counter)
                wait_until(lambda: _ping_calls(counter), 60, interval=0.1, what="two probe attempts",
                           accept=lambda calls: calls >= baseline + 2, describe=repr)
            finally:
                counter.close()
            time.sleep(interval * 0.3)
            failed_at = time.time()
            dependency.stop()
            thread.join(90)
    finally:
        dependency.stop()
    assert "result" in outcome, "the health_probe run did not finish"
    result = outcome["result"]
    assert result["failed"] is True and result["ok"] is False and result["reason"] == "max_failures", result
    assert result["attempts"] >= 3, result
    assert [item["name"] for item in result["failing"]] == ["redis:responseTime"], result["failing"]
    assert "redis:responseTime fail" in result["msg"]
    seen_at = epoch(result["checks"]["redis:responseTime"][0]["time"])
    assert 0 <= seen_at - failed_at <= interval + 0.2, "failure seen %.3f s after it began" % (seen_at - failed_at)


def test_probe_ends_within_1s_of_its_container_exiting(live, tmp_path):
    # The app serves, then exits with code 3 ten seconds later (APP_FAULT_CRASH_AFTER).
    # With a 30 s interval only the container watch can notice it in time.
    with app_container(tmp_path, BASE_RELEASE, env={"APP_FAULT_CRASH_AFTER": "10"}) as app:
        result, run = run_module(tmp_path, "unitehub.platform.health_probe", {
            "type": "http", "url": "http://127.0.0.1:%d%s" % (app.port, HEALTH_PATH), "expect": "pass",
            "interval": 30, "timeout": 60, "consecutive_successes": 3, "container": app.name,
        })
        state = docker_client().api.inspect_container(app.name)["State"]
    assert result.get("failed") is True and result["reason"] == "container", run.output[-4000:]
    assert result["attempts"] == 1 and result["status"] == "fail"
    assert "container %s has exited (exit code 3)" % app.name in result["msg"], result["msg"]
    assert (state["Running"], state["ExitCode"]) == (False, 3)
    first_attempt = epoch(result["checks"]["filesystem:writable"][0]["time"])
    exited = epoch(state["FinishedAt"])
    assert first_attempt < exited, "the container exited before the probe watched it"
    # The probe's clock starts just before its first attempt, so this over-estimates the end.
    noticed = first_attempt + result["elapsed"]
    assert noticed - exited < 1.0, "the exit was noticed %.3f s after it happened" % (noticed - exited)


def test_every_dependency_is_back_and_the_live_slot_passes(live):
    # Runs last: whatever the scenarios above stopped is running again.
    assert [port for port in (REDIS_PORT, POSTGRESQL_PORT, PGBOUNCER_PORT) if not listening(port)] == []
    result = get_health(LB_PORT)
    assert result.status == 200 and not_passing(result.json()) == [], result.text
