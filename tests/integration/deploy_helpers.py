"""Deploy helpers shared by the integration tests: run deploy.yml, read what it
left behind (state, audit log, the live version through nginx)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request

import docker

from ansible_collections.unitehub.platform.tests.integration.ansible_runner import REPO_ROOT, run_playbook

DEPLOY = os.path.join(REPO_ROOT, "playbooks", "deploy.yml")
ROLLBACK = os.path.join(REPO_ROOT, "playbooks", "rollback.yml")
RECONCILE = os.path.join(REPO_ROOT, "playbooks", "reconcile.yml")
STATE_DIR = "/var/lib/unitehub/unitehub"
STATE_FILE = os.path.join(STATE_DIR, "state.json")
LOCK_FILE = os.path.join(STATE_DIR, "deploy.lock")
AUDIT_LOG = "/var/log/unitehub/unitehub/deploy-audit.jsonl"
# What the switch owns: blue.conf, green.conf and the live/ marker.
UPSTREAM_DIR = "/etc/nginx/unitehub/unitehub"
LB = "http://127.0.0.1:8080"
# Fast but real: every gate and watch still probes the real slots.
FAST = {"health_interval": 1, "stability_window": 3, "drain_seconds": 1}
# The release the stack tests start from.
BASE_RELEASE = "it-base"

# version -> (slot, that slot's deploy-state record) a deploy of this session proved live
# with the settings a plain deploy gives it.
_proven_live = {}


def lb_version():
    with urllib.request.urlopen(LB + "/api/version", timeout=5) as response:
        body = json.load(response)
        return body["slot"], body["version"]


def routing_snapshot():
    """Every file of the switch's directory (relative path -> bytes): what nginx routes by."""
    files = {}
    for directory, _subdirs, names in os.walk(UPSTREAM_DIR):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                files[os.path.relpath(path, UPSTREAM_DIR)] = handle.read()
    return files


def read_state():
    with open(STATE_FILE, encoding="utf-8") as handle:
        return json.load(handle)


def audit_lines():
    if not os.path.exists(AUDIT_LOG):
        return []
    with open(AUDIT_LOG, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def deploy(version, slot="auto", **extra):
    return run_playbook(DEPLOY, extra_vars=dict(FAST, version=version, slot=slot, **extra))


def live_record():
    """(active slot, its record in the deploy state): a redeploy of the slot changes the record."""
    state = read_state()
    return state["active_slot"], state["slots"][state["active_slot"]]


def still_proven_live(version):
    """Whether the container a deploy of this session proved live for ``version`` still is:
    the same slot record in the deploy state, nginx answering from it, no run holding the lock."""
    if version not in _proven_live or os.path.exists(LOCK_FILE):
        return False
    try:
        record, answer = live_record(), lb_version()
    except (OSError, ValueError, KeyError):
        return False
    return record == _proven_live[version] and answer == (record[0], version)


def ensure_live(version):
    """A known starting point: ``version`` live and healthy through nginx, with the settings
    a plain deploy gives it. Returns the live slot.

    The deploy (a no-op when the live slot already runs ``version`` unchanged) is skipped when
    this session's last one proved that same container live and nothing redeployed it since:
    running it again would prove nothing more, and costs seconds per test."""
    if still_proven_live(version):
        return lb_version()[0]
    result = deploy(version)
    assert result.rc == 0, result.output[-6000:]
    assert lb_version()[1] == version
    _proven_live[version] = live_record()
    return lb_version()[0]


def start_deploy_in_background(version, **extra):
    vars_file = "/tmp/unitehub-it-%s.json" % version
    with open(vars_file, "w", encoding="utf-8") as handle:
        json.dump(dict(FAST, version=version, **extra), handle)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO_ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    return subprocess.Popen([ansible, DEPLOY, "-e", "@" + vars_file], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def remove_app(app_name, image):
    """Everything a test's own app left on the host: its containers, its load-balancer site
    (nginx reloaded), its deploy files and its images."""
    client = docker.from_env()
    for slot in ("blue", "green"):
        try:
            client.containers.get("%s-%s" % (app_name, slot)).remove(force=True)
        except docker.errors.NotFound:
            pass
    for path in ("/etc/nginx/conf.d/%s.conf" % app_name, "/etc/nginx/unitehub/%s" % app_name,
                 "/var/lib/unitehub/%s" % app_name, "/var/log/unitehub/%s" % app_name,
                 "/etc/unitehub/secrets/%s-blue" % app_name, "/etc/unitehub/secrets/%s-green" % app_name):
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.unlink(path)
    subprocess.run(["nginx", "-s", "reload"], check=True, capture_output=True, timeout=60)
    for found in client.images.list(name=image):
        client.images.remove(found.id, force=True)
