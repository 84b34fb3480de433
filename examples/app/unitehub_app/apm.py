"""The APM facade the request path calls.

:class:`Recorder` times HTTP requests, database queries and AI calls into the
Prometheus metrics of :class:`~unitehub_app.metrics.AppMetrics`, always. When APM
exports (``ENABLE_APM=true`` with the ``opentelemetry`` or ``datadog`` provider) it
also gives each sampled request a server span through
:class:`~unitehub_app.otel.Telemetry`, which exports the metrics as well.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from .metrics import AppMetrics

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

# Estimated list prices in USD per million tokens (input, output); unknown models cost 0.
AI_PRICES_PER_MTOK = {
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-haiku-4-5": (1.0, 5.0),
}


class HttpTimer:
    """A request being timed; ``span`` is what :class:`~unitehub_app.otel.Telemetry` keeps of it when it is traced."""

    __slots__ = ("method", "route", "start", "span")

    def __init__(self, method: str, route: str):
        self.method = method if method in HTTP_METHODS else "OTHER"
        self.route = route
        self.start = time.perf_counter()
        self.span = None


class Recorder:
    """Times requests, queries and AI calls; ``telemetry`` is a :class:`~unitehub_app.otel.Telemetry` or None."""

    def __init__(self, metrics: AppMetrics, telemetry: Any = None):
        self.metrics = metrics
        self.telemetry = telemetry

    def start_http(self, method: str, route: str, headers: Mapping[str, str]) -> HttpTimer:
        """Start timing a request; ``route`` is its bounded label (``unmatched`` for unknown paths)."""
        self.metrics.http_in_flight.inc()
        timer = HttpTimer(method, route)
        if self.telemetry is not None:
            timer.span = self.telemetry.start_server_span(headers)
        return timer

    def finish_http(self, timer: HttpTimer, status: int) -> float:
        """Record the finished request; return its duration in seconds."""
        duration = time.perf_counter() - timer.start
        self.metrics.http_in_flight.dec()
        labels = (timer.method, timer.route, str(status))
        self.metrics.http_requests.labels(*labels).inc()
        self.metrics.http_duration.labels(*labels).observe(duration)
        if status >= 500:
            self.metrics.errors.labels(type="http_5xx").inc()
        if timer.span is not None:
            self.telemetry.end_server_span(timer.span, timer.method, timer.route, status)
        return duration

    def track_db_query(self, operation: str, table: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` and time it as one database query."""
        start = time.perf_counter()
        outcome = "error"
        try:
            result = fn()
            outcome = "ok"
            return result
        finally:
            self.metrics.db_duration.labels(operation, table, outcome).observe(time.perf_counter() - start)
            if outcome == "error":
                self.metrics.errors.labels(type="database").inc()

    def record_ai_call(
        self,
        model: str,
        operation: str,
        duration: float,
        input_tokens: int = 0,
        output_tokens: int = 0,
        ok: bool = True,
    ) -> float:
        """Count one AI call, its tokens and its estimated cost; return the cost in USD."""
        m = self.metrics
        outcome = "ok" if ok else "error"
        m.ai_calls.labels(model, operation, outcome).inc()
        m.ai_duration.labels(model, operation, outcome).observe(duration)
        m.ai_tokens.labels(model=model, direction="input").inc(input_tokens)
        m.ai_tokens.labels(model=model, direction="output").inc(output_tokens)
        price_in, price_out = AI_PRICES_PER_MTOK.get(model, (0.0, 0.0))
        cost = (input_tokens * price_in + output_tokens * price_out) / 1_000_000
        m.ai_cost.labels(model=model).inc(cost)
        if not ok:
            m.errors.labels(type="ai").inc()
        return cost

    def track_ai_call(self, model: str, operation: str, fn: Callable[[], tuple]) -> Any:
        """Run ``fn`` -> ``(result, input_tokens, output_tokens)``; record it; return ``result``."""
        start = time.perf_counter()
        try:
            result, tokens_in, tokens_out = fn()
        except Exception:
            self.record_ai_call(model, operation, time.perf_counter() - start, ok=False)
            raise
        self.record_ai_call(model, operation, time.perf_counter() - start, tokens_in, tokens_out)
        return result

    def record_error(self, kind: str) -> None:
        self.metrics.errors.labels(type=kind).inc()
