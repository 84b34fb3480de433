# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a closed circuit breaker costs per call: the reference app's breaker
(examples/app/unitehub_app/breaker.py) beside pybreaker, in the same run.

Each variant wraps the same trivial function (it returns a constant, so the
breaker is all that is measured) and runs it ``--calls`` times in a tight loop,
``--repeats`` times, the variants interleaved round by round so drift on the
machine hits all alike; the garbage collector is off while timing, as in
timeit. Printed per variant: the time per call, best and median of the
repeats, and the overhead over calling the function directly. A second table
runs the same calls from ``--threads`` threads through one shared breaker
(the lock under contention). The collection's target, under 0.1 ms of
overhead per call, is printed beside the figures.

Nothing here touches the network or the stack.

    .venv/bin/python bench/breaker.py [--calls 200000] [--repeats 5] [--threads 4]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import threading
import time

import pybreaker

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "examples", "app"))

from unitehub_app.breaker import CircuitBreaker  # noqa: E402

TARGET_US = 100.0  # under 0.1 ms of overhead per call
MAX_CALLS = 5_000_000
MAX_REPEATS = 50
MAX_THREADS = 64


def work():
    return 42


def fallback(_exc):
    return None


def variants():
    """(label, one call) for each way of calling ``work``. The breakers are fresh and CLOSED."""
    app = CircuitBreaker("bench", failure_threshold=5, reset_timeout=60.0, success_threshold=2)
    app_fallback = CircuitBreaker("bench-fallback", failure_threshold=5, reset_timeout=60.0, success_threshold=2)
    py = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
    return [
        ("direct call (baseline)", work),
        ("unitehub_app CircuitBreaker.call", lambda: app.call(work)),
        ("unitehub_app .call_with_fallback", lambda: app_fallback.call_with_fallback(work, fallback)),
        ("pybreaker %s CircuitBreaker.call" % pybreaker_version(), lambda: py.call(work)),
    ], (app, app_fallback, py)


def pybreaker_version():
    try:
        from importlib.metadata import version

        return version("pybreaker")
    except Exception:  # metadata missing: the label only loses its version
        return "?"


def time_loop(call, calls):
    """Seconds for ``calls`` calls of ``call`` in a tight loop, the GC off."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _unused in range(calls):
            call()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def time_threads(call, calls, threads):
    """Seconds for ``threads`` threads to make ``calls`` calls between them, all at once."""
    share = calls // threads
    barrier = threading.Barrier(threads + 1)

    def worker():
        barrier.wait()
        for _unused in range(share):
            call()

    pool = [threading.Thread(target=worker, daemon=True) for _unused in range(threads)]
    for thread in pool:
        thread.start()
    enabled = gc.isenabled()
    gc.disable()
    try:
        barrier.wait()
        start = time.perf_counter()
        for thread in pool:
            thread.join()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def measure(timer, calls, repeats):
    """{label: [microseconds per call, one per repeat]}, the variants interleaved."""
    labelled, _keep = variants()
    per_call = {label: [] for label, _call in labelled}
    for _round in range(repeats):
        for label, call in labelled:
            per_call[label].append(timer(call) * 1e6 / calls)
    return per_call


def table(title, per_call, calls, repeats):
    baseline_label = next(iter(per_call))
    base_best = min(per_call[baseline_label])
    base_median = statistics.median(per_call[baseline_label])
    print(title)
    print("  %-40s %20s %22s" % ("variant", "per call us best/med", "overhead us best/med"))
    for label, values in per_call.items():
        best, median = min(values), statistics.median(values)
        overhead = "-" if label == baseline_label else "%.3f / %.3f" % (best - base_best, median - base_median)
        print("  %-40s %20s %22s" % (label, "%.3f / %.3f" % (best, median), overhead))
    print("  (%s calls x %d repeats)" % (format(calls, ","), repeats))
    return {label: min(values) - base_best for label, values in per_call.items() if label != baseline_label}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--calls", type=int, default=200_000, help="calls per repeat (max %d)" % MAX_CALLS)
    parser.add_argument("--repeats", type=int, default=5, help="repeats per variant (max %d)" % MAX_REPEATS)
    parser.add_argument("--threads", type=int, default=4, help="threads sharing one breaker (max %d)" % MAX_THREADS)
    args = parser.parse_args()
    if not 1000 <= args.calls <= MAX_CALLS:
        parser.error("--calls %d is not between 1000 and %d" % (args.calls, MAX_CALLS))
    if not 1 <= args.repeats <= MAX_REPEATS:
        parser.error("--repeats %d is not between 1 and %d" % (args.repeats, MAX_REPEATS))
    if not 1 <= args.threads <= MAX_THREADS:
        parser.error("--threads %d is not between 1 and %d" % (args.threads, MAX_THREADS))

    print("Closed circuit breaker, overhead per call: %s %s on %d CPU(s)"
          % (platform.python_implementation(), platform.python_version(), os.cpu_count() or 0))
    print()
    single = table("One thread:", measure(lambda call: time_loop(call, args.calls), args.calls, args.repeats),
                   args.calls, args.repeats)
    print()
    threaded_calls = args.calls - args.calls % args.threads
    threaded = table("%d threads, one shared breaker:" % args.threads,
                     measure(lambda call: time_threads(call, threaded_calls, args.threads), threaded_calls,
                             args.repeats),
                     threaded_calls, args.repeats)
    print()
    app_label = "unitehub_app CircuitBreaker.call"
    py_label = next(label for label in single if label.startswith("pybreaker"))
    print("Target: < %.1f us (0.1 ms) of overhead per call." % TARGET_US)
    for label in (app_label, py_label):
        worst = max(single[label], threaded[label])
        print("  %-40s %.3f us one thread, %.3f us with %d threads: %s"
              % (label, single[label], threaded[label], args.threads,
                 "within the target" if worst < TARGET_US else "ABOVE the target"))
    ratio = single[app_label] / single[py_label] if single[py_label] > 0 else float("nan")
    print("  unitehub_app / pybreaker overhead, one thread: %.2fx" % ratio)


if __name__ == "__main__":
    main()
