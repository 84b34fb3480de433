"""The hand-written Prometheus exposition, checked with prometheus_client's own parser."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families
from unitehub_app.apm import AppMetrics
from unitehub_app.metrics import CallbackGauge, Counter, Gauge, Histogram, Registry


def parse(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family, suffix: str = "") -> dict:
    return {
        tuple(sorted(s.labels.items())): s.value for s in family.samples if s.name == family.name + suffix
    }


def test_counter_gauge_and_histogram_round_trip():
    registry = Registry()
    counter = registry.register(Counter("demo_requests_total", "Requests.", ("route", "status")))
    gauge = registry.register(Gauge("demo_in_flight", "In flight."))
    histogram = registry.register(Histogram("demo_seconds", "Latency.", ("route",), buckets=(0.1, 1.0)))
    counter.inc(route="/", status="200")
    counter.inc(2, route="/", status="200")
    counter.inc(route="/x", status="404")
    gauge.inc()
    gauge.inc()
    gauge.dec()
    for value in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(value, route="/")

    families = parse(registry.render())
    assert families["demo_requests"].type == "counter"
    assert samples(families["demo_requests"], "_total") == {
        (("route", "/"), ("status", "200")): 3.0,
        (("route", "/x"), ("status", "404")): 1.0,
    }
    assert families["demo_in_flight"].type == "gauge"
    assert samples(families["demo_in_flight"]) == {(): 1.0}
    hist = families["demo_seconds"]
    assert hist.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in hist.samples if s.name == "demo_seconds_bucket"}
    assert buckets == {"0.1": 2.0, "1.0": 3.0, "+Inf": 4.0}  # cumulative, le is inclusive
    assert samples(hist, "_count") == {(("route", "/"),): 4.0}
    assert samples(hist, "_sum")[(("route", "/"),)] == pytest.approx(3.65)


def test_label_values_and_help_are_escaped():
    registry = Registry()
    counter = registry.register(Counter("demo_total", 'Help with a backslash \\ and\na newline.', ("path",)))
    tricky = 'a "quoted" \\ back\nslash'
    counter.inc(path=tricky)
    family = parse(registry.render())["demo"]
    assert family.documentation == "Help with a backslash \\ and\na newline."
    assert family.samples[0].labels == {"path": tricky}


def test_special_values():
    registry = Registry()
    gauge = registry.register(Gauge("demo_value", "A value.", ("kind",)))
    gauge.set(math.inf, kind="inf")
    gauge.set(math.nan, kind="nan")
    gauge.set(0.1, kind="float")
    text = registry.render()
    assert 'demo_value{kind="inf"} +Inf' in text
    assert 'demo_value{kind="nan"} NaN' in text
    values = samples(parse(text)["demo_value"])
    assert values[(("kind", "float"),)] == 0.1


def test_callback_gauge_reads_at_scrape_time():
    state = {"value": 1}
    registry = Registry()
    registry.register(CallbackGauge("demo_state", "State.", ("name",), lambda: [(("x",), state["value"])]))
    assert samples(parse(registry.render())["demo_state"]) == {(("name", "x"),): 1.0}
    state["value"] = 0
    assert samples(parse(registry.render())["demo_state"]) == {(("name", "x"),): 0.0}


def test_misuse_is_refused():
    with pytest.raises(ValueError, match="_total"):
        Counter("demo_requests", "x")
    counter = Counter("demo_total", "x", ("a",))
    with pytest.raises(ValueError, match="only goes up"):
        counter.inc(-1, a="1")
    with pytest.raises(ValueError, match="takes labels"):
        counter.inc(b="1")
    with pytest.raises(ValueError, match="reserved"):
        Histogram("demo_seconds", "x", ("le",))
    registry = Registry()
    registry.register(Gauge("dup", "x"))
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Gauge("dup", "x"))


def test_app_metrics_expose_every_family():
    stats = [{"name": "redis", "state": "OPEN"}, {"name": "database", "state": "CLOSED"}]
    metrics = AppMetrics(
        app="unitehub", slot="blue", version="v1", release_id="r1",
        breakers=lambda: stats, breaker_names=("redis", "database"),
    )
    metrics.http_requests.inc(method="GET", route="/", status="200")
    metrics.http_duration.observe(0.01, method="GET", route="/", status="200")
    families = parse(metrics.render())
    expected = {
        "unitehub_http_request_duration_seconds": "histogram",
        "unitehub_http_requests": "counter",
        "unitehub_http_requests_in_flight": "gauge",
        "unitehub_db_query_duration_seconds": "histogram",
        "unitehub_cache_hits": "counter",
        "unitehub_cache_misses": "counter",
        "unitehub_circuit_breaker_trips": "counter",
        "unitehub_circuit_breaker_state": "gauge",
        "unitehub_ai_request_duration_seconds": "histogram",
        "unitehub_ai_calls": "counter",
        "unitehub_ai_tokens": "counter",
        "unitehub_ai_cost_usd": "counter",
        "unitehub_errors": "counter",
        "unitehub_apm_spans": "counter",
        "unitehub_app_info": "gauge",
        "unitehub_process_start_time_seconds": "gauge",
    }
    assert {name: families[name].type for name in expected} == expected
    state = samples(families["unitehub_circuit_breaker_state"])
    assert state[(("breaker", "redis"), ("state", "OPEN"))] == 1.0
    assert state[(("breaker", "redis"), ("state", "CLOSED"))] == 0.0
    assert state[(("breaker", "database"), ("state", "CLOSED"))] == 1.0
    assert samples(families["unitehub_circuit_breaker_trips"], "_total") == {
        (("breaker", "database"),): 0.0,
        (("breaker", "redis"),): 0.0,
    }
    info = samples(families["unitehub_app_info"])
    assert info == {(("app", "unitehub"), ("release_id", "r1"), ("slot", "blue"), ("version", "v1")): 1.0}
