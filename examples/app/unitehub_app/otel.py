"""Span and metric export through the OpenTelemetry SDK and its OTLP/HTTP (protobuf) exporters.

Imported only when APM exports, so an app with APM off never loads the SDK.

A request that is not sampled never reaches the SDK: the decision (``APM_SAMPLE_RATE``,
or the caller's ``traceparent``) comes first, so tracing one request in ten costs the
other nine nothing. A sampled request only queues its record when it ends;
:class:`ServerSpans` builds the SDK spans from the records in batches, on its own
thread, and hands them to the SDK's ``BatchSpanProcessor``, whose thread encodes and
posts them every flush interval (sooner when a batch fills).

Metrics go out every flush interval through a ``PeriodicExportingMetricReader``:
``http.server.active_requests``, and ``http.server.request.duration``, which is read
from the app's Prometheus histogram at export time rather than recorded a second
time per request (an SDK histogram record costs a request 7-20 us; reading costs
nothing per request).

A collector that is down or slow never blocks a request: its cost is the
background threads', and spans beyond the queue are dropped and counted.

The OTLP client retries each export within its timeout and logs every retry; those
logs are silenced here, and :class:`ExportWatch` logs an outage once when it starts
and once when it ends instead.
"""

from __future__ import annotations

import base64
import collections
import logging
import random
import threading
import time
import urllib.parse
from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.exporter.http.transport._urllib3 import Urllib3HTTPTransport
from opentelemetry.exporter.otlp.proto.http._common import RequestPayloadTooLargeError, _is_request_too_large
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from . import __version__
from .config import Config
from .logs import JsonLogger
from .metrics import AppMetrics
from .span_encoding import SpanEncoder

SCOPE = "unitehub_app"
# Batch processor tuning (bench/apm.py): batches of 512 spans (about 90 KB a post) keep
# fewer spans in memory than 1,024 (2 MB less at sample rate 1.0, CPU within noise); a queue
# of four batches rides out a slow collector. Spans beyond it are dropped and counted.
MAX_EXPORT_BATCH = 512
MAX_QUEUE = 4 * MAX_EXPORT_BATCH
BUILD_INTERVAL = 1.0  # seconds at most between a traced request's end and its SDK span
UNSET, ERROR = Status(StatusCode.UNSET), Status(StatusCode.ERROR)

# The OTLP client logs each failed attempt and retry; ExportWatch reports outages instead.
logging.getLogger("opentelemetry.exporter.otlp").setLevel(logging.CRITICAL)


def safe_endpoint(url: str) -> str:
    """The URL without credentials, query or fragment, fit for a log line."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def basic_auth_headers(url: str) -> dict:
    """Credentials in the endpoint URL, as the Basic Authorization header they stand for."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return {}
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def describe(exc: BaseException) -> str:
    """The innermost cause of an export error, e.g. ``ConnectionRefusedError: [Errno 111] ...``."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        cause = exc.__cause__ or exc.__context__ or getattr(exc, "reason", None)
        if not isinstance(cause, BaseException):
            break
        exc = cause
    return f"{type(exc).__name__}: {exc}"


class RecordingTransport(Urllib3HTTPTransport):
    """The exporter's HTTP client; remembers why its last request failed.

    The SDK's urllib3 transport rather than its default, requests: the exporter posts
    protobuf and never needs requests' conveniences, whose import (charset_normalizer and
    idna with it) costs the process 3.8 MB. The exporters take it through their
    ``_transport`` argument, as the SDK documents in their signatures."""

    last_problem = "unknown"

    def request(self, *args, **kwargs):
        result = super().request(*args, **kwargs)
        if result.error is not None:
            self.last_problem = describe(result.error)
        elif result.status_code >= 300:
            self.last_problem = f"HTTP {result.status_code}"
        return result


class ExportWatch:
    """Logs ``apm_export_failed`` when a signal's export starts failing and no other is failing
    already, and ``apm_export_recovered`` when every signal exports again: one line each per
    outage, however many batches and retries fail in between."""

    def __init__(self, logger: JsonLogger):
        self._log = logger
        self._failing: set = set()
        self._lock = threading.Lock()

    def report(self, signal: str, ok: bool, endpoint: str, problem: str) -> None:
        with self._lock:
            before = bool(self._failing)
            if ok:
                self._failing.discard(signal)
            else:
                self._failing.add(signal)
            after = bool(self._failing)
        if after and not before:
            self._log.warning(
                "apm_export_failed", signal=signal, endpoint=endpoint, error=problem,
                note="telemetry is dropped until the collector answers; this is logged once",
            )
        elif before and not after:
            self._log.info("apm_export_recovered", signal=signal, endpoint=endpoint)


class WatchedSpanExporter(OTLPSpanExporter):
    """The OTLP/HTTP span exporter, counting each batch as exported or failed.

    It encodes with :class:`SpanEncoder` (the SDK's encoding, a span shape at a time: about
    4 instead of 17 us a span) and posts through the SDK exporter's own client."""

    def __init__(self, endpoint: str, watch: ExportWatch, metrics: AppMetrics, **kwargs):
        self.transport = RecordingTransport()
        super().__init__(endpoint=endpoint, _transport=self.transport, **kwargs)
        self.url = safe_endpoint(endpoint)
        self.finished = 0  # spans whose export ended, either way; only the processor thread writes it
        self._encoder = SpanEncoder()
        self._watch = watch
        self._exported = metrics.apm_spans.labels(outcome="exported")
        self._failed = metrics.apm_spans.labels(outcome="failed")

    def export(self, spans):
        result = self._post(spans)
        ok = result is SpanExportResult.SUCCESS
        (self._exported if ok else self._failed).inc(len(spans))
        self.finished += len(spans)
        self._watch.report("traces", ok, self.url, self.transport.last_problem)
        return result

    def _post(self, spans) -> SpanExportResult:
        """``OTLPSpanExporter.export`` with the encoder swapped: its steps, self-metrics, size
        limit and HTTP client (retries, compression, headers) as they are, the same bytes."""
        if self._shutdown:
            return SpanExportResult.FAILURE
        with self._metrics.export_operation(len(spans)) as outcome:
            try:
                data = self._encoder.encode(spans)
            except Exception as error:  # as in the SDK's export: the batch fails, and the watch says why
                outcome.error = error
                self.transport.last_problem = "encoding: " + describe(error)
                return SpanExportResult.FAILURE
            if _is_request_too_large(data, self._max_request_size):
                outcome.error = RequestPayloadTooLargeError(
                    f"Serialized span request size {len(data)} bytes exceeds max_request_size "
                    f"{self._max_request_size} bytes.")
                return SpanExportResult.FAILURE
            sent = self._client.export(data)
            if not sent.success:
                outcome.error = sent.error
                if sent.status_code is not None:
                    outcome.error_attrs = {HTTP_RESPONSE_STATUS_CODE: sent.status_code}
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


def request_duration(metrics: AppMetrics, start_ns: int) -> Metric:
    """``http.server.request.duration``, cumulative since ``start_ns``, from the Prometheus histogram."""
    series: dict = {}
    for family in metrics.http_duration.collect():
        for sample in family.samples:
            labels = dict(sample.labels)
            le = labels.pop("le", None)
            entry = series.setdefault(tuple(sorted(labels.items())), {"buckets": []})
            if sample.name.endswith("_bucket"):
                entry["buckets"].append((float(le), int(sample.value)))
            elif sample.name.endswith("_sum"):
                entry["sum"] = sample.value
    now = time.time_ns()
    points = []
    for key, entry in series.items():
        labels = dict(key)
        cumulative = sorted(entry["buckets"])  # ends with +Inf
        counts = [n - previous for (_unused, n), (_unused, previous) in zip(cumulative, [(0, 0)] + cumulative[:-1])]
        points.append(HistogramDataPoint(
            attributes={"http.request.method": labels["method"], "http.route": labels["route"],
                        "http.response.status_code": int(labels["status"])},
            start_time_unix_nano=start_ns, time_unix_nano=now, count=cumulative[-1][1], sum=entry.get("sum", 0.0),
            bucket_counts=counts, explicit_bounds=[bound for bound, _unused in cumulative[:-1]], min=None, max=None,
        ))
    return Metric(
        name="http.server.request.duration", description="Duration of HTTP server requests.", unit="s",
        data=Histogram(data_points=points, aggregation_temporality=AggregationTemporality.CUMULATIVE),
    )


class WatchedMetricExporter(OTLPMetricExporter):
    """The OTLP/HTTP metric exporter, adding the request-duration histogram to each export
    and reporting each export to the watch."""

    def __init__(self, endpoint: str, watch: ExportWatch, metrics: AppMetrics, **kwargs):
        self.transport = RecordingTransport()
        super().__init__(endpoint=endpoint, _transport=self.transport, **kwargs)
        self.url = safe_endpoint(endpoint)
        self._watch = watch
        self._app_metrics = metrics  # not _metrics: the exporter keeps its own self-metrics there
        self._start_ns = time.time_ns()

    def export(self, metrics_data, timeout_millis: float | None = 10_000, **kwargs):
        duration = request_duration(self._app_metrics, self._start_ns)
        if duration.data.data_points:
            resource_metrics = metrics_data.resource_metrics[0]
            scope = ScopeMetrics(InstrumentationScope(SCOPE, __version__), [duration], "")
            metrics_data = MetricsData([ResourceMetrics(
                resource_metrics.resource, [*resource_metrics.scope_metrics, scope], resource_metrics.schema_url)])
        result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        self._watch.report("metrics", result is MetricExportResult.SUCCESS, self.url, self.transport.last_problem)
        return result


class HashedResource(Resource):
    """A Resource that computes its hash once. The OTLP encoder groups every span of a batch
    by resource, and ``Resource.__hash__`` serialises the attributes to JSON on each call:
    about 5 us of a span's 22 us encoding (measured alone, batches of 1,024). A Resource is immutable, so its
    hash never changes; equality stays the SDK's."""

    def __init__(self, resource: Resource):
        super().__init__(resource.attributes, resource.schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash


class ServerSpans:
    """Traced requests on their way to the SDK: the request records, a thread builds the spans.

    The request path only appends its record (caller's span context, method, route, status,
    start and end time) to a deque. A thread turns the records into finished spans every
    second (or flush interval, if shorter), or as soon as a batch is waiting, and hands them
    to the ``BatchSpanProcessor``, which exports them as before, so a span leaves within a
    flush interval and a second of its request's end.

    A record becomes the SDK's own finished-span type, ``ReadableSpan``, with the ids, flags,
    trace state and parent that ``Tracer.start_span`` would give it under the ``ALWAYS_ON``
    sampler (tests/app/test_apm.py compares the two encodings byte for byte). The span is
    finished when it is built, so the tracer's live-span machinery (a lock, attribute
    validation, the sampler call, ``end``) would cost about 19 of its 22 us for nothing
    (measured alone). The processor's ``on_start`` does nothing, so only ``on_end`` is called.

    Spans count from the request's end until their export ends, and at most ``capacity`` of
    them at once: a request beyond that is not traced and is counted as dropped, so neither
    this deque nor the SDK's queue (which would drop its oldest span silently) overflows."""

    def __init__(self, provider: TracerProvider, processor, exporter, metrics: AppMetrics, capacity: int, batch: int,
                 interval: float):
        self._resource = provider.resource
        self._ids = provider.id_generator
        self._scope = InstrumentationScope(SCOPE, __version__)
        self._processor = processor
        self._exporter = exporter  # its ``finished`` counts the spans whose export ended
        self._capacity = capacity
        self._batch = batch
        self._interval = interval
        self._pending: collections.deque = collections.deque()
        self._admitted = 0
        self._lock = threading.Lock()
        self._dropped = metrics.apm_spans.labels(outcome="dropped")
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="unitehub-server-spans", daemon=True)
        self._thread.start()

    def add(self, caller: SpanContext | None, method: str, route: str, status: int, start_ns: int, end_ns: int) -> None:
        """Queue one finished request (the request path: no SDK call here)."""
        with self._lock:
            if self._admitted - self._exporter.finished >= self._capacity:
                self._dropped.inc()
                return
            self._admitted += 1
        self._pending.append((caller, method, route, status, start_ns, end_ns))
        if len(self._pending) >= self._batch:
            self._wake.set()

    def build(self) -> None:
        """Turn every queued record into a finished span and hand it to the processor."""
        pending, ids, finish = self._pending, self._ids, self._processor.on_end
        root_flags = TraceFlags(TraceFlags.SAMPLED | (TraceFlags.RANDOM_TRACE_ID if ids.is_trace_id_random() else 0))
        while pending:
            caller, method, route, status, start_ns, end_ns = pending.popleft()
            if caller is None:
                trace_id, flags, trace_state = ids.generate_trace_id(), root_flags, None
            else:
                random_id = caller.trace_flags & TraceFlags.RANDOM_TRACE_ID  # the tracer keeps the caller's
                flags = TraceFlags(TraceFlags.SAMPLED | random_id)
                trace_id, trace_state = caller.trace_id, caller.trace_state
            finish(ReadableSpan(
                name=f"{method} {route}",
                context=SpanContext(trace_id, ids.generate_span_id(), is_remote=False, trace_flags=flags,
                                    trace_state=trace_state),
                parent=caller, resource=self._resource, kind=SpanKind.SERVER, instrumentation_scope=self._scope,
                attributes={"http.request.method": method, "http.route": route, "http.response.status_code": status},
                status=ERROR if status >= 500 else UNSET, start_time=start_ns, end_time=end_ns,
            ))

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._interval)
            self._wake.clear()
            self.build()

    def stop(self) -> None:
        """Build what is queued and end the thread."""
        self._stopping = True
        self._wake.set()
        self._thread.join()
        self.build()


class Telemetry:
    """Server spans and the request-duration histogram, exported over OTLP/HTTP."""

    def __init__(self, config: Config, metrics: AppMetrics, logger: JsonLogger):
        datadog = config.apm_provider == "datadog"
        resource = HashedResource(Resource.create(
            {
                # Datadog names the service after DD_SERVICE; the Agent maps service.name to it.
                "service.name": config.dd_service if datadog else config.apm_service_name,
                "service.version": config.version,
                "service.namespace": config.app_name,
                "deployment.environment": config.dd_env,
                "unitehub.slot": config.slot,
            }
        ))
        flush_ms = config.apm_flush_interval_ms
        base = config.otel_exporter_otlp_endpoint
        parts = urllib.parse.urlsplit(base)
        plain = urllib.parse.urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
        exporter_options = {
            "headers": basic_auth_headers(base),
            # An export, retries included, ends within the flush interval (1 to 5 s).
            "timeout": max(1.0, min(5.0, flush_ms / 1000.0)),
        }
        watch = ExportWatch(logger)
        self.sample_rate = config.apm_sample_rate
        self._random = random.random

        self.span_exporter = WatchedSpanExporter(plain + "/v1/traces", watch, metrics, **exporter_options)
        # Every span that reaches the SDK was sampled already (see start_server_span).
        self.tracer_provider = TracerProvider(resource=resource, sampler=ALWAYS_ON, shutdown_on_exit=False)
        processor = BatchSpanProcessor(
            self.span_exporter, max_queue_size=MAX_QUEUE,
            schedule_delay_millis=flush_ms, max_export_batch_size=MAX_EXPORT_BATCH,
        )
        self.tracer_provider.add_span_processor(processor)
        self.server_spans = ServerSpans(
            self.tracer_provider, processor, self.span_exporter, metrics,
            MAX_QUEUE, MAX_EXPORT_BATCH, min(BUILD_INTERVAL, flush_ms / 1000.0),
        )

        self.metric_exporter = WatchedMetricExporter(plain + "/v1/metrics", watch, metrics, **exporter_options)
        reader = PeriodicExportingMetricReader(
            self.metric_exporter, export_interval_millis=flush_ms, export_timeout_millis=exporter_options["timeout"] * 1000
        )
        self.meter_provider = MeterProvider(resource=resource, metric_readers=[reader], shutdown_on_exit=False)
        self.meter_provider.get_meter(SCOPE, __version__).create_observable_up_down_counter(
            "http.server.active_requests", unit="{request}", description="Number of active HTTP server requests.",
            callbacks=[lambda _options: [Observation(metrics.sample("unitehub_http_requests_in_flight"))]],
        )

    def start_server_span(self, headers: Mapping[str, str]):
        """``(caller's span context or None, start time)`` for a request to trace, None for the others.

        A valid ``traceparent`` decides by its sampled flag; otherwise ``APM_SAMPLE_RATE`` does."""
        if "traceparent" in headers:
            parent = propagate.extract(headers)
            caller = trace.get_current_span(parent).get_span_context()
            if caller.is_valid:
                return (caller, time.time_ns()) if caller.trace_flags.sampled else None
        if self._random() < self.sample_rate:
            return (None, time.time_ns())
        return None

    def end_server_span(self, traced, method: str, route: str, status: int) -> None:
        """Queue the finished request's SERVER span, ``<method> <route>``."""
        caller, start_ns = traced
        self.server_spans.add(caller, method, route, status, start_ns, time.time_ns())

    def flush(self) -> None:
        """Build and export every queued span now, instead of on the threads' schedule."""
        self.server_spans.build()
        self.tracer_provider.force_flush()

    def shutdown(self) -> None:
        """Export what is queued (each exporter gives up within its timeout), then stop."""
        self.server_spans.stop()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
