"""An operator's own app, beside the reference app on the same host.

The app is Python's stock http.server in an image built here (tests/integration/fixtures/
stock_app): no X-App-* headers, no health+json, 404 on /api/version, health path /. It
gets its own name, image, ports (3018/3019), nginx site (127.0.0.1:8081) and, by default,
its own state, lock and audit log. Its deploys, upgrade and rollback run under load with
nothing failing, the reference app's state and traffic untouched, and both apps deploy at
the same moment.
"""

from __future__ import annotations

import http.client
import os
import time

import docker
import pytest

from ansible_collections.unitehub.platform.tests.integration.ansible_runner import REPO_ROOT, role_play, run_plays
from ansible_collections.unitehub.platform.tests.integration.ansible_runner import run_playbook
from ansible_collections.unitehub.platform.tests.integration.deploy_helpers import (
    BASE_RELEASE, ROLLBACK, deploy, ensure_live, lb_version, read_state, remove_app, start_deploy_in_background,
)
from ansible_collections.unitehub.platform.tests.integration.traffic import Traffic

pytestmark = pytest.mark.integration

STOCK_CONTEXT = os.path.join(REPO_ROOT, "tests", "integration", "fixtures", "stock_app")
LB_PORT = 8081
STOCK = {
    "app_name": "stock",
    "app_image": "unitehub/it-stock",
    "app_build_context": STOCK_CONTEXT,
    "app_slot_ports": {"blue": 3018, "green": 3019},
    "app_integrations": [],
    "app_stop_grace_period": 5,
    "nginx_listen_port": LB_PORT,
    # Its own plain-HTTP site: HTTPS on 8443 belongs to the stack's site.
    "nginx_tls_enabled": False,
    "blue_green_health_path": "/",
}


def stock_answer():
    """(slot nginx reached, version) of the stock app through its own site."""
    conn = http.client.HTTPConnection("127.0.0.1", LB_PORT, timeout=5)
    try:
        conn.request("GET", "/version.txt")
        response = conn.getresponse()
        return response.getheader("X-Upstream-Slot"), response.read().decode().strip()
    finally:
        conn.close()


def reference_snapshot():
    """What the reference app's operator sees: its state, what its site serves, its containers."""
    client = docker.from_env()
    containers = sorted((c.name, c.id, c.status) for c in client.containers.list(all=True)
                        if c.name.startswith("unitehub-"))
    return read_state(), lb_version(), containers


def assert_nothing_failed(reports, new_slot=None):
    for kind, report in reports.items():
        assert report.failures == [], "%s clients lost requests: %s" % (kind, report.summary())
        if new_slot:
            flaps = report.slots_after_first(new_slot)
            assert flaps is not None, "%s clients never reached slot %s: %s" % (kind, new_slot, report.summary())
            assert flaps == [], "%s clients were answered by another slot after %s: %d" % (kind, new_slot, len(flaps))


def deploy_stock(version, **extra):
    return deploy(version, **dict(STOCK, **extra))


@pytest.fixture(scope="module")
def stock_site(tmp_path_factory):
    """The stock app's nginx site and, at the end, none of its traces left behind."""
    tmp = tmp_path_factory.mktemp("stock")
    site = run_plays(tmp, role_play("unitehub.platform.nginx", variables={
        "nginx_app_name": "stock", "nginx_listen_port": LB_PORT, "nginx_tls_enabled": False,
        "nginx_upstream_initial_servers": {"blue": ["127.0.0.1:3018"], "green": ["127.0.0.1:3019"]}}))
    assert site.rc == 0, site.output[-6000:]
    yield
    remove_app(STOCK["app_name"], STOCK["app_image"])


def test_an_app_of_its_own_is_deployed_upgraded_and_rolled_back_under_load(stock_site):
    ensure_live(BASE_RELEASE)
    reference = reference_snapshot()

    first = deploy_stock("s1")
    assert first.rc == 0, first.output[-6000:]
    assert stock_answer() == ("blue", "s1")
    assert os.path.exists("/var/lib/unitehub/stock/state.json"), "its own state, by default"
    # A stock image declares no USER: with the defaults it runs as nobody, not root, and confined.
    attrs = docker.from_env().api.inspect_container("stock-blue")
    assert attrs["Config"]["User"] == "65534:65534"
    assert attrs["HostConfig"]["CapDrop"] == ["ALL"] and attrs["HostConfig"]["ReadonlyRootfs"] is True

    with Traffic(port=LB_PORT, path="/version.txt", fresh_rps=60, keepalive_rps=30, max_seconds=240) as traffic:
        time.sleep(1)
        upgraded = deploy_stock("s2")
        time.sleep(1)
    reports = traffic.stop()
    assert upgraded.rc == 0, upgraded.output[-6000:]
    assert_nothing_failed(reports, new_slot="green")
    assert stock_answer() == ("green", "s2")
    assert {s.version for s in reports["fresh"].samples if s.slot == "green"} == {"s2"}

    with Traffic(port=LB_PORT, path="/version.txt", fresh_rps=60, keepalive_rps=30, max_seconds=240) as traffic:
        time.sleep(1)
        rolled_back = run_playbook(ROLLBACK, extra_vars=dict(STOCK, stability_window=2, drain_seconds=1))
        time.sleep(1)
    reports = traffic.stop()
    assert rolled_back.rc == 0, rolled_back.output[-6000:]
    assert_nothing_failed(reports, new_slot="blue")
    assert stock_answer() == ("blue", "s1")

    assert reference_snapshot() == reference, "the reference app's state, traffic and containers are untouched"


def test_two_apps_deploy_at_the_same_moment(stock_site):
    ensure_live(BASE_RELEASE)
    with Traffic(port=LB_PORT, path="/version.txt", fresh_rps=40, keepalive_rps=20, max_seconds=240) as stock, \
            Traffic(fresh_rps=40, keepalive_rps=20, max_seconds=240) as reference:
        time.sleep(1)
        other = start_deploy_in_background("it-next")
        mine = deploy_stock("s3")
        out, _unused = other.communicate(timeout=600)
        time.sleep(1)
    stock_reports, reference_reports = stock.stop(), reference.stop()
    assert mine.rc == 0, mine.output[-6000:]
    assert other.returncode == 0, out[-6000:]
    assert_nothing_failed(stock_reports)
    assert_nothing_failed(reference_reports)
    assert stock_answer()[1] == "s3"
    assert lb_version()[1] == "it-next"
