"""Helpers for the Docker integration tests: run one module or one role
through ansible-playbook against the local inventory and read back what it
returned, and talk to dockerd directly to check and clean up. Ports come from
tests/support/loopback.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid

import docker

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
INVENTORY = os.path.join(REPO_ROOT, "inventories", "local")
BASE_IMAGE = "unitehub/base:bookworm"
SLOT_APP_CONTEXT = os.path.join(REPO_ROOT, "tests", "integration", "fixtures", "slot_app")
RECAP_RE = re.compile(r"localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def unique(prefix):
    return "%s%s" % (prefix, uuid.uuid4().hex[:8])


def docker_client():
    client = docker.from_env(version="auto")
    client.ping()
    return client


def playbook(tmp_path, plays, *options, env=None):
    """Run ``plays`` (a list of play dicts, written as JSON, which YAML reads) and
    return the CompletedProcess."""
    path = tmp_path / ("play-%s.yml" % uuid.uuid4().hex[:6])
    path.write_text(json.dumps(plays, indent=2))
    run_env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    run_env.update(env or {})
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", INVENTORY, str(path), *options],
        cwd=REPO_ROOT,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def recap(proc):
    """``{"ok", "changed", "unreachable", "failed"}`` from the PLAY RECAP line."""
    match = RECAP_RE.search(proc.stdout)
    assert match, "no PLAY RECAP in output:\n%s\n%s" % (proc.stdout, proc.stderr)
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups())))


def run_module(tmp_path, module, args, check=False, diff=False):
    """Run one task of ``module`` and return (its registered result, the
    ansible-playbook output). The result is what the module handed back to
    Ansible, so a secret missing from it was withheld by the module."""
    result_file = tmp_path / ("result-%s.json" % uuid.uuid4().hex[:6])
    plays = [
        {
            "name": "Run %s" % module,
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {"name": "Module under test", module: args, "register": "result", "ignore_errors": True},
                {
                    "name": "Save the result",
                    "ansible.builtin.copy": {"content": "{{ result | to_json }}", "dest": str(result_file)},
                    "check_mode": False,
                    "diff": False,
                },
            ],
        }
    ]
    options = ["-v"] + (["--check"] if check else []) + (["--diff"] if diff else [])
    proc = playbook(tmp_path, plays, *options)
    assert result_file.exists(), "the play did not get to save the result:\n%s\n%s" % (proc.stdout, proc.stderr)
    return json.loads(result_file.read_text()), proc.stdout + proc.stderr


def http_get_json(port, path="/api/version", attempts=50, delay=0.2):
    """GET http://127.0.0.1:<port><path>, retrying a bounded number of times
    while the app starts. Returns the decoded JSON body."""
    last_error = None
    for _unused in range(attempts):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as response:
                return json.loads(response.read().decode())
        except OSError as exc:
            last_error = exc
            time.sleep(delay)
    raise AssertionError("nothing answered on 127.0.0.1:%d%s: %s" % (port, path, last_error))


def remove_containers(client, *names):
    for name in names:
        try:
            client.containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass


def remove_image_tags(client, repository):
    for image in client.images.list(name=repository):
        for tag in image.tags:
            if tag.startswith(repository + ":"):
                client.images.remove(tag, force=True)
