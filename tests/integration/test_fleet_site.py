"""playbooks/site.yml provisions the local fleet over SSH: the modules run in each host's
virtualenv, every service binds its own host's address and answers there, the load
balancers change one at a time, the base image moves between engines, and a second run
changes nothing. The fleet is built from nothing once per session (conftest's fleet_site)
and shared with the fleet's deploy tests, which run after these."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request

import psycopg
import pytest
import redis

from ansible_collections.unitehub.platform.tests.integration.ansible_runner import REPO_ROOT, run_playbook
from ansible_collections.unitehub.platform.tests.integration.fleet_helpers import (
    ADDRESSES, INVENTORY, TIMEOUT, fleet, secret, ssh,
)

pytestmark = pytest.mark.integration

SITE = os.path.join(REPO_ROOT, "playbooks", "site.yml")
ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")
VENV_PYTHON = "/opt/unitehub/python/bin/python3"
BASE_IMAGE = "unitehub/base:bookworm"
# What each host listens on, as its own PID space shows it: (process, address:port).
LISTENERS = {
    "lb1": {("sshd", "127.0.0.21:22"), ("nginx", "127.0.0.21:8080")},
    "lb2": {("sshd", "127.0.0.22:22"), ("nginx", "127.0.0.22:8080")},
    "app1": {("sshd", "127.0.0.31:22")},
    "app2": {("sshd", "127.0.0.32:22")},
    "db1": {("sshd", "127.0.0.41:22"), ("postgres", "127.0.0.41:5432"), ("pgbouncer", "127.0.0.41:6432")},
    "cache1": {("sshd", "127.0.0.42:22"), ("redis-server", "127.0.0.42:6379")},
}
SERVICE_PORTS = (8080, 5432, 6432, 6379)


@pytest.fixture(scope="session", autouse=True)
def exclusive_stack():
    """The fleet uses none of the shared local stack's services (it only reads the base
    image from the machine's engine), so it does not wait for the stack lock."""
    yield


@pytest.fixture(name="first_run")
def first_run_fixture(fleet_site):
    """site.yml's first run on the fleet from nothing (conftest's fleet_site, shared with the
    fleet's deploy tests)."""
    return fleet_site


def test_site_provisions_every_host_over_ssh_one_lb_at_a_time(first_run):
    assert first_run.rc == 0, first_run.output[-4000:]
    assert set(first_run.recap) == set(LISTENERS)
    for name in LISTENERS:
        counts = first_run.counts(name)
        assert (counts["failed"], counts["unreachable"]) == (0, 0), name
    # serial: 1 runs the load-balancer play once per LB: each batch's tasks touch one LB only.
    # Each play's output runs from its header to the next play's.
    plays = re.split(r"^PLAY \[", first_run.stdout, flags=re.M)
    batches = [play for play in plays if play.startswith("Load balancer (nginx), one at a time] ")]
    touched = [set(re.findall(r"^(?:ok|changed|skipping): \[(\w+)\]", batch, re.M)) for batch in batches]
    assert touched == [{"lb1"}, {"lb2"}]


def test_modules_run_in_each_hosts_virtualenv(first_run):
    assert first_run.rc == 0
    seen = subprocess.run([ANSIBLE, "-i", INVENTORY, "all", "-o", "-m", "ansible.builtin.setup",
                           "-a", "gather_subset=!all filter=ansible_python"],
                          capture_output=True, text=True, timeout=TIMEOUT, check=False, cwd=REPO_ROOT)
    assert seen.returncode == 0, seen.stdout + seen.stderr
    for line in seen.stdout.splitlines():
        name, result = line.split(" | SUCCESS => ")
        assert json.loads(result)["ansible_facts"]["ansible_python"]["executable"] == VENV_PYTHON, name
    versions = ssh("app1", VENV_PYTHON + " -c 'import docker, psycopg, redis;"
                   " print(docker.__version__, psycopg.__version__, redis.__version__)'")
    assert versions.stdout.split() == ["7.2.0", "3.3.9", "6.4.0"], versions.stderr
    system = ssh("app1", "/usr/bin/python3 -c 'import docker; print(docker.__version__)'")
    assert system.stdout.strip() != "7.2.0"  # the point of the virtualenv: Debian's is older


def listeners(name):
    """(process, address:port) of the TCP listeners the host's own processes hold."""
    shown = ssh(name, "ss -Hltnp")
    assert shown.returncode == 0, shown.stderr
    found = set()
    for line in shown.stdout.splitlines():
        users = re.search(r'users:\(\("([^"]+)"', line)
        if users:  # a socket of a process in this host's PID space
            found.add((users.group(1), line.split()[3]))
    return found


def test_each_service_listens_on_its_hosts_address_only(first_run):
    assert first_run.rc == 0
    for name, expected in LISTENERS.items():
        assert listeners(name) == expected, name
    machine = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    for line in machine.splitlines():
        address, port = line.split()[3].rsplit(":", 1)
        assert not (int(port) in SERVICE_PORTS and address in ("0.0.0.0", "*", "[::]")), line


def test_each_service_answers_on_its_hosts_address(first_run):
    assert first_run.rc == 0
    for lb in ("lb1", "lb2"):
        with urllib.request.urlopen("http://%s:8080/nginx-health" % ADDRESSES[lb], timeout=5) as answer:
            assert answer.status == 200, lb
    cache = redis.Redis(host=ADDRESSES["cache1"], port=6379, username="unitehub-ops",
                        password=secret("redis_ops_password"), socket_timeout=5)
    assert cache.ping()
    cache.close()
    for port in (5432, 6432):  # PostgreSQL, then PgBouncer, which pools db1's PostgreSQL
        with psycopg.connect(host=ADDRESSES["db1"], port=port, dbname="unitehub", user="unitehub",
                             password=secret("postgresql_app_password"), connect_timeout=5) as conn:
            assert conn.execute("SELECT host(inet_server_addr()), inet_server_port()").fetchone() == (
                ADDRESSES["db1"], 5432), port


def test_load_balancers_start_with_every_app_hosts_slots(first_run):
    assert first_run.rc == 0
    for lb in ("lb1", "lb2"):
        upstreams = ssh(lb, "cat /etc/nginx/unitehub/unitehub/blue.conf /etc/nginx/unitehub/unitehub/green.conf")
        assert upstreams.returncode == 0, upstreams.stderr
        servers = re.findall(r"server (\S+?)[ ;]", upstreams.stdout)
        assert sorted(set(servers)) == ["127.0.0.31:3008", "127.0.0.31:3009", "127.0.0.32:3008", "127.0.0.32:3009"]


def image_id(name=None):
    """The base image's ID in an app host's engine, or in the machine's."""
    command = "docker image inspect --format '{{.Id}}' " + BASE_IMAGE
    if name:
        shown = ssh(name, command)
    else:
        shown = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.strip()


def test_the_base_image_moves_from_the_machines_engine_to_each_app_host(first_run):
    assert first_run.rc == 0
    moved = fleet("load-image", "--image", BASE_IMAGE)

    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.splitlines() == ["fleet: %s loaded on %s" % (BASE_IMAGE, name) for name in ("app1", "app2")]
    assert image_id("app1") == image_id("app2") == image_id()


def test_a_second_run_changes_nothing(first_run):
    assert first_run.rc == 0

    second = run_playbook(SITE, inventory=INVENTORY, timeout=1200)

    assert second.rc == 0, second.output[-4000:]
    assert {name: second.counts(name)["changed"] for name in LISTENERS} == dict.fromkeys(LISTENERS, 0), (
        second.output[-4000:])
