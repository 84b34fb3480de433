# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/health.yml against components started here on 127.0.0.1.

An http.server stands in for nginx (it serves the health contract), a real
redis-server is the cache; PostgreSQL and PgBouncer point at closed ports and
one inventory host cannot be reached, so the failure paths are real too.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import pytest
import yaml

from ansible_collections.unitehub.platform.tests.integration.ansible_runner import REPO_ROOT, run_playbook
from ansible_collections.unitehub.platform.tests.support.loopback import free_port, listening, serve_http
from ansible_collections.unitehub.platform.tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

PLAYBOOK = os.path.join(REPO_ROOT, "playbooks", "health.yml")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        body = json.dumps({"status": "warn", "checks": {"redis:responseTime": [
            {"status": "warn", "observedValue": 180, "observedUnit": "ms", "output": "slow"}]}}).encode()
        self.send_response(206 if self.path == "/api/health/system" else 404)
        self.send_header("Content-Type", "application/health+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def lb_port():
    with serve_http(Handler) as url:
        yield urlsplit(url).port


@pytest.fixture(scope="module")
def redis_port():
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no",
                             # As the redis role sets it up: no default user, an ops user that may PING.
                             "--user", "default", "off", "--user", "unitehub-ops", "on", ">cache-pw", "-@all", "+ping"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        def up():
            assert proc.poll() is None, "redis-server exited with %s" % proc.returncode
            return listening(port, timeout=0.2)

        wait_until(up, 10, what="redis-server to listen on %d" % port)
        yield port
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(10)


def run_health(tmp_path, inventory, check=False):
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    return run_playbook(PLAYBOOK, inventory=str(path), check=check, env={"ANSIBLE_CALLBACK_RESULT_FORMAT": "json"})


def local_host():
    return {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}


def table(stdout):
    """The summary table's lines, from the JSON result of the debug task."""
    match = re.search(r"TASK \[Show the health of every component\] \**\nok: \[localhost\] => (\{.*?\n\})\n",
                      stdout, re.S)
    assert match, stdout
    return json.loads(match.group(1))["msg"]


def test_healthy_components_pass_and_degraded_is_shown(tmp_path, lb_port, redis_port):
    inventory = {"all": {
        "hosts": {"localhost": local_host()},
        "vars": {"nginx_listen_port": lb_port, "redis_port": redis_port, "redis_ops_password": "cache-pw"},
        "children": {"lb": {"hosts": {"localhost": {}}}, "cache": {"hosts": {"localhost": {}}}},
    }}
    proc = run_health(tmp_path, inventory)
    assert proc.rc == 0, proc.stdout + proc.stderr
    lines = table(proc.stdout)
    assert lines[0].split() == ["COMPONENT", "HOST", "STATUS", "LATENCY", "TARGET", "FAILING"]
    nginx, redis = lines[1].split(), lines[2].split()
    assert nginx[:3] == ["nginx", "localhost", "warn"] and nginx[5:] == [
        "http://127.0.0.1:%d/api/health/system" % lb_port, "redis:responseTime"]
    assert redis[:3] == ["redis", "localhost", "pass"] and redis[5:] == ["redis://127.0.0.1:%d" % redis_port]
    assert "cache-pw" not in proc.stdout


def test_check_mode_probes_too(tmp_path, lb_port, redis_port):
    inventory = {"all": {
        "hosts": {"localhost": local_host()},
        "vars": {"nginx_listen_port": lb_port, "redis_port": redis_port, "redis_ops_password": "cache-pw"},
        "children": {"lb": {"hosts": {"localhost": {}}}, "cache": {"hosts": {"localhost": {}}}},
    }}
    proc = run_health(tmp_path, inventory, check=True)
    assert proc.rc == 0, proc.stdout + proc.stderr
    assert [line.split()[2] for line in table(proc.stdout)[1:]] == ["warn", "pass"]


def test_failures_are_tabled_and_fail_the_run(tmp_path, lb_port, redis_port):
    inventory = {"all": {
        "hosts": {
            "localhost": local_host(),
            # Nothing listens there: the host cannot be reached.
            "ghost": {"ansible_host": "127.0.0.1", "ansible_port": free_port(), "ansible_connection": "ssh"},
        },
        "vars": {"nginx_listen_port": lb_port, "redis_port": redis_port, "postgresql_port": free_port(),
                 "pgbouncer_listen_port": free_port(), "postgresql_app_password": "db-secret"},
        "children": {"lb": {"hosts": {"localhost": {}}}, "cache": {"hosts": {"localhost": {}}},
                     "db": {"hosts": {"localhost": {}, "ghost": {}}}},
    }}
    proc = run_health(tmp_path, inventory)
    assert proc.rc == 4, proc.stdout + proc.stderr  # 4: a host was unreachable
    rows = {tuple(line.split()[:3]) for line in table(proc.stdout)[1:]}
    assert rows == {("nginx", "localhost", "warn"), ("redis", "localhost", "fail"),
                    ("postgresql", "localhost", "fail"), ("pgbouncer", "localhost", "fail"),
                    ("-", "ghost", "fail")}
    failure = proc.stdout[proc.stdout.index("TASK [Fail when a component fails]"):]
    # No redis_ops_password: the server asks for one and the message says so.
    assert "Redis requires authentication (Authentication required.); set password" in failure
    assert "postgres://unitehub@127.0.0.1:%d/unitehub is fail after 1 attempt" % (
        inventory["all"]["vars"]["postgresql_port"]) in failure
    assert "ghost did not report" in failure
    assert "db-secret" not in proc.stdout
