"""Unit tests for plugins/module_utils/health_wait.py."""

from __future__ import annotations

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils.health_format import ProbeConfigError
from ansible_collections.unitehub.platform.plugins.module_utils.health_targets import resolve_target
from ansible_collections.unitehub.platform.plugins.module_utils import health_wait
from ansible_collections.unitehub.platform.plugins.module_utils.health_format import normalize_health
from ansible_collections.unitehub.platform.plugins.module_utils.health_wait import ContainerWatch, describe_outcome, wait_until
from ansible_collections.unitehub.platform.plugins.module_utils.probes import ProbeResult
from ansible_collections.unitehub.platform.tests.support.fake_clock import FakeClock
from ansible_collections.unitehub.platform.tests.support.health_endpoints import SYSTEM_WARN


# ---------------------------------------------------------------------------
# wait_until with a fake clock
# ---------------------------------------------------------------------------


class ScriptedProbe:
    """Returns the next status of a script (the last one repeats); each attempt takes ``latency`` seconds."""

    def __init__(self, clock, statuses, latency=0.1):
        self.clock = clock
        self.statuses = list(statuses)
        self.latency = latency
        self.started = []

    def __call__(self):
        self.started.append(round(self.clock.elapsed(), 6))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        self.clock.now += self.latency
        return ProbeResult(status, error=None if status == "pass" else "HTTP 503")


def test_wait_until_returns_on_the_first_pass():
    clock = FakeClock()
    probe = ScriptedProbe(clock, ["pass"])
    outcome = wait_until(probe, clock=clock, sleep=clock.sleep)
    assert (outcome.ok, outcome.reason, outcome.attempts) == (True, "passed", 1)
    assert outcome.elapsed == pytest.approx(0.1)
    assert clock.sleeps == []


def test_consecutive_successes_reset_on_a_failure():
    clock = FakeClock()
    probe = ScriptedProbe(clock, ["pass", "pass", "fail", "pass", "pass", "pass"])
    outcome = wait_until(probe, timeout=60, interval=5, consecutive_successes=3, clock=clock, sleep=clock.sleep)
    assert outcome.ok and outcome.reason == "passed"
    # Two passes, then a failure resets the streak: three more passes are needed.
    assert outcome.attempts == 6
    assert probe.started == [0, 5, 10, 15, 20, 25]
    assert outcome.elapsed == pytest.approx(25.1)


def test_warn_counts_only_with_pass_or_warn():
    clock = FakeClock()
    outcome = wait_until(ScriptedProbe(clock, ["warn"]), expect="pass", timeout=10, interval=5,
                         clock=clock, sleep=clock.sleep)
    assert (outcome.ok, outcome.reason, outcome.attempts) == (False, "timeout", 3)
    clock = FakeClock()
    outcome = wait_until(ScriptedProbe(clock, ["warn"]), expect="pass_or_warn", clock=clock, sleep=clock.sleep)
    assert (outcome.ok, outcome.attempts) == (True, 1)


def test_timeout_makes_a_last_attempt_at_the_deadline():
    clock = FakeClock()
    probe = ScriptedProbe(clock, ["fail"])
    outcome = wait_until(probe, timeout=12, interval=5, clock=clock, sleep=clock.sleep)
    assert (outcome.ok, outcome.reason) == (False, "timeout")
    assert probe.started == [0, 5, 10, 12]
    assert outcome.elapsed == pytest.approx(12.1)
    assert outcome.last.status == "fail"


def test_timeout_zero_is_a_single_attempt():
    clock = FakeClock()
    probe = ScriptedProbe(clock, ["fail"])
    outcome = wait_until(probe, timeout=0, interval=5, clock=clock, sleep=clock.sleep)
    assert (outcome.reason, outcome.attempts) == ("timeout", 1)


def test_attempts_are_spaced_by_interval_from_their_start_even_when_slow():
    clock = FakeClock()
    probe = ScriptedProbe(clock, ["fail"], latency=1.5)
    wait_until(probe, timeout=20, interval=5, clock=clock, sleep=clock.sleep)
    assert probe.started == [0, 5, 10, 15, 20]
    # A probe slower than the interval is followed at once by the next one.
    clock = FakeClock()
    probe = ScriptedProbe(clock, ["fail"], latency=7)
    wait_until(probe, timeout=20, interval=5, clock=clock, sleep=clock.sleep)
    assert probe.started == [0, 7, 14]  # the third ends past the deadline


def test_a_failing_target_is_noticed_within_one_interval():
    clock = FakeClock()
    breaks_at = 17.3  # seconds after the start

    def probe():
        failing = clock.elapsed() >= breaks_at
        clock.now += 0.05
        return ProbeResult("fail" if failing else "pass", error="connection refused" if failing else None)

    # A stability watch: many passes required, the first failure ends it.
    outcome = wait_until(probe, timeout=30, interval=5, consecutive_successes=7, max_failures=1,
                         clock=clock, sleep=clock.sleep)
    assert (outcome.ok, outcome.reason, outcome.attempts) == (False, "max_failures", 5)
    noticed_after = outcome.elapsed - breaks_at
    assert 0 < noticed_after <= 5 + 0.05


def test_container_exit_is_noticed_within_a_second_even_with_a_5s_interval():
    clock = FakeClock()
    exits_at = 7.1

    def container_check():
        return "container unitehub-green has exited (exit code 1)" if clock.elapsed() >= exits_at else None

    probe = ScriptedProbe(clock, ["fail"])
    outcome = wait_until(probe, timeout=60, interval=5, consecutive_successes=1, container_check=container_check,
                         clock=clock, sleep=clock.sleep)
    assert (outcome.ok, outcome.reason) == (False, "container")
    assert outcome.container_error == "container unitehub-green has exited (exit code 1)"
    assert outcome.attempts == 2
    assert 0 <= outcome.elapsed - exits_at <= 1.0
    assert outcome.elapsed - exits_at <= health_wait.CONTAINER_POLL_INTERVAL
    assert max(clock.sleeps) <= 0.25


def test_container_already_exited_means_no_attempt():
    clock = FakeClock()
    probe = ScriptedProbe(clock, ["pass"])
    outcome = wait_until(probe, container_check=lambda: "container x has exited (exit code 0)",
                         clock=clock, sleep=clock.sleep)
    assert (outcome.reason, outcome.attempts, outcome.last) == ("container", 0, None)
    assert probe.started == []


def test_a_pass_from_a_container_that_died_meanwhile_does_not_count():
    clock = FakeClock()
    calls = []

    def container_check():
        calls.append(clock.elapsed())
        return "container x restarted (RestartCount 0 -> 1, started at t1)" if len(calls) > 1 else None

    outcome = wait_until(ScriptedProbe(clock, ["pass"]), container_check=container_check,
                         clock=clock, sleep=clock.sleep)
    assert (outcome.ok, outcome.reason, outcome.attempts) == (False, "container", 1)


def test_without_container_check_the_wait_sleeps_in_one_go():
    clock = FakeClock()
    wait_until(ScriptedProbe(clock, ["fail"], latency=1), timeout=10, interval=5, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == [pytest.approx(4), pytest.approx(4)]


# ---------------------------------------------------------------------------
# ContainerWatch with a fake inspect document
# ---------------------------------------------------------------------------


def inspect_doc(running=True, restart_count=0, started_at="2026-01-01T00:00:00Z", **state):
    doc_state = {"Status": "running" if running else "exited", "Running": running, "Paused": False,
                 "Restarting": False, "OOMKilled": False, "ExitCode": 0, "StartedAt": started_at, "Error": ""}
    doc_state.update(state)
    return {"RestartCount": restart_count, "State": doc_state}


class FakeInspect:
    def __init__(self, *docs):
        self.docs = list(docs)

    def __call__(self):
        doc = self.docs.pop(0) if len(self.docs) > 1 else self.docs[0]
        if isinstance(doc, Exception):
            raise doc
        return doc


def test_container_watch_is_quiet_while_the_container_runs():
    watch = ContainerWatch("unitehub-green", FakeInspect(inspect_doc(), inspect_doc()))
    assert watch() is None


def test_container_watch_reports_an_exit_with_its_code():
    watch = ContainerWatch("unitehub-green", FakeInspect(
        inspect_doc(), inspect_doc(running=False, ExitCode=137, OOMKilled=True)))
    assert watch() == "container unitehub-green has exited (exit code 137, killed by the OOM killer)"


def test_container_watch_reports_a_container_that_never_started():
    watch = ContainerWatch("app", FakeInspect(inspect_doc(running=False, Status="created")))
    assert watch() == "container app has not started (exit code 0)"


def test_container_watch_reports_a_restart_by_count_or_start_time():
    watch = ContainerWatch("app", FakeInspect(inspect_doc(), inspect_doc(restart_count=1)))
    assert watch() == "container app restarted (RestartCount 0 -> 1, started at 2026-01-01T00:00:00Z)"
    watch = ContainerWatch("app", FakeInspect(inspect_doc(), inspect_doc(started_at="2026-01-01T00:00:09Z")))
    assert watch().startswith("container app restarted (RestartCount 0 -> 0")
    watch = ContainerWatch("app", FakeInspect(inspect_doc(), inspect_doc(Restarting=True, ExitCode=2)))
    assert watch() == "container app is restarting (exit code 2)"


def test_container_watch_reports_removal_pause_and_daemon_errors():
    assert ContainerWatch("app", FakeInspect(inspect_doc(), None))() == "container app was removed"
    assert ContainerWatch("app", FakeInspect(inspect_doc(), inspect_doc(Paused=True)))() == "container app is paused"
    watch = ContainerWatch("app", FakeInspect(inspect_doc(), ConnectionError("daemon socket gone")))
    assert watch() == "cannot inspect container app (daemon socket gone)"


def test_container_watch_refuses_an_unknown_container():
    with pytest.raises(ProbeConfigError, match="container 'unitehub-pink' does not exist"):
        ContainerWatch("unitehub-pink", FakeInspect(None))


def test_describe_outcome_for_a_short_streak_and_a_warn():
    spec = resolve_target({"type": "tcp", "login_port": 9, "consecutive_successes": 3, "timeout": 30})
    outcome = health_wait.WaitOutcome()
    outcome.reason, outcome.attempts, outcome.elapsed, outcome.streak = "timeout", 7, 30.04, 2
    outcome.last = ProbeResult("pass")
    assert describe_outcome(spec, outcome) == (
        "tcp://127.0.0.1:9 is pass after 7 attempts in 30.0 s but only 2 consecutive of the 3 required "
        "before the 30 s timeout")
    spec = resolve_target({"type": "http", "url": "http://127.0.0.1:8080/api/health/system"})
    outcome.last = ProbeResult("warn", checks=normalize_health(SYSTEM_WARN)["checks"])
    assert describe_outcome(spec, outcome) == (
        "http://127.0.0.1:8080/api/health/system is warn (expected pass) after 7 attempts in 30.0 s: "
        "redis:responseTime warn (slow)")
    outcome.last = ProbeResult("fail", output="maintenance")
    assert describe_outcome(spec, outcome).endswith("in 30.0 s: maintenance")
    outcome.last = ProbeResult("fail")
    assert describe_outcome(spec, outcome).endswith(": the health document reports fail with no failing check")
