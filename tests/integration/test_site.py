"""The whole local stack from site.yml: converged, idempotent, and able to bring
back every service that was stopped."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from ansible_collections.unitehub.platform.tests.integration.ansible_runner import REPO_ROOT, run_playbook

pytestmark = pytest.mark.integration

SITE = os.path.join(REPO_ROOT, "playbooks", "site.yml")
DEPLOY = os.path.join(REPO_ROOT, "playbooks", "deploy.yml")
DOCKER_PIDFILE = "/run/docker.pid"


def answers(port, timeout=2.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def lb_get(path="/"):
    with urllib.request.urlopen("http://127.0.0.1:8080" + path, timeout=5) as response:
        return response.status, dict(response.headers), response.read()


def wait_gone(pid, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError("pid %d still running after %d s" % (pid, timeout))


@pytest.fixture(scope="module")
def live_release():
    result = run_playbook(DEPLOY, extra_vars={"version": "site-it", "health_interval": 1, "stability_window": 2,
                                              "drain_seconds": 1})
    assert result.rc == 0, result.output[-6000:]
    return "site-it"


def test_site_is_idempotent():
    first = run_playbook(SITE)
    assert first.rc == 0, first.output[-6000:]
    second = run_playbook(SITE)
    assert second.rc == 0, second.output[-6000:]
    assert second.counts()["changed"] == 0, second.output[-6000:]


def test_app_answers_through_nginx_with_its_version_header(live_release):
    status, headers, body = lb_get("/api/version")
    assert status == 200
    assert headers["X-App-Version"] == live_release
    assert headers["X-App-Slot"] in ("blue", "green")
    assert json.loads(body)["version"] == live_release
    status, headers, _body = lb_get("/")
    assert status == 200 and headers["X-App-Version"] == live_release


def test_site_brings_back_every_stopped_service(live_release):
    for service in ("nginx", "redis-server", "postgresql", "pgbouncer"):
        subprocess.run(["service", service, "stop"], check=True, capture_output=True, timeout=120)
    with open(DOCKER_PIDFILE, encoding="utf-8") as handle:
        dockerd = int(handle.read().strip())
    os.kill(dockerd, signal.SIGTERM)
    wait_gone(dockerd)
    for port in (8080, 6379, 5432, 6432):
        assert not answers(port), "port %d still answers after its service was stopped" % port
    assert not os.path.exists("/var/run/docker.sock") or subprocess.run(
        ["docker", "info"], capture_output=True, timeout=30, check=False).returncode != 0

    result = run_playbook(SITE)
    assert result.rc == 0, result.output[-6000:]
    assert result.counts()["changed"] > 0

    for port, name in ((8080, "nginx"), (6379, "Redis"), (5432, "PostgreSQL"), (6432, "PgBouncer")):
        assert answers(port), "%s is not back on 127.0.0.1:%d" % (name, port)
    assert subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False).returncode == 0
    # The live slot's container has restart policy unless-stopped: dockerd brings it back.
    deadline = time.monotonic() + 60
    while True:
        try:
            status, headers, _body = lb_get("/api/health/system")
            if status == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "the app did not come back through nginx within 60 s"
        time.sleep(0.5)
    assert headers["X-App-Version"] == live_release
