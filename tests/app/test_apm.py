"""APM: the recorder, and span and metric export through the OpenTelemetry SDK to an OTLP
receiver on loopback, which decodes each protobuf export with opentelemetry-proto."""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import pytest
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode
from unitehub_app import __version__
from unitehub_app.apm import Recorder
from unitehub_app.config import load_config
from unitehub_app.logs import JsonLogger
from unitehub_app.metrics import AppMetrics
from unitehub_app.otel import SCOPE, HashedResource, ServerSpans, Telemetry, describe, safe_endpoint
from unitehub_app.span_encoding import SpanEncoder

from .conftest import OtlpReceiver, free_port, wait_until


def new_metrics() -> AppMetrics:
    return AppMetrics(app="unitehub", slot="blue", version="v1", release_id="v1")


def attrs(items: list[dict]) -> dict:
    return {a["key"]: next(iter(a["value"].values())) for a in items}


def events(log: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in log.getvalue().splitlines()]


@pytest.fixture
def receiver():
    r = OtlpReceiver()
    yield r
    r.close()


@pytest.fixture
def telemetry_for():
    """Factory: a Telemetry (and its metrics and log) for an endpoint; shut down afterwards."""
    made = []

    def make(endpoint: str, **env):
        environment = {"ENABLE_APM": "true", "APM_PROVIDER": "opentelemetry", "APM_SERVICE_NAME": "unite-hub-test",
                       "APP_SLOT": "blue", "APP_VERSION": "v1", "APM_FLUSH_INTERVAL": "100",
                       "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, **env}
        metrics, log = new_metrics(), io.StringIO()
        telemetry = Telemetry(load_config(environment), metrics, JsonLogger(log))
        made.append(telemetry)
        return telemetry, metrics, log

    yield make
    for telemetry in made:
        telemetry.shutdown()


def serve(recorder: Recorder, route: str, status: int, method: str = "GET", headers: dict | None = None) -> float:
    return recorder.finish_http(recorder.start_http(method, route, headers or {}), status)


# -- the recorder ------------------------------------------------------------------------


def test_recorder_times_requests_into_the_metrics():
    metrics = new_metrics()
    recorder = Recorder(metrics)
    timer = recorder.start_http("GET", "/api/version", {})
    assert metrics.sample("unitehub_http_requests_in_flight") == 1
    duration = recorder.finish_http(timer, 200)
    assert duration >= 0 and timer.span is None
    labels = {"method": "GET", "route": "/api/version", "status": "200"}
    assert metrics.sample("unitehub_http_requests_in_flight") == 0
    assert metrics.sample("unitehub_http_requests_total", **labels) == 1
    assert metrics.sample("unitehub_http_request_duration_seconds_count", **labels) == 1
    serve(recorder, "unmatched", 503, method="BREW")
    assert metrics.sample("unitehub_http_requests_total", method="OTHER", route="unmatched", status="503") == 1
    assert metrics.sample("unitehub_errors_total", type="http_5xx") == 1


def test_db_and_ai_tracking():
    metrics = new_metrics()
    recorder = Recorder(metrics)
    assert recorder.track_db_query("SELECT", "contacts", lambda: [1]) == [1]
    with pytest.raises(ValueError):
        recorder.track_db_query("INSERT", "contacts", lambda: (_unused for _unused in ()).throw(ValueError("x")))
    count = "unitehub_db_query_duration_seconds_count"
    assert metrics.sample(count, operation="SELECT", table="contacts", outcome="ok") == 1
    assert metrics.sample(count, operation="INSERT", table="contacts", outcome="error") == 1
    assert metrics.sample("unitehub_errors_total", type="database") == 1

    assert recorder.track_ai_call("claude-sonnet-4-5", "content-gen", lambda: ("text", 1000, 2000)) == "text"
    model = "claude-sonnet-4-5"
    assert metrics.sample("unitehub_ai_calls_total", model=model, operation="content-gen", outcome="ok") == 1
    assert metrics.sample("unitehub_ai_tokens_total", model=model, direction="input") == 1000
    assert metrics.sample("unitehub_ai_tokens_total", model=model, direction="output") == 2000
    assert metrics.sample("unitehub_ai_cost_usd_total", model=model) == pytest.approx((1000 * 3 + 2000 * 15) / 1e6)
    with pytest.raises(TimeoutError):
        recorder.track_ai_call(model, "content-gen", lambda: (_unused for _unused in ()).throw(TimeoutError()))
    assert metrics.sample("unitehub_ai_calls_total", model=model, operation="content-gen", outcome="error") == 1


# -- export through the SDK ------------------------------------------------------------------


def test_server_spans_and_the_duration_histogram_reach_the_receiver(receiver, telemetry_for):
    telemetry, metrics, log = telemetry_for(receiver.endpoint + "/", DD_ENV="test-env")
    recorder = Recorder(metrics, telemetry)
    for route, status in (("/api/version", 200), ("unmatched", 404), ("/", 500)):
        serve(recorder, route, status)
    wait_until(lambda: len(receiver.spans()) == 3, 5, what="three spans at the receiver")
    post = next(p for p in receiver.received if p.path == "/v1/traces")
    assert post.content_type == "application/x-protobuf" and post.authorization is None
    resource = attrs(receiver.resource_spans()[0]["resource"]["attributes"])
    assert {k: resource[k] for k in ("service.name", "service.version", "deployment.environment", "unitehub.slot")} \
        == {"service.name": "unite-hub-test", "service.version": "v1", "deployment.environment": "test-env",
            "unitehub.slot": "blue"}
    assert receiver.resource_spans()[0]["scopeSpans"][0]["scope"]["name"] == "unitehub_app"
    by_name = {s["name"]: s for s in receiver.spans()}
    version = by_name["GET /api/version"]
    assert version["kind"] == 2  # SPAN_KIND_SERVER
    assert attrs(version["attributes"]) == {
        "http.request.method": "GET", "http.route": "/api/version", "http.response.status_code": "200"}
    assert len(version["traceId"]) == 32 and len(version["spanId"]) == 16
    assert int(version["endTimeUnixNano"]) >= int(version["startTimeUnixNano"])
    assert attrs(by_name["GET unmatched"]["attributes"])["http.response.status_code"] == "404"
    assert by_name["GET /"]["status"]["code"] == 2  # STATUS_CODE_ERROR
    assert by_name["GET /api/version"].get("status", {}).get("code", 0) == 0  # unset
    wait_until(lambda: metrics.sample("unitehub_apm_spans_total", outcome="exported") == 3, 5,
               what="the exported counter")

    def duration_points():
        for metric in receiver.metrics():
            if metric["name"] == "http.server.request.duration":
                return metric["histogram"]["dataPoints"]
        return None

    points = wait_until(duration_points, 5, what="http.server.request.duration at the receiver")
    assert next(p for p in receiver.metrics() if p["name"] == "http.server.request.duration")["unit"] == "s"
    counted = {attrs(p["attributes"])["http.route"]: int(p["count"]) for p in points}
    assert counted == {"/api/version": 1, "unmatched": 1, "/": 1}
    assert events(log) == []  # nothing failed, nothing to say


@pytest.mark.parametrize("rate, expected", [("0", (0, 0)), ("1", (200, 200)), ("0.25", (25, 80))])
def test_the_sample_rate_decides_which_requests_are_traced(receiver, telemetry_for, rate, expected):
    telemetry, metrics, _unused = telemetry_for(receiver.endpoint, APM_SAMPLE_RATE=rate)
    recorder = Recorder(metrics, telemetry)
    for _unused in range(200):
        serve(recorder, "/api/version", 200)
    telemetry.flush()
    low, high = expected
    assert low <= len(receiver.spans()) <= high
    assert metrics.sample("unitehub_apm_spans_total", outcome="exported") == len(receiver.spans())


def test_a_caller_traceparent_makes_the_span_its_child(receiver, telemetry_for):
    telemetry, metrics, _unused = telemetry_for(receiver.endpoint, APM_SAMPLE_RATE="0")
    recorder = Recorder(metrics, telemetry)
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    serve(recorder, "/", 200, headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})  # sampled by the caller
    serve(recorder, "/", 200, headers={"traceparent": f"00-{trace_id}-{parent_id}-00"})  # not sampled
    serve(recorder, "/", 200, headers={"traceparent": "not-a-traceparent"})  # the sample rate (0) decides
    telemetry.flush()
    [span] = receiver.spans()
    assert (span["traceId"], span["parentSpanId"]) == (trace_id, parent_id)


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(telemetry_for):
    port = free_port()  # nothing listens here yet
    telemetry, metrics, log = telemetry_for(f"http://user:pw-in-url@127.0.0.1:{port}")
    recorder = Recorder(metrics, telemetry)
    for _unused in range(3):  # three flush rounds, every one failing
        serve(recorder, "/api/version", 200)
        telemetry.flush()
    assert metrics.sample("unitehub_apm_spans_total", outcome="failed") == 3
    failed = [e for e in events(log) if e["event"] == "apm_export_failed"]
    assert len(failed) == 1 and [e["event"] for e in events(log)] == ["apm_export_failed"]
    assert failed[0]["level"] == "warning"
    assert failed[0]["endpoint"] in (f"http://127.0.0.1:{port}/v1/traces", f"http://127.0.0.1:{port}/v1/metrics")
    assert failed[0]["error"].startswith("ConnectionRefusedError")
    assert "pw-in-url" not in log.getvalue()

    receiver = OtlpReceiver(port)
    try:
        serve(recorder, "/api/version", 200)
        telemetry.flush()
        telemetry.meter_provider.force_flush()
        wait_until(lambda: [e["event"] for e in events(log)] == ["apm_export_failed", "apm_export_recovered"], 5,
                   what="the recovery line")
        assert len(receiver.spans()) == 1
        # Credentials in the endpoint URL travel as a Basic header, never in a logged URL.
        basic = "Basic " + base64.b64encode(b"user:pw-in-url").decode()
        assert {post.authorization for post in receiver.received} == {basic}
    finally:
        receiver.close()


class BlockedExporter:
    """Stands in for the OTLP exporter: each export waits until released."""

    def __init__(self):
        self.finished = 0
        self.release = threading.Event()

    def export(self, spans):
        self.release.wait(10)
        self.finished += len(spans)

    def shutdown(self):
        self.release.set()

    def force_flush(self, timeout_millis=None):
        return True


def test_a_full_queue_drops_and_counts_instead_of_blocking():
    metrics, exporter = new_metrics(), BlockedExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    processor = BatchSpanProcessor(exporter, max_queue_size=3, schedule_delay_millis=10_000, max_export_batch_size=1)
    provider.add_span_processor(processor)
    spans = ServerSpans(provider, processor, exporter, metrics, capacity=3, batch=1, interval=10)
    start = time.monotonic()
    for _unused in range(5):
        spans.add(None, "GET", "/", 200, time.time_ns(), time.time_ns())
    assert time.monotonic() - start < 0.5
    assert metrics.sample("unitehub_apm_spans_total", outcome="dropped") == 2
    exporter.release.set()
    spans.stop()
    provider.shutdown()
    assert exporter.finished == 3


def test_spans_are_built_off_the_request_path_with_the_request_times(receiver, telemetry_for):
    telemetry, metrics, _unused = telemetry_for(receiver.endpoint, APM_FLUSH_INTERVAL="3600000")
    recorder = Recorder(metrics, telemetry)
    before = time.time_ns()
    timer = recorder.start_http("GET", "/api/version", {})
    time.sleep(0.01)
    recorder.finish_http(timer, 200)
    after = time.time_ns()
    assert receiver.spans() == [] and telemetry.server_spans._pending  # queued, no SDK span yet
    telemetry.flush()
    [span] = receiver.spans()
    start, end = int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])
    assert before <= start and start + 10_000_000 <= end <= after


def test_describe_names_the_innermost_cause():
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as exc:
            raise RuntimeError("pool gave up") from exc
    except RuntimeError as outer:
        assert describe(outer) == "ConnectionRefusedError: [Errno 111] Connection refused"


def test_safe_endpoint_drops_credentials_and_query():
    assert safe_endpoint("https://u:p@collector.example:4318/v1/traces?token=x") == \
        "https://collector.example:4318/v1/traces"
    assert safe_endpoint("http://[::1]:4318/v1/traces") == "http://[::1]:4318/v1/traces"


class CountingIds(IdGenerator):
    """Ids 1, 2, 3, ... so that two providers hand out the same ones."""

    def __init__(self):
        self.last = 0

    def generate_span_id(self) -> int:
        self.last += 1
        return self.last

    def generate_trace_id(self) -> int:
        self.last += 1
        return self.last << 64

    def is_trace_id_random(self) -> bool:
        return True


def test_a_built_span_encodes_exactly_as_the_tracer_would_build_it():
    """ServerSpans skips the tracer's live-span machinery: the OTLP bytes must not change."""
    caller_headers = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                      "tracestate": "vendor=value"}
    requests = [(None, "GET", "/api/version", 200), (caller_headers, "POST", "/api/items", 201),
                (None, "GET", "/", 500), (caller_headers, "GET", "unmatched", 503)]
    resource = HashedResource(Resource.create({"service.name": "unite-hub-test", "unitehub.slot": "blue"}))

    def provider_with(exporter):
        provider = TracerProvider(resource=resource, id_generator=CountingIds(), shutdown_on_exit=False)
        processor = SimpleSpanProcessor(exporter)
        provider.add_span_processor(processor)
        return provider, processor

    by_tracer = InMemorySpanExporter()
    provider, _unused = provider_with(by_tracer)
    tracer = provider.get_tracer(SCOPE, __version__)
    for number, (headers, method, route, status) in enumerate(requests):
        span = tracer.start_span(
            f"{method} {route}", context=propagate.extract(headers) if headers else None, kind=SpanKind.SERVER,
            start_time=1000 + number,
            attributes={"http.request.method": method, "http.route": route, "http.response.status_code": status})
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=2000 + number)

    by_server_spans = InMemorySpanExporter()
    by_server_spans.finished = 0  # ServerSpans counts spans in flight by the exporter's ``finished``
    provider, processor = provider_with(by_server_spans)
    spans = ServerSpans(provider, processor, by_server_spans, new_metrics(), capacity=10, batch=10, interval=3600)
    for number, (headers, method, route, status) in enumerate(requests):
        caller = trace.get_current_span(propagate.extract(headers)).get_span_context() if headers else None
        spans.add(caller, method, route, status, 1000 + number, 2000 + number)
    spans.stop()

    expected = encode_spans(by_tracer.get_finished_spans()).SerializeToString()
    assert encode_spans(by_server_spans.get_finished_spans()).SerializeToString() == expected
    # What the exporter posts: the SDK's encoding a shape at a time, the same bytes.
    assert SpanEncoder().encode(by_server_spans.get_finished_spans()) == expected
    # The span's own flags and trace state are not in the encoding; the caller's reach the span all the same.
    contexts = [span.context for span in by_server_spans.get_finished_spans()]
    assert contexts == [span.context for span in by_tracer.get_finished_spans()]
    assert [context.trace_state.get("vendor") for context in contexts] == [None, "value", None, "value"]


def test_the_span_encoder_gives_the_sdk_encoders_bytes_for_every_batch():
    """Shapes are reused across batches; a span the shapes do not cover sends its batch through the SDK's encoder."""
    resource = HashedResource(Resource.create({"service.name": "unite-hub-test"}))
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer(SCOPE, __version__)
    remote = propagate.extract({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                "tracestate": "vendor=value,other=1"})

    def finished(name, status=200, context=None, event=False, attributes=None):
        span = tracer.start_span(name, context=context, kind=SpanKind.SERVER, attributes=attributes or {
            "http.request.method": "GET", "http.route": name, "http.response.status_code": status})
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR, "server error"))
        if event:
            span.add_event("retry", {"attempt": 2})
        span.end()
        return exporter.get_finished_spans()[-1]

    with tracer.start_as_current_span("local parent") as local:
        child_of_local = finished("/child", context=trace.set_span_in_context(local))
    plain = [finished("/a"), finished("/b", 404), finished("/a", context=remote), finished("/c", 500), child_of_local,
             finished("/a"), finished("/l", attributes={"tags": ["a", "b"]})]  # the SDK keeps the list as a tuple
    other_resource = TracerProvider(resource=Resource.create({"service.name": "other"}), shutdown_on_exit=False)
    other_resource.add_span_processor(SimpleSpanProcessor(exporter))
    other_resource.get_tracer(SCOPE).start_span("elsewhere").end()
    elsewhere = exporter.get_finished_spans()[-1]
    a_list = ReadableSpan("/list", plain[0].context, resource=resource, attributes={"tags": ["a", "b"]},
                          instrumentation_scope=plain[0].instrumentation_scope, start_time=1, end_time=2)
    uncovered = [finished("/e", event=True), elsewhere, a_list]

    encoder = SpanEncoder()
    batches = [plain, plain[::-1], plain[:1], *[[*plain, span] for span in uncovered], [uncovered[0]], []]
    for batch in batches:
        assert encoder.encode(batch) == encode_spans(batch).SerializePartialToString()
    assert len(encoder._shapes) == 5  # /a (root and remote child alike), /b, /c, /child and /l: the fast path ran


def test_a_batch_that_fails_to_encode_fails_counted_and_logged(receiver, telemetry_for):
    telemetry, metrics, log = telemetry_for(receiver.endpoint)
    exporter = telemetry.span_exporter
    bad = ReadableSpan("bad", trace.SpanContext(1, 2, is_remote=False), attributes={"n": 1},
                       start_time="not a time", end_time=2)  # protobuf refuses a str for a uint64
    assert exporter.export([bad]).name == "FAILURE"
    assert exporter.finished == 1 and metrics.sample("unitehub_apm_spans_total", outcome="failed") == 1
    [failed] = events(log)
    assert failed["event"] == "apm_export_failed" and failed["error"].startswith("encoding: TypeError")
