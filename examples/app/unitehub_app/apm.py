"""A small provider-agnostic APM recorder and an OTLP/HTTP JSON span exporter.

:class:`AppMetrics` holds every metric the app exposes on ``/metrics``.
:class:`Recorder` is what the request path calls: it times HTTP requests,
database queries and AI calls into those metrics and, when span export is on,
hands finished HTTP spans to :class:`OtlpHttpExporter`.

The exporter never blocks a request: spans go into a bounded queue (dropped and
counted when it is full) and a background thread posts them every flush
interval. A collector outage is logged once when it starts and once when it ends.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

from .breaker import STATES
from .logs import JsonLogger
from .metrics import CallbackGauge, Counter, Gauge, Histogram, Registry

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
CACHE_MISS_REASONS = ("absent", "error", "breaker_open", "unavailable")
SPAN_KIND_SERVER = 2
STATUS_CODE_UNSET = 0
STATUS_CODE_ERROR = 2

# Estimated list prices in USD per million tokens (input, output); unknown models cost 0.
AI_PRICES_PER_MTOK = {
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-haiku-4-5": (1.0, 5.0),
}


class AppMetrics:
    """Every metric of the app, registered in one :class:`Registry`."""

    def __init__(
        self,
        *,
        app: str,
        slot: str,
        version: str,
        release_id: str,
        breakers: Callable[[], Iterable[dict]] = lambda: (),
        breaker_names: Iterable[str] = (),
    ):
        r = self.registry = Registry()
        req = ("method", "route", "status")
        self.http_duration = r.register(
            Histogram("unitehub_http_request_duration_seconds", "HTTP request latency by route and status.", req)
        )
        self.http_requests = r.register(
            Counter("unitehub_http_requests_total", "HTTP requests served, by route and status.", req)
        )
        self.http_in_flight = r.register(
            Gauge("unitehub_http_requests_in_flight", "HTTP requests being served right now.")
        )
        self.db_duration = r.register(
            Histogram(
                "unitehub_db_query_duration_seconds",
                "Database query latency by operation, table and outcome.",
                ("operation", "table", "outcome"),
            )
        )
        self.cache_hits = r.register(Counter("unitehub_cache_hits_total", "Cache lookups that found a value."))
        self.cache_misses = r.register(
            Counter(
                "unitehub_cache_misses_total",
                "Cache lookups without a value, by reason (absent, error, breaker_open, unavailable).",
                ("reason",),
            )
        )
        for reason in CACHE_MISS_REASONS:
            self.cache_misses.inc(0, reason=reason)
        self.breaker_trips = r.register(
            Counter("unitehub_circuit_breaker_trips_total", "Times a circuit breaker opened on failures.", ("breaker",))
        )
        for name in breaker_names:
            self.breaker_trips.inc(0, breaker=name)

        def breaker_states():
            for stats in breakers():
                for state in STATES:
                    yield (stats["name"], state), 1 if stats["state"] == state else 0

        self.breaker_state = r.register(
            CallbackGauge(
                "unitehub_circuit_breaker_state",
                "Circuit breaker state: 1 for the current state, 0 for the others.",
                ("breaker", "state"),
                breaker_states,
            )
        )
        ai = ("model", "operation", "outcome")
        self.ai_duration = r.register(
            Histogram(
                "unitehub_ai_request_duration_seconds",
                "AI call latency by model, operation and outcome.",
                ai,
                buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
            )
        )
        self.ai_calls = r.register(Counter("unitehub_ai_calls_total", "AI calls by model, operation and outcome.", ai))
        self.ai_tokens = r.register(
            Counter(
                "unitehub_ai_tokens_total",
                "AI tokens used, by model and direction (input, output).",
                ("model", "direction"),
            )
        )
        self.ai_cost = r.register(
            Counter("unitehub_ai_cost_usd_total", "Estimated AI cost in US dollars, by model.", ("model",))
        )
        self.errors = r.register(Counter("unitehub_errors_total", "Errors by type.", ("type",)))
        self.apm_spans = r.register(
            Counter(
                "unitehub_apm_spans_total",
                "Sampled spans by outcome (exported, dropped: queue full, failed: export error).",
                ("outcome",),
            )
        )
        for outcome in ("exported", "dropped", "failed"):
            self.apm_spans.inc(0, outcome=outcome)
        self.info = r.register(
            Gauge(
                "unitehub_app_info",
                "Always 1; labels describe the running build.",
                ("app", "slot", "version", "release_id"),
            )
        )
        self.info.set(1, app=app, slot=slot, version=version, release_id=release_id)
        self.start_time = r.register(
            Gauge("unitehub_process_start_time_seconds", "Start time of the process since the Unix epoch.")
        )
        self.start_time.set(time.time())

    def render(self) -> str:
        return self.registry.render()


class HttpSpan:
    """A request being timed. ``trace_id`` / ``span_id`` are set only when sampled."""

    __slots__ = ("method", "start_ns", "start", "sampled", "trace_id", "span_id")

    def __init__(self, method: str, sampled: bool):
        self.method = method
        self.start_ns = time.time_ns()
        self.start = time.perf_counter()
        self.sampled = sampled
        self.trace_id = os.urandom(16).hex() if sampled else ""
        self.span_id = os.urandom(8).hex() if sampled else ""


def _attr(key: str, value: Any) -> dict:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": str(value)}}


class Recorder:
    """The APM facade the request path uses."""

    def __init__(
        self,
        metrics: AppMetrics,
        exporter: OtlpHttpExporter | None = None,
        sample_rate: float = 1.0,
        rng: Callable[[], float] = random.random,
    ):
        self.metrics = metrics
        self.exporter = exporter
        self.sample_rate = sample_rate
        self._rng = rng

    def start_http(self, method: str) -> HttpSpan:
        sampled = self.exporter is not None and self._rng() < self.sample_rate
        self.metrics.http_in_flight.inc()
        return HttpSpan(method, sampled)

    def finish_http(self, span: HttpSpan, route: str, status: int) -> float:
        """Record the finished request; return its duration in seconds."""
        duration = time.perf_counter() - span.start
        self.metrics.http_in_flight.dec()
        method = span.method if span.method in HTTP_METHODS else "OTHER"
        labels = {"method": method, "route": route, "status": str(status)}
        self.metrics.http_requests.inc(**labels)
        self.metrics.http_duration.observe(duration, **labels)
        if status >= 500:
            self.metrics.errors.inc(type="http_5xx")
        if span.sampled and self.exporter is not None:
            end_ns = span.start_ns + int(duration * 1e9)
            self.exporter.submit(
                {
                    "traceId": span.trace_id,
                    "spanId": span.span_id,
                    "name": f"{method} {route}",
                    "kind": SPAN_KIND_SERVER,
                    "startTimeUnixNano": str(span.start_ns),
                    "endTimeUnixNano": str(end_ns),
                    "attributes": [
                        _attr("http.request.method", method),
                        _attr("http.route", route),
                        _attr("http.response.status_code", int(status)),
                    ],
                    "status": {"code": STATUS_CODE_ERROR if status >= 500 else STATUS_CODE_UNSET},
                }
            )
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
            self.metrics.db_duration.observe(
                time.perf_counter() - start, operation=operation, table=table, outcome=outcome
            )
            if outcome == "error":
                self.metrics.errors.inc(type="database")

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
        outcome = "ok" if ok else "error"
        self.metrics.ai_calls.inc(model=model, operation=operation, outcome=outcome)
        self.metrics.ai_duration.observe(duration, model=model, operation=operation, outcome=outcome)
        self.metrics.ai_tokens.inc(input_tokens, model=model, direction="input")
        self.metrics.ai_tokens.inc(output_tokens, model=model, direction="output")
        price_in, price_out = AI_PRICES_PER_MTOK.get(model, (0.0, 0.0))
        cost = (input_tokens * price_in + output_tokens * price_out) / 1_000_000
        self.metrics.ai_cost.inc(cost, model=model)
        if not ok:
            self.metrics.errors.inc(type="ai")
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
        self.metrics.errors.inc(type=kind)


def safe_endpoint(url: str) -> str:
    """The URL without credentials, query or fragment, fit for a log line."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class OtlpHttpExporter:
    """Posts spans as OTLP/HTTP JSON to ``<endpoint>/v1/traces`` from a background thread."""

    def __init__(
        self,
        endpoint: str,
        resource: dict,
        flush_interval: float,
        logger: JsonLogger,
        metrics: AppMetrics,
        *,
        queue_size: int = 2048,
        batch_size: int = 512,
        timeout: float | None = None,
        scope_version: str = "",
    ):
        parts = urllib.parse.urlsplit(endpoint.rstrip("/") + "/v1/traces")
        self._headers = {"Content-Type": "application/json"}
        if parts.username is not None:  # credentials in the URL become a Basic header
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self.url = safe_endpoint(urllib.parse.urlunsplit(parts))
        self.flush_interval = flush_interval
        self.timeout = timeout if timeout is not None else max(1.0, min(5.0, flush_interval))
        self.batch_size = batch_size
        self._resource = {"attributes": [_attr(k, v) for k, v in resource.items()]}
        self._scope = {"name": "unitehub_app", "version": scope_version}
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._log = logger
        self._metrics = metrics
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._healthy = True

    def submit(self, span: dict) -> bool:
        """Queue a span without blocking; drop it (and count the drop) when the queue is full."""
        try:
            self._queue.put_nowait(span)
            return True
        except queue.Full:
            self._metrics.apm_spans.inc(outcome="dropped")
            return False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="apm-exporter", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Ask for a last flush and wait at most ``timeout`` seconds for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self.flush_interval)
            self.flush()
            if stopping:
                return

    def flush(self) -> int:
        """Export everything queued now, in batches; return the number of spans exported."""
        exported = 0
        while True:
            batch = []
            while len(batch) < self.batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if not batch:
                return exported
            if self._export(batch):
                exported += len(batch)
            else:
                return exported  # the collector is down: keep the rest for the next round

    def payload(self, spans: list) -> dict:
        return {"resourceSpans": [{"resource": self._resource, "scopeSpans": [{"scope": self._scope, "spans": spans}]}]}

    def _export(self, spans: list) -> bool:
        body = json.dumps(self.payload(spans), separators=(",", ":")).encode()
        request = urllib.request.Request(self.url, data=body, method="POST", headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self._metrics.apm_spans.inc(len(spans), outcome="failed")
            if self._healthy:
                self._healthy = False
                self._log.warning(
                    "apm_export_failed",
                    endpoint=self.url,
                    error=_describe(exc),
                    note="spans are dropped until the collector answers; this is logged once",
                )
            return False
        self._metrics.apm_spans.inc(len(spans), outcome="exported")
        if not self._healthy:
            self._healthy = True
            self._log.info("apm_export_recovered", endpoint=self.url)
        return True


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"{type(exc.reason).__name__}: {exc.reason}"
    return f"{type(exc).__name__}: {exc}"
