"""The application object in-process: routing, admin authorisation, APM wiring."""

from __future__ import annotations

import hmac
import io
import json

import pytest
from unitehub_app.app import Application, Request
from unitehub_app.config import load_config
from unitehub_app.logs import JsonLogger, scrub


TOKEN = "s3cret-admin-token-0123456789abcdef"


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
    app, _unused = make_app(APP_ADMIN_TOKEN=TOKEN)
    request = Request(method, path + "?q=1", {"authorization": "Bearer " + TOKEN})
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
        ("Bearer " + TOKEN, True),
        ("bearer " + TOKEN, True),
        ("Bearer " + TOKEN + " ", True),
        ("Bearer " + TOKEN[:-1] + "F", False),
        ("Bearer " + TOKEN[:-1], False),
        ("Basic " + TOKEN, False),
        (TOKEN, False),
        ("", False),
    ],
)
def test_admin_authorisation(header, expected):
    app, _unused = make_app(APP_ADMIN_TOKEN=TOKEN)
    assert app.authorized(Request("POST", "/", {"authorization": header})) is expected


def test_no_token_configured_refuses_even_an_empty_bearer():
    app, _unused = make_app()
    assert app.authorized(Request("POST", "/", {"authorization": "Bearer "})) is False


def answer(app: Application, method: str, path: str, headers: dict) -> tuple[int, dict]:
    """What the server would send for one request: status and JSON body."""
    request = Request(method, path, headers)
    _route, handler, allowed = app.resolve(request)
    if handler is None:
        response = app.method_not_allowed(request, allowed) if allowed else app.not_found(request)
    else:
        response = handler(request)
    return response.status, json.loads(response.body)


ADMIN_REQUESTS = [
    ("GET", "/api/admin/breakers", 200),
    ("HEAD", "/api/admin/breakers", 200),
    ("POST", "/api/admin/breakers/redis/open", 200),
    ("POST", "/api/admin/breakers/redis/reset", 200),
    ("POST", "/api/admin/breakers/nosuch/reset", 404),
    ("GET", "/api/admin/breakers/redis/reset", 405),
    ("GET", "/api/admin", 404),
    ("DELETE", "/api/admin/anything/else", 404),
]


@pytest.mark.parametrize("method, path, authorised_status", ADMIN_REQUESTS)
@pytest.mark.parametrize("header", [None, "Bearer wrong-" + TOKEN, "Bearer " + TOKEN[:-1], "Basic " + TOKEN])
def test_every_admin_route_reads_included_needs_the_token(method, path, authorised_status, header):
    app, _unused = make_app(APP_ADMIN_TOKEN=TOKEN)
    status, body = answer(app, method, path, {"authorization": header} if header else {})
    assert (status, body["error"]) == (401, "unauthorized")
    assert app.breakers["redis"].stats()["state"] == "CLOSED"  # nothing was done
    status, _body = answer(app, method, path, {"authorization": "Bearer " + TOKEN})
    assert status == authorised_status


@pytest.mark.parametrize("method, path, _authorised_status", ADMIN_REQUESTS)
def test_without_a_token_the_admin_api_is_off(method, path, _authorised_status):
    app, _unused = make_app()
    for headers in ({}, {"authorization": "Bearer "}, {"authorization": "Bearer " + TOKEN}):
        status, body = answer(app, method, path, headers)
        assert status == 401 and body["detail"] == "the admin API is off: APP_ADMIN_TOKEN is not set"


def test_the_token_is_compared_in_constant_time(monkeypatch):
    app, _unused = make_app(APP_ADMIN_TOKEN=TOKEN)
    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    assert app.authorized(Request("GET", "/api/admin/breakers", {"authorization": "Bearer guess"})) is False
    assert compared == [(b"guess", TOKEN.encode())]


def test_public_routes_need_no_token():
    app, _unused = make_app(APP_ADMIN_TOKEN=TOKEN)
    for path in ("/", "/api/version", "/api/health/live", "/metrics", "/api/administrator"):
        assert app.resolve(Request("GET", path, {}))[1] != app.unauthorized


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
