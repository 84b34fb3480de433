"""Deploy and rollback time on the local fleet with 1, 2 and 4 app hosts.

Brings up a fleet of its own (tools/fleet.py: one load balancer, four app hosts, db and cache,
each a sandbox reached over SSH), provisions it with site.yml, and takes it down at the end.
The deploy's app hosts are the role's blue_green_app_hosts: the first 1, 2 or 4 of them. Each
size first deploys the two releases it alternates between, so the timed runs find their
images built; then it times fast deploys (stability_window=0, drain_seconds=0, 0.2 s gate
interval) and rollbacks. Each figure is printed as a ratio to the 1-host figure of the same
run. Target: 4 app hosts cost at most 1.5 times 1 host.

    .venv/bin/python bench/fleet.py [--rounds 3]

Needs root and no other fleet up (make fleet-down first).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
FLEET = [sys.executable, os.path.join(REPO, "tools", "fleet.py")]
STATE_DIR = "/var/lib/unitehub-fleet"
BASE_IMAGE = "unitehub/base:bookworm"
SIZES = (1, 2, 4)
TARGET = 1.5  # 4 app hosts cost at most this many times 1 host
RELEASES = ("bench-a", "bench-b")
FAST = ["-e", "stability_window=0", "-e", "health_interval=0.2", "-e", "drain_seconds=0"]
HOSTS_YML = """\
all:
  children:
    lb:
      hosts:
        lb1: {ansible_host: 127.0.0.21, nginx_listen_address: 127.0.0.21, nginx_listen_port: 8080}
    app:
      hosts:
%s
    db:
      hosts:
        db1: {ansible_host: 127.0.0.41}
    cache:
      hosts:
        cache1: {ansible_host: 127.0.0.42}
"""


def app_hosts(count):
    return ["app%d" % number for number in range(1, count + 1)]


def write_inventory(directory):
    """The fleet inventory's settings with this bench's hosts: four app hosts, 127.0.0.31 to .34."""
    apps = "\n".join("        %s: {ansible_host: 127.0.0.%d}" % (name, 30 + number)
                     for number, name in enumerate(app_hosts(max(SIZES)), start=1))
    with open(os.path.join(directory, "hosts.yml"), "w", encoding="utf-8") as handle:
        handle.write(HOSTS_YML % apps)
    shutil.copytree(os.path.join(REPO, "inventories", "fleet", "group_vars"), os.path.join(directory, "group_vars"))


def run(argv, timeout=1800):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        failures = [line for line in proc.stdout.splitlines() if line.startswith(("fatal:", "[ERROR]"))]
        sys.exit("%s failed:\n%s\n%s" % (" ".join(argv), "\n".join(failures), proc.stderr[-2000:]))
    return time.monotonic() - start


def playbook(inventory, name, count, *args):
    """Seconds of one playbook run with the first ``count`` app hosts as the deploy's."""
    return run([os.path.join(BIN, "ansible-playbook"), "-i", inventory, os.path.join(REPO, "playbooks", name),
                "-e", json.dumps({"blue_green_app_hosts": app_hosts(count)}), *args])


def measure(inventory, count, rounds):
    # Releases of this size's own: a rollback runs the exact image its deploy recorded, which
    # exists only on the hosts that deploy ran on.
    releases = ["%s-%d" % (release, count) for release in RELEASES]
    for release in releases:  # builds each release on every host of this size, untimed
        playbook(inventory, "deploy.yml", count, "-e", "version=" + release, *FAST)
    deploys, rollbacks = [], []
    for _unused in range(rounds):
        # The second release is live: each round deploys the first over it, and the rollback
        # brings the second back, so every timed run changes the live slot.
        deploys.append(playbook(inventory, "deploy.yml", count, "-e", "version=" + releases[0], *FAST))
        rollbacks.append(playbook(inventory, "rollback.yml", count, *FAST))
    return statistics.median(deploys), statistics.median(rollbacks), deploys, rollbacks


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed deploys and rollbacks per size")
    args = parser.parse_args()
    if os.path.exists(STATE_DIR):
        sys.exit("a fleet is already up (%s): take it down first (make fleet-down)" % STATE_DIR)
    with tempfile.TemporaryDirectory(prefix="unitehub-bench-fleet-") as inventory:
        write_inventory(inventory)
        try:
            run(FLEET + ["up", "-i", inventory])
            run([os.path.join(BIN, "ansible-playbook"), "-i", inventory, os.path.join(REPO, "playbooks", "site.yml")])
            run(FLEET + ["load-image", "-i", inventory, "--image", BASE_IMAGE])
            figures = {count: measure(inventory, count, args.rounds) for count in SIZES}
        finally:
            subprocess.run(FLEET + ["down", "-i", inventory], capture_output=True, check=False, timeout=600)
    print("bench/fleet: one load balancer, %d rounds per size; deploy: images built, stability_window=0, "
          "drain_seconds=0, 0.2 s gate interval; rollback: the same window and drain" % args.rounds)
    one_deploy, one_rollback = figures[1][0], figures[1][1]
    for count in SIZES:
        deploy, rollback, deploys, rollbacks = figures[count]
        print("  %d app host%s: deploy median %.2f s (%s), %.2fx 1 host; rollback median %.2f s (%s), %.2fx 1 host"
              % (count, "" if count == 1 else "s", deploy, ", ".join("%.2f" % v for v in deploys), deploy / one_deploy,
                 rollback, ", ".join("%.2f" % v for v in rollbacks), rollback / one_rollback))
    worst = max(figures[4][0] / one_deploy, figures[4][1] / one_rollback)
    print("  4 app hosts vs 1: at most %.2fx   target <= %gx: %s" % (worst, TARGET, "PASS" if worst <= TARGET else "MISS"))


if __name__ == "__main__":
    main()
