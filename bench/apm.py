# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What APM costs the reference app: tracing at several sample rates against APM off, in one run.

One app process runs with ``ENABLE_APM=false`` and one per sample rate (default 0.01,
0.1 and 1.0) with ``ENABLE_APM=true APM_PROVIDER=opentelemetry``, exporting spans and
the ``http.server.request.duration`` histogram through the OpenTelemetry SDK to an
OTLP/HTTP receiver this bench runs on loopback. All get the same load, interleaved
request by request in a rotating order, so drift on the machine hits them alike.

Printed per process, and as a ratio to APM off: CPU seconds per 1,000 requests
(utime + stime from /proc/<pid>/stat, read after the last export), client-side
latency p50 and p99, resident memory at the end, and the bytes the receiver got per
span. The p99 of APM off is also measured in two halves of the run, to show how much
it moves by itself (the noise). Targets: CPU within 2 % of APM off at sample rate 0.1
and within 5 % at 1.0, p99 within the noise, memory overhead 5-10 MB.

Each request uses its own connection, as nginx does without upstream keepalive.
Everything the bench starts is stopped by its PID. Traffic goes to 127.0.0.1 only.

    .venv/bin/python bench/apm.py [--requests 3000] [--rates 0.01,0.1,1.0] [--flush-ms 10000]
"""

from __future__ import annotations

import argparse
import http.client
import os
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
CPU_TARGETS = {0.1: 2.0, 1.0: 5.0}  # allowed CPU overhead in % of APM off, by sample rate
MEMORY_TARGET = "5-10 MB"


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
        self.latencies = []
        self.errors = 0
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

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def stop(self):
        stop_pid(self.proc, timeout=15)


def request(port, path):
    """(status, seconds) of one GET on a fresh connection."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    start = time.perf_counter()
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    return response.status, time.perf_counter() - start


def ratio(value, base):
    return "%.3f (%+.1f%%)" % (value / base, (value / base - 1) * 100) if base else "n/a"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--requests", type=int, default=3000, help="measured requests per process (default 3000)")
    parser.add_argument("--warmup", type=int, default=300, help="requests per process before measuring")
    parser.add_argument("--rates", default="0.01,0.1,1.0", help="sample rates of the APM processes")
    parser.add_argument("--flush-ms", type=int, default=10000,
                        help="APM_FLUSH_INTERVAL (default 10000, the app's own default)")
    parser.add_argument("--path", default="/api/version", help="path requested (default /api/version)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds the whole bench may take")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    deadline = time.monotonic() + args.timeout

    workdir = tempfile.mkdtemp(prefix="unitehub-bench-apm-")
    receiver = OtlpReceiver()
    apps = []
    try:
        apps.append(AppProcess("APM off", {"ENABLE_APM": "false"}, workdir))
        for rate in rates:
            apps.append(AppProcess("rate %g" % rate, {
                "ENABLE_APM": "true",
                "APM_PROVIDER": "opentelemetry",
                "APM_SERVICE_NAME": "unite-hub-bench-%g" % rate,
                "APM_SAMPLE_RATE": str(rate),
                "APM_FLUSH_INTERVAL": str(args.flush_ms),
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            }, workdir))
        for app in apps:
            app.wait_serving()
        off = apps[0]

        log("APM overhead bench: %d cores, Python %s, OTLP/HTTP receiver on %s" % (
            os.cpu_count(), sys.version.split()[0], receiver.endpoint))
        log("Load: %d warm-up + %d measured GET %s per process, interleaved in rotating order, fresh connection each"
            % (args.warmup, args.requests, args.path))
        log("APM on: OpenTelemetry SDK, BatchSpanProcessor and metric reader every %d ms" % args.flush_ms)
        log()

        def run(count, record):
            for i in range(count):
                if time.monotonic() > deadline:
                    raise RuntimeError("the bench ran out of its %s s" % args.timeout)
                shift = i % len(apps)
                for app in apps[shift:] + apps[:shift]:
                    status, elapsed = request(app.port, args.path)
                    if record:
                        app.latencies.append(elapsed)
                        app.errors += status != 200

        run(args.warmup, record=False)
        time.sleep(args.flush_ms / 1000.0 + 0.5)  # the warm-up's exports leave first
        cpu_start = {app.label: app.cpu() for app in apps}
        exported_bytes, spans_start = receiver.bytes_received, len(receiver.spans())
        run(args.requests, record=True)
        # Count the last exports in the CPU: two more intervals, so every process idles alike.
        time.sleep(2 * args.flush_ms / 1000.0 + 0.5)
        cpu_per_k = {app.label: (app.cpu() - cpu_start[app.label]) / args.requests * 1000 for app in apps}
        spans = len(receiver.spans()) - spans_start
        per_span = (receiver.bytes_received - exported_bytes) / spans if spans else 0.0

        half = len(off.latencies) // 2
        noise = abs(percentile(off.latencies[:half], 99) - percentile(off.latencies[half:], 99)) * 1e3
        base_cpu, base_p99 = cpu_per_k[off.label], percentile(off.latencies, 99) * 1e3
        log("%-10s %13s %18s %10s %18s %10s %9s %7s" % (
            "process", "CPU s/1000 req", "CPU vs off", "p50 ms", "p99 ms (vs off)", "RSS MB", "spans", "errors"))
        for app in apps:
            p99 = percentile(app.latencies, 99) * 1e3
            log("%-10s %13.3f %18s %10.3f %8.3f %9s %10.1f %9s %7d" % (
                app.label, cpu_per_k[app.label],
                "1.000 (baseline)" if app is off else ratio(cpu_per_k[app.label], base_cpu),
                percentile(app.latencies, 50) * 1e3, p99,
                "" if app is off else "(%+.3f)" % (p99 - base_p99),
                rss_mb(app.proc.pid), "-" if app is off else "", app.errors))
        log()
        log("p99 noise: APM off's p99 differs by %.3f ms between the two halves of its own run." % noise)
        log("Spans exported during the measured run: %d; %.0f bytes of OTLP protobuf per span "
            "(%.2f MB/hour at 10 requests/s, sample rate 1.0)." % (spans, per_span, per_span * 36000 / 1e6))
        log("CPU resolution: 1/%d s per reading; %d requests give +-%.3f s per 1,000 requests."
            % (CLOCK_TICKS, args.requests, 2.0 / CLOCK_TICKS / args.requests * 1000))
        for rate, target in CPU_TARGETS.items():
            app = next((a for a in apps if a.label == "rate %g" % rate), None)
            if app is not None:
                overhead = (cpu_per_k[app.label] / base_cpu - 1) * 100
                log("Target at sample rate %g: CPU within %g%% of APM off; measured %+.1f%%: %s" % (
                    rate, target, overhead, "met" if overhead <= target else "NOT met"))
        log("Target memory overhead: %s; measured %+.1f MB at sample rate %g." % (
            MEMORY_TARGET, rss_mb(apps[-1].proc.pid) - rss_mb(off.proc.pid), rates[-1]))
    finally:
        for app in apps:
            app.stop()
        receiver.close()
        for name in os.listdir(workdir):
            os.unlink(os.path.join(workdir, name))
        os.rmdir(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
