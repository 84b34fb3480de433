"""Secrets as files and hardened containers, on the stack the session converged.

One deploy of a new release at -vvv puts both slots in the hands of the current code (the
live one from ensure_live, the new one from this deploy). Then: ``docker inspect`` of both
slots holds no secret value, plain or URL-encoded; it shows the hardening; the secret files
on the host are 0400, owned by the container's uid, in a 0700 directory; the -vvv log holds
no secret value either. A deploy hook's container is checked from the inside, since it is
removed when its command ends.
"""

from __future__ import annotations

import json
import os
import stat
import urllib.parse

import docker
import pytest

from ansible_collections.unitehub.platform.tests.integration import ansible_runner
from ansible_collections.unitehub.platform.tests.integration.deploy_helpers import (
    BASE_RELEASE, DEPLOY, FAST, ensure_live, lb_version,
)
from ansible_collections.unitehub.platform.tests.integration.stack_helpers import (
    APP_IMAGE, SECRETS_DIR, STACK_SECRET_ENV,
)

pytestmark = pytest.mark.integration

RELEASE = "it-secrets"
SLOTS = ("blue", "green")
HOST_SECRETS_DIR = "/etc/unitehub/secrets"
SECRET_VARIABLES = ("DATABASE_URL", "REDIS_URL", "APP_ADMIN_TOKEN", "ANTHROPIC_API_KEY")


def inventory_secrets():
    """Every value in inventories/local/.secrets/ (a password lookup file holds the value, then
    maybe ``salt=...``); PEM files give their base64 lines, which is what a leak would show."""
    values = set()
    for root, _dirs, files in os.walk(SECRETS_DIR):
        for name in files:
            if name.endswith(".crt"):  # certificates are public
                continue
            with open(os.path.join(root, name), encoding="utf-8") as handle:
                text = handle.read()
            if "-----BEGIN" in text:
                values.update(line for line in text.splitlines() if len(line) >= 32 and not line.startswith("-----"))
            elif text.split():
                values.add(text.split()[0])
    return values


def slot_secret_files(slot):
    """{variable: value} of a slot's secret files on the host: the exact values the app gets,
    the URLs with their passwords included."""
    directory = os.path.join(HOST_SECRETS_DIR, "unitehub-" + slot)
    values = {}
    for name in os.listdir(directory):
        with open(os.path.join(directory, name), encoding="utf-8") as handle:
            values[name] = handle.read()
    return values


def forbidden(values):
    """Each value as it is and URL-encoded (Ansible's urlencode keeps '/', quote with safe='' does not)."""
    found = set()
    for value in values:
        assert len(value) >= 16, "a secret this short would match by chance: %d characters" % len(value)
        found.update({value, urllib.parse.quote(value), urllib.parse.quote(value, safe=""),
                      urllib.parse.quote_plus(value)})
    return found


def leaks(text, values):
    """The secrets found in ``text``, each shown by its length only."""
    return ["a %d-character secret" % len(v) for v in sorted(values) if v in text]


@pytest.fixture(scope="module")
def client():
    return docker.from_env()


@pytest.fixture(scope="module")
def deployed():
    """The -vvv deploy of RELEASE after BASE_RELEASE: its result."""
    ensure_live(BASE_RELEASE)
    result = ansible_runner.run_playbook(DEPLOY, extra_vars=dict(FAST, version=RELEASE, slot="auto"), verbosity=3)
    assert result.rc == 0, result.output[-6000:]
    assert lb_version()[1] == RELEASE
    return result


@pytest.fixture(scope="module")
def secrets(deployed):
    """Every secret value of the stack, plain and URL-encoded: the inventory's and the values
    derived from them (DATABASE_URL, REDIS_URL) as the slots' secret files hold them."""
    values = inventory_secrets()
    for slot in SLOTS:
        values.update(slot_secret_files(slot).values())
    assert len(values) >= 6, "expected the inventory's secrets and both slots' URLs: %d values" % len(values)
    return forbidden(values)


def test_docker_inspect_of_every_slot_holds_no_secret_value(client, deployed, secrets):
    for slot in SLOTS:
        attrs = client.api.inspect_container("unitehub-" + slot)
        text = json.dumps(attrs)
        assert leaks(text, secrets) == [], "docker inspect unitehub-%s" % slot
        env = dict(item.partition("=")[::2] for item in attrs["Config"]["Env"])
        for name in SECRET_VARIABLES:
            assert name not in env, "%s is in the environment of unitehub-%s" % (name, slot)
            assert env[name + "_FILE"] == "/run/secrets/" + name


def test_docker_inspect_of_every_slot_shows_the_hardening(client, deployed):
    for slot in SLOTS:
        attrs = client.api.inspect_container("unitehub-" + slot)
        host = attrs["HostConfig"]
        assert host["CapDrop"] == ["ALL"] and not host["CapAdd"], slot
        assert "no-new-privileges" in host["SecurityOpt"], slot
        assert host["ReadonlyRootfs"] is True, slot
        assert host["Tmpfs"] == {"/tmp": "rw,noexec,nosuid,nodev,size=64m"}, slot
        assert host["PidsLimit"] == 256 and host["Memory"] == 512 * 1024 * 1024, slot
        user = attrs["Config"]["User"]
        assert user.split(":")[0].isdigit() and int(user.split(":")[0]) != 0, (slot, user)
        assert host["Binds"] == ["%s/unitehub-%s:/run/secrets:ro" % (HOST_SECRETS_DIR, slot)]


def test_the_secret_files_are_0400_of_the_containers_uid_in_a_0700_directory(client, deployed):
    for slot in SLOTS:
        uid = int(client.api.inspect_container("unitehub-" + slot)["Config"]["User"].split(":")[0])
        directory = os.path.join(HOST_SECRETS_DIR, "unitehub-" + slot)
        info = os.lstat(directory)
        assert (stat.S_ISDIR(info.st_mode), stat.S_IMODE(info.st_mode), info.st_uid) == (True, 0o700, uid), slot
        assert sorted(os.listdir(directory)) == sorted(STACK_SECRET_ENV), slot
        for name in os.listdir(directory):
            info = os.lstat(os.path.join(directory, name))
            assert (stat.S_ISREG(info.st_mode), stat.S_IMODE(info.st_mode), info.st_uid) == (True, 0o400, uid), name
    base = os.lstat(HOST_SECRETS_DIR)
    assert (stat.S_IMODE(base.st_mode), base.st_uid) == (0o700, 0)
    # The record earlier versions kept is gone for the slot this deploy brought up.
    assert not os.path.exists("/etc/unitehub/unitehub-%s.env" % lb_version()[0])


def test_the_vvv_deploy_log_holds_no_secret_value(deployed, secrets):
    log = deployed.output
    assert "ESTABLISH LOCAL CONNECTION" in log, "the log is not a -vvv one"
    # The modules' arguments are in it (-vvv keeps them), with secret_env masked by no_log.
    assert "secrets_dir: /etc/unitehub/secrets" in log and "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in log
    assert leaks(log, secrets) == []


def test_a_hook_container_is_hardened_and_gets_its_secrets_as_files(tmp_path, deployed, secrets):
    """The hook's command reports what it sees: its uid, its capabilities, whether it may write
    to / and gain privileges, its limits, and the names (only) in its environment."""
    script = ("id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; "
              "touch /probe 2>/dev/null && echo root-writable || echo root-read-only; "
              "cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.max 2>/dev/null "
              "|| cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes; "
              "env | cut -d= -f1 | sort | tr '\\n' ' '; echo; test -r /run/secrets/DATABASE_URL && echo readable")
    hook_dir = tmp_path / "secrets"
    result, run = ansible_runner.run_module(tmp_path, "unitehub.platform.app_hook", {
        "hook": "it_hardening", "image": APP_IMAGE, "version": RELEASE, "command": ["sh", "-c", script],
        "secret_env": STACK_SECRET_ENV, "secrets_dir": str(hook_dir), "output_lines": 20,
    }, verbosity=3)
    assert not result.get("failed"), run.output[-4000:]
    lines = result["output"]
    assert lines[0].isdigit() and int(lines[0]) != 0, lines
    assert "CapEff:\t0000000000000000" in lines and "NoNewPrivs:\t1" in lines, lines
    assert "root-read-only" in lines and "256" in lines and str(512 * 1024 * 1024) in lines, lines
    names = next(line for line in lines if "APP_HOOK" in line).split()
    assert "DATABASE_URL_FILE" in names and "DATABASE_URL" not in names and "APP_ADMIN_TOKEN" not in names, names
    assert lines[-1] == "readable"
    assert leaks(run.output, secrets) == []
    assert not (hook_dir / "unitehub-hook-it_hardening").exists()  # the files outlive no run
