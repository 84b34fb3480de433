"""Every transition of the circuit breaker, driven by a fake clock."""

from __future__ import annotations

import threading

import pytest
from unitehub_app.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, CircuitOpenError


class FakeClock:
    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Boom(Exception):
    pass


def fail():
    raise Boom("dependency down")


def ok():
    return "ok"


def make(clock=None, **kwargs) -> CircuitBreaker:
    kwargs.setdefault("failure_threshold", 5)
    kwargs.setdefault("reset_timeout", 60.0)
    kwargs.setdefault("success_threshold", 2)
    return CircuitBreaker("redis", clock=clock or FakeClock(), wall_clock=lambda: 1736935200.0, **kwargs)


def trip(breaker: CircuitBreaker) -> None:
    for _unused in range(breaker.failure_threshold):
        with pytest.raises(Boom):
            breaker.call(fail)
    assert breaker.state == OPEN


def test_defaults_are_5_failures_60_s_and_2_successes():
    breaker = CircuitBreaker("redis")
    stats = breaker.stats()
    assert (stats["failure_threshold"], stats["reset_timeout"], stats["success_threshold"]) == (5, 60.0, 2)
    assert stats["half_open_max_calls"] == 1
    assert stats["state"] == CLOSED


def test_closed_passes_calls_and_a_success_resets_the_failure_count():
    breaker = make()
    for _unused in range(4):
        with pytest.raises(Boom):
            breaker.call(fail)
    assert breaker.stats()["failures"] == 4
    assert breaker.call(ok) == "ok"
    assert breaker.stats()["failures"] == 0
    for _unused in range(4):
        with pytest.raises(Boom):
            breaker.call(fail)
    assert breaker.state == CLOSED  # 4 + 4 failures, never 5 in a row


def test_threshold_consecutive_failures_trip_it_open():
    breaker = make()
    trip(breaker)
    stats = breaker.stats()
    assert stats["trips"] == 1
    assert stats["failures"] == 5
    assert stats["opened_at"] == "2025-01-15T10:00:00.000Z"
    assert stats["last_failure_at"] == "2025-01-15T10:00:00.000Z"


def test_open_rejects_without_calling_and_the_fallback_answers():
    breaker = make()
    trip(breaker)
    calls = []
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(lambda: calls.append(1))
    assert info.value.name == "redis" and info.value.state == OPEN
    fallback = breaker.call_with_fallback(lambda: calls.append(1), lambda exc: ("fallback", type(exc).__name__))
    assert fallback == ("fallback", "CircuitOpenError")
    assert calls == []
    assert breaker.stats()["rejected"] == 2
    assert breaker.is_available() is False


def test_reset_timeout_boundary():
    clock = FakeClock()
    breaker = make(clock)
    trip(breaker)
    clock.advance(59.999)
    assert breaker.state == OPEN
    assert breaker.stats()["retry_in"] == pytest.approx(0.001, abs=1e-6)
    with pytest.raises(CircuitOpenError):
        breaker.call(ok)
    clock.advance(0.001)  # exactly reset_timeout after opening
    assert breaker.state == HALF_OPEN
    assert breaker.is_available() is True


def test_half_open_needs_success_threshold_successes_to_close():
    clock = FakeClock()
    breaker = make(clock)
    trip(breaker)
    clock.advance(60)
    assert breaker.call(ok) == "ok"
    assert breaker.state == HALF_OPEN
    assert breaker.stats()["successes"] == 1
    assert breaker.call(ok) == "ok"
    stats = breaker.stats()
    assert stats["state"] == CLOSED
    assert stats["failures"] == 0
    assert stats["opened_at"] is None
    assert stats["trips"] == 1


def test_a_failure_in_half_open_reopens_for_a_full_reset_timeout():
    clock = FakeClock()
    breaker = make(clock)
    trip(breaker)
    clock.advance(60)
    breaker.call(ok)  # one success is not enough
    with pytest.raises(Boom):
        breaker.call(fail)
    stats = breaker.stats()
    assert stats["state"] == OPEN
    assert stats["trips"] == 2
    assert stats["successes"] == 0
    clock.advance(59.9)
    assert breaker.state == OPEN  # the timeout restarted when it reopened
    clock.advance(0.1)
    assert breaker.state == HALF_OPEN


def test_half_open_lets_one_trial_at_a_time_by_default():
    clock = FakeClock()
    breaker = make(clock)
    trip(breaker)
    clock.advance(60)
    started, release = threading.Event(), threading.Event()
    results = []

    def slow_trial():
        started.set()
        assert release.wait(5)
        return "trial"

    worker = threading.Thread(target=lambda: results.append(breaker.call(slow_trial)))
    worker.start()
    assert started.wait(5)
    # While the trial runs, everybody else takes the fallback without calling.
    assert breaker.stats()["half_open_in_flight"] == 1
    assert breaker.call_with_fallback(ok, lambda exc: "fallback") == "fallback"
    with pytest.raises(CircuitOpenError):
        breaker.call(ok)
    release.set()
    worker.join(5)
    assert results == ["trial"]
    assert breaker.state == HALF_OPEN
    assert breaker.call(ok) == "ok"  # the slot is free again; second success closes it
    assert breaker.state == CLOSED


def test_half_open_max_calls_bounds_concurrent_trials():
    clock = FakeClock()
    breaker = make(clock, half_open_max_calls=2, success_threshold=3)
    trip(breaker)
    clock.advance(60)
    release = threading.Event()
    entered = threading.Semaphore(0)
    results = []

    def trial():
        entered.release()
        assert release.wait(5)
        return "trial"

    workers = [threading.Thread(target=lambda: results.append(breaker.call(trial))) for _unused in range(2)]
    for worker in workers:
        worker.start()
    assert entered.acquire(timeout=5) and entered.acquire(timeout=5)
    assert breaker.stats()["half_open_in_flight"] == 2
    with pytest.raises(CircuitOpenError):
        breaker.call(ok)  # a third concurrent caller is rejected
    release.set()
    for worker in workers:
        worker.join(5)
    assert results == ["trial", "trial"]
    assert breaker.stats()["successes"] == 2
    breaker.call(ok)
    assert breaker.state == CLOSED


def test_a_trial_finishing_after_the_breaker_reopened_moves_nothing():
    clock = FakeClock()
    breaker = make(clock, half_open_max_calls=2)
    trip(breaker)
    clock.advance(60)
    started, release = threading.Event(), threading.Event()

    def slow_success():
        started.set()
        assert release.wait(5)
        return "late"

    worker = threading.Thread(target=lambda: breaker.call(slow_success))
    worker.start()
    assert started.wait(5)
    with pytest.raises(Boom):
        breaker.call(fail)  # the other trial fails: OPEN again
    release.set()
    worker.join(5)
    stats = breaker.stats()
    assert stats["state"] == OPEN
    assert stats["successes"] == 0
    assert stats["total_successes"] == 1  # counted in the totals only


def test_manual_reset_closes_from_open_and_from_half_open():
    clock = FakeClock()
    breaker = make(clock)
    trip(breaker)
    breaker.reset()
    stats = breaker.stats()
    assert stats["state"] == CLOSED and stats["failures"] == 0 and stats["opened_at"] is None
    assert stats["trips"] == 1  # history is kept
    trip(breaker)
    clock.advance(60)
    assert breaker.state == HALF_OPEN
    breaker.reset()
    assert breaker.state == CLOSED
    assert breaker.call(ok) == "ok"


def test_force_open_holds_until_reset_and_is_not_a_trip():
    clock = FakeClock()
    breaker = make(clock)
    breaker.force_open()
    clock.advance(3600)
    stats = breaker.stats()
    assert stats["state"] == OPEN and stats["forced"] is True and stats["retry_in"] is None
    assert stats["trips"] == 0
    with pytest.raises(CircuitOpenError):
        breaker.call(ok)
    breaker.reset()
    assert breaker.stats()["forced"] is False
    assert breaker.call(ok) == "ok"


def test_listeners_see_each_transition_with_its_reason():
    clock = FakeClock()
    breaker = make(clock, failure_threshold=1, success_threshold=1)
    seen = []
    breaker.add_listener(lambda name, old, new, reason: seen.append((name, old, new, reason)))
    with pytest.raises(Boom):
        breaker.call(fail)
    clock.advance(60)
    with pytest.raises(Boom):
        breaker.call(fail)
    clock.advance(60)
    breaker.call(ok)
    breaker.force_open()
    breaker.reset()
    assert seen == [
        ("redis", CLOSED, OPEN, "failure_threshold"),
        ("redis", OPEN, HALF_OPEN, "reset_timeout"),
        ("redis", HALF_OPEN, OPEN, "half_open_failure"),
        ("redis", OPEN, HALF_OPEN, "reset_timeout"),
        ("redis", HALF_OPEN, CLOSED, "success_threshold"),
        ("redis", CLOSED, OPEN, "forced_open"),
        ("redis", OPEN, CLOSED, "manual_reset"),
    ]


def test_exceptions_that_are_not_failures_do_not_count():
    breaker = make(failure_threshold=1, is_failure=lambda exc: not isinstance(exc, KeyError))
    with pytest.raises(KeyError):
        breaker.call(lambda: {}["missing"])
    assert breaker.state == CLOSED
    assert breaker.stats()["total_failures"] == 0


def test_concurrent_failures_trip_exactly_once():
    breaker = make(failure_threshold=5)
    barrier = threading.Barrier(40)

    def worker():
        barrier.wait(5)
        breaker.call_with_fallback(fail, lambda exc: None)

    threads = [threading.Thread(target=worker) for _unused in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    stats = breaker.stats()
    assert stats["state"] == OPEN
    assert stats["trips"] == 1
    assert stats["total_failures"] + stats["rejected"] == 40


def test_stats_has_the_contract_fields():
    stats = make().stats()
    for key in ("name", "state", "failures", "successes", "trips", "opened_at", "last_failure_at",
                "failure_threshold", "reset_timeout", "success_threshold"):
        assert key in stats


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"success_threshold": 0}, "success_threshold"),
        ({"half_open_max_calls": 0}, "half_open_max_calls"),
        ({"reset_timeout": 0}, "reset_timeout"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CircuitBreaker("x", **kwargs)
