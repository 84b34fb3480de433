"""Blue-green deploys and rollbacks against the real local stack: nginx on
127.0.0.1:8080, the slots as Docker containers, the deploy state on disk.

Every scenario starts from a known live release and leaves one behind. Load is
bounded in time and count and goes to loopback only.
"""

from __future__ import annotations

import json
import os
import signal
import time

import docker
import pytest

from ansible_collections.unitehub.platform.tests.integration.ansible_runner import run_playbook
from ansible_collections.unitehub.platform.tests.integration.deploy_helpers import (
    AUDIT_LOG, BASE_RELEASE, DEPLOY, FAST, LOCK_FILE, RECONCILE, ROLLBACK, STATE_FILE, audit_lines, deploy, ensure_live,
    lb_version, read_state, routing_snapshot, start_deploy_in_background,
)
from ansible_collections.unitehub.platform.tests.integration.traffic import Traffic
from ansible_collections.unitehub.platform.tests.support.otlp import OtlpReceiver
from ansible_collections.unitehub.platform.tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def assert_no_loss(reports, new_version):
    for kind, report in reports.items():
        summary = report.summary()
        assert report.failures == [], "%s clients lost requests: %s" % (kind, summary)
        flaps = report.versions_after_first(new_version)
        assert flaps is not None, "%s clients never saw %s: %s" % (kind, new_version, summary)
        assert flaps == [], "%s clients saw the old version again after %s: %d requests" % (kind, new_version, len(flaps))
    total_rate = sum(report.rate for report in reports.values())
    assert total_rate >= 100, "load was only %.1f requests/s" % total_rate


@pytest.fixture(scope="module")
def base_release():
    return BASE_RELEASE


def test_deploy_and_rollback_under_load_lose_no_request(base_release):
    old_slot = ensure_live(base_release)

    with Traffic(fresh_rps=80, keepalive_rps=40, max_seconds=240) as traffic:
        time.sleep(1)
        result = deploy("it-next")
        time.sleep(1)
    reports = traffic.stop()
    assert result.rc == 0, result.output[-6000:]
    assert_no_loss(reports, "it-next")
    new_slot, version = lb_version()
    assert (new_slot, version) == ("green" if old_slot == "blue" else "blue", "it-next")
    state = read_state()
    assert state["active_slot"] == new_slot and state["previous_slot"] == old_slot
    assert state["slots"][new_slot]["version"] == "it-next"

    with Traffic(fresh_rps=80, keepalive_rps=40, max_seconds=240) as traffic:
        time.sleep(1)
        result = run_playbook(ROLLBACK, extra_vars={"stability_window": 2, "drain_seconds": 1})
        time.sleep(1)
    reports = traffic.stop()
    assert result.rc == 0, result.output[-6000:]
    assert_no_loss(reports, base_release)
    assert lb_version() == (old_slot, base_release)
    events = [e["event"] for e in audit_lines()[-6:]]
    assert "rollback" in events


def test_redeploying_the_live_version_changes_nothing(base_release):
    ensure_live(base_release)
    again = deploy(base_release)
    assert again.rc == 0, again.output[-4000:]
    assert again.counts()["changed"] == 0, again.output[-4000:]
    assert "already live" in again.stdout


def test_failing_health_never_receives_traffic(base_release):
    live_slot = ensure_live(base_release)
    before = read_state()
    with Traffic(fresh_rps=60, keepalive_rps=0, max_seconds=120) as traffic:
        result = deploy("it-sick", app_env={"APP_FAULT_HEALTH": "fail"}, health_timeout=6)
    reports = traffic.stop()
    assert result.rc != 0
    assert "fault:injected" in result.output, result.output[-6000:]
    assert "stayed on slot %s" % live_slot in result.output
    assert reports["fresh"].failures == []
    assert {s.version for s in reports["fresh"].samples} == {base_release}
    assert lb_version() == (live_slot, base_release)
    after = read_state()
    assert after["active_slot"] == before["active_slot"]
    idle = "green" if live_slot == "blue" else "blue"
    assert after["slots"][idle]["status"] == "failed"
    assert audit_lines()[-1]["event"] == "failure"
    assert not os.path.exists(LOCK_FILE)


def test_prune_images_removes_only_what_the_state_does_not_name(base_release):
    old_slot = ensure_live(base_release)
    client = docker.from_env()
    # A tag no container uses and the state does not name.
    client.images.get("unitehub/base:bookworm").tag("unitehub/app", "it-stale")

    result = deploy("it-next", blue_green_prune_images=True)

    assert result.rc == 0, result.output[-6000:]
    tags = {tag for image in client.images.list(name="unitehub/app") for tag in image.tags}
    assert "unitehub/app:it-stale" not in tags
    # The new release and the rollback target both stay.
    assert {"unitehub/app:it-next", "unitehub/app:" + base_release} <= tags
    assert read_state()["slots"][old_slot]["version"] == base_release
    rolled_back = run_playbook(ROLLBACK, extra_vars={"stability_window": 0, "drain_seconds": 0})
    assert rolled_back.rc == 0, rolled_back.output[-6000:]
    assert lb_version() == (old_slot, base_release)


def test_crash_inside_the_stability_window_reverts_without_losing_requests(base_release):
    live_slot = ensure_live(base_release)
    with Traffic(fresh_rps=60, keepalive_rps=40, max_seconds=120) as traffic:
        result = deploy("it-crash", app_env={"APP_FAULT_CRASH_AFTER": "5"}, stability_window=20,
                        health_consecutive=2)
        time.sleep(1)
    reports = traffic.stop()
    assert result.rc != 0
    assert "switched back to slot %s" % live_slot in result.output, result.output[-6000:]
    for kind, report in reports.items():
        assert report.failures == [], "%s: %s" % (kind, report.summary())
    assert lb_version() == (live_slot, base_release)
    events = [e["event"] for e in audit_lines()[-4:]]
    assert "auto_revert" in events and events[-1] == "failure"
    assert read_state()["active_slot"] == live_slot


def test_nginx_config_broken_by_someone_else_refuses_the_switch(base_release):
    live_slot = ensure_live(base_release)
    routing_before = routing_snapshot()
    broken = "/etc/nginx/conf.d/zz-someone-else.conf"
    with open(broken, "w", encoding="utf-8") as handle:
        handle.write("server { listen 127.0.0.1:8099; this_is_not_a_directive; }\n")
    try:
        result = deploy("it-next")
    finally:
        os.unlink(broken)
    assert result.rc != 0
    assert "nginx -t" in result.output or "this_is_not_a_directive" in result.output, result.output[-6000:]
    assert routing_snapshot() == routing_before
    assert lb_version() == (live_slot, base_release)
    assert read_state()["active_slot"] == live_slot


def test_second_deploy_is_refused_naming_the_holder(base_release):
    ensure_live(base_release)
    first = start_deploy_in_background("it-next", stability_window=8)
    try:
        wait_until(lambda: os.path.exists(LOCK_FILE), 120, interval=0.1, what="the first deploy to take the lock")
        holder = json.load(open(LOCK_FILE, encoding="utf-8"))
        second = deploy("it-other")
        assert second.rc != 0
        assert "pid %s" % holder["pid"] in second.output or str(holder["pid"]) in second.output, second.output[-4000:]
        assert holder["owner"] in second.output
    finally:
        out, _unused = first.communicate(timeout=300)
    assert first.returncode == 0, out[-6000:]
    assert lb_version()[1] == "it-next"


def test_deploy_killed_half_way_is_refused_until_reconciled(base_release):
    live_slot = ensure_live(base_release)
    run = start_deploy_in_background("it-next", stability_window=30)
    try:
        wait_until(lambda: lb_version()[1] == "it-next", 180, interval=0.1, what="the switch to it-next")
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.communicate(timeout=30)
    state = read_state()  # parses: the state file is never torn
    assert state["active_slot"] == live_slot  # the run died before recording
    assert os.path.exists(LOCK_FILE)

    refused = deploy("it-next")
    assert refused.rc != 0 and "force" in refused.output, refused.output[-4000:]

    # force breaks the dead run's lock, but the state disagrees with what nginx serves.
    diverged = deploy("it-next", force=True)
    assert diverged.rc != 0
    assert "the load balancer serves slot %s, but the deploy state says %s" % (
        "green" if live_slot == "blue" else "blue", live_slot) in diverged.output, diverged.output[-4000:]
    assert not os.path.exists(LOCK_FILE)

    reconciled = run_playbook(RECONCILE)
    assert reconciled.rc == 0, reconciled.output[-6000:]
    assert lb_version()[1] == "it-next"
    assert read_state()["slots"][read_state()["active_slot"]]["version"] == "it-next"
    assert not os.path.exists(LOCK_FILE)


def test_check_mode_changes_nothing_and_shows_the_upstream_diff(base_release):
    ensure_live(base_release)
    client = docker.from_env()
    containers_before = sorted((c.name, c.id, c.status) for c in client.containers.list(all=True)
                               if c.name.startswith("unitehub-"))
    files = [STATE_FILE, AUDIT_LOG]
    before = {path: open(path, "rb").read() for path in files}
    routing_before = routing_snapshot()

    result = run_playbook(DEPLOY, extra_vars=dict(FAST, version="it-planned"), check=True, diff=True)
    assert result.rc == 0, result.output[-6000:]
    assert "+# live slot:" in result.stdout and "-# live slot:" in result.stdout, result.stdout[-6000:]
    assert {path: open(path, "rb").read() for path in files} == before
    assert routing_snapshot() == routing_before
    containers_after = sorted((c.name, c.id, c.status) for c in client.containers.list(all=True)
                              if c.name.startswith("unitehub-"))
    assert containers_after == containers_before
    assert not os.path.exists(LOCK_FILE)
    assert not client.images.list(name="unitehub/app:it-planned")


def test_deploy_is_reported_as_otlp_spans_with_its_phases(base_release):
    ensure_live(base_release)
    receiver = OtlpReceiver()
    try:
        result = run_playbook(DEPLOY, extra_vars=dict(FAST, version="it-next"),
                              env={"UNITEHUB_OTLP_ENDPOINT": receiver.endpoint})
        assert result.rc == 0, result.output[-6000:]
        names = {span["name"] for span in receiver.spans()}
    finally:
        receiver.close()
    phases = {"preflight", "image", "start", "health_gate", "switch", "stability", "drain", "record"}
    assert any("deploy" in name for name in names), names
    assert phases <= {name.split(" ")[-1].split(":")[-1] for name in names}, names
