"""System health in the draft-inadarei-api-health-check format.

Each check gives one ``{status, observedValue, observedUnit, time, output?}``
object under its ``component:measurement`` key. Checks that do I/O run in
parallel, each in its own thread with its own deadline, so the whole report is
ready within the deadline plus a few milliseconds even when a dependency
accepts connections and never answers.

Aggregation: a critical check (database, filesystem, environment, an injected
fault) that fails makes the report ``fail`` (HTTP 503); any other check that is
not ``pass`` makes it ``warn`` (206); otherwise ``pass`` (200).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Callable, Iterable

from . import deadline
from .breaker import CLOSED, CircuitBreaker
from .config import AI_KEY_VARIABLES, REQUIRED_VARIABLES, Config
from .logs import scrub, utc_now_iso

PASS, WARN, FAIL = "pass", "warn", "fail"
HTTP_STATUS = {PASS: 200, WARN: 206, FAIL: 503}
CONTENT_TYPE = "application/health+json"


@dataclasses.dataclass
class CheckResult:
    key: str
    status: str
    critical: bool
    observed_value: object = None
    observed_unit: str = ""
    output: str = ""
    component_type: str = ""
    extra: dict = dataclasses.field(default_factory=dict)
    time: str = dataclasses.field(default_factory=utc_now_iso)

    def as_json(self) -> dict:
        body: dict = {}
        if self.component_type:
            body["componentType"] = self.component_type
        body.update(
            {
                "status": self.status,
                "observedValue": self.observed_value,
                "observedUnit": self.observed_unit,
                "time": self.time,
            }
        )
        if self.output:
            body["output"] = self.output
        body.update(self.extra)
        return body


def aggregate(results: Iterable[CheckResult]) -> str:
    """``fail`` if a critical check fails; ``warn`` if any check is not ``pass``; else ``pass``."""
    status = PASS
    for result in results:
        if result.status == FAIL and result.critical:
            return FAIL
        if result.status != PASS:
            status = WARN
    return status


def describe_error(exc: BaseException) -> str:
    """A short, one-line description of an exception (secrets are scrubbed by the caller)."""
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclasses.dataclass
class IoCheck:
    """A check that does I/O: ``probe()`` returns a latency in ms or raises."""

    key: str
    critical: bool
    component_type: str
    probe: Callable[[], float]
    unavailable: Callable[[], str] = lambda: ""
    detail: Callable[[], dict] = dict


def filesystem_probe(directory: str | None = None) -> float:
    """Write, fsync, read back and delete a small temporary file; the time taken in ms."""
    start = time.perf_counter()
    payload = b"unitehub health probe\n"
    fd, path = tempfile.mkstemp(prefix=".unitehub-health-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        with open(path, "rb") as handle:
            if handle.read() != payload:
                raise OSError("the probe file did not read back what was written")
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return (time.perf_counter() - start) * 1000.0


class HealthService:
    def __init__(
        self,
        config: Config,
        io_checks: list[IoCheck],
        breakers: dict[str, CircuitBreaker],
    ):
        self.config = config
        self.io_checks = io_checks
        self.breakers = breakers
        self.timeout = config.health_check_timeout
        self._secrets = config.secrets()

    def _io_results(self) -> list[CheckResult]:
        started = time.monotonic()
        running = []
        for check in self.io_checks:
            reason = check.unavailable()
            if reason:
                running.append((check, None, reason))
            else:
                running.append((check, deadline.start(check.probe, f"health-{check.key}"), ""))
        results = []
        for check, pending, reason in running:
            status, value, output = FAIL, None, reason
            if pending is not None:
                remaining = self.timeout - (time.monotonic() - started)
                try:
                    value = round(pending.result(remaining), 3)
                    status = PASS
                except deadline.DeadlineExceeded:
                    output = f"no answer within {self.config.health_check_timeout_ms} ms"
                except Exception as exc:  # any failure is the check's result
                    output = describe_error(exc)
            results.append(
                CheckResult(
                    check.key,
                    status,
                    check.critical,
                    observed_value=value,
                    observed_unit="ms",
                    output=scrub(output, self._secrets),
                    component_type=check.component_type,
                    extra=check.detail(),
                )
            )
        return results

    def _ai_result(self) -> CheckResult:
        present = list(self.config.ai_keys_present)
        if present:
            return CheckResult("ai:config", PASS, False, present, "keys", component_type="system")
        return CheckResult(
            "ai:config",
            WARN,
            False,
            present,
            "keys",
            output=f"no AI provider key is set ({', '.join(AI_KEY_VARIABLES)}); AI features are disabled",
            component_type="system",
        )

    def _environment_result(self) -> CheckResult:
        missing = list(self.config.missing_required)
        present = [name for name in REQUIRED_VARIABLES if name not in missing]
        return CheckResult(
            "environment:variables",
            FAIL if missing else PASS,
            True,
            present,
            "present",
            output=f"missing required variables: {', '.join(missing)}" if missing else "",
            component_type="system",
        )

    def _breaker_results(self) -> list[CheckResult]:
        results = []
        for name, breaker in self.breakers.items():
            stats = breaker.stats()
            closed = stats["state"] == CLOSED
            results.append(
                CheckResult(
                    f"circuitBreaker:{name}",
                    PASS if closed else WARN,
                    False,
                    stats["state"],
                    "state",
                    output="" if closed else f"breaker is {stats['state']}; {name} calls take the fallback",
                    component_type="component",
                    extra={
                        "failures": stats["failures"],
                        "trips": stats["trips"],
                        "opened_at": stats["opened_at"],
                    },
                )
            )
        return results

    def _fault_result(self) -> list[CheckResult]:
        if self.config.fault_health != "fail":
            return []
        return [
            CheckResult(
                "fault:injected",
                FAIL,
                True,
                True,
                "boolean",
                output="APP_FAULT_HEALTH=fail forces this check to fail",
                component_type="system",
            )
        ]

    def results(self) -> list[CheckResult]:
        results = self._io_results()
        results.append(self._ai_result())
        results.append(self._environment_result())
        results.extend(self._breaker_results())
        results.extend(self._fault_result())
        return results

    def report(self) -> tuple[int, dict]:
        """The HTTP status and the ``application/health+json`` body."""
        results = self.results()
        status = aggregate(results)
        checks: dict = {}
        for result in results:
            checks.setdefault(result.key, []).append(result.as_json())
        body = {
            "status": status,
            "version": self.config.version,
            "releaseId": self.config.release_id,
            "serviceId": self.config.app_name,
            "description": f"{self.config.app_name} {self.config.slot} slot",
            "slot": self.config.slot,
            "checks": checks,
        }
        failing = [r.key for r in results if r.status != PASS]
        if failing:
            body["output"] = "not passing: " + ", ".join(failing)
        return HTTP_STATUS[status], body
