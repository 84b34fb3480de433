"""A thread-safe circuit breaker: CLOSED -> OPEN -> HALF_OPEN -> CLOSED.

* CLOSED: calls pass through. ``failure_threshold`` consecutive failures trip it OPEN.
* OPEN: calls are rejected at once (the caller's fallback runs) until
  ``reset_timeout`` seconds have passed since it opened; then it is HALF_OPEN.
* HALF_OPEN: at most ``half_open_max_calls`` trial calls run at the same time;
  other callers are rejected. ``success_threshold`` consecutive trial successes
  close it; one trial failure opens it again (another trip).

``force_open`` holds it OPEN until ``reset``; ``reset`` closes it and clears the
counters of the current window. Time comes from an injectable monotonic clock.

A call result is only counted against the state it started in: when the state
changed while a call was running (for example another trial failed), its
outcome counts in the totals but moves no state.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable
from typing import Any

CLOSED = "CLOSED"
OPEN = "OPEN"
HALF_OPEN = "HALF_OPEN"
STATES = (CLOSED, OPEN, HALF_OPEN)

# Reasons passed to listeners with each state change.
REASON_FAILURES = "failure_threshold"
REASON_TRIAL_FAILED = "half_open_failure"
REASON_TIMEOUT = "reset_timeout"
REASON_RECOVERED = "success_threshold"
REASON_MANUAL_RESET = "manual_reset"
REASON_FORCED_OPEN = "forced_open"
TRIP_REASONS = (REASON_FAILURES, REASON_TRIAL_FAILED)

Listener = Callable[[str, str, str, str], None]


class CircuitOpenError(Exception):
    """The breaker rejected the call without running it."""

    def __init__(self, name: str, state: str):
        self.name = name
        self.state = state
        super().__init__(f"circuit breaker '{name}' is {state}; call rejected")


def _iso(wall: float | None) -> str | None:
    if wall is None:
        return None
    moment = datetime.datetime.fromtimestamp(wall, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Permit:
    __slots__ = ("epoch", "trial")

    def __init__(self, epoch: int, trial: bool):
        self.epoch = epoch
        self.trial = trial


class CircuitBreaker:
    """See the module docstring. All public methods are thread-safe."""

    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        reset_timeout: float = 60.0,
        success_threshold: int = 2,
        half_open_max_calls: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        is_failure: Callable[[BaseException], bool] | None = None,
    ):
        for label, value in (
            ("failure_threshold", failure_threshold),
            ("success_threshold", success_threshold),
            ("half_open_max_calls", half_open_max_calls),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{label} must be a whole number of at least 1, got {value!r}")
        # Not "<= 0": NaN compares false both ways and must be refused too.
        if not reset_timeout > 0:  # pylint: disable=unnecessary-negation
            raise ValueError(f"reset_timeout must be a positive number of seconds, got {reset_timeout!r}")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = float(reset_timeout)
        self.success_threshold = success_threshold
        self.half_open_max_calls = half_open_max_calls
        self._clock = clock
        self._wall = wall_clock
        self._is_failure = is_failure or (lambda exc: isinstance(exc, Exception))
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._state = CLOSED
        self._epoch = 0
        self._forced = False
        self._failures = 0
        self._successes = 0
        self._in_flight_trials = 0
        self._trips = 0
        self._opened_at: float | None = None
        self._opened_at_wall: float | None = None
        self._last_failure_wall: float | None = None
        self._total_successes = 0
        self._total_failures = 0
        self._rejected = 0

    # -- listeners ---------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(name, old_state, new_state, reason)`` on each change (outside the lock)."""
        with self._lock:
            self._listeners.append(listener)

    def _notify(self, events: list[tuple[str, str, str]]) -> None:
        for old, new, reason in events:
            for listener in list(self._listeners):
                listener(self.name, old, new, reason)

    # -- state machine (call with the lock held) ----------------------------

    def _move(self, new: str, reason: str, events: list) -> None:
        old = self._state
        self._state = new
        self._epoch += 1
        self._successes = 0
        self._in_flight_trials = 0
        if new == OPEN:
            self._opened_at = self._clock()
            self._opened_at_wall = self._wall()
            if reason in TRIP_REASONS:
                self._trips += 1
        elif new == CLOSED:
            self._failures = 0
            self._forced = False
            self._opened_at = None
            self._opened_at_wall = None
        events.append((old, new, reason))

    def _refresh(self, events: list) -> None:
        if self._state == OPEN and not self._forced and self._clock() - self._opened_at >= self.reset_timeout:
            self._move(HALF_OPEN, REASON_TIMEOUT, events)

    # -- calls -------------------------------------------------------------

    def _acquire(self) -> _Permit:
        events: list = []
        try:
            with self._lock:
                self._refresh(events)
                if self._state == CLOSED:
                    return _Permit(self._epoch, False)
                if self._state == HALF_OPEN and self._in_flight_trials < self.half_open_max_calls:
                    self._in_flight_trials += 1
                    return _Permit(self._epoch, True)
                self._rejected += 1
                raise CircuitOpenError(self.name, self._state)
        finally:
            self._notify(events)

    def _record(self, permit: _Permit, ok: bool) -> None:
        events: list = []
        with self._lock:
            if ok:
                self._total_successes += 1
            else:
                self._total_failures += 1
                self._last_failure_wall = self._wall()
            if permit.epoch == self._epoch:
                if permit.trial:
                    self._in_flight_trials -= 1
                if ok:
                    self._successes += 1
                    if self._state == CLOSED:
                        self._failures = 0
                    elif self._state == HALF_OPEN and self._successes >= self.success_threshold:
                        self._move(CLOSED, REASON_RECOVERED, events)
                else:
                    self._successes = 0
                    if self._state == CLOSED:
                        self._failures += 1
                        if self._failures >= self.failure_threshold:
                            self._move(OPEN, REASON_FAILURES, events)
                    elif self._state == HALF_OPEN:
                        self._failures += 1
                        self._move(OPEN, REASON_TRIAL_FAILED, events)
        self._notify(events)

    def _release(self, permit: _Permit) -> None:
        with self._lock:
            if permit.trial and permit.epoch == self._epoch:
                self._in_flight_trials -= 1

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` through the breaker; raise :class:`CircuitOpenError` when rejected.

        An exception from ``fn`` is recorded as a failure (when ``is_failure`` says
        so) and re-raised.
        """
        permit = self._acquire()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            if isinstance(exc, Exception) and self._is_failure(exc):
                self._record(permit, ok=False)
            else:
                self._release(permit)
            raise
        self._record(permit, ok=True)
        return result

    def call_with_fallback(
        self, fn: Callable[..., Any], fallback: Callable[[Exception], Any], *args: Any, **kwargs: Any
    ) -> Any:
        """Like :meth:`call`, but return ``fallback(exc)`` when rejected or when ``fn`` fails."""
        try:
            return self.call(fn, *args, **kwargs)
        except Exception as exc:  # the fallback decides what a failure means
            return fallback(exc)

    # -- manual control ----------------------------------------------------

    def reset(self) -> None:
        """Close the breaker now and clear the failure count (also ends a forced open)."""
        events: list = []
        with self._lock:
            self._move(CLOSED, REASON_MANUAL_RESET, events)
        self._notify(events)

    def force_open(self) -> None:
        """Open the breaker and hold it open until :meth:`reset` (not counted as a trip)."""
        events: list = []
        with self._lock:
            self._move(OPEN, REASON_FORCED_OPEN, events)
            self._forced = True
        self._notify(events)

    # -- inspection --------------------------------------------------------

    @property
    def state(self) -> str:
        events: list = []
        with self._lock:
            self._refresh(events)
            state = self._state
        self._notify(events)
        return state

    def is_available(self) -> bool:
        """Whether a call made now would be let through."""
        events: list = []
        with self._lock:
            self._refresh(events)
            available = self._state == CLOSED or (
                self._state == HALF_OPEN and self._in_flight_trials < self.half_open_max_calls
            )
        self._notify(events)
        return available

    def stats(self) -> dict:
        """A JSON-ready snapshot, in the shape GET /api/admin/breakers returns."""
        events: list = []
        with self._lock:
            self._refresh(events)
            retry_in = None
            if self._state == OPEN and not self._forced:
                retry_in = round(max(0.0, self.reset_timeout - (self._clock() - self._opened_at)), 3)
            snapshot = {
                "name": self.name,
                "state": self._state,
                "failures": self._failures,
                "successes": self._successes,
                "trips": self._trips,
                "opened_at": _iso(self._opened_at_wall),
                "last_failure_at": _iso(self._last_failure_wall),
                "failure_threshold": self.failure_threshold,
                "reset_timeout": self.reset_timeout,
                "success_threshold": self.success_threshold,
                "half_open_max_calls": self.half_open_max_calls,
                "half_open_in_flight": self._in_flight_trials if self._state == HALF_OPEN else 0,
                "forced": self._forced,
                "retry_in": retry_in,
                "total_successes": self._total_successes,
                "total_failures": self._total_failures,
                "rejected": self._rejected,
            }
        self._notify(events)
        return snapshot
