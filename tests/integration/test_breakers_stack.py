# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Circuit breakers against the real stack: a Redis failure does not cascade to
the application.

The live slot runs ``it-base`` deployed with a 6 s breaker reset timeout
(``app_breaker_reset_timeout``, handed to the app as BREAKER_RESET_TIMEOUT) so
recovery is seen quickly; the thresholds are the collection's defaults (5 failures
open, 2 successes close). Redis is stopped through its init script under load
through nginx and started again; unitehub.platform.breaker_info reads each
state, unitehub.platform.breaker resets with the inventory's admin token, the
deploy gate refuses a slot that is not ready, and playbooks/status.yml lists the
states. Redis is always started again, and the module ends by deploying
``it-base`` back with the default settings. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import os
import re
import time

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils.breaker import TOKEN_REFUSED
from ansible_collections.unitehub.platform.tests.app.conftest import http_request
from ansible_collections.unitehub.platform.tests.integration.ansible_runner import REPO_ROOT, run_module, run_playbook
from ansible_collections.unitehub.platform.tests.integration.stack_helpers import (
    LB_PORT,
    REDIS_PORT,
    SLOT_PORTS,
    breakers_of,
    container_events,
    dependency_down,
    get_health,
    live_port,
    local_secret,
    not_passing,
    reset_breakers,
    serving,
    wait_for_health,
)
from ansible_collections.unitehub.platform.tests.integration.deploy_helpers import (
    BASE_RELEASE,
    routing_snapshot,
    start_deploy_in_background,
    deploy,
    ensure_live,
    lb_version,
    read_state,
)
from ansible_collections.unitehub.platform.tests.integration.traffic import Traffic
from ansible_collections.unitehub.platform.tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

# Long enough for a module run (breaker_info) on a loaded machine to see an OPEN breaker as OPEN.
RESET_TIMEOUT = 6
STATUS = os.path.join(REPO_ROOT, "playbooks", "status.yml")
WRONG_TOKEN = "not-the-admin-token-0000"


@pytest.fixture(scope="module")
def live():
    """The live slot's port, running it-base with BREAKER_RESET_TIMEOUT=RESET_TIMEOUT."""
    result = deploy(BASE_RELEASE, app_breaker_reset_timeout=RESET_TIMEOUT)
    assert result.rc == 0, result.output[-6000:]
    port = live_port()
    assert lb_version()[1] == BASE_RELEASE
    redis = breakers_of(port)["redis"]
    assert (redis["failure_threshold"], redis["reset_timeout"], redis["success_threshold"]) == (5, float(RESET_TIMEOUT), 2)
    yield port
    ensure_live(BASE_RELEASE)  # the default settings again: a redeploy, since the environment differs
    assert breakers_of(live_port())["redis"]["reset_timeout"] == 60.0


def endpoint(port):
    return "http://127.0.0.1:%d" % port


def breaker_info(tmp_path, port):
    """The redis breaker of the slot on ``port`` as unitehub.platform.breaker_info reports it."""
    info, run = run_module(tmp_path, "unitehub.platform.breaker_info",
                           {"endpoints": [endpoint(port)], "token": "{{ app_admin_token }}"})
    assert not info.get("failed"), run.output[-4000:]
    assert info["unreachable_endpoints"] == [] and info["endpoints"][0]["error"] is None, info
    return info


def redis_state(port):
    return breakers_of(port)["redis"]


def wait_for_state(port, state, timeout=15):
    return wait_until(lambda: redis_state(port), timeout, interval=0.1,
                      what="the redis breaker of slot %d to be %s" % (port, state),
                      accept=lambda breaker: breaker["state"] == state, describe=repr)


def breaker_module(tmp_path, port, state, token):
    return run_module(tmp_path, "unitehub.platform.breaker",
                      {"name": "redis", "state": state, "endpoints": [endpoint(port)], "token": token})


def assert_all_answered_200(report, what):
    summary = report.summary()
    assert report.failures == [], "%s: %s" % (what, summary)
    assert {sample.status for sample in report.samples} == {200}, "%s: %s" % (what, summary)
    assert report.rate >= 40, "%s: load was only %.1f requests/s" % (what, report.rate)


def test_redis_outage_under_load_degrades_and_recovers_through_the_breaker(live, tmp_path):
    slot = lb_version()[0]
    logs_since = int(time.time())
    info = breaker_info(tmp_path, live)
    assert info["all_closed"] is True and info["endpoints"][0]["breakers"]["redis"]["state"] == "CLOSED"

    # 1. Redis stops under 50 requests/s to / through nginx.
    traffic = Traffic(path="/", fresh_rps=50, keepalive_rps=0, max_seconds=60, max_requests=3000).start()
    try:
        time.sleep(2)
        with dependency_down("redis-server", REDIS_PORT):
            opened = wait_for_state(live, "OPEN")
            assert opened["failures"] >= 5 and opened["trips"] >= 1, opened
            # The health first: it answers in milliseconds, and the breaker turns HALF_OPEN
            # RESET_TIMEOUT s after it opened, a window the module run below can use up.
            health = get_health(LB_PORT)
            assert health.status == 206 and health.json()["status"] == "warn", health.text
            assert not_passing(health.json()) == ["circuitBreaker:redis", "redis:responseTime"]
            assert health.json()["checks"]["circuitBreaker:redis"][0]["observedValue"] == "OPEN"
            info = breaker_info(tmp_path, live)
            assert info["all_closed"] is False and info["open"] == ["%s:redis" % slot], info
            assert info["endpoints"][0]["breakers"]["redis"]["state"] == "OPEN"
            time.sleep(2)
            outage = traffic.stop()["fresh"]
    finally:
        traffic.stop()
    assert_all_answered_200(outage, "while Redis was down")

    # 2. Redis is back and nothing calls it: after the reset timeout the breaker is HALF_OPEN.
    half_open = wait_for_state(live, "HALF_OPEN", timeout=RESET_TIMEOUT + 5)
    assert half_open["failures"] >= 5 and half_open["trips"] >= 1
    info = breaker_info(tmp_path, live)
    assert info["endpoints"][0]["breakers"]["redis"]["state"] == "HALF_OPEN" and info["all_closed"] is False

    # 3. Load again: the trial calls succeed and close it.
    with Traffic(path="/", fresh_rps=50, keepalive_rps=0, max_seconds=60, max_requests=3000) as traffic:
        time.sleep(1)
        closed = wait_for_state(live, "CLOSED")
        info = breaker_info(tmp_path, live)
        time.sleep(1)
    recovery = traffic.stop()["fresh"]
    assert_all_answered_200(recovery, "after Redis came back")
    assert closed["failures"] == 0 and closed["trips"] >= 1
    assert info["all_closed"] is True and info["endpoints"][0]["breakers"]["redis"]["state"] == "CLOSED"
    assert get_health(LB_PORT).status == 200

    # The app logged every transition, in order, each for its reason.
    changes = [(e["old_state"], e["new_state"], e["reason"])
               for e in container_events("unitehub-%s" % slot, "breaker_state", since=logs_since)
               if e["breaker"] == "redis"]
    assert changes[0] == ("CLOSED", "OPEN", "failure_threshold"), changes
    assert changes[-2:] == [("OPEN", "HALF_OPEN", "reset_timeout"), ("HALF_OPEN", "CLOSED", "success_threshold")], \
        changes


def test_every_admin_endpoint_needs_the_token_on_the_slot_and_none_is_served_through_nginx(live, tmp_path):
    reset_breakers(live)
    auth = {"Authorization": "Bearer " + local_secret("app_admin_token")}
    requests = [("GET", "/api/admin/breakers"), ("POST", "/api/admin/breakers/redis/reset"),
                ("POST", "/api/admin/breakers/redis/open")]
    for method, path in requests:
        for headers in ({}, {"Authorization": "Bearer " + WRONG_TOKEN}):
            refused = http_request(live, path, method=method, headers=headers, timeout=5)
            assert (refused.status, refused.json()["error"]) == (401, "unauthorized"), (method, path, refused.text)
        assert http_request(LB_PORT, path, method=method, headers=auth, timeout=5).status == 404, (method, path)
    assert redis_state(live)["state"] == "CLOSED"  # the refused opens did nothing
    assert http_request(live, "/api/admin/breakers", headers=auth, timeout=5).status == 200

    info, run = run_module(tmp_path, "unitehub.platform.breaker_info", {"endpoints": [endpoint(live)]})
    assert info["all_closed"] is False and info["endpoints"][0]["error"] == TOKEN_REFUSED, run.output[-4000:]


def test_breaker_opens_at_the_fifth_failure_and_resets_only_with_the_admin_token(live, tmp_path):
    reset_breakers(live)
    token = local_secret("app_admin_token")
    with dependency_down("redis-server", REDIS_PORT, live):
        seen = []
        for _unused in range(5):
            page = http_request(live, "/", timeout=5)
            assert page.status == 200 and page.json()["cache"] == "degraded", page.text
            breaker = redis_state(live)
            seen.append((breaker["state"], breaker["failures"]))
            if breaker["state"] != "CLOSED":
                break
        assert seen[-1] == ("OPEN", 5), seen
        assert all(state == "CLOSED" and failures < 5 for state, failures in seen[:-1]), seen

        refused, run = breaker_module(tmp_path, live, "reset", WRONG_TOKEN)
        assert refused["failed"] is True and refused["msg"] == TOKEN_REFUSED, refused
        assert WRONG_TOKEN not in run.output
        assert redis_state(live)["state"] in ("OPEN", "HALF_OPEN")

        done, run = breaker_module(tmp_path, live, "reset", "{{ app_admin_token }}")
        assert not done.get("failed") and done["changed"] is True, done
        result = done["endpoints"][0]
        assert result["before"]["state"] in ("OPEN", "HALF_OPEN") and result["before"]["failures"] >= 5
        assert (result["after"]["state"], result["after"]["failures"]) == ("CLOSED", 0)
        assert token not in run.output
        assert redis_state(live)["state"] == "CLOSED"

        again, _run = breaker_module(tmp_path, live, "reset", "{{ app_admin_token }}")
        assert not again.get("failed") and again["changed"] is False, again


def _status_row(output, slot):
    """The row of ``slot`` in the status table, whitespace collapsed."""
    match = re.search(r"'\*\s+%s\s[^']*'" % slot, output)
    assert match, "no live row for slot %s in:\n%s" % (slot, output[-4000:])
    return " ".join(match.group(0).strip("'").split())


def test_status_lists_the_breaker_states(live, tmp_path):
    slot = lb_version()[0]
    opened, run = breaker_module(tmp_path, live, "open", "{{ app_admin_token }}")
    try:
        assert not opened.get("failed") and opened["changed"] is True, run.output[-4000:]
        status = run_playbook(STATUS)
        assert status.rc == 0, status.output[-4000:]
        row = _status_row(status.stdout, slot)
        assert "redis=OPEN" in row and "database=CLOSED" in row and BASE_RELEASE in row, row
        assert "warn (206)" in row, row
    finally:
        reset_breakers(live)
    status = run_playbook(STATUS)
    assert status.rc == 0, status.output[-4000:]
    row = _status_row(status.stdout, slot)
    assert "redis=CLOSED" in row and "database=CLOSED" in row and "pass (200)" in row, row


def flat(text):
    """Output with its whitespace collapsed: the YAML callback wraps long messages."""
    return " ".join(text.split())


def _assert_live_untouched(live_slot, upstream_before, result_output):
    assert "stayed on slot %s" % live_slot in flat(result_output), result_output[-6000:]
    assert lb_version() == (live_slot, BASE_RELEASE)
    assert read_state()["active_slot"] == live_slot
    assert routing_snapshot() == upstream_before


def test_deploy_gate_refuses_a_new_slot_while_redis_is_down(live):
    live_slot = lb_version()[0]
    idle = "green" if live_slot == "blue" else "blue"
    upstream_before = routing_snapshot()
    with dependency_down("redis-server", REDIS_PORT, live):
        result = deploy(BASE_RELEASE, slot=idle, app_breaker_reset_timeout=RESET_TIMEOUT, health_timeout=6)
    assert result.rc != 0
    assert "redis:responseTime fail" in flat(result.output), result.output[-6000:]
    _assert_live_untouched(live_slot, upstream_before, result.output)
    assert read_state()["slots"][idle]["status"] == "failed"


def test_deploy_gate_refuses_a_new_slot_whose_breaker_is_open(live):
    # Accepting a degraded slot (pass_or_warn) lets the health gate through with Redis down;
    # the breaker gate must still refuse the slot once its redis breaker has opened. Here
    # the test is what calls the new slot before the switch, as a smoke test or a worker would.
    live_slot = lb_version()[0]
    idle = "green" if live_slot == "blue" else "blue"
    idle_port = SLOT_PORTS[idle]
    upstream_before = routing_snapshot()
    with dependency_down("redis-server", REDIS_PORT, live):
        run = start_deploy_in_background(BASE_RELEASE, slot=idle, app_breaker_reset_timeout=RESET_TIMEOUT,
                                         blue_green_health_expect="pass_or_warn", health_consecutive=6,
                                         health_timeout=30)
        statuses, breaker = [], None
        try:
            # The deploy ending first (it failed before starting the slot) ends the wait too.
            wait_until(lambda: serving(idle_port) or run.poll() is not None, 180, interval=0.1,
                       what="the new slot %s to serve" % idle, describe=repr)
            if run.poll() is None:
                statuses = [http_request(idle_port, "/", timeout=5).status for _unused in range(3)]
                breaker = redis_state(idle_port)["state"]
        finally:
            output, _unused = run.communicate(timeout=300)
    assert statuses == [200, 200, 200] and breaker == "OPEN", (statuses, breaker, output[-6000:])
    assert run.returncode != 0, output[-6000:]
    assert "breakers not CLOSED: %s:redis" % idle in flat(output), output[-6000:]
    _assert_live_untouched(live_slot, upstream_before, output)
    assert wait_for_health(live, "pass", 10).status == 200
