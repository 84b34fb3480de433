"""The app's metrics page, made by prometheus_client and read back with its own parser."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from unitehub_app.metrics import CONTENT_TYPE, AppMetrics


def parse(page: bytes) -> dict:
    return {family.name: family for family in text_string_to_metric_families(page.decode())}


def samples(family, suffix: str = "") -> dict:
    return {
        tuple(sorted(s.labels.items())): s.value for s in family.samples if s.name == family.name + suffix
    }


def new_metrics(stats=()) -> AppMetrics:
    return AppMetrics(
        app="unitehub", slot="blue", version="v1", release_id="r1",
        breakers=lambda: stats, breaker_names=("redis", "database"),
    )


def test_the_page_is_text_format_0_0_4():
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    assert "_created" not in new_metrics().render().decode()  # no creation-time series


def test_every_family_keeps_its_name_and_type():
    stats = [{"name": "redis", "state": "OPEN"}, {"name": "database", "state": "CLOSED"}]
    metrics = new_metrics(stats)
    metrics.http_requests.labels("GET", "/", "200").inc()
    metrics.http_duration.labels("GET", "/", "200").observe(0.01)
    metrics.db_duration.labels("SELECT", "t", "ok").observe(0.002)
    metrics.ai_calls.labels("m", "op", "ok").inc()
    metrics.ai_duration.labels("m", "op", "ok").observe(1.0)
    metrics.ai_tokens.labels(model="m", direction="input").inc(3)
    metrics.ai_cost.labels(model="m").inc(0.5)
    metrics.errors.labels(type="x").inc()
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
    # Series that exist before anything happened, so a rate() has a zero to start from.
    assert samples(families["unitehub_circuit_breaker_trips"], "_total") == {
        (("breaker", "database"),): 0.0,
        (("breaker", "redis"),): 0.0,
    }
    assert set(samples(families["unitehub_cache_misses"], "_total")) == {
        (("reason", r),) for r in ("absent", "error", "breaker_open", "unavailable")
    }
    assert set(samples(families["unitehub_apm_spans"], "_total")) == {
        (("outcome", o),) for o in ("exported", "dropped", "failed")
    }
    info = samples(families["unitehub_app_info"])
    assert info == {(("app", "unitehub"), ("release_id", "r1"), ("slot", "blue"), ("version", "v1")): 1.0}


def test_histogram_buckets_are_the_apps_own_and_cumulative():
    metrics = new_metrics()
    for value in (0.004, 0.1, 0.3, 20.0):
        metrics.http_duration.labels("GET", "/", "200").observe(value)
    hist = parse(metrics.render())["unitehub_http_request_duration_seconds"]
    buckets = {s.labels["le"]: s.value for s in hist.samples if s.name.endswith("_bucket")}
    assert buckets == {"0.005": 1, "0.01": 1, "0.025": 1, "0.05": 1, "0.1": 2, "0.25": 2, "0.5": 3,
                       "1.0": 3, "2.5": 3, "5.0": 3, "10.0": 3, "+Inf": 4}
    assert samples(hist, "_sum")[(("method", "GET"), ("route", "/"), ("status", "200"))] == pytest.approx(20.404)


def test_breaker_states_are_read_at_scrape_time():
    stats = [{"name": "redis", "state": "CLOSED"}]
    metrics = new_metrics(stats)
    assert samples(parse(metrics.render())["unitehub_circuit_breaker_state"])[
        (("breaker", "redis"), ("state", "CLOSED"))] == 1.0
    stats[0] = {"name": "redis", "state": "HALF_OPEN"}
    state = samples(parse(metrics.render())["unitehub_circuit_breaker_state"])
    assert state[(("breaker", "redis"), ("state", "HALF_OPEN"))] == 1.0
    assert state[(("breaker", "redis"), ("state", "CLOSED"))] == 0.0


def test_label_values_are_escaped():
    metrics = new_metrics()
    tricky = 'a "quoted" \\ back\nslash'
    metrics.errors.labels(type=tricky).inc()
    [sample] = [s for s in parse(metrics.render())["unitehub_errors"].samples if s.labels["type"] == tricky]
    assert sample.value == 1.0


def test_two_apps_never_share_a_series():
    first, second = new_metrics(), new_metrics()
    first.cache_hits.inc()
    assert (first.sample("unitehub_cache_hits_total"), second.sample("unitehub_cache_hits_total")) == (1.0, 0.0)
    assert first.sample("unitehub_errors_total", type="never") == 0.0
