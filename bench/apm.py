# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What APM costs the reference app: tracing at several sample rates against APM off, in one run.

Two app processes run with ``ENABLE_APM=false`` (the baseline and a control that shows
how far two identical processes differ) and one per sample rate (default 0.01, 0.1 and
1.0) with ``ENABLE_APM=true APM_PROVIDER=opentelemetry``, exporting spans and the
``http.server.request.duration`` histogram through the OpenTelemetry SDK to an OTLP/HTTP
receiver this bench runs on loopback. All get the same load, interleaved request by
request in a rotating order, so drift on the machine hits them alike.

The bench does that ``--rounds`` times (default 3), each round with fresh processes, and
judges each figure on the median of the rounds' ratios. One round's ratio moves by a few
percent when other work takes the CPU, or when two processes of the same code simply
differ (the control shows by how much); the median of independent, interleaved rounds
is steadier than any one round. The targets stay as they are. Every round is printed,
with the load average before it.

Printed per process, and as a ratio to APM off: CPU seconds per 1,000 requests (every
thread's run time from /proc/<pid>/task/*/schedstat, in nanoseconds, read after the
processes' last export), client-side latency p50 and p99, resident memory at the end,
and the bytes the receiver got per span. The noise is what the control shows: its CPU
against APM off's, and for p99 the largest of its difference to APM off and of the
differences between the two halves of either's run.

Targets: CPU within 2 % of APM off at sample rate 0.1 and within 5 % at 1.0, p99 within
the noise, memory overhead 5-10 MB. Each is printed with PASS or MISS, on the medians; the
bench never fails on a figure.

Each request uses its own connection, as nginx does without upstream keepalive.
Everything the bench starts is stopped by its PID. Traffic goes to 127.0.0.1 only.
Run it under the stack lock, so that nothing else on the machine takes its CPU:

    flock /tmp/unitehub-stack.lock .venv/bin/python bench/apm.py [--requests 5000] [--rates 0.01,0.1,1.0] [--rounds 3]
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
OFF, CONTROL = "APM off", "APM off #2"
CPU_TARGETS = {0.1: 2.0, 1.0: 5.0}  # allowed CPU overhead in % of APM off, by sample rate
MEMORY_TARGET_MB = (5, 10)


def log(message=""):
    print(message, flush=True)


def verdict(ok):
    return "PASS" if ok else "MISS"


def thread_cpu_ns(pid):
    """{thread id: nanoseconds on a CPU} for every thread of ``pid``, from its schedstat."""
    times = {}
    task_dir = "/proc/%d/task" % pid
    for tid in os.listdir(task_dir):
        try:
            with open(os.path.join(task_dir, tid, "schedstat"), encoding="ascii") as handle:
                times[tid] = int(handle.read().split()[0])
        except FileNotFoundError:  # the thread ended between listdir and open
            pass
    return times


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


def p99_ms(latencies):
    return percentile(latencies, 99) * 1e3


class AppProcess:
    def __init__(self, label, env, workdir):
        self.label = label
        self.port = free_port()
        self.latencies = []
        self.errors = 0
        self._cpu_start = {}
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
        self.log_path = os.path.join(workdir, "%s.log" % label.replace(" ", "-").replace("#", ""))
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

    def start_cpu(self):
        self._cpu_start = thread_cpu_ns(self.proc.pid)

    def cpu_seconds(self):
        """CPU seconds of all threads since start_cpu. A thread that ended in between would take
        its time with it, so that is refused rather than undercounted."""
        now = thread_cpu_ns(self.proc.pid)
        ended = set(self._cpu_start) - set(now)
        if ended:
            raise RuntimeError("%s: thread(s) %s ended during the measurement" % (self.label, ", ".join(sorted(ended))))
        return sum(ns - self._cpu_start.get(tid, 0) for tid, ns in now.items()) / 1e9

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
    return "%.3f (%+.1f%%)" % (value / base, (value / base - 1) * 100)


def load_average():
    """The 1-minute load average: other work on the machine skews every figure here."""
    return "%.2f" % os.getloadavg()[0]


def half_spread(latencies):
    """How far the p99 of a run's first half is from its second half's, in ms."""
    half = len(latencies) // 2
    return abs(p99_ms(latencies[:half]) - p99_ms(latencies[half:]))


def start_apps(rates, flush_ms, endpoint, workdir):
    """APM off, its control, and one process per sample rate, each serving."""
    apps = []
    try:
        for label in (OFF, CONTROL):
            apps.append(AppProcess(label, {"ENABLE_APM": "false"}, workdir))
        for rate in rates:
            apps.append(AppProcess("rate %g" % rate, {
                "ENABLE_APM": "true",
                "APM_PROVIDER": "opentelemetry",
                "APM_SERVICE_NAME": "unite-hub-bench-%g" % rate,
                "APM_SAMPLE_RATE": str(rate),
                "APM_FLUSH_INTERVAL": str(flush_ms),
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            }, workdir))
        for app in apps:
            app.wait_serving()
    except BaseException:
        for app in apps:
            app.stop()
        raise
    return apps


def measure_round(args, rates, receiver, workdir, deadline):
    """One round: fresh processes, the same interleaved load on each, their figures."""
    apps = start_apps(rates, args.flush_ms, receiver.endpoint, workdir)
    try:
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
        for app in apps:
            app.start_cpu()
        exported_bytes, spans_start = receiver.bytes_received, len(receiver.spans())
        run(args.requests, record=True)
        # The last spans leave within a flush interval and a second: count that export too.
        time.sleep(args.flush_ms / 1000.0 + 1.5)
        spans = len(receiver.spans()) - spans_start
        return {
            "cpu": {app.label: app.cpu_seconds() / args.requests * 1000 for app in apps},
            "rss": {app.label: rss_mb(app.proc.pid) for app in apps},
            "latencies": {app.label: app.latencies for app in apps},
            "errors": {app.label: app.errors for app in apps},
            "spans": spans,
            "bytes_per_span": (receiver.bytes_received - exported_bytes) / spans if spans else 0.0,
        }
    finally:
        for app in apps:
            app.stop()


def round_figures(result, rates):
    """CPU and p99 of each APM process against APM off in the round, the noise and the memory."""
    cpu, latencies = result["cpu"], result["latencies"]
    base_cpu, base_p99 = cpu[OFF], p99_ms(latencies[OFF])
    return {
        "cpu_noise": (cpu[CONTROL] / base_cpu - 1) * 100,
        "p99_noise": max(abs(p99_ms(latencies[CONTROL]) - base_p99), half_spread(latencies[OFF]),
                         half_spread(latencies[CONTROL])),
        "cpu": {rate: (cpu["rate %g" % rate] / base_cpu - 1) * 100 for rate in rates},
        "p99": {rate: p99_ms(latencies["rate %g" % rate]) - base_p99 for rate in rates},
        "memory": result["rss"]["rate %g" % rates[-1]] - result["rss"][OFF],
    }


def print_round(number, rounds, load, result):
    cpu, latencies = result["cpu"], result["latencies"]
    base_cpu, base_p99 = cpu[OFF], p99_ms(latencies[OFF])
    log("Round %d of %d (load average %s before it)" % (number, rounds, load))
    log("%-10s %13s %18s %8s %18s %8s %7s" % (
        "process", "CPU s/1000 req", "CPU vs off", "p50 ms", "p99 ms (vs off)", "RSS MB", "errors"))
    for label in cpu:
        p99 = p99_ms(latencies[label])
        log("%-10s %13.4f %18s %8.3f %8.3f %9s %8.1f %7d" % (
            label, cpu[label], "1.000 (baseline)" if label == OFF else ratio(cpu[label], base_cpu),
            percentile(latencies[label], 50) * 1e3, p99, "" if label == OFF else "(%+.3f)" % (p99 - base_p99),
            result["rss"][label], result["errors"][label]))
    log("Spans exported: %d; %.0f bytes of OTLP protobuf per span" % (result["spans"], result["bytes_per_span"]))
    log()


def figures_list(values, unit):
    return ", ".join("%+.1f%s" % (value, unit) for value in values)


def print_verdicts(figures, rates):
    """Every round's figure and the median, which the verdict is on."""
    rounds = len(figures)
    log("Verdicts on the median of the %d round(s); every round's figure in brackets." % rounds)
    log("Noise, from the control (a second APM-off process): CPU %+.1f%% [%s]; p99 %.3f ms [%s] (the largest of "
        "control vs off and first vs second half of either)" % (
            statistics.median([f["cpu_noise"] for f in figures]), figures_list([f["cpu_noise"] for f in figures], "%"),
            statistics.median([f["p99_noise"] for f in figures]), ", ".join("%.3f" % f["p99_noise"] for f in figures)))
    for rate in rates:
        overheads = [f["cpu"][rate] for f in figures]
        deltas = [f["p99"][rate] for f in figures]
        overhead, delta_p99 = statistics.median(overheads), statistics.median(deltas)
        p99_noise = statistics.median([f["p99_noise"] for f in figures])
        target = CPU_TARGETS.get(rate)
        cpu_verdict = "target within %g%%: %s" % (target, verdict(overhead <= target)) if target else "no target"
        log("Sample rate %-5g CPU %+5.1f%% [%s] (%s); p99 %+.3f ms [%s] (target within noise %.3f ms: %s)" % (
            rate, overhead, figures_list(overheads, "%"), cpu_verdict, delta_p99,
            ", ".join("%+.3f" % d for d in deltas), p99_noise, verdict(delta_p99 <= p99_noise)))
    memories = [f["memory"] for f in figures]
    low, high = MEMORY_TARGET_MB
    log("Memory overhead at sample rate %g: %+.1f MB [%s] (target %d-%d MB: %s)" % (
        rates[-1], statistics.median(memories), figures_list(memories, " MB"), low, high, verdict(statistics.median(memories) <= high)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--requests", type=int, default=5000, help="measured requests per process (default 5000)")
    parser.add_argument("--warmup", type=int, default=300, help="requests per process before measuring")
    parser.add_argument("--rates", default="0.01,0.1,1.0", help="sample rates of the APM processes")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds, each with fresh processes; each verdict is on the median of the rounds' figures (default 3)")
    parser.add_argument("--flush-ms", type=int, default=10000,
                        help="APM_FLUSH_INTERVAL (default 10000, the app's own default)")
    parser.add_argument("--path", default="/api/version", help="path requested (default /api/version)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds the whole bench may take")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    deadline = time.monotonic() + args.timeout

    log("APM overhead bench: %d cores, Python %s, load average %s before it started" % (
        os.cpu_count(), sys.version.split()[0], load_average()))
    log("Load: %d round(s); per round and process %d warm-up + %d measured GET %s, interleaved in rotating "
        "order, fresh connection each" % (args.rounds, args.warmup, args.requests, args.path))
    log("APM on: OpenTelemetry SDK, BatchSpanProcessor and metric reader every %d ms" % args.flush_ms)
    log()
    workdir = tempfile.mkdtemp(prefix="unitehub-bench-apm-")
    receiver = OtlpReceiver()
    started = time.monotonic()
    try:
        figures = []
        for number in range(1, args.rounds + 1):
            load = load_average()
            result = measure_round(args, rates, receiver, workdir, deadline)
            print_round(number, args.rounds, load, result)
            figures.append(round_figures(result, rates))
        print_verdicts(figures, rates)
        log("Bench took %.0f s; load average %s at its end (its own processes raise it)" % (
            time.monotonic() - started, load_average()))
    finally:
        receiver.close()
        for name in os.listdir(workdir):
            os.unlink(os.path.join(workdir, name))
        os.rmdir(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
