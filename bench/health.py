# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health probing on the live stack: what one probe costs, and how the health
endpoint holds up under 50 concurrent clients.

1. Probe latency. ``probe_http`` from plugins/module_utils/probes.py (what
   unitehub.platform.health_probe runs for each attempt) against the live slot's
   ``/api/health/system``, ``--probes`` times in a row: p50 / p99 of the latency the
   probe measures (connect to the end of the body) and of the whole call (parsing
   and judging the health document included), and the statuses it judged.
2. Endpoint under load. ``--clients`` concurrent clients (tests/integration/traffic.py,
   one fresh connection per request, unpaced: each client sends its next request
   as soon as the last one is answered) against ``/api/health/system``, first on
   the live slot directly, then through nginx, each for at most ``--seconds`` or
   ``--requests``: p50 / p99 latency, throughput and HTTP statuses. Each request
   runs every check of the app (a SELECT 1 through PgBouncer, a Redis PING, a
   write + fsync + read on the filesystem).
3. A dependency that never answers. A throwaway container of the live release
   whose REDIS_URL points at a server that accepts and never replies:
   ``--hang-requests`` health requests in a row, p50 / max time to the answer.
4. ``playbooks/health.yml`` wall time, ``--playbook-runs`` runs: every component
   probed by the health_probe module, as an operator runs it.

The clients run on the same 2-core machine as the app, nginx, Redis, PostgreSQL
and PgBouncer, so these are figures for this machine only. Traffic goes to
127.0.0.1 only. The bench loads the shared stack: run it under the stack lock,

    flock /tmp/unitehub-stack.lock .venv/bin/python bench/health.py [--probes 300] [--clients 50] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "collections"))

from ansible_collections.unitehub.platform.plugins.module_utils.probes import probe_http  # noqa: E402
from ansible_collections.unitehub.platform.tests.app.conftest import HangingServer  # noqa: E402
from ansible_collections.unitehub.platform.tests.integration.stack_helpers import app_container, get_health  # noqa: E402
from ansible_collections.unitehub.platform.tests.integration.traffic import Traffic  # noqa: E402

HOST = "127.0.0.1"
LB_PORT = 8080
SLOT_PORTS = {"blue": 3008, "green": 3009}
HEALTH_PATH = "/api/health/system"
# Per client: a ceiling of requests per second no client reaches, so the pacing never waits.
UNPACED_RPS_PER_CLIENT = 1000
LIMITS = {"probes": (10, 20000), "clients": (1, 200), "seconds": (1, 120), "requests": (100, 200000),
          "hang_requests": (1, 100), "playbook_runs": (1, 10)}


def p50_p99(values):
    """(p50, p99) of ``values``."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return statistics.median(values), cuts[98]


def live_slot():
    url = "http://%s:%d/api/version" % (HOST, LB_PORT)
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)["slot"]
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit("no live slot answers %s (%s): bring the stack up with playbooks/site.yml and deploy a "
                         "release with playbooks/deploy.yml first" % (url, exc)) from None


def bench_probe(url, probes):
    measured, wall, statuses = [], [], Counter()
    for _unused in range(probes):
        start = time.perf_counter()
        result = probe_http(url, request_timeout=2.0)
        wall.append((time.perf_counter() - start) * 1000.0)
        measured.append(result.latency_ms)
        statuses[result.status if not result.error else "%s (%s)" % (result.status, result.error)] += 1
    return measured, wall, statuses


def bench_endpoint(port, clients, seconds, requests):
    traffic = Traffic(url_host=HOST, port=port, path=HEALTH_PATH, fresh_rps=clients * UNPACED_RPS_PER_CLIENT,
                      keepalive_rps=0, threads_per_kind=clients, max_seconds=seconds, max_requests=requests,
                      timeout=10.0)
    traffic.start()
    try:
        time.sleep(seconds)  # the clients stop by themselves at the deadline or the request cap
    finally:
        report = traffic.stop()["fresh"]
    latencies = [(s.finished - s.started) * 1000.0 for s in report.samples if s.error is None]
    statuses = Counter(s.error.split(":")[0] if s.error else s.status for s in report.samples)
    return report, latencies, statuses


def bench_hanging_dependency(version, requests):
    """Seconds to each health answer of a container whose Redis never replies."""
    silent = HangingServer()
    try:
        with tempfile.TemporaryDirectory(prefix="uh-bench-") as workdir:
            secret_env = {"REDIS_URL": "redis://127.0.0.1:%d/0" % silent.port}
            with app_container(workdir, version, secret_env=secret_env) as app:
                answers = [get_health(app.port) for _unused in range(requests)]
    finally:
        silent.close()
    return [answer.elapsed * 1000.0 for answer in answers], Counter(answer.status for answer in answers)


def bench_health_playbook(runs):
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO_ROOT, "ansible.cfg"))
    seconds = []
    for _unused in range(runs):
        start = time.perf_counter()
        proc = subprocess.run([ansible, os.path.join(REPO_ROOT, "playbooks", "health.yml")], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        seconds.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit("playbooks/health.yml failed:\n%s" % proc.stdout[-3000:])
    return seconds


def live_version():
    with urllib.request.urlopen("http://%s:%d/api/version" % (HOST, LB_PORT), timeout=5) as response:
        return json.load(response)["version"]


def row(label, values, unit="ms"):
    p50, p99 = p50_p99(values)
    return "  %-34s p50 %8.2f %s   p99 %8.2f %s   (n=%d)" % (label, p50, unit, p99, unit, len(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--probes", type=int, default=300, help="probe_http calls in a row")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients on the endpoint")
    parser.add_argument("--seconds", type=float, default=10, help="longest run per endpoint target")
    parser.add_argument("--requests", type=int, default=20000, help="most requests per endpoint target")
    parser.add_argument("--hang-requests", type=int, default=10, help="health requests with Redis hanging")
    parser.add_argument("--playbook-runs", type=int, default=3, help="runs of playbooks/health.yml")
    args = parser.parse_args()
    for name, (low, high) in LIMITS.items():
        value = getattr(args, name)
        if not low <= value <= high:
            parser.error("--%s %s is not between %s and %s" % (name, value, low, high))

    slot = live_slot()
    port = SLOT_PORTS[slot]
    url = "http://%s:%d%s" % (HOST, port, HEALTH_PATH)
    first = probe_http(url, request_timeout=2.0)
    if first.status != "pass":
        raise SystemExit("the live slot %s is not healthy (%s%s): the figures would not be those of a healthy "
                         "slot; fix it first (playbooks/status.yml shows what fails)"
                         % (slot, first.status, ", " + first.error if first.error else ""))

    print("Health probing against the live slot %s (%s)" % (slot, url))
    print()
    print("1. probe_http (module_utils.health), %d probes in a row" % args.probes)
    measured, wall, statuses = bench_probe(url, args.probes)
    print(row("latency the probe measures", measured))
    print(row("whole call (judging included)", wall))
    print("  statuses: %s" % dict(statuses))
    print()
    print("2. %s under %d concurrent clients (fresh connection per request, unpaced, at most %g s / %d requests)"
          % (HEALTH_PATH, args.clients, args.seconds, args.requests))
    for label, target in (("slot %s directly (:%d)" % (slot, port), port), ("through nginx (:%d)" % LB_PORT, LB_PORT)):
        report, latencies, codes = bench_endpoint(target, args.clients, args.seconds, args.requests)
        print("  %s: %d requests, %.1f requests/s" % (label, report.total, report.rate))
        print(row("latency", latencies))
        print("  statuses: %s" % dict(codes))
    print()
    print("3. %s while Redis accepts and never answers (throwaway container, HEALTH_CHECK_TIMEOUT_MS default)"
          % HEALTH_PATH)
    hung, codes = bench_hanging_dependency(live_version(), args.hang_requests)
    print("  time to the answer: p50 %.0f ms, max %.0f ms (n=%d); statuses: %s"
          % (statistics.median(hung), max(hung), len(hung), dict(codes)))
    print()
    print("4. playbooks/health.yml, every component")
    runs = bench_health_playbook(args.playbook_runs)
    print("  wall time: median %.2f s (min %.2f, max %.2f, n=%d)"
          % (statistics.median(runs), min(runs), max(runs), len(runs)))
    print()
    print("For scale: the app answers its health within HEALTH_CHECK_TIMEOUT_MS (800 ms by default) whatever its "
          "dependencies do; the deploy gate probes every 5 s with a 60 s timeout (its defaults).")


if __name__ == "__main__":
    main()
