#!/usr/bin/env python3
"""Deploy, switch and rollback times of the blue-green flow on this machine.

Runs the real playbooks against the local stack (make stack first), with the
image prebuilt and a stability window of 0, as the targets are stated:
deploy <= 20 s, rollback <= 10 s, switch <= 1 s (from the nginx reload to the
new version answering through the load balancer).

    .venv/bin/python bench/deploy.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
EVENTS = "/var/log/unitehub/deploy-events.jsonl"
SWITCH_LINE = re.compile(r"answered\s+from\s+it\s+([0-9.]+)\s+s\s+after\s+the\s+reload")
# What an operator would pass for a fast, still fully gated deploy.
FAST = ["-e", "stability_window=0", "-e", "health_interval=1", "-e", "drain_seconds=0"]
# Rollback keeps its own gate defaults (0.5 s interval, 2 passes): a known-good release.
ROLLBACK_FAST = ["-e", "stability_window=0", "-e", "drain_seconds=0"]


def run(playbook, *args):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    start = time.monotonic()
    proc = subprocess.run([PLAYBOOK, os.path.join(REPO, "playbooks", playbook), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit("%s failed:\n%s" % (playbook, proc.stdout[-4000:] + proc.stderr[-2000:]))
    match = SWITCH_LINE.search(proc.stdout)
    return elapsed, float(match.group(1)) if match else None


def last_phases():
    with open(EVENTS, encoding="utf-8") as handle:
        lines = [json.loads(line) for line in handle if line.strip()]
    return lines[-1].get("phases") or {}


def describe(values):
    return "median %.2f s (min %.2f, max %.2f, n=%d)" % (
        statistics.median(values), min(values), max(values), len(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    # Set-up, untimed: release A live, release B built once (then rolled back).
    run("deploy.yml", "-e", "version=bench-a", *FAST)
    run("deploy.yml", "-e", "version=bench-b", *FAST)
    run("rollback.yml", *ROLLBACK_FAST)

    deploys, switches, rollbacks, phases = [], [], [], []
    for _unused in range(args.rounds):
        elapsed, switch = run("deploy.yml", "-e", "version=bench-b", *FAST)
        deploys.append(elapsed)
        switches.append(switch)
        phases.append(last_phases())
        elapsed, switch = run("rollback.yml", *ROLLBACK_FAST)
        rollbacks.append(elapsed)
        switches.append(switch)

    print("bench/deploy: %d rounds, image prebuilt, stability_window=0, drain_seconds=0; deploy health_interval=1 "
          "(3 passes), rollback its defaults (0.5 s, 2 passes)" % args.rounds)
    print("  deploy   %s   target <= 20 s" % describe(deploys))
    print("  rollback %s   target <= 10 s" % describe(rollbacks))
    print("  switch   %s   target <= 1 s (reload -> new version answering via nginx)" % describe(switches))
    keys = sorted({key for p in phases for key in p}, key=lambda k: list(phases[0]).index(k) if k in phases[0] else 99)
    print("  deploy phases (median s): " + ", ".join(
        "%s %.2f" % (key, statistics.median(p.get(key, 0.0) for p in phases)) for key in keys))


if __name__ == "__main__":
    main()
