"""The whole local stack from site.yml: able to bring back every service that was
stopped, and idempotent.

Each site.yml run costs most of a minute, so the converge that brings the stopped
services back is the one the idempotence test repeats: two runs, not three. (Molecule
deploys onto the stack this suite leaves converged, and does not run site.yml again.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request

import pytest

from ansible_collections.unitehub.platform.tests.integration.ansible_runner import REPO_ROOT, run_playbook
from ansible_collections.unitehub.platform.tests.integration.deploy_helpers import BASE_RELEASE, ensure_live
from ansible_collections.unitehub.platform.tests.support.loopback import listening
from ansible_collections.unitehub.platform.tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

SITE = os.path.join(REPO_ROOT, "playbooks", "site.yml")
DOCKER_PIDFILE = "/run/docker.pid"
SERVICE_PORTS = ((8080, "nginx"), (6379, "Redis"), (5432, "PostgreSQL"), (6432, "PgBouncer"))


def lb_get(path="/"):
    with urllib.request.urlopen("http://127.0.0.1:8080" + path, timeout=5) as response:
        # The message, not a dict: header names are case-insensitive (uvicorn sends them lowercase).
        return response.status, response.headers, response.read()


def running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def docker_answers():
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False).returncode == 0


@pytest.fixture(scope="module")
def live_release():
    """The stack tests' base release, live (deployed unless this session already did)."""
    ensure_live(BASE_RELEASE)
    return BASE_RELEASE


@pytest.fixture(scope="module")
def site_from_stopped_services(live_release):
    """nginx, Redis, PostgreSQL, PgBouncer and dockerd stopped, then one site.yml run:
    (whether each service was down before the run, the PlaybookResult)."""
    # The stops are independent and mostly wait: all at once.
    stops = [subprocess.Popen(["service", service, "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for service in ("nginx", "redis-server", "postgresql", "pgbouncer")]
    with open(DOCKER_PIDFILE, encoding="utf-8") as handle:
        dockerd = int(handle.read().strip())
    os.kill(dockerd, signal.SIGTERM)
    for stop in stops:
        _unused, err = stop.communicate(timeout=120)
        assert stop.returncode == 0, "%s failed (%s): %s" % (" ".join(stop.args), stop.returncode, err)
    wait_until(lambda: not running(dockerd), 60, interval=0.2, what="dockerd (pid %d) to exit" % dockerd)
    down_before = {name: not listening(port, timeout=2.0) for port, name in SERVICE_PORTS}
    down_before["dockerd"] = not os.path.exists("/var/run/docker.sock") or not docker_answers()
    return down_before, run_playbook(SITE)


def test_app_answers_through_nginx_with_its_version_header(live_release):
    status, headers, body = lb_get("/api/version")
    assert status == 200
    assert headers["X-App-Version"] == live_release
    assert headers["X-App-Slot"] in ("blue", "green")
    assert json.loads(body)["version"] == live_release
    status, headers, _body = lb_get("/")
    assert status == 200 and headers["X-App-Version"] == live_release


def test_site_brings_back_every_stopped_service(live_release, site_from_stopped_services):
    down_before, result = site_from_stopped_services
    for name, down in down_before.items():
        assert down, "%s still answered after it was stopped" % name

    assert result.rc == 0, result.output[-6000:]
    assert result.counts()["changed"] > 0

    for port, name in SERVICE_PORTS:
        assert listening(port, timeout=2.0), "%s is not back on 127.0.0.1:%d" % (name, port)
    assert docker_answers()

    def app_passes():
        try:
            status, headers, _body = lb_get("/api/health/system")
        except OSError:
            return None
        return headers if status == 200 else None

    # The live slot's container has restart policy unless-stopped: dockerd brings it back.
    headers = wait_until(app_passes, 60, interval=0.5, what="the app to come back through nginx")
    assert headers["X-App-Version"] == live_release


def test_site_is_idempotent(site_from_stopped_services):
    _down_before, converge = site_from_stopped_services
    assert converge.rc == 0, converge.output[-6000:]
    second = run_playbook(SITE)
    assert second.rc == 0, second.output[-6000:]
    assert second.counts()["changed"] == 0, second.output[-6000:]
