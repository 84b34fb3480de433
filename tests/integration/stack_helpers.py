# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for the health and breaker scenarios against the running stack.

- ``dependency_down``: stop Redis, PostgreSQL or PgBouncer through its init
  script and, whatever happens, start it again; optionally wait until a slot is
  healthy once more (its breakers reset with the inventory's admin token).
- ``app_container``: a throwaway container of the real app image, run through
  ``unitehub.platform.app_slot`` on a free loopback port with the stack's
  settings (or overrides), removed afterwards.
- small readers: the live slot's port, a slot's health, its breakers, the
  app's JSON log events, timestamps as epoch seconds.

Traffic goes to 127.0.0.1 only and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import subprocess
from dataclasses import dataclass

from ansible_collections.unitehub.platform.plugins.module_utils.breaker import fetch_endpoint, set_breaker
from ansible_collections.unitehub.platform.tests.app.conftest import http_request
from ansible_collections.unitehub.platform.tests.integration.ansible_runner import REPO_ROOT, run_module
from ansible_collections.unitehub.platform.tests.integration.docker_helpers import docker_client, remove_containers, unique
from ansible_collections.unitehub.platform.tests.integration.deploy_helpers import lb_version
from ansible_collections.unitehub.platform.tests.support.loopback import free_port, listening
from ansible_collections.unitehub.platform.tests.support.waiting import wait_until

LB_PORT = 8080
REDIS_PORT = 6379
POSTGRESQL_PORT = 5432
PGBOUNCER_PORT = 6432
SLOT_PORTS = {"blue": 3008, "green": 3009}
HEALTH_PATH = "/api/health/system"
APP_IMAGE = "unitehub/app"
SECRETS_DIR = os.path.join(REPO_ROOT, "inventories", "local", ".secrets")

# The stack's app settings for a throwaway slot, as the app role would hand them over
# (inventories/local). Secret values are templated from the inventory when the module
# runs, so they are written to no file and shown nowhere.
STACK_ENV = {"ENABLE_DB_POOLER": "true", "DB_POOLER_MODE": "transaction"}
STACK_SECRET_ENV = {
    "DATABASE_URL": "postgresql://unitehub:{{ postgresql_app_password | urlencode }}@127.0.0.1:%d/unitehub"
                    % PGBOUNCER_PORT,
    "REDIS_URL": "redis://{{ redis_app_user | default(app_name) | urlencode }}:{{ redis_app_password | urlencode }}@127.0.0.1:%d/0"
                 % REDIS_PORT,
    "ANTHROPIC_API_KEY": "{{ app_ai_api_key }}",
    "APP_ADMIN_TOKEN": "{{ app_admin_token }}",
}


def local_secret(name):
    """A credential of the embedded stack, as the inventory's password lookup created it."""
    with open(os.path.join(SECRETS_DIR, name), encoding="utf-8") as handle:
        return handle.read().split()[0]


def live_port():
    """The port of the slot that answers through nginx."""
    return SLOT_PORTS[lb_version()[0]]


def get_health(port, timeout=10.0):
    """GET /api/health/system on ``port``: an HttpResult (status, headers, body, elapsed)."""
    return http_request(port, HEALTH_PATH, timeout=timeout)


def check_statuses(body):
    """``{component:measurement: status}`` of a health document (one object per check here)."""
    return {key: [item["status"] for item in value] for key, value in body["checks"].items()}


def not_passing(body):
    return sorted(key for key, statuses in check_statuses(body).items() if statuses != ["pass"])


def serving(port):
    try:
        return http_request(port, "/api/health/live", timeout=1).status == 200
    except OSError:
        return False


def breakers_of(port):
    """The app's breakers on ``port``, read with the module_utils the modules use and the inventory's admin token."""
    result = fetch_endpoint("http://127.0.0.1:%d" % port, token=local_secret("app_admin_token"), timeout=5)
    assert result["error"] is None, result["error"]
    return result["breakers"]


def reset_breakers(port):
    """Close every breaker of the slot on ``port`` that is not closed, with the inventory's admin token."""
    token = local_secret("app_admin_token")
    for name in breakers_of(port):
        outcome = set_breaker("http://127.0.0.1:%d" % port, name, "reset", token, timeout=5)
        assert outcome["error"] is None, outcome["error"]


def wait_for_health(port, status, timeout, what=None):
    """Poll the slot's health until it reports ``status``; the last HttpResult."""

    def read():
        try:
            return get_health(port, timeout=5)
        except OSError as exc:
            return exc

    def describe(result):
        return repr(result) if isinstance(result, OSError) else "HTTP %s %s" % (result.status, result.text[:2000])

    return wait_until(read, timeout, interval=0.1, what=what or "slot %d to report %s" % (port, status),
                      accept=lambda result: not isinstance(result, OSError) and result.json()["status"] == status,
                      describe=describe)


def _service(name, action):
    proc = subprocess.run(["service", name, action], capture_output=True, text=True, timeout=90, check=False)
    assert proc.returncode == 0, "service %s %s failed (%s): %s%s" % (
        name, action, proc.returncode, proc.stdout, proc.stderr)


@contextlib.contextmanager
def dependency_down(service, port, app_port=None, recovery_timeout=60):
    """Stop ``service`` (its init script) until the block ends, then start it again.

    With ``app_port``, the slot on that port is then brought back to health: its
    breakers are reset with the inventory's admin token (their reset timeout may be
    long) and it must pass within ``recovery_timeout`` seconds. Without it, only the
    service is restored, so a test can watch the app recover by itself."""
    _service(service, "stop")
    try:
        wait_until(lambda: not listening(port), 30, interval=0.1, what="%s to stop listening on %d" % (service, port))
        yield
    finally:
        _service(service, "start")
        wait_until(lambda: listening(port), 30, interval=0.1, what="%s to listen on %d again" % (service, port))
        if app_port is not None:
            reset_breakers(app_port)
            wait_for_health(app_port, "pass", recovery_timeout, "slot %d to pass again after %s came back"
                            % (app_port, service))


@dataclass
class AppContainer:
    name: str
    port: int


@contextlib.contextmanager
def app_container(tmp_path, version, env=None, secret_env=None, restart_policy="no"):
    """A throwaway container of ``unitehub/app:<version>`` on a free loopback port,
    started with unitehub.platform.app_slot and the stack's settings, with ``env`` /
    ``secret_env`` on top. Yields once it serves; removed afterwards."""
    client = docker_client()
    app_name = unique("uhprobe")
    port = free_port()
    args = {
        "app_name": app_name,
        "slot": "blue",
        "image": APP_IMAGE,
        "version": version,
        "port": port,
        "env": dict(STACK_ENV, **(env or {})),
        "secret_env": dict(STACK_SECRET_ENV, **(secret_env or {})),
        "stop_grace_period": 2,
        "secrets_dir": str(tmp_path / "secrets"),
        "restart_policy": restart_policy,
    }
    container = AppContainer(app_name + "-blue", port)
    try:
        result, run = run_module(tmp_path, "unitehub.platform.app_slot", args)
        assert not result.get("failed"), run.output[-4000:]
        wait_until(lambda: serving(port), 30, interval=0.1, what="container %s to serve on %d" % (container.name, port))
        yield container
    finally:
        remove_containers(client, container.name)


def container_events(name, event, since=None):
    """The app's JSON log records named ``event`` from container ``name``."""
    raw = docker_client().containers.get(name).logs(stdout=True, stderr=False, since=since)
    records = []
    for line in raw.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == event:
                records.append(record)
    return records


def epoch(text):
    """Seconds since the epoch of an RFC 3339 UTC time, from the app (milliseconds)
    or from Docker (nanoseconds)."""
    head, _unused, fraction = text.rstrip("Z").partition(".")
    moment = datetime.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp() + (float("0." + fraction) if fraction else 0.0)
