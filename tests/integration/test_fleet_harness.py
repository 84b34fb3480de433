"""tools/fleet.py: the local fleet comes up as separate hosts reached over SSH, and
goes away leaving nothing behind. The test brings the fleet up and down itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fleet_up")]

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLEET = [sys.executable, os.path.join(REPO_ROOT, "tools", "fleet.py")]
INVENTORY = os.path.join(REPO_ROOT, "inventories", "fleet")
ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")
STATE_DIR = "/var/lib/unitehub-fleet"
HOSTS = {"lb1": "127.0.0.21", "lb2": "127.0.0.22", "app1": "127.0.0.31",
         "app2": "127.0.0.32", "db1": "127.0.0.41", "cache1": "127.0.0.42"}
PROBE = "/etc/fleet-probe"
TIMEOUT = 120  # seconds for any one command


@pytest.fixture(scope="session", autouse=True)
def exclusive_stack():
    """The fleet uses none of the shared local stack (its hosts have their own
    filesystems, sshd and dockerd), so it does not wait for the stack lock."""
    yield


def fleet(action):
    return subprocess.run(FLEET + [action, "-i", INVENTORY], capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)


def ssh(address, command):
    """Run command on a fleet host as Ansible reaches it: key and strict host key."""
    return subprocess.run(
        ["ssh", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
         "-o", "StrictHostKeyChecking=yes",
         "-o", "UserKnownHostsFile=%s/ssh/known_hosts" % STATE_DIR,
         "-i", "%s/ssh/id_ed25519" % STATE_DIR, "root@" + address, command],
        capture_output=True, text=True, timeout=TIMEOUT, check=False)


def recorded_pids():
    pids = {}
    for name in HOSTS:
        for pid_file in ("sandbox.pid", "dockerd.pid"):
            path = os.path.join(STATE_DIR, "hosts", name, pid_file)
            if os.path.exists(path):
                with open(path, encoding="utf-8") as handle:
                    pids[(name, pid_file)] = int(handle.read())
    return pids


def running(pid):
    """True while pid runs; an exited child not yet reaped (a zombie) does not count."""
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def fleet_mounts():
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        return [line for line in handle if STATE_DIR in line]


@pytest.fixture(scope="module")
def fleet_up():
    started = fleet("up")
    try:
        assert started.returncode == 0, started.stderr
        yield recorded_pids()
    finally:
        fleet("down")


def test_up_twice_keeps_every_host_and_engine(fleet_up):
    assert len(fleet_up) == len(HOSTS) + 2  # one sandbox per host, one dockerd per app host

    again = fleet("up")

    assert again.returncode == 0, again.stderr
    assert recorded_pids() == fleet_up


def test_ansible_reaches_every_host_over_ssh():
    """With the hosts' system Python: the inventory's interpreter, the virtualenv, is made
    by site.yml (test_fleet_site.py), not by the harness."""
    result = subprocess.run(
        [ANSIBLE, "-i", INVENTORY, "all", "-m", "ansible.builtin.ping", "-o",
         "-e", "ansible_python_interpreter=/usr/bin/python3"],
        capture_output=True, text=True, timeout=TIMEOUT, check=False, cwd=REPO_ROOT)

    assert result.returncode == 0, result.stdout + result.stderr
    for name in HOSTS:
        assert '%s | SUCCESS => {"changed": false,"ping": "pong"}' % name in result.stdout


def test_each_host_is_its_own_sandbox():
    for name, address in HOSTS.items():
        seen = ssh(address, "hostname; cat /proc/1/cmdline | tr '\\0' ' '")
        assert seen.returncode == 0, seen.stderr
        hostname, init = seen.stdout.splitlines()
        assert hostname == name
        assert "/usr/sbin/sshd -D" in init  # its own PID space: its sshd is PID 1
        listening = ssh(address, "ss -Hltn 'sport = :22'").stdout.split()
        assert address + ":22" in listening


def test_a_host_sees_neither_the_fleet_state_nor_the_machines_deploy():
    for name, address in HOSTS.items():
        listed = ssh(address, "ls -A %s /etc/unitehub /var/lib/unitehub /var/log/unitehub" % STATE_DIR)
        assert listed.returncode == 0, listed.stderr
        assert [line for line in listed.stdout.splitlines() if line and not line.endswith(":")] == [], name


def test_a_file_written_on_app1_stays_on_app1():
    written = ssh(HOSTS["app1"], "echo app1 > %s && cat %s" % (PROBE, PROBE))
    assert written.stdout == "app1\n", written.stderr

    on_app2 = ssh(HOSTS["app2"], "test -e %s; echo $?" % PROBE)

    assert on_app2.stdout == "1\n", on_app2.stderr
    assert not os.path.exists(PROBE)


def engine(address):
    info = ssh(address, "docker -H unix:///var/run/docker.sock info --format '{{json .}}'")
    assert info.returncode == 0, info.stderr
    return json.loads(info.stdout)


def test_an_app_host_has_a_docker_engine_of_its_own():
    app1, app2 = engine(HOSTS["app1"]), engine(HOSTS["app2"])

    assert (app1["Name"], app2["Name"]) == ("app1", "app2")
    assert app1["ID"] != app2["ID"]
    assert app1["DockerRootDir"] == "/var/lib/docker"
    assert "dockerd" in ssh(HOSTS["app1"], "ps -e -o comm=").stdout.split()  # in app1's PID space
    no_engine = ssh(HOSTS["lb1"], "test -e /var/run/docker.sock; echo $?")
    assert no_engine.stdout == "1\n"  # the machine's socket is not handed to other hosts


def test_a_container_on_app1_mounts_app1s_files():
    """The engine runs in app1's filesystem: a bind mount resolves there, not on the
    machine. The image is made from three of app1's own files (no registry, no copy
    from the machine's engine)."""
    ran = ssh(HOSTS["app1"], " && ".join([
        "echo on-app1 > /etc/fleet-bind-probe",
        "tar -ch -C / usr/bin/cat usr/lib/x86_64-linux-gnu/libc.so.6 lib64/ld-linux-x86-64.so.2"
        " | docker import - fleet-probe:1 >/dev/null",
        "timeout 60 docker run --rm --network host -v /etc/fleet-bind-probe:/probe"
        " fleet-probe:1 /usr/bin/cat /probe"]))

    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "on-app1\n"
    assert not os.path.exists("/etc/fleet-bind-probe")


def test_an_image_moves_from_one_app_engine_to_the_others():
    made = ssh(HOSTS["app1"], "tar -ch -C / usr/bin/true usr/lib/x86_64-linux-gnu/libc.so.6"
               " lib64/ld-linux-x86-64.so.2 | docker import - fleet-move-probe:1")
    assert made.returncode == 0, made.stderr
    assert ssh(HOSTS["app2"], "docker image inspect fleet-move-probe:1").returncode == 1

    moved = subprocess.run(FLEET + ["load-image", "-i", INVENTORY, "--image", "fleet-move-probe:1",
                                    "--from-host", "app1"],
                           capture_output=True, text=True, timeout=TIMEOUT, check=False)

    assert moved.returncode == 0, moved.stderr
    assert moved.stdout == "fleet: fleet-move-probe:1 loaded on app2\n"
    ran = ssh(HOSTS["app2"], "timeout 60 docker run --rm --network host fleet-move-probe:1 /usr/bin/true")
    assert ran.returncode == 0, ran.stderr
    again = subprocess.run(FLEET + ["load-image", "-i", INVENTORY, "--image", "fleet-move-probe:1",
                                    "--from-host", "app1"],
                           capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert (again.returncode, again.stdout) == (0, "")  # present everywhere: nothing to copy


def test_down_twice_leaves_nothing(fleet_up):
    first, second = fleet("down"), fleet("down")

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    for (name, pid_file), pid in fleet_up.items():
        assert not running(pid), "%s %s still runs" % (name, pid_file)
    assert fleet_mounts() == []
    assert not os.path.exists(STATE_DIR)
