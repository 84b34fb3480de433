"""Every metric the app serves on ``/metrics``, kept by prometheus_client.

Each :class:`AppMetrics` has its own registry, so two apps (or two tests) in one
process never share a series. The page is the Prometheus text format 0.0.4.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from .breaker import STATES

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# The buckets the app has always exposed (seconds); dashboards rely on their ``le`` values.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
AI_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
CACHE_MISS_REASONS = ("absent", "error", "breaker_open", "unavailable")
SPAN_OUTCOMES = ("exported", "dropped", "failed")

# No ``*_created`` series: they double the page and no dashboard here reads them.
disable_created_metrics()


class _BreakerStates:
    """``unitehub_circuit_breaker_state``: read from the breakers at scrape time."""

    def __init__(self, breakers: Callable[[], Iterable[dict]]):
        self._breakers = breakers

    def collect(self):
        family = GaugeMetricFamily(
            "unitehub_circuit_breaker_state",
            "Circuit breaker state: 1 for the current state, 0 for the others.",
            labels=("breaker", "state"),
        )
        for stats in self._breakers():
            for state in STATES:
                family.add_metric((stats["name"], state), 1 if stats["state"] == state else 0)
        yield family


class AppMetrics:
    """Every metric of the app, in one registry."""

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
        r = self.registry = CollectorRegistry()
        req = ("method", "route", "status")
        self.http_duration = Histogram(
            "unitehub_http_request_duration_seconds", "HTTP request latency by route and status.", req,
            buckets=HTTP_BUCKETS, registry=r,
        )
        self.http_requests = Counter(
            "unitehub_http_requests_total", "HTTP requests served, by route and status.", req, registry=r
        )
        self.http_in_flight = Gauge(
            "unitehub_http_requests_in_flight", "HTTP requests being served right now.", registry=r
        )
        self.db_duration = Histogram(
            "unitehub_db_query_duration_seconds", "Database query latency by operation, table and outcome.",
            ("operation", "table", "outcome"), buckets=HTTP_BUCKETS, registry=r,
        )
        self.cache_hits = Counter("unitehub_cache_hits_total", "Cache lookups that found a value.", registry=r)
        self.cache_misses = Counter(
            "unitehub_cache_misses_total",
            "Cache lookups without a value, by reason (absent, error, breaker_open, unavailable).",
            ("reason",), registry=r,
        )
        for reason in CACHE_MISS_REASONS:
            self.cache_misses.labels(reason=reason)
        self.breaker_trips = Counter(
            "unitehub_circuit_breaker_trips_total", "Times a circuit breaker opened on failures.", ("breaker",),
            registry=r,
        )
        for name in breaker_names:
            self.breaker_trips.labels(breaker=name)
        r.register(_BreakerStates(breakers))
        ai = ("model", "operation", "outcome")
        self.ai_duration = Histogram(
            "unitehub_ai_request_duration_seconds", "AI call latency by model, operation and outcome.", ai,
            buckets=AI_BUCKETS, registry=r,
        )
        self.ai_calls = Counter("unitehub_ai_calls_total", "AI calls by model, operation and outcome.", ai, registry=r)
        self.ai_tokens = Counter(
            "unitehub_ai_tokens_total", "AI tokens used, by model and direction (input, output).",
            ("model", "direction"), registry=r,
        )
        self.ai_cost = Counter(
            "unitehub_ai_cost_usd_total", "Estimated AI cost in US dollars, by model.", ("model",), registry=r
        )
        self.errors = Counter("unitehub_errors_total", "Errors by type.", ("type",), registry=r)
        self.apm_spans = Counter(
            "unitehub_apm_spans_total",
            "Sampled spans by outcome (exported, dropped: queue full, failed: export error).",
            ("outcome",), registry=r,
        )
        for outcome in SPAN_OUTCOMES:
            self.apm_spans.labels(outcome=outcome)
        self.info = Gauge(
            "unitehub_app_info", "Always 1; labels describe the running build.",
            ("app", "slot", "version", "release_id"), registry=r,
        )
        self.info.labels(app=app, slot=slot, version=version, release_id=release_id).set(1)
        self.start_time = Gauge(
            "unitehub_process_start_time_seconds", "Start time of the process since the Unix epoch.", registry=r
        )
        self.start_time.set(time.time())

    def render(self) -> bytes:
        """The Prometheus text page."""
        return generate_latest(self.registry)

    def sample(self, name: str, **labels: str) -> float:
        """The current value of one sample (0 when the series does not exist yet)."""
        return self.registry.get_sample_value(name, labels) or 0.0
