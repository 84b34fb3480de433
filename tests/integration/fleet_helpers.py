# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local fleet (tools/fleet.py, inventories/fleet) as the fleet tests reach it: its
harness, its hosts over SSH with the harness's key, and the secrets it generated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

from ansible_collections.unitehub.platform.tests.integration.ansible_runner import REPO_ROOT

FLEET = [sys.executable, os.path.join(REPO_ROOT, "tools", "fleet.py")]
INVENTORY = os.path.join(REPO_ROOT, "inventories", "fleet")
STATE_DIR = "/var/lib/unitehub-fleet"
TIMEOUT = 120  # seconds for any one command
ADDRESSES = {"lb1": "127.0.0.21", "lb2": "127.0.0.22", "app1": "127.0.0.31", "app2": "127.0.0.32",
             "db1": "127.0.0.41", "cache1": "127.0.0.42"}
LBS = ("lb1", "lb2")
APP_HOSTS = ("app1", "app2")
LB_PORT = 8080


def fleet(*args):
    """Run tools/fleet.py on the fleet inventory."""
    return subprocess.run(FLEET + list(args) + ["-i", INVENTORY], capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)


def ssh(name, command):
    """Run ``command`` on a fleet host as Ansible reaches it: the harness's key, strict host keys."""
    return subprocess.run(
        ["ssh", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
         "-o", "UserKnownHostsFile=%s/ssh/known_hosts" % STATE_DIR, "-i", "%s/ssh/id_ed25519" % STATE_DIR,
         "root@" + ADDRESSES[name], command],
        capture_output=True, text=True, timeout=TIMEOUT, check=False)


def secret(name):
    with open(os.path.join(STATE_DIR, "secrets", name), encoding="utf-8") as handle:
        return handle.read().split()[0]  # the password lookup may append " salt=..."


def lb_version(lb):
    """The version a load balancer serves now, or None when it does not answer."""
    try:
        with urllib.request.urlopen("http://%s:%d/api/version" % (ADDRESSES[lb], LB_PORT), timeout=3) as answer:
            return json.load(answer)["version"]
    except OSError:
        return None
