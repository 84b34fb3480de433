# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What APM costs the reference app: span export on against off, in one run.

Two app processes run side by side on free loopback ports, one with
``ENABLE_APM=false`` and one with ``ENABLE_APM=true APM_PROVIDER=opentelemetry``
exporting every request's span (``APM_SAMPLE_RATE=1.0``) to an OTLP/HTTP JSON
receiver this bench runs on loopback. Both get the same load, interleaved
request by request (off, on, on, off, ...) so drift on the machine hits both
alike. Request metrics for ``/metrics`` are recorded in both: ``ENABLE_APM``
switches span creation and export, which is what is measured here.

Printed per process: latency mean / p50 / p99 as the client sees it, CPU seconds
per 1,000 requests (utime + stime from /proc/<pid>/stat, read after the last
span was exported), resident memory (VmRSS from /proc/<pid>/status) after start
and at the end, and the bytes the receiver got per span. The seed's claims
(memory 5-10 MB, CPU 1-2%, ~3.6 MB/hour of network, flush every 10 s) are printed
beside them.

Each request uses its own connection, as nginx does without upstream keepalive
(the app's keep-alive responses pay a delayed-ACK stall that would drown the
difference; see the note printed at the end). Everything the bench starts is
stopped by its PID. Traffic goes to 127.0.0.1 only.

    .venv/bin/python bench/apm.py [--requests 2000] [--flush-ms 1000] [--path /api/version]
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "collections"))

from ansible_collections.unitehub.platform.tests.app.conftest import stop_pid  # noqa: E402
from ansible_collections.unitehub.platform.tests.support.loopback import free_port  # noqa: E402
from ansible_collections.unitehub.platform.tests.support.otlp import OtlpReceiver  # noqa: E402
from ansible_collections.unitehub.platform.tests.support.waiting import wait_until  # noqa: E402

APP_DIR = os.path.join(REPO_ROOT, "examples", "app")
HOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

SEED_MEMORY = "5-10 MB"
SEED_CPU = "1-2%"
SEED_NETWORK = "~3.6 MB/hour"
SEED_FLUSH = "every 10 s"


def log(message=""):
    print(message, flush=True)


def cpu_seconds(pid):
    """utime + stime of ``pid`` in seconds, from /proc/<pid>/stat (fields 14 and 15)."""
    with open("/proc/%d/stat" % pid, encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields after "(comm) state ..."


def rss_mb(pid):
    with open("/proc/%d/status" % pid, encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS for pid %d" % pid)


def percentile(values, q):
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


class AppProcess:
    def __init__(self, label, env, workdir):
        self.label = label
        self.port = free_port()
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": APP_DIR,
            "PYTHONDONTWRITEBYTECODE": "1",
            "HOST": HOST,
            "PORT": str(self.port),
            "APP_SLOT": "bench",
            "APP_VERSION": "bench",
            "TMPDIR": workdir,
        }
        environment.update(env)
        self.log_path = os.path.join(workdir, "%s.log" % label.replace(" ", "-"))
        # The app logs one JSON line per request: keep it, as in production, in a file.
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "unitehub_app"], cwd=APP_DIR, env=environment,
                                         stdout=out, stderr=subprocess.STDOUT)

    def wait_serving(self, timeout=15.0):
        def serving():
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s; see %s" % (self.label, self.proc.returncode, self.log_path))
            try:
                return request(self.port, "/api/health/live")[0] == 200
            except OSError:
                return False

        wait_until(serving, timeout, what="%s to serve /api/health/live" % self.label)

    def stop(self):
        stop_pid(self.proc, timeout=15)


def request(port, path, keepalive=None):
    """(status, seconds). A fresh connection unless ``keepalive`` (an HTTPConnection) is given."""
    conn = keepalive or http.client.HTTPConnection(HOST, port, timeout=10)
    start = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    if keepalive is None:
        conn.close()
    return response.status, elapsed


def stats(latencies):
    return {
        "mean": statistics.fmean(latencies) * 1e3,
        "p50": percentile(latencies, 50) * 1e3,
        "p99": percentile(latencies, 99) * 1e3,
    }


def diff(on, off, unit=""):
    delta = on - off
    relative = (delta / off * 100.0) if off else float("nan")
    return "%+.3f%s (%+.1f%%)" % (delta, unit, relative)


def keepalive_note(app, samples=20):
    conn = http.client.HTTPConnection(HOST, app.port, timeout=10)
    try:
        times = [request(app.port, "/api/version", keepalive=conn)[1] for _unused in range(samples)]
    finally:
        conn.close()
    return statistics.median(times[1:]) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per process (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="requests per process before measuring")
    parser.add_argument("--flush-ms", type=int, default=1000,
                        help="APM_FLUSH_INTERVAL of the APM process (default 1000, so exports happen during the run)")
    parser.add_argument("--sample-rate", default="1.0", help="APM_SAMPLE_RATE of the APM process (default 1.0)")
    parser.add_argument("--path", default="/api/version", help="path requested (default /api/version)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds the whole bench may take")
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout

    workdir = tempfile.mkdtemp(prefix="unitehub-bench-apm-")
    receiver = OtlpReceiver()
    off = on = None
    try:
        off = AppProcess("APM off", {"ENABLE_APM": "false"}, workdir)
        on = AppProcess("APM on", {
            "ENABLE_APM": "true",
            "APM_PROVIDER": "opentelemetry",
            "APM_SERVICE_NAME": "unite-hub-bench",
            "APM_SAMPLE_RATE": args.sample_rate,
            "APM_FLUSH_INTERVAL": str(args.flush_ms),
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://%s:%d" % (HOST, receiver.port),
        }, workdir)
        off.wait_serving()
        on.wait_serving()
        apps = (off, on)

        log("APM overhead bench: %d cores, Python %s, app pids %d (off) and %d (on), OTLP receiver on %s:%d"
            % (os.cpu_count(), sys.version.split()[0], off.proc.pid, on.proc.pid, HOST, receiver.port))
        log("Load: %d warm-up + %d measured GET %s per process, interleaved one at a time, fresh connection each"
            % (args.warmup, args.requests, args.path))
        log("APM on: provider opentelemetry, sample rate %s, flush every %d ms"
            % (args.sample_rate, args.flush_ms))
        log()

        for i in range(args.warmup):
            for app in (apps if i % 2 == 0 else apps[::-1]):
                request(app.port, args.path)
        # Let the warm-up's spans leave first, so the run's exports are the run's own.
        settle_deadline = time.monotonic() + max(10.0, 3 * args.flush_ms / 1000.0)
        while len(receiver.spans()) < args.warmup * float(args.sample_rate) and time.monotonic() < settle_deadline:
            time.sleep(0.05)
        time.sleep(args.flush_ms / 1000.0 + 0.2)
        rss_start = {app.label: rss_mb(app.proc.pid) for app in apps}
        cpu_start = {app.label: cpu_seconds(app.proc.pid) for app in apps}
        spans_start = len(receiver.spans())

        latencies = {app.label: [] for app in apps}
        errors = {app.label: 0 for app in apps}
        for i in range(args.requests):
            if time.monotonic() > deadline:
                raise RuntimeError("the bench ran out of its %s s" % args.timeout)
            for app in (apps if i % 2 == 0 else apps[::-1]):
                status, elapsed = request(app.port, args.path)
                latencies[app.label].append(elapsed)
                errors[app.label] += status != 200

        # Count the export of the last spans in the APM process's CPU: wait for the final flush.
        expected = spans_start + args.requests if float(args.sample_rate) >= 1.0 else None
        flush_deadline = time.monotonic() + max(10.0, 3 * args.flush_ms / 1000.0)
        while expected is not None and len(receiver.spans()) < expected and time.monotonic() < flush_deadline:
            time.sleep(0.05)
        time.sleep(args.flush_ms / 1000.0 + 0.2)  # one more round, so both processes idle alike
        cpu_end = {app.label: cpu_seconds(app.proc.pid) for app in apps}
        rss_end = {app.label: rss_mb(app.proc.pid) for app in apps}
        spans = len(receiver.spans()) - spans_start

        rows = {app.label: stats(latencies[app.label]) for app in apps}
        cpu_per_k = {label: (cpu_end[label] - cpu_start[label]) / args.requests * 1000 for label in cpu_end}

        log("%-28s %12s %12s   %-22s %s" % ("", "APM off", "APM on", "difference (on - off)", "seed claim"))
        for key, name in (("mean", "latency mean (ms)"), ("p50", "latency p50 (ms)"), ("p99", "latency p99 (ms)")):
            log("%-28s %12.3f %12.3f   %-22s" % (name, rows["APM off"][key], rows["APM on"][key],
                                                 diff(rows["APM on"][key], rows["APM off"][key])))
        log("%-28s %12.3f %12.3f   %-22s %s CPU overhead" % (
            "CPU s per 1,000 requests", cpu_per_k["APM off"], cpu_per_k["APM on"],
            diff(cpu_per_k["APM on"], cpu_per_k["APM off"]), SEED_CPU))
        log("%-28s %12.1f %12.1f   %-22s" % ("RSS after warm-up (MB)", rss_start["APM off"], rss_start["APM on"],
                                             "%+.1f MB" % (rss_start["APM on"] - rss_start["APM off"])))
        log("%-28s %12.1f %12.1f   %-22s %s memory overhead" % (
            "RSS at the end (MB)", rss_end["APM off"], rss_end["APM on"],
            "%+.1f MB" % (rss_end["APM on"] - rss_end["APM off"]), SEED_MEMORY))
        log("%-28s %12s %12d" % ("errors (non-200)", errors["APM off"], errors["APM on"]))
        log()
        exported = len(receiver.spans())
        per_span = receiver.bytes_received / exported if exported else 0.0
        log("Spans exported during the measured run: %d for %d requests; %d POSTs, %d bytes since the start"
            % (spans, args.requests, len(receiver.received), receiver.bytes_received))
        log("OTLP/HTTP JSON bytes per span: %.0f -> %.2f MB/hour at 1 request/s, %.1f MB/hour at 10 requests/s "
            "(seed: %s; metrics flush %s)"
            % (per_span, per_span * 3600 / 1e6, per_span * 36000 / 1e6, SEED_NETWORK, SEED_FLUSH))
        cpu_on_share = (cpu_per_k["APM on"] - cpu_per_k["APM off"]) / cpu_per_k["APM off"] * 100 \
            if cpu_per_k["APM off"] else float("nan")
        log("CPU cost of span export: %+.1f%% of the app's CPU per request at sample rate %s "
            "(the seed claims %s)." % (cpu_on_share, args.sample_rate, SEED_CPU))
        log("CPU resolution: 1/%d s per reading (/proc clock ticks); %d requests give +-%.3f s per 1,000."
            % (CLOCK_TICKS, args.requests, 2.0 / CLOCK_TICKS / args.requests * 1000))
        log()
        log("Note: on a reused (keep-alive) connection the app answers in %.1f ms median (APM off), against "
            "%.2f ms on a fresh one:" % (keepalive_note(off), rows["APM off"]["p50"]))
        log("      headers and body leave in two writes without TCP_NODELAY, so the body waits for the client's "
            "delayed ACK.")
    finally:
        for app in (on, off):
            if app is not None:
                app.stop()
        receiver.close()
        for name in os.listdir(workdir):
            os.unlink(os.path.join(workdir, name))
        os.rmdir(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
