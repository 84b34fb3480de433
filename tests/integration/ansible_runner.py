# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run playbooks from integration tests and read their PLAY RECAP.

    from ansible_collections.unitehub.platform.tests.integration.ansible_runner import (
        run_playbook, run_plays, role_play, write_playbook, run_module,
    )

    result = run_playbook(path, extra_vars={"nginx_listen_port": 8080}, check=True, diff=True)
    assert result.rc == 0, result.output
    assert result.counts()["changed"] == 0

Playbooks run with this checkout's ``ansible-playbook`` (the one beside the test's
Python), the repository's ansible.cfg and, unless told otherwise, the local
inventory. Extra vars go through a temporary JSON file, so values need no shell
quoting and secrets stay off the process list. Every run has a timeout.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
LOCAL_INVENTORY = os.path.join(REPO_ROOT, "inventories", "local")
RECAP_KEYS = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")

_RECAP_HEADER = re.compile(r"^PLAY RECAP \**\s*$", re.M)
_RECAP_LINE = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:[a-z]+=\d+\s*)+)$")
_COUNT = re.compile(r"([a-z]+)=(\d+)")


def parse_recap(output):
    """``{host: {"ok": n, "changed": n, ...}}`` from the last PLAY RECAP in ``output``
    (keys as in RECAP_KEYS; counts missing from the line are 0). Empty when there is
    no recap, e.g. when the playbook did not even parse."""
    headers = list(_RECAP_HEADER.finditer(output))
    if not headers:
        return {}
    recap = {}
    for line in output[headers[-1].end():].splitlines():
        match = _RECAP_LINE.match(line.strip())
        if not match:
            continue
        counts = dict.fromkeys(RECAP_KEYS, 0)
        counts.update((key, int(value)) for key, value in _COUNT.findall(match.group("counts")))
        recap[match.group("host")] = counts
    return recap


@dataclass
class PlaybookResult:
    """What one ansible-playbook run left behind."""

    rc: int
    stdout: str
    stderr: str
    recap: dict = field(default_factory=dict)
    command: list = field(default_factory=list)

    @property
    def output(self):
        """stdout and stderr together, for assertion messages and searches."""
        return self.stdout + "\n" + self.stderr

    def counts(self, host="localhost"):
        """The recap counts of ``host``; fails the test when the host has no recap line."""
        assert host in self.recap, "no PLAY RECAP line for %s (rc=%s):\n%s" % (host, self.rc, self.output[-4000:])
        return self.recap[host]


def run_playbook(path, extra_vars=None, check=False, diff=False, env=None, inventory=LOCAL_INVENTORY,
                 verbosity=0, timeout=900):
    """Run the playbook at ``path`` and return a PlaybookResult.

    ``extra_vars`` (a dict) is handed over as ``-e @file.json``; ``check`` and
    ``diff`` add ``--check`` / ``--diff``; ``env`` is merged over os.environ;
    ``verbosity`` adds that many ``-v``. A run that exceeds ``timeout`` seconds
    raises subprocess.TimeoutExpired.
    """
    command = [ANSIBLE_PLAYBOOK, "-i", inventory, str(path)]
    if check:
        command.append("--check")
    if diff:
        command.append("--diff")
    if verbosity:
        command.append("-" + "v" * verbosity)
    run_env = dict(os.environ)
    run_env.update(ANSIBLE_CONFIG=os.path.join(REPO_ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    run_env.update(env or {})

    vars_file = None
    try:
        if extra_vars:
            handle, vars_file = tempfile.mkstemp(prefix="extra-vars-", suffix=".json")
            with os.fdopen(handle, "w") as stream:
                json.dump(extra_vars, stream)
            command[4:4] = ["-e", "@" + vars_file]
        proc = subprocess.run(
            command, cwd=REPO_ROOT, env=run_env, capture_output=True, text=True, timeout=timeout, check=False
        )
    finally:
        if vars_file:
            os.unlink(vars_file)
    return PlaybookResult(proc.returncode, proc.stdout, proc.stderr, parse_recap(proc.stdout), command)


def write_playbook(directory, plays, name=None):
    """Write ``plays`` (a list of play dicts) as a playbook file in ``directory``
    and return its path. JSON is valid YAML, so no YAML writer is needed."""
    path = os.path.join(str(directory), name or "play-%s.yml" % uuid.uuid4().hex[:8])
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(plays, stream, indent=2)
    return path


def run_plays(directory, plays, **options):
    """Write ``plays`` as a playbook in ``directory`` and run it; ``options`` as for run_playbook."""
    return run_playbook(write_playbook(directory, plays), **options)


def role_play(role, hosts="localhost", name=None, variables=None):
    """A one-play playbook applying ``role`` (FQCN), with ``variables`` as its role vars,
    without gathering facts."""
    entry = {"role": role, "vars": variables} if variables else {"role": role}
    return [{"name": name or "Apply %s" % role, "hosts": hosts, "gather_facts": False, "roles": [entry]}]


def run_module(directory, module, args, check=False, diff=False, extra_vars=None, env=None, verbosity=0):
    """Run one task of ``module`` with ``args`` on localhost.

    Returns (the result the module handed back to Ansible, PlaybookResult). The
    result is read from a file written by a follow-up task, so values the module
    marked no_log are exactly as absent as they are for any playbook. From
    ``verbosity`` 1 the output shows the module's result too.
    """
    out = os.path.join(str(directory), "result-%s.json" % uuid.uuid4().hex[:8])
    plays = [{
        "name": "Run %s" % module,
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [
            {"name": "Module under test", module: args, "register": "result", "ignore_errors": True},
            {
                "name": "Save the module result",
                "ansible.builtin.copy": {"content": "{{ result | to_json }}", "dest": out, "mode": "0600"},
                "check_mode": False,
                "diff": False,
            },
        ],
    }]
    run = run_plays(directory, plays, extra_vars=extra_vars, check=check, diff=diff, env=env, verbosity=verbosity)
    assert os.path.exists(out), "the module task did not run (rc=%s):\n%s" % (run.rc, run.output[-4000:])
    with open(out, encoding="utf-8") as stream:
        return json.load(stream), run
