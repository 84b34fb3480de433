"""The docker_engine and base_image roles on this host: converged, they change
nothing, leave the running dockerd alone, and the base image has what the app
needs. (Both roles already ran once to bring dockerd and the image here.)"""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.unitehub.platform.tests.integration.ansible_runner import role_play, run_plays
from ansible_collections.unitehub.platform.tests.integration.docker_helpers import BASE_IMAGE, docker_client

pytestmark = pytest.mark.integration

PIDFILE = "/run/docker.pid"


def read_pid():
    with open(PIDFILE, encoding="utf-8") as handle:
        return int(handle.read().strip())


def test_docker_engine_is_idempotent_and_keeps_dockerd_running(tmp_path):
    pid = read_pid()

    converged = run_plays(tmp_path, role_play("unitehub.platform.docker_engine", hosts="app"))
    assert converged.counts()["failed"] == 0, converged.stdout
    assert converged.counts()["changed"] == 0, converged.stdout
    checked = run_plays(tmp_path, role_play("unitehub.platform.docker_engine", hosts="app"), check=True, diff=True)
    assert checked.counts()["changed"] == 0 and checked.counts()["failed"] == 0, checked.stdout

    assert read_pid() == pid
    os.kill(pid, 0)
    assert os.path.realpath("/proc/%d/exe" % pid) == "/usr/sbin/dockerd"
    with open("/etc/docker/daemon.json", encoding="utf-8") as handle:
        assert json.load(handle) == {"bridge": "none", "iptables": False, "ip6tables": False}
    docker_client()


def test_base_image_role_is_a_no_op_when_the_image_exists(tmp_path):
    client = docker_client()
    image_id = client.images.get(BASE_IMAGE).id

    proc = run_plays(tmp_path, role_play("unitehub.platform.base_image", hosts="app"))

    assert proc.counts()["changed"] == 0 and proc.counts()["failed"] == 0, proc.stdout
    assert client.images.get(BASE_IMAGE).id == image_id


def test_base_image_runs_python_with_the_app_clients():
    client = docker_client()
    output = client.containers.run(
        BASE_IMAGE,
        ["python3", "-c", "import psycopg, redis, ssl, os; print(os.environ['LANG'], psycopg.__version__ > '3')"],
        network_mode="none",
        remove=True,
    )
    assert output.decode().strip() == "C.UTF-8 True"
    assert client.images.get(BASE_IMAGE).attrs["Config"]["Cmd"] == ["python3"]
