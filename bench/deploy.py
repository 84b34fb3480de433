"""Deploy, switch and rollback times of the blue-green flow on this machine.

Runs the real playbooks against the local stack (make stack first), with the
images prebuilt. Each playbook figure is printed beside the floor: an empty play
on the same inventory with the same ansible.cfg (ansible-playbook's own start-up),
measured in the same run, interleaved with the runs it is compared with. Targets:
a deploy with stability_window=0, drain_seconds=0 and a 0.2 s gate interval in
<= 4 s; a rollback in <= 10 s; a switch in <= 1 s (from the live marker's move
to the new version answering through the load balancer).

    flock /tmp/unitehub-stack.lock .venv/bin/python bench/deploy.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
EVENTS = "/var/log/unitehub/deploy-events.jsonl"
SWITCH_LINE = re.compile(r"answered\s+from\s+it\s+([0-9.]+)\s+s\s+after\s+the\s+switch")
# What an operator would pass for a fast, still fully gated deploy (3 passing probes, 0.2 s apart).
FAST = ["-e", "stability_window=0", "-e", "health_interval=0.2", "-e", "drain_seconds=0"]
DEPLOY_TARGET = 4.0
# Two releases the deploys alternate between, so that every timed deploy changes the live slot.
RELEASES = ("bench-a", "bench-b")
EMPTY_PLAY = "- name: Nothing, to time ansible-playbook's own start-up\n  hosts: lb\n  gather_facts: false\n  tasks: []\n"
# Rollback keeps its own gate defaults (0.5 s interval, 2 passes): a known-good release.
ROLLBACK_FAST = ["-e", "stability_window=0", "-e", "drain_seconds=0"]
STATE = "/var/lib/unitehub/unitehub/state.json"
# A rollback while the previous slot is warm: traffic back within floor + 1 s, the command over
# within floor + 2 s. A cold one: 6 s plus its health gate.
WARM_TRAFFIC_TARGET, WARM_END_TARGET, COLD_TARGET = 1.0, 2.0, 6.0


def live_version():
    try:
        with urllib.request.urlopen("http://127.0.0.1:8080/api/version", timeout=2) as response:
            return json.load(response)["version"]
    except OSError:
        return None


def run(playbook, *args, expect_version=None):
    """Run a playbook (a path, or a name under playbooks/); return (seconds, switch seconds,
    seconds until the load balancer first answered with ``expect_version``, polled every 20 ms)."""
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


def floor_seconds():
    """Seconds of an empty play on the same inventory: what any playbook costs before its first task."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "empty.yml")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(EMPTY_PLAY)
        return run(path)[0]


def last_phases():
    with open(EVENTS, encoding="utf-8") as handle:
        lines = [json.loads(line) for line in handle if line.strip()]
    return lines[-1].get("phases") or {}


def describe(values):
    return "median %.3f s (min %.3f, max %.3f, n=%d)" % (
        statistics.median(values), min(values), max(values), len(values))


def beside_floor(values, floors):
    """The median of ``values`` beside the median floor of the same run: ratio and difference."""
    value, floor = statistics.median(values), statistics.median(floors)
    return "floor %.3f s: %.2fx the floor, floor + %.3f s" % (floor, value / floor, value - floor)


def verdict(value, target):
    return "PASS" if value <= target else "MISS"


def measure_deploys(rounds):
    """Timed fast deploys, alternating the two prebuilt releases, each after an empty play."""
    deploys, floors, switches, phases = [], [], [], []
    for index in range(rounds):
        floors.append(floor_seconds())
        elapsed, switch, _served = run("deploy.yml", "-e", "version=" + RELEASES[index % 2], *FAST)
        deploys.append(elapsed)
        switches.append(switch)
        phases.append(last_phases())
    return deploys, floors, switches, phases


def read_state():
    with open(STATE, encoding="utf-8") as handle:
        return json.load(handle)


def previous_version():
    state = read_state()
    return state["slots"][state["previous_slot"]]["version"]


def wait_until_nothing_warm(timeout=60):
    """Until the standby timer has stopped the slot a fast rollback left (drain 0: at once)."""
    deadline = time.monotonic() + timeout
    while read_state().get("warm_standby") is not None:
        if time.monotonic() > deadline:
            sys.exit("the standby timer did not stop the warm standby within %d s" % timeout)
        time.sleep(0.1)


def measure_rollbacks(rounds):
    """Cold and warm rollbacks, alternating. A cold one (nothing warm) with keep_warm=300 leaves
    the slot it left warm, so the next rollback takes the fast path; that one keeps nothing warm
    (the timer stops the slot it left at once), so the next is cold again. Each timed run follows
    its own empty play."""
    runs = {"cold": [], "cold_floor": [], "cold_traffic": [], "cold_gate": [], "warm": [], "warm_floor": [],
            "warm_traffic": [], "switch": []}
    for _unused in range(rounds):
        wait_until_nothing_warm()
        runs["cold_floor"].append(floor_seconds())
        elapsed, _switch, served = run("rollback.yml", *ROLLBACK_FAST, "-e", "keep_warm=300",
                                       expect_version=previous_version())
        runs["cold"].append(elapsed)
        runs["cold_traffic"].append(served)
        runs["cold_gate"].append(last_phases().get("health_gate", 0.0))
        runs["warm_floor"].append(floor_seconds())
        elapsed, switch, served = run("rollback.yml", *ROLLBACK_FAST, expect_version=previous_version())
        runs["warm"].append(elapsed)
        runs["warm_traffic"].append(served)
        runs["switch"].append(switch)
    wait_until_nothing_warm()
    return runs


def report_rollbacks(runs):
    """Each rollback figure beside the floor of its own runs, with PASS/MISS against its target."""
    warm_floor = statistics.median(runs["warm_floor"])
    traffic = statistics.median(runs["warm_traffic"]) - warm_floor
    end = statistics.median(runs["warm"]) - warm_floor
    print("  rollback while warm (fast path), traffic back on the previous version %s   %s   target floor + %g s: %s"
          % (describe(runs["warm_traffic"]), beside_floor(runs["warm_traffic"], runs["warm_floor"]),
             WARM_TRAFFIC_TARGET, verdict(traffic, WARM_TRAFFIC_TARGET)))
    print("  rollback while warm (fast path), command end %s   %s   target floor + %g s: %s"
          % (describe(runs["warm"]), beside_floor(runs["warm"], runs["warm_floor"]), WARM_END_TARGET,
             verdict(end, WARM_END_TARGET)))
    print("  rollback while warm, switch %s (marker moved -> previous version answering via nginx)"
          % describe(runs["switch"]))
    cold_without_gate = [elapsed - gate for elapsed, gate in zip(runs["cold"], runs["cold_gate"])]
    print("  rollback cold (full path), command end %s   %s"
          % (describe(runs["cold"]), beside_floor(runs["cold"], runs["cold_floor"])))
    print("  rollback cold, traffic back %s   %s"
          % (describe(runs["cold_traffic"]), beside_floor(runs["cold_traffic"], runs["cold_floor"])))
    print("  rollback cold without its health gate (gate median %.3f s) %s   target <= %g s plus the gate: %s"
          % (statistics.median(runs["cold_gate"]), describe(cold_without_gate), COLD_TARGET,
             verdict(statistics.median(cold_without_gate), COLD_TARGET)))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    # Set-up, untimed: both releases built once, bench-b live (the first timed deploy is bench-a).
    run("deploy.yml", "-e", "version=" + RELEASES[0], *FAST)
    run("deploy.yml", "-e", "version=" + RELEASES[1], *FAST)

    deploys, deploy_floors, switches, phases = measure_deploys(args.rounds)
    rollbacks = measure_rollbacks(args.rounds)

    print("bench/deploy: %d rounds, images prebuilt, stability_window=0, drain_seconds=0; deploy health_interval=0.2 "
          "(3 passes), rollback its defaults (0.5 s, 2 passes); floor = an empty play on the same inventory, "
          "measured before each timed run" % args.rounds)
    print("  deploy   %s   %s   target <= %g s: %s" % (
        describe(deploys), beside_floor(deploys, deploy_floors), DEPLOY_TARGET,
        verdict(statistics.median(deploys), DEPLOY_TARGET)))
    report_rollbacks(rollbacks)
    print("  switch   %s   target <= 1 s: %s (marker moved -> new version answering via nginx; inside the run, "
          "no floor)" % (describe(switches), verdict(statistics.median(switches), 1)))
    keys = sorted({key for p in phases for key in p}, key=lambda k: list(phases[0]).index(k) if k in phases[0] else 99)
    print("  deploy phases (median s): " + ", ".join(
        "%s %.2f" % (key, statistics.median(p.get(key, 0.0) for p in phases)) for key in keys))


if __name__ == "__main__":
    main()
