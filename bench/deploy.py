"""Deploy, switch and rollback times of the blue-green flow on this machine.

Runs the real playbooks against the local stack (make stack first), with the
image prebuilt and a stability window of 0, as the targets are stated:
deploy <= 20 s, rollback <= 10 s, switch <= 1 s (from the live marker's move to
the new version answering through the load balancer).

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
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
EVENTS = "/var/log/unitehub/deploy-events.jsonl"
SWITCH_LINE = re.compile(r"answered\s+from\s+it\s+([0-9.]+)\s+s\s+after\s+the\s+switch")
# What an operator would pass for a fast, still fully gated deploy.
FAST = ["-e", "stability_window=0", "-e", "health_interval=1", "-e", "drain_seconds=0"]
# Rollback keeps its own gate defaults (0.5 s interval, 2 passes): a known-good release.
ROLLBACK_FAST = ["-e", "stability_window=0", "-e", "drain_seconds=0"]


def live_version():
    try:
        with urllib.request.urlopen("http://127.0.0.1:8080/api/version", timeout=2) as response:
            return json.load(response)["version"]
    except OSError:
        return None


def run(playbook, *args, expect_version=None):
    """Run a playbook; return (seconds, switch seconds, seconds until the load
    balancer first answered with ``expect_version``, polled every 20 ms)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    served = {}
    done = threading.Event()
    start = time.monotonic()

    def watch():
        while not done.is_set() and "at" not in served:
            if expect_version is not None and live_version() == expect_version:
                served["at"] = time.monotonic() - start
            done.wait(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    proc = subprocess.run([PLAYBOOK, os.path.join(REPO, "playbooks", playbook), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    elapsed = time.monotonic() - start
    done.set()
    watcher.join()
    if proc.returncode != 0:
        sys.exit("%s failed:\n%s" % (playbook, proc.stdout[-4000:] + proc.stderr[-2000:]))
    match = SWITCH_LINE.search(proc.stdout)
    return elapsed, float(match.group(1)) if match else None, served.get("at")


def last_phases():
    with open(EVENTS, encoding="utf-8") as handle:
        lines = [json.loads(line) for line in handle if line.strip()]
    return lines[-1].get("phases") or {}


def describe(values):
    return "median %.3f s (min %.3f, max %.3f, n=%d)" % (
        statistics.median(values), min(values), max(values), len(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    # Set-up, untimed: release A live, release B built once (then rolled back).
    run("deploy.yml", "-e", "version=bench-a", *FAST)
    run("deploy.yml", "-e", "version=bench-b", *FAST)
    run("rollback.yml", *ROLLBACK_FAST)

    deploys, switches, rollbacks, restored, phases = [], [], [], [], []
    for _unused in range(args.rounds):
        elapsed, switch, _served = run("deploy.yml", "-e", "version=bench-b", *FAST)
        deploys.append(elapsed)
        switches.append(switch)
        phases.append(last_phases())
        elapsed, switch, served = run("rollback.yml", *ROLLBACK_FAST, expect_version="bench-a")
        rollbacks.append(elapsed)
        switches.append(switch)
        restored.append(served)

    print("bench/deploy: %d rounds, image prebuilt, stability_window=0, drain_seconds=0; deploy health_interval=1 "
          "(3 passes), rollback its defaults (0.5 s, 2 passes)" % args.rounds)
    print("  deploy   %s   target <= 20 s" % describe(deploys))
    print("  rollback %s   target <= 10 s" % describe(rollbacks))
    print("  rollback, traffic back on the previous version %s (until the old slot is stopped and the run recorded:"
          " the rest)" % describe(restored))
    print("  switch   %s   target <= 1 s (marker moved -> new version answering via nginx)" % describe(switches))
    keys = sorted({key for p in phases for key in p}, key=lambda k: list(phases[0]).index(k) if k in phases[0] else 99)
    print("  deploy phases (median s): " + ", ".join(
        "%s %.2f" % (key, statistics.median(p.get(key, 0.0) for p in phases)) for key in keys))


if __name__ == "__main__":
    main()
