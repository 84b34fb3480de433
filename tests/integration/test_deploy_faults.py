"""Faults in the middle of a deploy, against the real stack: nginx, Docker, the deploy files.

Each test injects one fault at the moment it matters (nginx stopped, a broken foreign
configuration, a state that cannot be written, an old slot that dies, a new slot that
refuses connections while its container stays up, a state that disagrees with the
load balancer) and checks what an operator cares about: where traffic is, that no
request failed while a healthy slot existed, that the state and the audit log tell
what happened, and that the failure message is clear, with no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import docker
import pytest

from ansible_collections.unitehub.platform.tests.integration.ansible_runner import REPO_ROOT, run_playbook
from ansible_collections.unitehub.platform.tests.integration.deploy_helpers import (
    BASE_RELEASE, DEPLOY, FAST, LOCK_FILE, RECONCILE, STATE_FILE, UPSTREAM_DIR, audit_lines, deploy, ensure_live, lb_version, read_state,
)
from ansible_collections.unitehub.platform.tests.integration.docker_helpers import SLOT_APP_CONTEXT
from ansible_collections.unitehub.platform.tests.integration.stack_helpers import LB_PORT
from ansible_collections.unitehub.platform.tests.integration.traffic import Traffic
from ansible_collections.unitehub.platform.tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

BROKEN_CONF = "/etc/nginx/conf.d/zz-someone-else.conf"
STATUS = os.path.join(REPO_ROOT, "playbooks", "status.yml")


def marker():
    names = os.listdir(os.path.join(UPSTREAM_DIR, "live"))
    return "green" if "green" in names else (names[0] if names else None)


def other(slot):
    return "green" if slot == "blue" else "blue"


def nginx(action):
    subprocess.run(["service", "nginx", action], check=True, capture_output=True, timeout=120)


def when_marker_moves_to(slot, action, delay=0.0):
    """Run ``action`` in a thread once the live-slot marker names ``slot`` (and ``delay`` later)."""
    def watch():
        wait_until(lambda: marker() == slot, 180, interval=0.02, what="the switch to %s" % slot)
        time.sleep(delay)
        action()
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def assert_no_failed_request(reports):
    for kind, report in reports.items():
        assert report.failures == [], "%s clients lost requests: %s" % (kind, report.summary())


def assert_clear_failure(result):
    assert result.rc != 0
    assert "Traceback" not in result.output, result.output[-6000:]


def test_the_revert_moves_traffic_back_while_nginx_is_down():
    live = ensure_live(BASE_RELEASE)
    # A second after the marker moved, the switch has verified and the stability watch runs.
    watcher = when_marker_moves_to(other(live), lambda: nginx("stop"), delay=1.0)
    try:
        result = deploy("it-next", stability_window=10)
    finally:
        watcher.join(5)
        nginx("start")
    assert_clear_failure(result)
    assert "Traffic was switched back to slot %s" % live in result.output, result.output[-6000:]
    assert marker() == live
    state = read_state()
    assert state["active_slot"] == live and state["slots"][other(live)]["status"] == "failed"
    events = [e["event"] for e in audit_lines()[-2:]]
    assert events == ["auto_revert", "failure"]
    assert not os.path.exists(LOCK_FILE)
    # As soon as nginx serves again, it serves the old slot.
    wait_until(lambda: lb_version() == (live, BASE_RELEASE), 30, interval=0.2, what="nginx to serve the old slot")


def test_the_revert_moves_traffic_back_while_nginx_t_fails():
    live = ensure_live(BASE_RELEASE)

    def break_nginx():
        with open(BROKEN_CONF, "w", encoding="utf-8") as handle:
            handle.write("server { listen 127.0.0.1:8099; this_is_not_a_directive; }\n")

    watcher = when_marker_moves_to(other(live), break_nginx)
    try:
        with Traffic(fresh_rps=60, keepalive_rps=30, max_seconds=120) as traffic:
            result = deploy("it-crash", app_env={"APP_FAULT_CRASH_AFTER": "4"}, stability_window=15,
                            health_consecutive=2)
        reports = traffic.stop()
    finally:
        watcher.join(5)
        if os.path.exists(BROKEN_CONF):
            os.unlink(BROKEN_CONF)
    assert_clear_failure(result)
    assert "Traffic was switched back to slot %s" % live in result.output, result.output[-6000:]
    assert_no_failed_request(reports)
    assert lb_version() == (live, BASE_RELEASE) and marker() == live
    assert read_state()["active_slot"] == live


def test_a_failed_record_after_the_drain_keeps_traffic_on_the_new_slot_and_says_so():
    live = ensure_live(BASE_RELEASE)
    saved = read_state()

    def break_the_state():
        os.unlink(STATE_FILE)
        os.mkdir(STATE_FILE)  # the record can neither read nor replace it now

    watcher = when_marker_moves_to(other(live), break_the_state)
    try:
        with Traffic(fresh_rps=60, keepalive_rps=30, max_seconds=120) as traffic:
            result = deploy("it-next", stability_window=3, drain_seconds=1)
        reports = traffic.stop()
    finally:
        watcher.join(5)
        if os.path.isdir(STATE_FILE):
            os.rmdir(STATE_FILE)
            with open(STATE_FILE, "w", encoding="utf-8") as handle:
                json.dump(saved, handle)
    assert_clear_failure(result)
    new = other(live)
    assert "Traffic STAYS ON slot %s (it-next) because the old slot %s was already drained and stopped" % (
        new, live) in result.output, result.output[-6000:]
    assert "cannot read the deploy state file" in result.output
    assert_no_failed_request(reports)
    assert lb_version() == (new, "it-next") and marker() == new
    failure = audit_lines()[-1]
    assert failure["event"] == "failure" and "the state was not written" in failure["reason"]
    assert not os.path.exists(LOCK_FILE)

    # The restored state disagrees with the marker: deploys are refused until a reconcile.
    refused = deploy("it-other")
    assert_clear_failure(refused)
    assert "the load balancer serves slot %s, but the deploy state says %s" % (new, live) in refused.output
    reconciled = run_playbook(RECONCILE)
    assert reconciled.rc == 0, reconciled.output[-6000:]
    assert read_state()["active_slot"] == new and read_state()["slots"][new]["version"] == "it-next"
    assert audit_lines()[-1]["event"] == "reconcile"
    again = run_playbook(RECONCILE)
    assert again.rc == 0 and again.counts()["changed"] == 0, again.output[-4000:]


def test_a_dead_old_slot_is_never_switched_back_to_and_the_cause_is_kept():
    live = ensure_live(BASE_RELEASE)
    client = docker.from_env()
    watcher = when_marker_moves_to(other(live), lambda: client.containers.get("unitehub-%s" % live).kill())
    try:
        result = deploy("it-crash", app_env={"APP_FAULT_CRASH_AFTER": "3"}, stability_window=15,
                        health_consecutive=2)
    finally:
        watcher.join(5)
    assert_clear_failure(result)
    new = other(live)
    assert "Watch through the load balancer the new slot %s" % new in result.output, result.output[-6000:]
    assert "Traffic STAYS ON slot %s" % new in result.output
    assert "the old slot %s is not running on every app host" % live in result.output
    assert marker() == new, "traffic must not be sent to a dead slot"
    state = read_state()
    assert state["active_slot"] == new, "the state follows the marker"
    # Bring the stack back to a known release for the next test.
    client.containers.get("unitehub-%s" % live).start()
    recovered = deploy(BASE_RELEASE)
    assert recovered.rc == 0, recovered.output[-6000:]


def test_the_stability_watch_counts_only_answers_from_the_new_slot():
    """A new slot that stops accepting connections while its container stays up: nginx answers
    from the old slot (its backup), and those answers must not pass the watch."""
    live = ensure_live(BASE_RELEASE)
    with Traffic(fresh_rps=60, keepalive_rps=30, max_seconds=120) as traffic:
        result = deploy("it-refuser", app_image="unitehub/it-refuser", app_build_context=SLOT_APP_CONTEXT,
                        app_env={"REFUSE_AFTER": "4"}, blue_green_health_path="/", stability_window=12,
                        health_consecutive=2)
    reports = traffic.stop()
    assert_clear_failure(result)
    new = other(live)
    assert "not from slot %s" % new in result.output, result.output[-6000:]
    assert "Traffic was switched back to slot %s" % live in result.output
    assert_no_failed_request(reports)
    answered = {sample.slot for sample in reports["fresh"].samples}
    assert answered <= {live, new}, answered
    assert lb_version() == (live, BASE_RELEASE)
    assert docker.from_env().containers.get("unitehub-%s" % new).status != "running", "the failed slot is stopped"


def test_a_state_that_disagrees_with_the_load_balancer_is_refused_until_reconciled():
    live = ensure_live(BASE_RELEASE)
    saved = read_state()
    lied = json.loads(json.dumps(saved))
    lied["active_slot"], lied["previous_slot"] = other(live), live
    lied["slots"][other(live)] = dict(lied["slots"][live], version="it-never-live")
    with open(STATE_FILE, "w", encoding="utf-8") as handle:
        json.dump(lied, handle)
    try:
        refused = deploy("it-next")
        assert_clear_failure(refused)
        assert "the load balancer serves slot %s, but the deploy state says %s (it-never-live) is live" % (
            live, other(live)) in refused.output, refused.output[-6000:]
        assert "playbooks/reconcile.yml" in refused.output
        assert not os.path.exists(LOCK_FILE)
        assert lb_version() == (live, BASE_RELEASE)
        status = run_playbook(STATUS)
        assert status.rc == 0, status.output[-4000:]
        assert "nginx serves %s" % live in status.output and "DIVERGENCE: the load balancer serves slot" in \
            status.output, status.output[-4000:]
        reconciled = run_playbook(RECONCILE)
        assert reconciled.rc == 0, reconciled.output[-6000:]
        assert read_state()["active_slot"] == live
        assert read_state()["slots"][live]["version"] == BASE_RELEASE
    finally:
        if read_state()["active_slot"] != live:
            with open(STATE_FILE, "w", encoding="utf-8") as handle:
                json.dump(saved, handle)


@pytest.mark.parametrize("variable, value", [("stability_window", "nan"), ("stability_window", "inf"),
                                             ("health_interval", "nan"), ("health_consecutive", "1e9"),
                                             ("blue_green_start_batch", "-1"), ("blue_green_start_batch", "10001")])
def test_a_number_that_is_not_finite_and_bounded_is_refused_before_anything_changes(variable, value):
    ensure_live(BASE_RELEASE)
    before = read_state()
    result = deploy("it-next", **{variable: value})
    assert_clear_failure(result)
    named = variable if variable.startswith("blue_green_") else "blue_green_" + variable
    assert "%s=%s is " % (named, value) in result.output, result.output[-4000:]
    assert result.counts()["changed"] == 0
    assert read_state() == before and not os.path.exists(LOCK_FILE)


def test_breaker_info_with_one_slot_down_reports_it_and_exits_normally():
    live = ensure_live(BASE_RELEASE)
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible")
    proc = subprocess.run(
        [ansible, "localhost", "-m", "unitehub.platform.breaker_info", "-a",
         json.dumps({"ports": [3008, 3009], "request_timeout": 2, "token": "{{ app_admin_token }}"})],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
        env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO_ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "UNREACHABLE" not in proc.stdout
    down = 3009 if live == "blue" else 3008
    assert "unreachable_endpoints" in proc.stdout and "http://127.0.0.1:%d" % down in proc.stdout, proc.stdout
    assert "refused the admin token" not in proc.stdout, proc.stdout  # the live slot answered


def test_a_lock_path_that_is_a_directory_is_a_clear_failure():
    ensure_live(BASE_RELEASE)
    before = read_state()
    os.mkdir(LOCK_FILE)
    try:
        result = deploy("it-next")
    finally:
        os.rmdir(LOCK_FILE)
    assert_clear_failure(result)
    assert "the deploy lock %s is not a regular file (it is a directory)" % LOCK_FILE in result.output, \
        result.output[-4000:]
    assert read_state() == before


CLOCKSTEP_SOURCE = os.path.join(REPO_ROOT, "tests", "integration", "fixtures", "clockstep", "clockstep.c")


def test_a_clock_step_back_during_a_deploy_neither_fails_it_nor_makes_a_negative_duration(tmp_path):
    """The wall clock of the controller and of every module steps back an hour once traffic
    moved, as NTP or an operator would; the monotonic clock runs on, as it does for a real
    step. The host's own clock is never touched: tests/integration/fixtures/clockstep."""
    live = ensure_live(BASE_RELEASE)
    library = tmp_path / "clockstep.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(library), CLOCKSTEP_SOURCE, "-ldl"], check=True,
                   capture_output=True, timeout=120)
    step = tmp_path / "step"
    step.write_text("0\n")
    env = {"LD_PRELOAD": str(library), "CLOCKSTEP_FILE": str(step)}
    watcher = when_marker_moves_to(other(live), lambda: step.write_text("-3600\n"))
    try:
        # Through the load balancer's plain-HTTP port: the local certificate is minutes old, and to a
        # clock stepped back an hour it is "not yet valid", as it would be to any TLS client.
        result = run_playbook(DEPLOY, extra_vars=dict(FAST, version="it-next", stability_window=3,
                                                      blue_green_lb_url="http://127.0.0.1:%d" % LB_PORT), env=env)
    finally:
        watcher.join(5)
    assert result.rc == 0, result.output[-6000:]
    assert lb_version() == (other(live), "it-next")
    record = audit_lines()[-1]
    assert record["event"] == "deploy" and record["outcome"] == "success"
    assert record["duration_s"] >= 1, record
