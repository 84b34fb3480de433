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
import socket
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import pytest
import yaml

from ansible_collections.unitehub.platform.tests.unit.loopback import serve_http

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(REPO_ROOT, "playbooks", "health.yml")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
                             "--appendonly", "no", "--requirepass", "cache-pw"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, "redis-server exited with %s" % proc.returncode
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not listen within 10 s"
                time.sleep(0.05)
        yield port
    finally:
        os.kill(proc.pid, 15)
        proc.wait(10)


def run_playbook(tmp_path, inventory, *extra):
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO_ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    return subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(path), PLAYBOOK] + list(extra),
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


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
        "vars": {"nginx_listen_port": lb_port, "redis_port": redis_port, "redis_password": "cache-pw"},
        "children": {"lb": {"hosts": {"localhost": {}}}, "cache": {"hosts": {"localhost": {}}}},
    }}
    proc = run_playbook(tmp_path, inventory)
    assert proc.returncode == 0, proc.stdout + proc.stderr
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
        "vars": {"nginx_listen_port": lb_port, "redis_port": redis_port, "redis_password": "cache-pw"},
        "children": {"lb": {"hosts": {"localhost": {}}}, "cache": {"hosts": {"localhost": {}}}},
    }}
    proc = run_playbook(tmp_path, inventory, "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
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
    proc = run_playbook(tmp_path, inventory)
    assert proc.returncode == 4, proc.stdout + proc.stderr  # 4: a host was unreachable
    rows = {tuple(line.split()[:3]) for line in table(proc.stdout)[1:]}
    assert rows == {("nginx", "localhost", "warn"), ("redis", "localhost", "fail"),
                    ("postgresql", "localhost", "fail"), ("pgbouncer", "localhost", "fail"),
                    ("-", "ghost", "fail")}
    failure = proc.stdout[proc.stdout.index("TASK [Fail when a component fails]"):]
    # No redis_password: the server asks for one and the message says so.
    assert "Redis requires authentication (NOAUTH Authentication required.); set password" in failure
    assert "postgres://unitehub@127.0.0.1:%d/unitehub is fail after 1 attempt" % (
        inventory["all"]["vars"]["postgresql_port"]) in failure
    assert "ghost did not report" in failure
    assert "db-secret" not in proc.stdout
