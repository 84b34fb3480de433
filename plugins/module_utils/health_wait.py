# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting for health: ``wait_until`` polls a probe until enough consecutive results
meet the expectation, watching a container at a short sub-interval meanwhile so
that a crash ends the wait within a fraction of a second. Clock and sleep are
injectable for unit tests.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.unitehub.platform.plugins.module_utils.health_format import (
    EXPECT_PASS,
    FAIL,
    PASS,
    WARN,
    ProbeConfigError,
    describe_failing,
    failing_from_checks,
    meets_expectation,
    preview,
    validate_expect,
    worst_status,
)
from ansible_collections.unitehub.platform.plugins.module_utils.health_targets import build_probe
from ansible_collections.unitehub.platform.plugins.module_utils.probes import ProbeResult

# How often the container is inspected while waiting between two probes.
CONTAINER_POLL_INTERVAL = 0.25


_CONTAINER_STATES = {"exited": "has exited", "created": "has not started", "dead": "is dead",
                     "removing": "is being removed"}


class ContainerWatch:
    """Callable container check for ``wait_until``.

    ``inspect`` returns the container's inspect document (docker's ``attrs``) or
    None when the container does not exist. The RestartCount and StartedAt seen
    at construction are the baseline: any later change means the container
    restarted (a restart policy can hide a crash between two probes).
    """

    def __init__(self, name, inspect):
        self.name = name
        self._inspect = inspect
        attrs = inspect()
        if attrs is None:
            raise ProbeConfigError("container %r does not exist; check the name with docker ps -a" % name)
        self.restart_count = attrs.get("RestartCount")
        self.started_at = (attrs.get("State") or {}).get("StartedAt")

    def __call__(self):
        """None while the container keeps running, else why it does not."""
        try:
            attrs = self._inspect()
        except Exception as exc:  # the daemon went away: the gate cannot vouch for the container
            return "cannot inspect container %s (%s)" % (self.name, preview(str(exc)) or type(exc).__name__)
        if attrs is None:
            return "container %s was removed" % self.name
        state = attrs.get("State") or {}
        if state.get("Restarting"):
            return "container %s is restarting (exit code %s)" % (self.name, state.get("ExitCode"))
        if not state.get("Running"):
            status = state.get("Status") or "stopped"
            message = "container %s %s (exit code %s" % (
                self.name, _CONTAINER_STATES.get(status, "is " + status), state.get("ExitCode"))
            if state.get("OOMKilled"):
                message += ", killed by the OOM killer"
            if state.get("Error"):
                message += ", %s" % state["Error"]
            return message + ")"
        if state.get("Paused"):
            return "container %s is paused" % self.name
        restart_count = attrs.get("RestartCount")
        started_at = state.get("StartedAt")
        if restart_count != self.restart_count or started_at != self.started_at:
            return "container %s restarted (RestartCount %s -> %s, started at %s)" % (
                self.name, self.restart_count, restart_count, started_at)
        return None


class WaitOutcome:
    """What ``wait_until`` saw. ``reason`` is ``passed``, ``timeout``,
    ``max_failures`` or ``container``."""

    __slots__ = ("ok", "reason", "attempts", "elapsed", "last", "streak", "failures", "container_error")

    def __init__(self):
        self.ok = False
        self.reason = None
        self.attempts = 0
        self.elapsed = 0.0
        self.last = None
        self.streak = 0
        self.failures = 0
        self.container_error = None

    def __repr__(self):
        return "WaitOutcome(ok=%r, reason=%r, attempts=%r, elapsed=%r)" % (
            self.ok, self.reason, self.attempts, self.elapsed)


def wait_until(probe, expect=EXPECT_PASS, timeout=60.0, interval=5.0, consecutive_successes=1,
               container_check=None, clock=time.monotonic, sleep=time.sleep, max_failures=None,
               poll_interval=CONTAINER_POLL_INTERVAL):
    """Run ``probe`` until ``consecutive_successes`` results in a row meet ``expect``.

    Attempts start every ``interval`` seconds (measured from the start of the
    previous attempt, so a failing target is seen at most one interval after it
    starts failing); a result that misses the expectation resets the streak. The
    last attempt starts at the deadline, ``timeout`` seconds after the first;
    ``timeout=0`` makes exactly one attempt. With ``max_failures`` the wait ends
    as soon as that many attempts have missed the expectation.

    ``container_check`` (optional) returns None while the container is fine or a
    message once it exited or restarted. It is called before the first attempt,
    after every attempt, and every ``poll_interval`` seconds while waiting, so a
    crash ends the wait within ``poll_interval`` of waiting time.
    """
    validate_expect(expect)
    outcome = WaitOutcome()
    start = clock()
    deadline = start + timeout

    def finish(reason, ok=False, container_error=None):
        outcome.ok = ok
        outcome.reason = reason
        outcome.container_error = container_error
        outcome.elapsed = clock() - start
        return outcome

    problem = container_check() if container_check is not None else None
    if problem:
        return finish("container", container_error=problem)
    while True:
        attempt_start = clock()
        result = probe()
        outcome.attempts += 1
        outcome.last = result
        if container_check is not None:
            problem = container_check()
            if problem:
                return finish("container", container_error=problem)
        if meets_expectation(result.status, expect):
            outcome.streak += 1
            if outcome.streak >= consecutive_successes:
                return finish("passed", ok=True)
        else:
            outcome.streak = 0
            outcome.failures += 1
            if max_failures is not None and outcome.failures >= max_failures:
                return finish("max_failures")
        if clock() >= deadline:
            return finish("timeout")
        next_attempt = min(attempt_start + interval, deadline)
        while True:
            remaining = next_attempt - clock()
            if remaining <= 0:
                break
            if container_check is None:
                sleep(remaining)
                continue
            sleep(min(poll_interval, remaining))
            problem = container_check()
            if problem:
                return finish("container", container_error=problem)


def describe_outcome(spec, outcome):
    """The one-line message for a finished wait, naming what failed."""
    last = outcome.last
    target = spec["target"]
    attempts = "%d attempt%s" % (outcome.attempts, "" if outcome.attempts == 1 else "s")
    took = "%s in %.1f s" % (attempts, outcome.elapsed)
    if outcome.reason == "container":
        message = "%s while waiting for %s (%s" % (outcome.container_error, target, took)
        if last is not None:
            message += "; last probe %s" % last.status
            detail = _result_detail(last, spec["expect"])
            if detail:
                message += ": %s" % detail
        return message + ")"
    status = last.status if last is not None else FAIL
    message = "%s is %s" % (target, status)
    if outcome.ok:
        return "%s after %s" % (message, took)
    if meets_expectation(status, spec["expect"]):
        # The last attempt was good but the streak was too short.
        return "%s after %s but only %d consecutive of the %d required before the %g s timeout" % (
            message, took, outcome.streak, spec["consecutive_successes"], spec["timeout"])
    if status == WARN:
        message += " (expected pass)"
    message += " after %s" % took
    if outcome.reason == "max_failures":
        message += " (stopped at max_failures=%s)" % spec["max_failures"]
    detail = _result_detail(last, spec["expect"]) if last is not None else None
    return "%s: %s" % (message, detail) if detail else message


def _result_detail(result, expect):
    # Name the checks that caused the status: those that fail, else (expecting pass) those that warn.
    failing = failing_from_checks(result.checks)
    if not failing and expect == EXPECT_PASS:
        failing = failing_from_checks(result.checks, include_warn=True)
    parts = []
    if failing:
        parts.append(describe_failing(failing))
    if result.error:
        parts.append(result.error)
    if not parts and result.status != PASS:
        parts.append(result.output or "the health document reports %s with no failing check" % result.status)
    return "; ".join(parts)


def run_target(spec, container_check=None, clock=time.monotonic, sleep=time.sleep, connect=None):
    """Probe a resolved target until it is healthy or the wait ends; a result dict."""
    outcome = wait_until(
        build_probe(spec, connect=connect),
        expect=spec["expect"],
        timeout=spec["timeout"],
        interval=spec["interval"],
        consecutive_successes=spec["consecutive_successes"],
        container_check=container_check,
        clock=clock,
        sleep=sleep,
        max_failures=spec["max_failures"],
    )
    last = outcome.last or ProbeResult(FAIL, error=outcome.container_error)
    return {
        "name": spec["name"],
        "type": spec["type"],
        "target": spec["target"],
        "ok": outcome.ok,
        "status": FAIL if outcome.reason == "container" else last.status,
        "reason": outcome.reason,
        "http_status": last.http_status,
        "latency_ms": last.latency_ms,
        "attempts": outcome.attempts,
        "elapsed": round(outcome.elapsed, 3),
        "checks": last.checks,
        "failing": failing_from_checks(last.checks, include_warn=(spec["expect"] == EXPECT_PASS)),
        "slot": last.slot,
        "version": last.version,
        "error": outcome.container_error or last.error,
        "msg": describe_outcome(spec, outcome),
    }


def probe_targets(specs, watch_container=None):
    """Run every resolved target concurrently; the results in the order of ``specs``.

    ``watch_container(spec)`` returns the ``container_check`` of a target that names a
    container (ContainerWatch over the Docker daemon, in the module). A target that
    cannot be watched raises ProbeConfigError naming it.
    """
    def one(spec):
        check = watch_container(spec) if spec["container"] and watch_container else None
        return run_target(spec, container_check=check)

    if len(specs) == 1:
        return [one(specs[0])]
    with ThreadPoolExecutor(max_workers=min(len(specs), 16)) as pool:
        return list(pool.map(one, specs))


def summary(results, elapsed):
    """The result of a multi-target probe: healthy as a whole, the worst status, the results."""
    healthy = all(result["ok"] for result in results)
    return {
        "ok": healthy,
        "status": worst_status(result["status"] for result in results),
        "elapsed": round(elapsed, 3),
        "target_results": results,
        "msg": "; ".join(result["msg"] for result in results if not result["ok"]) or "%d targets healthy" % len(results),
    }
