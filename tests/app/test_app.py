"""The application object in-process: routing, admin authorisation, APM wiring."""

from __future__ import annotations

import io
import json

import pytest
from unitehub_app.app import Application, Request
from unitehub_app.config import load_config
from unitehub_app.logs import JsonLogger, scrub


def make_app(**env) -> tuple[Application, io.StringIO]:
    log = io.StringIO()
    config = load_config(env)
    return Application(config, JsonLogger(log, secrets=config.secrets())), log


@pytest.mark.parametrize(
    "method, path, route, allowed",
    [
        ("GET", "/", "/", ["GET", "HEAD"]),
        ("HEAD", "/api/version", "/api/version", ["GET", "HEAD"]),
        ("POST", "/api/admin/breakers/redis/reset", "/api/admin/breakers/{name}/{action}", ["POST"]),
        ("POST", "/api/admin/breakers/anything/open", "/api/admin/breakers/{name}/{action}", ["POST"]),
        ("GET", "/api/admin/breakers/redis/reset", "/api/admin/breakers/{name}/{action}", ["POST"]),
        ("POST", "/api/admin/breakers/redis/explode", "unmatched", []),
        ("GET", "/api/debug/sleep", "unmatched", []),
        ("GET", "/favicon.ico", "unmatched", []),
    ],
)
def test_routes_resolve_to_bounded_labels(method, path, route, allowed):
    app, _unused = make_app()
    request = Request(method, path + "?q=1", {})
    label, handler, methods = app.resolve(request)
    assert (label, methods) == (route, allowed)
    assert (handler is not None) == (method in allowed)


def test_debug_routes_only_when_enabled():
    app, _unused = make_app(APP_DEBUG_ROUTES="true")
    assert app.resolve(Request("GET", "/api/debug/sleep?ms=1", {}))[1] is not None
    response = app.debug_sleep(Request("GET", "/api/debug/sleep?ms=abc", {}))
    assert response.status == 400


@pytest.mark.parametrize(
    "header, expected",
    [
        ("Bearer s3cret-admin-token", True),
        ("bearer s3cret-admin-token", True),
        ("Bearer s3cret-admin-token ", True),
        ("Bearer s3cret-admin-tokeN", False),
        ("Bearer s3cret-admin", False),
        ("Basic s3cret-admin-token", False),
        ("s3cret-admin-token", False),
        ("", False),
    ],
)
def test_admin_authorisation(header, expected):
    app, _unused = make_app(APP_ADMIN_TOKEN="s3cret-admin-token")
    assert app.authorized(Request("POST", "/", {"authorization": header})) is expected


def test_no_token_configured_refuses_even_an_empty_bearer():
    app, _unused = make_app()
    assert app.authorized(Request("POST", "/", {"authorization": "Bearer "})) is False


def test_the_index_page_degrades_without_dependencies():
    app, _unused = make_app()
    response = app.index(Request("GET", "/", {}))
    body = json.loads(response.body)
    assert response.status == 200
    assert body["hits"] is None and body["cache"] == "degraded"
    assert body["database"] == {"status": "not configured"}


def test_apm_exports_with_the_opentelemetry_and_datadog_providers_only():
    app, log = make_app(ENABLE_APM="true", APM_PROVIDER="custom")
    assert app.telemetry is None and app.recorder.telemetry is None
    [event] = [json.loads(line) for line in log.getvalue().splitlines()]
    assert event["event"] == "apm_local_only" and event["provider"] == "custom"

    for provider in ("opentelemetry", "datadog"):
        app, _unused = make_app(ENABLE_APM="true", APM_PROVIDER=provider, DD_SERVICE="dd-shop",
                                APM_SERVICE_NAME="shop", OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318")
        try:
            telemetry = app.recorder.telemetry
            assert telemetry is app.telemetry is not None
            assert telemetry.span_exporter.url == "http://127.0.0.1:4318/v1/traces"
            assert telemetry.metric_exporter.url == "http://127.0.0.1:4318/v1/metrics"
            service = telemetry.tracer_provider.resource.attributes["service.name"]
            assert service == ("dd-shop" if provider == "datadog" else "shop")
        finally:
            app.close()

    app, _unused = make_app(APM_PROVIDER="opentelemetry")
    assert app.telemetry is None  # ENABLE_APM defaults to false


def test_breaker_changes_are_logged_and_counted():
    app, log = make_app(BREAKER_FAILURE_THRESHOLD="1")
    breaker = app.breakers["redis"]
    breaker.call_with_fallback(lambda: 1 / 0, lambda exc: None)
    breaker.reset()
    events = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [(e["event"], e["new_state"], e["reason"]) for e in events] == [
        ("breaker_state", "OPEN", "failure_threshold"),
        ("breaker_state", "CLOSED", "manual_reset"),
    ]
    assert app.metrics.sample("unitehub_circuit_breaker_trips_total", breaker="redis") == 1


def test_the_logger_scrubs_secrets_even_inside_json_escapes():
    out = io.StringIO()
    logger = JsonLogger(out, secrets=['pa"ss\\word', "plain-secret"])
    logger.info("x", detail='value pa"ss\\word and plain-secret')
    line = out.getvalue()
    assert "plain-secret" not in line and "ss\\\\word" not in line
    assert json.loads(line)["detail"] == "value *** and ***"
    assert scrub("a-b-c", ["b", "a-b"]) == "***-c"  # longest first
