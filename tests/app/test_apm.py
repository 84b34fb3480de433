"""The APM recorder and the OTLP/HTTP JSON exporter, against a collector on loopback."""

from __future__ import annotations

import base64
import io
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families
from unitehub_app.apm import AppMetrics, OtlpHttpExporter, Recorder, safe_endpoint
from unitehub_app.logs import JsonLogger

from .conftest import Collector, free_port, wait_until


def new_metrics() -> AppMetrics:
    return AppMetrics(app="unitehub", slot="blue", version="v1", release_id="v1")


@pytest.fixture
def collector():
    c = Collector()
    yield c
    c.close()


def attrs(items: list[dict]) -> dict:
    return {a["key"]: next(iter(a["value"].values())) for a in items}


class CapturingExporter:
    def __init__(self):
        self.spans = []

    def submit(self, span):
        self.spans.append(span)
        return True


def test_recorder_times_requests_and_builds_server_spans():
    metrics = new_metrics()
    exporter = CapturingExporter()
    recorder = Recorder(metrics, exporter, sample_rate=1.0)
    span = recorder.start_http("GET")
    assert metrics.http_in_flight.value() == 1
    duration = recorder.finish_http(span, "/api/version", 200)
    assert metrics.http_in_flight.value() == 0
    assert metrics.http_requests.value(method="GET", route="/api/version", status="200") == 1
    assert metrics.http_duration.count(method="GET", route="/api/version", status="200") == 1
    [exported] = exporter.spans
    assert exported["name"] == "GET /api/version" and exported["kind"] == 2
    assert len(exported["traceId"]) == 32 and len(exported["spanId"]) == 16
    assert int(exported["endTimeUnixNano"]) - int(exported["startTimeUnixNano"]) == int(duration * 1e9)
    assert attrs(exported["attributes"]) == {
        "http.request.method": "GET", "http.route": "/api/version", "http.response.status_code": "200",
    }
    assert exported["status"] == {"code": 0}
    span = recorder.start_http("BREW")
    recorder.finish_http(span, "unmatched", 503)
    assert exporter.spans[-1]["status"] == {"code": 2}
    assert metrics.http_requests.value(method="OTHER", route="unmatched", status="503") == 1
    assert metrics.errors.value(type="http_5xx") == 1


@pytest.mark.parametrize("rate, draws, expected", [(0.0, [0.0, 0.5], 0), (1.0, [0.999], 1), (0.5, [0.2, 0.7, 0.49], 2)])
def test_sampling_follows_the_sample_rate(rate, draws, expected):
    exporter = CapturingExporter()
    values = iter(draws)
    recorder = Recorder(new_metrics(), exporter, sample_rate=rate, rng=lambda: next(values))
    for _unused in draws:
        recorder.finish_http(recorder.start_http("GET"), "/", 200)
    assert len(exporter.spans) == expected


def test_db_and_ai_tracking():
    metrics = new_metrics()
    recorder = Recorder(metrics)
    assert recorder.track_db_query("SELECT", "contacts", lambda: [1]) == [1]
    with pytest.raises(ValueError):
        recorder.track_db_query("INSERT", "contacts", lambda: (_unused for _unused in ()).throw(ValueError("x")))
    assert metrics.db_duration.count(operation="SELECT", table="contacts", outcome="ok") == 1
    assert metrics.db_duration.count(operation="INSERT", table="contacts", outcome="error") == 1
    assert metrics.errors.value(type="database") == 1

    result = recorder.track_ai_call("claude-sonnet-4-5", "content-gen", lambda: ("text", 1000, 2000))
    assert result == "text"
    assert metrics.ai_calls.value(model="claude-sonnet-4-5", operation="content-gen", outcome="ok") == 1
    assert metrics.ai_tokens.value(model="claude-sonnet-4-5", direction="input") == 1000
    assert metrics.ai_tokens.value(model="claude-sonnet-4-5", direction="output") == 2000
    assert metrics.ai_cost.value(model="claude-sonnet-4-5") == pytest.approx((1000 * 3 + 2000 * 15) / 1e6)
    with pytest.raises(TimeoutError):
        recorder.track_ai_call("claude-sonnet-4-5", "content-gen", lambda: (_unused for _unused in ()).throw(TimeoutError()))
    assert metrics.ai_calls.value(model="claude-sonnet-4-5", operation="content-gen", outcome="error") == 1
    families = {f.name: f for f in text_string_to_metric_families(metrics.render())}
    assert families["unitehub_ai_calls"].samples


def make_exporter(endpoint: str, log: io.StringIO, metrics: AppMetrics, **kwargs) -> OtlpHttpExporter:
    return OtlpHttpExporter(
        endpoint, {"service.name": "unite-hub", "service.version": "v1"}, 0.05, JsonLogger(log), metrics,
        timeout=2.0, **kwargs,
    )


def test_exporter_posts_otlp_json_to_v1_traces(collector):
    metrics = new_metrics()
    exporter = make_exporter(f"http://127.0.0.1:{collector.port}/", io.StringIO(), metrics)
    recorder = Recorder(metrics, exporter)
    for route in ("/", "/api/version"):
        recorder.finish_http(recorder.start_http("GET"), route, 200)
    assert exporter.flush() == 2
    [(path, content_type, body, authorization)] = collector.received
    assert path == "/v1/traces"
    assert authorization is None
    assert content_type == "application/json"
    resource = body["resourceSpans"][0]["resource"]
    assert attrs(resource["attributes"])["service.name"] == "unite-hub"
    assert body["resourceSpans"][0]["scopeSpans"][0]["scope"]["name"] == "unitehub_app"
    assert [attrs(s["attributes"])["http.route"] for s in collector.spans()] == ["/", "/api/version"]
    assert metrics.apm_spans.value(outcome="exported") == 2


def test_a_full_queue_drops_spans_instead_of_blocking():
    metrics = new_metrics()
    exporter = make_exporter("http://127.0.0.1:9", io.StringIO(), metrics, queue_size=3)
    accepted = [exporter.submit({"spanId": str(i)}) for i in range(5)]
    assert accepted == [True, True, True, False, False]
    assert metrics.apm_spans.value(outcome="dropped") == 2


def test_a_collector_outage_is_logged_once_and_its_end_once():
    metrics = new_metrics()
    log = io.StringIO()
    port = free_port()  # nothing listens here yet
    exporter = make_exporter(f"http://user:pw-in-url@127.0.0.1:{port}", log, metrics, batch_size=1)
    for _unused in range(3):
        for i in range(2):
            exporter.submit({"spanId": str(i)})
        exporter.flush()
    events = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["apm_export_failed"]
    assert events[0]["endpoint"] == f"http://127.0.0.1:{port}/v1/traces"
    assert "pw-in-url" not in log.getvalue()
    assert metrics.apm_spans.value(outcome="failed") == 3  # one batch per flush; the rest waits
    collector = Collector(port)
    try:
        exporter.flush()
        exporter.submit({"spanId": "x"})
        exporter.flush()
    finally:
        collector.close()
    events = [json.loads(line)["event"] for line in log.getvalue().splitlines()]
    assert events == ["apm_export_failed", "apm_export_recovered"]
    assert len(collector.spans()) == 4
    # credentials in the endpoint URL travel as a Basic header, never in the logged URL
    assert {auth for *_unused, auth in collector.received} == {"Basic " + base64.b64encode(b"user:pw-in-url").decode()}


def test_the_background_thread_flushes_every_interval_and_on_stop(collector):
    metrics = new_metrics()
    exporter = make_exporter(f"http://127.0.0.1:{collector.port}", io.StringIO(), metrics)
    exporter.start()
    try:
        exporter.submit({"spanId": "a"})
        wait_until(lambda: len(collector.spans()) == 1, 5, what="the periodic flush")
        exporter.submit({"spanId": "b"})
    finally:
        exporter.stop(timeout=5)
    assert [s["spanId"] for s in collector.spans()] == ["a", "b"]


def test_safe_endpoint_drops_credentials_and_query():
    assert safe_endpoint("https://u:p@collector.example:4318/v1/traces?token=x") == "https://collector.example:4318/v1/traces"
    assert safe_endpoint("http://[::1]:4318/v1/traces") == "http://[::1]:4318/v1/traces"
