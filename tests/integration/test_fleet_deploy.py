"""Blue-green across the local fleet: two load balancers in front of two app hosts, each a
host of its own reached over SSH (tools/fleet.py). One deploy drives every app host and
switches every load balancer, or none of them. The fleet is conftest's fleet_site, provisioned
once and shared with test_fleet_site.py, which runs before this module.

Load goes to both load balancers at once, over loopback; every load is bounded by a deadline
and a request cap."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from ansible_collections.unitehub.platform.tests.integration.ansible_runner import REPO_ROOT, run_playbook
from ansible_collections.unitehub.platform.tests.integration.fleet_helpers import (
    ADDRESSES, APP_HOSTS, INVENTORY, LB_PORT, LBS, fleet, lb_version, ssh,
)
from ansible_collections.unitehub.platform.tests.integration.traffic import Traffic
from ansible_collections.unitehub.platform.tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

DEPLOY = os.path.join(REPO_ROOT, "playbooks", "deploy.yml")
ROLLBACK = os.path.join(REPO_ROOT, "playbooks", "rollback.yml")
STATUS = os.path.join(REPO_ROOT, "playbooks", "status.yml")
RECONCILE = os.path.join(REPO_ROOT, "playbooks", "reconcile.yml")
BASE_IMAGE = "unitehub/base:bookworm"
BASE_RELEASE = "fleet-base"
# Fast but real: every gate and watch still probes the real slots.
FAST = {"health_interval": 0.5, "stability_window": 3, "drain_seconds": 1}
SLOT_PORTS = {"blue": 3008, "green": 3009}
STATE_FILE = "/var/lib/unitehub/unitehub/state.json"
MARKER_DIR = "/etc/nginx/unitehub/unitehub/live"
# Per load balancer: 70 fresh connections and 40 on kept-alive ones a second, 220 in all.
LOAD = {"fresh_rps": 70, "keepalive_rps": 40, "max_seconds": 300, "max_requests": 60000}


@pytest.fixture(scope="session", autouse=True)
def exclusive_stack():
    """The fleet uses none of the shared local stack's services, so it does not wait for the
    stack lock."""
    yield


def run_fleet(playbook, **extra_vars):
    return run_playbook(playbook, inventory=INVENTORY, extra_vars=extra_vars, timeout=900)


def other(slot):
    return "green" if slot == "blue" else "blue"


def markers():
    """Each load balancer's live-slot marker, read on that load balancer."""
    found = {}
    for lb in LBS:
        listed = ssh(lb, "ls %s" % MARKER_DIR)
        assert listed.returncode == 0, listed.stderr
        found[lb] = listed.stdout.split()
    return found


def conductor_state():
    shown = ssh(LBS[0], "cat " + STATE_FILE)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def slot_running(host, slot):
    shown = ssh(host, "docker inspect --format '{{.State.Running}}' unitehub-%s 2>/dev/null || echo absent" % slot)
    return shown.stdout.strip() == "true"


def live_everywhere(version):
    return all(lb_version(lb) == version for lb in LBS)


@pytest.fixture(scope="module")
def released(fleet_site):
    """BASE_RELEASE live on every app host behind both load balancers; each app host builds it
    on the base image the harness moved into its engine."""
    assert fleet_site.rc == 0, fleet_site.output[-4000:]
    moved = fleet("load-image", "--image", BASE_IMAGE)
    assert moved.returncode == 0, moved.stderr
    deployed = run_fleet(DEPLOY, version=BASE_RELEASE, **FAST)
    assert deployed.rc == 0, deployed.output[-6000:]
    assert live_everywhere(BASE_RELEASE)
    return BASE_RELEASE


def loads():
    return [Traffic(url_host=ADDRESSES[lb], port=LB_PORT, **LOAD) for lb in LBS]


def samples_of(report):
    return report["fresh"].samples + report["keepalive"].samples


def test_a_deploy_and_a_rollback_under_load_over_both_load_balancers(released):
    traffic = [load.start() for load in loads()]
    try:
        deployed = run_fleet(DEPLOY, version="fleet-next", **FAST)
        rollback_started = time.monotonic()
        rolled_back = run_fleet(ROLLBACK, **FAST)
    finally:
        reports = [load.stop() for load in traffic]

    assert deployed.rc == 0, deployed.output[-6000:]
    assert rolled_back.rc == 0, rolled_back.output[-6000:]
    rate = 0.0
    firsts = {}
    for lb, report in zip(LBS, reports):
        samples = samples_of(report)
        failed = [s for s in samples if s.error is not None or s.status is None or s.status >= 500]
        assert failed == [], (lb, {kind: r.summary() for kind, r in report.items()})
        rate += len(samples) / (max(s.finished for s in samples) - min(s.started for s in samples))
        answered_new = [s.finished for s in samples if s.version == "fleet-next"]
        assert answered_new, lb
        firsts[lb] = min(answered_new)
        # Between its first answer from the new version and the rollback, no load balancer flaps back.
        flapped = [s for s in samples
                   if firsts[lb] < s.started < rollback_started and s.version != "fleet-next"]
        assert flapped == [], (lb, flapped[:3])
        # The load stops once the rollback is over: its last answer is the old version again.
        assert max(samples, key=lambda s: s.started).version == BASE_RELEASE, lb
    assert rate >= 200, rate
    assert abs(firsts["lb1"] - firsts["lb2"]) <= 1.0, firsts
    assert live_everywhere(BASE_RELEASE)


class PortTaken:
    """A listener of a stranger's on an app host's slot port: the slot's container cannot bind
    it there, and its gate fails on that host only. Stopped by its pid."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.pid = None

    def __enter__(self):
        # SO_REUSEADDR: the port's last connections may still be in TIME_WAIT.
        script = ("import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);"
                  " s.bind((%r, %d)); s.listen(1); time.sleep(300)" % (ADDRESSES[self.host], self.port))
        started = ssh(self.host, "setsid python3 -c %s >/dev/null 2>&1 < /dev/null & echo $!" % json.dumps(script))
        assert started.returncode == 0, started.stderr
        self.pid = int(started.stdout.strip())
        wait_until(lambda: ssh(self.host, "ss -Hltn 'sport = :%d'" % self.port).stdout.strip() != "",
                   timeout=10, what="the stranger's listener on %s:%d" % (self.host, self.port))
        return self

    def __exit__(self, *exc):
        ssh(self.host, "kill %d" % self.pid)


def test_a_gate_failing_on_one_app_host_switches_no_load_balancer(released):
    live = conductor_state()["active_slot"]
    target = other(live)
    before_state, before_markers = conductor_state(), markers()

    with PortTaken("app2", SLOT_PORTS[target]):
        result = run_fleet(DEPLOY, version="fleet-gate", health_timeout=8, **FAST)

    assert result.rc != 0
    assert "app2" in result.output
    assert markers() == before_markers
    assert live_everywhere(released)
    for host in APP_HOSTS:
        assert not slot_running(host, target), host
        assert slot_running(host, live), host
    after = conductor_state()
    assert after["active_slot"] == before_state["active_slot"]
    assert after["slots"][live] == before_state["slots"][live]


def slot_image(host, slot):
    shown = ssh(host, "docker inspect --format '{{.Config.Image}}' unitehub-%s 2>/dev/null || echo absent" % slot)
    return shown.stdout.strip()


def test_in_batches_of_one_a_host_failing_its_gate_ends_the_deploy_before_the_next_batch(released):
    live = conductor_state()["active_slot"]
    target = other(live)
    before_markers = markers()

    with PortTaken(APP_HOSTS[0], SLOT_PORTS[target]):
        result = run_fleet(DEPLOY, version="fleet-batch", health_timeout=8, blue_green_start_batch=1, **FAST)

    assert result.rc != 0
    assert "%s: " % APP_HOSTS[0] in result.output, result.output[-6000:]
    # The second batch never started: its host has no container of the new version, in any state.
    assert not slot_image(APP_HOSTS[1], target).endswith(":fleet-batch"), slot_image(APP_HOSTS[1], target)
    assert "never ran on %s" % APP_HOSTS[1] in result.output, result.output[-6000:]
    assert markers() == before_markers
    assert live_everywhere(released)
    for host in APP_HOSTS:
        assert not slot_running(host, target), host


FOREIGN_CONF = "/etc/nginx/conf.d/zz-foreign.conf"


def test_a_load_balancer_that_refuses_its_switch_keeps_both_on_the_old_slot(released):
    """A broken file someone else left in lb2's nginx configuration: nginx -t fails there only,
    so lb2 refuses its switch, and lb1, which could switch, is put back too."""
    live = conductor_state()["active_slot"]
    target = other(live)
    before_markers = markers()
    broken = ssh("lb2", "echo 'this is not nginx configuration;' > %s" % FOREIGN_CONF)
    assert broken.returncode == 0, broken.stderr
    try:
        result = run_fleet(DEPLOY, version="fleet-refused", **FAST)
    finally:
        ssh("lb2", "rm -f " + FOREIGN_CONF)

    assert result.rc != 0
    assert "lb2" in result.output and "nginx -t fails" in result.output, result.output[-6000:]
    assert markers() == before_markers == {lb: [live] for lb in LBS}
    assert live_everywhere(released)
    for host in APP_HOSTS:
        assert not slot_running(host, target), host
    assert conductor_state()["active_slot"] == live


def flat(text):
    """Output with its whitespace collapsed: the YAML callback wraps and quotes long lines."""
    return " ".join(text.split())


def test_status_shows_every_host_and_slot_and_a_divergence_the_next_deploy_refuses(released):
    live = conductor_state()["active_slot"]
    shown = run_fleet(STATUS)
    assert shown.rc == 0, shown.output[-6000:]
    for lb in LBS:
        assert "on %s: live slot %s" % (lb, live) in flat(shown.stdout) and "nginx serves %s" % live in flat(shown.stdout)
    for host in APP_HOSTS:
        assert re.search(r"\*\s+%s\s+%s\s+%s\s" % (live, host, released), shown.stdout), (host, shown.stdout[-4000:])
        assert re.search(r"'\s+%s\s+%s\s" % (other(live), host), shown.stdout), (host, shown.stdout[-4000:])
    assert "DIVERGENCE" not in shown.stdout

    # lb2's marker moved by hand: lb2 now routes to the other slot, lb1 does not.
    moved = ssh("lb2", "mv %s/%s %s/%s" % (MARKER_DIR, live, MARKER_DIR, other(live)))
    assert moved.returncode == 0, moved.stderr
    try:
        diverged = run_fleet(STATUS)
        refused = run_fleet(DEPLOY, version="fleet-diverged", **FAST)
    finally:
        reconciled = run_fleet(RECONCILE)

    assert diverged.rc == 0, diverged.output[-6000:]
    assert "DIVERGENCE: the load balancers serve different slots (lb1 %s, lb2 %s)" % (live, other(live)) in flat(
        diverged.stdout), diverged.stdout[-4000:]
    assert refused.rc != 0
    assert "refused, nothing was changed" in flat(refused.output) and "lb2 %s" % other(live) in flat(refused.output)
    assert reconciled.rc == 0, reconciled.output[-6000:]
    assert markers() == {lb: [live] for lb in LBS}
    assert live_everywhere(released)


def start_deploy(version, **extra):
    """ansible-playbook deploy.yml on the fleet, in the background."""
    vars_file = "/tmp/unitehub-fleet-it-%s.json" % version
    with open(vars_file, "w", encoding="utf-8") as handle:
        json.dump(dict(FAST, version=version, **extra), handle)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO_ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY,
                             DEPLOY, "-e", "@" + vars_file], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_a_crash_on_one_app_host_inside_the_stability_window_reverts_every_load_balancer(released):
    live = conductor_state()["active_slot"]
    target = other(live)
    traffic = [load.start() for load in loads()]
    try:
        deploy = start_deploy("fleet-crash", stability_window=20)
        try:
            wait_until(lambda: live_everywhere("fleet-crash") or deploy.poll() is not None, timeout=240,
                       what="the switch of both load balancers to fleet-crash")
            crashed = ssh("app2", "docker kill --signal KILL unitehub-%s" % target)
            output, _unused = deploy.communicate(timeout=300)
        finally:
            if deploy.poll() is None:
                deploy.kill()
    finally:
        reports = [load.stop() for load in traffic]

    assert crashed.returncode == 0, crashed.stderr
    assert deploy.returncode != 0, output[-6000:]
    assert "app2" in output, output[-6000:]
    for lb, report in zip(LBS, reports):
        failed = [s for s in samples_of(report) if s.error is not None or s.status is None or s.status >= 500]
        assert failed == [], (lb, {kind: r.summary() for kind, r in report.items()})
    assert markers() == {lb: [live] for lb in LBS}
    assert live_everywhere(released)
    assert conductor_state()["active_slot"] == live
