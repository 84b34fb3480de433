"""The app as a real process on a loopback port: HTTP contract, dependencies, faults, shutdown."""

from __future__ import annotations

import http.client
import signal
import socket
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import ADMIN_TOKEN, APP_DIR, Collector, RedisServer, free_port, http_request, wait_until

SLOT, VERSION = "blue", "v1.2.3-test"
HEALTH_KEYS = {
    "database:responseTime", "redis:responseTime", "ai:config", "filesystem:writable",
    "environment:variables", "circuitBreaker:redis", "circuitBreaker:database",
}


def assert_app_headers(result):
    assert result.headers.get("x-app-slot") == SLOT, result.headers
    assert result.headers.get("x-app-version") == VERSION, result.headers


def metric_samples(text: str) -> dict:
    """{(sample name, sorted label items): value} for every sample."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def admin_breakers(app) -> dict:
    """The app's breakers, read through the admin API with the token."""
    result = app.get("/api/admin/breakers", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert result.status == 200, result.text
    return result.json()["breakers"]


def closed_port_urls(password: str = "pw") -> dict:
    port = free_port()
    return {
        "DATABASE_URL": f"postgresql://app:{password}@127.0.0.1:{port}/app",
        "REDIS_URL": f"redis://:{password}@127.0.0.1:{port}/0",
    }


# -- HTTP contract --------------------------------------------------------------


def test_every_response_names_the_slot_and_version(start_app):
    app = start_app({"APP_DEBUG_ROUTES": "0"})
    for path, method, status in [
        ("/", "GET", 200),
        ("/api/version", "GET", 200),
        ("/api/health/live", "GET", 200),
        ("/api/health/system", "GET", 503),  # no DATABASE_URL / REDIS_URL
        ("/api/admin/breakers", "GET", 401),  # no token: the admin API is off
        ("/metrics", "GET", 200),
        ("/no/such/page", "GET", 404),
        ("/api/version", "POST", 405),
        ("/api/admin/breakers/redis/reset", "POST", 401),
        ("/api/debug/sleep", "GET", 404),  # debug routes are off
    ]:
        result = http_request(app.port, path, method=method)
        assert result.status == status, (path, method, result.status)
        assert_app_headers(result)
    assert http_request(app.port, "/api/version", method="POST").headers["allow"] == "GET, HEAD"

    # A malformed request line is answered by the HTTP layer itself, still with the headers.
    raw = raw_exchange(app.port, b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.startswith("HTTP/1.1 400") and "\r\nconnection: close\r\n" in raw.lower()
    assert_raw_app_headers(raw)

    # A chunked body is read (and dropped) like any other; the connection stays usable.
    with socket.create_connection(("127.0.0.1", app.port), timeout=5) as sock:
        sock.sendall(b"POST /api/admin/breakers/redis/reset HTTP/1.1\r\nHost: x\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                     b"GET /api/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = read_until_closed(sock)
    assert raw.startswith("HTTP/1.1 401") and raw.count("HTTP/1.1 200") == 1
    assert_raw_app_headers(raw)


def raw_exchange(port: int, data: bytes) -> str:
    """Send raw bytes on a new connection; everything the app answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        return read_until_closed(sock)


def read_until_closed(sock: socket.socket) -> str:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks).decode("latin-1")


def assert_raw_app_headers(raw: str):
    head = raw.split("\r\n\r\n", 1)[0].lower()  # header names are case-insensitive
    assert f"\r\nx-app-slot: {SLOT}\r\n" in head and f"\r\nx-app-version: {VERSION}\r\n" in head, raw


def test_version_live_and_head(start_app):
    app = start_app({"RELEASE_ID": "rel-42"})
    version = app.get("/api/version")
    assert version.headers["content-type"] == "application/json"
    assert version.json() == {"version": VERSION, "slot": SLOT, "app": "unitehub", "releaseId": "rel-42"}
    live = app.get("/api/health/live")
    assert live.status == 200 and live.json()["status"] == "pass"
    head = http_request(app.port, "/api/version", method="HEAD")
    assert head.status == 200 and head.body == b""
    assert int(head.headers["content-length"]) == len(version.body)


def test_keep_alive_serves_several_requests_on_one_connection(start_app):
    app = start_app()
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=5)
    try:
        for _unused in range(3):
            conn.request("GET", "/api/version")
            response = conn.getresponse()
            response.read()
            assert response.status == 200 and response.getheader("Connection") is None
        conn.request("POST", "/api/admin/breakers/redis/reset", body=b'{"x": 1}',
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        assert response.status == 401  # the body was consumed: the connection is still usable
        conn.request("GET", "/api/version")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_one_json_log_line_per_request_without_secrets(start_app):
    secrets = {"APP_ADMIN_TOKEN": ADMIN_TOKEN, **closed_port_urls("db-and-redis-pw"),
               "ANTHROPIC_API_KEY": "sk-ant-never-logged", "DD_API_KEY": "dd-never-logged"}
    app = start_app(secrets)
    app.get("/api/version?token=abc")
    app.get("/missing")
    app.post("/api/admin/breakers/redis/open", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    app.post("/api/admin/breakers/redis/open", headers={"Authorization": "Bearer wrong-token"})
    app.get("/api/health/system")
    app.stop()
    requests = [r for r in app.events("request") if r["path"] != "/api/health/live"]
    assert [(r["method"], r["path"], r["status"]) for r in requests] == [
        ("GET", "/api/version", 200),  # the query string is not logged
        ("GET", "/missing", 404),
        ("POST", "/api/admin/breakers/redis/open", 200),
        ("POST", "/api/admin/breakers/redis/open", 401),
        ("GET", "/api/health/system", 503),
    ]
    for record in requests:
        assert record["slot"] == SLOT and record["version"] == VERSION
        assert isinstance(record["duration_ms"], float) and record["duration_ms"] >= 0
        assert record["level"] == "info" and record["ts"].endswith("Z")
    output = app.stdout() + app.stderr()
    for value in ("db-and-redis-pw", ADMIN_TOKEN, "sk-ant-never-logged", "dd-never-logged", "wrong-token"):
        assert value not in output
    assert app.events("breaker_admin") == [
        {**app.events("breaker_admin")[0], "breaker": "redis", "action": "open"}
    ]


# -- admin ------------------------------------------------------------------------


def test_breaker_admin_needs_the_bearer_token(start_app):
    app = start_app({"APP_ADMIN_TOKEN": ADMIN_TOKEN, "ANTHROPIC_API_KEY": "k", **closed_port_urls()})
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": ADMIN_TOKEN},
                    {"Authorization": f"Basic {ADMIN_TOKEN}"}):
        result = app.post("/api/admin/breakers/redis/open", headers=headers)
        assert result.status == 401 and result.headers["www-authenticate"] == "Bearer"
        listing = app.get("/api/admin/breakers", headers=headers)
        assert listing.status == 401 and listing.json() == {
            "error": "unauthorized", "detail": "send Authorization: Bearer <APP_ADMIN_TOKEN>"}
    assert app.get("/api/admin/breakers", headers=auth).json()["breakers"]["redis"]["state"] == "CLOSED"

    opened = app.post("/api/admin/breakers/redis/open", headers=auth)
    assert opened.status == 200 and opened.json()["breaker"]["state"] == "OPEN"
    listing = app.get("/api/admin/breakers", headers=auth).json()
    assert (listing["slot"], listing["version"]) == (SLOT, VERSION)
    redis = listing["breakers"]["redis"]
    for key in ("name", "state", "failures", "successes", "trips", "opened_at", "last_failure_at",
                "failure_threshold", "reset_timeout", "success_threshold"):
        assert key in redis
    assert (redis["state"], redis["forced"], redis["failure_threshold"], redis["reset_timeout"],
            redis["success_threshold"]) == ("OPEN", True, 5, 60.0, 2)
    health = app.get("/api/health/system").json()
    assert health["checks"]["circuitBreaker:redis"][0]["observedValue"] == "OPEN"

    assert app.post("/api/admin/breakers/nosuch/reset", headers=auth).status == 404
    reset = app.post("/api/admin/breakers/redis/reset", headers=auth)
    assert reset.status == 200 and reset.json()["breaker"]["state"] == "CLOSED"


def test_without_an_admin_token_admin_actions_are_refused(start_app):
    app = start_app({"APP_ADMIN_TOKEN": None})
    result = app.post("/api/admin/breakers/redis/reset", headers={"Authorization": "Bearer "})
    assert result.status == 401
    assert "APP_ADMIN_TOKEN is not set" in result.json()["detail"]


# -- health with real and hostile dependencies -------------------------------------


def test_health_passes_with_real_redis_and_postgres(start_app, redis_server, postgres_server):
    app = start_app(
        {
            "DATABASE_URL": postgres_server.url(password="pg-pass-in-url"),
            "REDIS_URL": redis_server.url,
            "ANTHROPIC_API_KEY": "sk-ant-health-secret",
            "ENABLE_DB_POOLER": "true",
        }
    )
    result = app.get("/api/health/system")
    assert result.status == 200, result.text
    assert result.headers["content-type"] == "application/health+json"
    assert_app_headers(result)
    body = result.json()
    assert body["status"] == "pass"
    assert (body["version"], body["releaseId"]) == (VERSION, VERSION)
    assert set(body["checks"]) == HEALTH_KEYS
    for key, entries in body["checks"].items():
        [entry] = entries
        assert entry["status"] == "pass", (key, entry)
        assert {"status", "observedValue", "observedUnit", "time"} <= set(entry)
    assert body["checks"]["database:responseTime"][0]["observedUnit"] == "ms"
    assert body["checks"]["database:responseTime"][0]["pooler"] is True
    assert body["checks"]["ai:config"][0]["observedValue"] == ["ANTHROPIC_API_KEY"]
    assert "pg-pass-in-url" not in result.text and "sk-ant-health-secret" not in result.text

    page = app.get("/").json()
    assert page["database"]["status"] == "ok" and page["database"]["server_version"]
    assert page["hits"] == 1 and page["cache"] == "ok"
    second = app.get("/").json()
    assert second["hits"] == 2 and second["database"]["source"] == "cache"


def test_stopping_redis_degrades_to_206_and_the_page_keeps_serving(start_app, postgres_server, tmp_path):
    redis = RedisServer(str(tmp_path)).start()
    try:
        app = start_app(
            {
                "DATABASE_URL": postgres_server.url(),
                "REDIS_URL": redis.url,
                "ANTHROPIC_API_KEY": "k",
                "BREAKER_FAILURE_THRESHOLD": "2",
                "BREAKER_RESET_TIMEOUT": "1",
                "APP_ADMIN_TOKEN": ADMIN_TOKEN,
            }
        )
        assert app.get("/").json()["hits"] == 1
        redis.stop()

        pages = [app.get("/") for _unused in range(3)]
        assert [p.status for p in pages] == [200, 200, 200]
        assert all(p.json()["hits"] is None and p.json()["cache"] == "degraded" for p in pages)
        assert all(p.json()["database"]["status"] == "ok" for p in pages)
        breaker = admin_breakers(app)["redis"]
        assert breaker["state"] == "OPEN" and breaker["trips"] == 1

        health = app.get("/api/health/system")
        assert health.status == 206
        body = health.json()
        assert body["status"] == "warn"
        assert body["checks"]["redis:responseTime"][0]["status"] == "fail"
        assert body["checks"]["circuitBreaker:redis"][0]["status"] == "warn"
        assert body["checks"]["database:responseTime"][0]["status"] == "pass"

        samples = metric_samples(app.get("/metrics").text)
        assert samples[("unitehub_circuit_breaker_trips_total", (("breaker", "redis"),))] == 1
        assert samples[("unitehub_circuit_breaker_state", (("breaker", "redis"), ("state", "OPEN")))] == 1
        assert samples[("unitehub_cache_misses_total", (("reason", "breaker_open"),))] >= 1

        redis.start()  # recovery: HALF_OPEN after 1 s, closed after 2 good calls
        time.sleep(1.05)
        app.get("/")
        app.get("/")
        wait_until(lambda: admin_breakers(app)["redis"]["state"] == "CLOSED", 5, what="the redis breaker to close")
        assert app.get("/api/health/system").status == 200
    finally:
        redis.stop()


def test_hanging_dependencies_still_answer_within_one_second(start_app, hanging_server):
    url_db = f"postgresql://app:hang-secret@127.0.0.1:{hanging_server.port}/app"
    url_redis = f"redis://:hang-secret@127.0.0.1:{hanging_server.port}/0"
    app = start_app({"DATABASE_URL": url_db, "REDIS_URL": url_redis, "ANTHROPIC_API_KEY": "k"})
    for _unused in range(3):
        result = app.get("/api/health/system", timeout=5)
        assert result.elapsed < 1.0, result.elapsed
        assert result.status == 503
        body = result.json()
        assert body["checks"]["database:responseTime"][0]["output"] == "no answer within 800 ms"
        assert body["checks"]["redis:responseTime"][0]["output"] == "no answer within 800 ms"
        assert body["checks"]["filesystem:writable"][0]["status"] == "pass"
        assert "hang-secret" not in result.text
    assert len(hanging_server.accepted) >= 2  # the probes really connected


def test_hanging_dependencies_trip_the_breakers_and_the_page_gets_fast(start_app, hanging_server):
    app = start_app(
        {
            "DATABASE_URL": f"postgresql://app:pw@127.0.0.1:{hanging_server.port}/app",
            "REDIS_URL": f"redis://127.0.0.1:{hanging_server.port}/0",
            "HEALTH_CHECK_TIMEOUT_MS": "200",
            "BREAKER_FAILURE_THRESHOLD": "2",
            "APP_ADMIN_TOKEN": ADMIN_TOKEN,
        }
    )
    first = app.get("/")
    assert first.status == 200
    assert first.json()["database"] == {"status": "unavailable", "reason": "query failed"}
    app.get("/")
    breakers = admin_breakers(app)
    assert breakers["redis"]["state"] == "OPEN" and breakers["database"]["state"] == "OPEN"
    fast = app.get("/")
    assert fast.status == 200 and fast.elapsed < 0.2  # a real attempt costs 2 x 200 ms
    assert fast.json()["database"] == {"status": "unavailable", "reason": "circuit breaker open"}


def test_closed_ports_fail_fast(start_app):
    app = start_app(closed_port_urls())
    result = app.get("/api/health/system")
    assert result.status == 503 and result.elapsed < 1.0
    body = result.json()
    assert body["checks"]["database:responseTime"][0]["status"] == "fail"
    assert body["checks"]["redis:responseTime"][0]["status"] == "fail"
    assert body["checks"]["environment:variables"][0]["status"] == "pass"


def test_the_fault_hook_fails_health(start_app, redis_server, postgres_server):
    app = start_app({"APP_FAULT_HEALTH": "fail", "DATABASE_URL": postgres_server.url(),
                     "REDIS_URL": redis_server.url, "ANTHROPIC_API_KEY": "k"})
    result = app.get("/api/health/system")
    assert result.status == 503
    body = result.json()
    assert body["checks"]["fault:injected"][0]["status"] == "fail"
    assert [k for k, v in body["checks"].items() if v[0]["status"] != "pass"] == ["fault:injected"]
    assert app.get("/api/health/live").status == 200


# -- metrics -----------------------------------------------------------------------


def test_metrics_move_with_traffic(start_app, redis_server):
    app = start_app({"REDIS_URL": redis_server.url})
    for _unused in range(3):
        app.get("/api/version")
    app.get("/nowhere")
    app.get("/nowhere/else")
    app.get("/")
    app.get("/")
    result = app.get("/metrics")
    assert result.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = metric_samples(result.text)
    version = (("method", "GET"), ("route", "/api/version"), ("status", "200"))
    assert samples[("unitehub_http_requests_total", version)] == 3
    assert samples[("unitehub_http_request_duration_seconds_count", version)] == 3
    assert samples[("unitehub_http_request_duration_seconds_bucket", (("le", "+Inf"),) + version)] == 3
    unmatched = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
    assert samples[("unitehub_http_requests_total", unmatched)] == 2  # one series for every unknown path
    assert samples[("unitehub_http_requests_in_flight", ())] == 1  # this scrape
    # "/" looked up the cached database facts twice: no database, so two misses, no hits
    assert samples[("unitehub_cache_misses_total", (("reason", "absent"),))] == 2
    assert samples[("unitehub_cache_hits_total", ())] == 0
    assert samples[("unitehub_app_info", (("app", "unitehub"), ("release_id", VERSION), ("slot", SLOT),
                                          ("version", VERSION)))] == 1
    again = metric_samples(app.get("/metrics").text)
    metrics_route = (("method", "GET"), ("route", "/metrics"), ("status", "200"))
    assert again[("unitehub_http_requests_total", metrics_route)] == 1


def test_database_queries_and_cache_hits_are_measured(start_app, redis_server, postgres_server):
    app = start_app({"REDIS_URL": redis_server.url, "DATABASE_URL": postgres_server.url()})
    for _unused in range(3):
        assert app.get("/").status == 200
    samples = metric_samples(app.get("/metrics").text)
    query = (("operation", "SELECT"), ("outcome", "ok"), ("table", "pg_settings"))
    assert samples[("unitehub_db_query_duration_seconds_count", query)] == 1  # then served from the cache
    assert samples[("unitehub_cache_hits_total", ())] == 2
    assert samples[("unitehub_cache_misses_total", (("reason", "absent"),))] == 1


# -- APM export ----------------------------------------------------------------------


def test_spans_reach_an_otlp_collector_and_an_outage_is_logged_once(start_app):
    port = free_port()
    app = start_app({"ENABLE_APM": "true", "APM_PROVIDER": "opentelemetry", "APM_SERVICE_NAME": "unite-hub-test",
                     "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "APM_FLUSH_INTERVAL": "100"})
    for _unused in range(3):  # three flush rounds against a closed port
        app.get("/api/version")
        time.sleep(0.15)
    wait_until(lambda: app.events("apm_export_failed"), 5, what="the export failure log line")
    collector = Collector(port)
    try:
        app.get("/no/such")
        wait_until(lambda: any(s["name"] == "GET unmatched" for s in collector.spans()), 5,
                   what="spans at the collector")
        resource = collector.resource_spans()[-1]["resource"]["attributes"]
        assert {"key": "service.name", "value": {"stringValue": "unite-hub-test"}} in resource
        unmatched = next(s for s in collector.spans() if s["name"] == "GET unmatched")
        attributes = {a["key"]: a["value"] for a in unmatched["attributes"]}
        assert attributes["http.route"] == {"stringValue": "unmatched"}
        assert attributes["http.response.status_code"] == {"intValue": "404"}
        wait_until(lambda: app.events("apm_export_recovered"), 5, what="the recovery log line")
    finally:
        collector.close()
    assert len(app.events("apm_export_failed")) == 1
    assert len(app.events("apm_export_recovered")) == 1


# -- lifecycle ------------------------------------------------------------------------


def in_flight(port: int) -> float:
    samples = metric_samples(http_request(port, "/metrics").text)
    return samples[("unitehub_http_requests_in_flight", ())] - 1  # minus the scrape itself


def connect_refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return False
    except (ConnectionRefusedError, ConnectionResetError):  # reset: caught in the closing backlog
        return True


def test_sigterm_finishes_the_in_flight_request_then_exits_0(start_app):
    app = start_app({"APP_DEBUG_ROUTES": "1"})
    results = []

    def slow():
        results.append(http_request(app.port, "/api/debug/sleep?ms=1500", timeout=10))

    worker = threading.Thread(target=slow)
    worker.start()
    wait_until(lambda: in_flight(app.port) == 1, 5, what="the slow request to be in flight")
    sent = time.monotonic()
    app.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: connect_refused(app.port), 2, what="the listening socket to close")
    assert worker.is_alive()  # refused new connections while the slow request still runs
    worker.join(10)
    [result] = results
    assert result.status == 200 and result.json() == {"slept_ms": 1500}
    assert result.headers["connection"] == "close"
    assert_app_headers(result)
    assert app.proc.wait(10) == 0
    assert time.monotonic() - sent < 3
    events = [r["event"] for r in app.log_records()]
    assert events.index("shutting_down") < events.index("stopped")
    assert [r["status"] for r in app.events("request") if r["path"] == "/api/debug/sleep"] == [200]


def test_sigterm_closes_idle_keep_alive_connections_promptly(start_app):
    app = start_app()
    idle = http.client.HTTPConnection("127.0.0.1", app.port, timeout=5)
    idle.request("GET", "/api/version")
    response = idle.getresponse()
    response.read()
    assert response.status == 200 and not response.will_close
    start = time.monotonic()
    app.proc.send_signal(signal.SIGINT)
    assert app.proc.wait(5) == 0
    assert time.monotonic() - start < 2  # not the 75 s keep-alive timeout
    idle.sock.settimeout(2)
    assert idle.sock.recv(1) == b""  # closed cleanly by the server, no stray bytes
    idle.close()


def test_crash_fault_exits_non_zero_after_the_delay(start_app):
    start = time.monotonic()
    app = start_app({"APP_FAULT_CRASH_AFTER": "1.5"})
    assert app.get("/api/version").status == 200
    code = app.proc.wait(10)
    assert code == 3  # the process itself, not a worker something restarts
    assert 1.4 <= time.monotonic() - start < 6
    assert app.events("fault_crash")
    assert connect_refused(app.port)


def test_error_rate_fault_answers_its_share_with_500_and_spares_health_and_metrics(start_app):
    app = start_app({"APP_FAULT_ERROR_RATE": "0.1"})
    statuses = [app.get("/api/version").status for _unused in range(200)]
    # Spread evenly, not drawn at random: exactly every 10th request fails, so the
    # share over these 200 requests is 10 %, and no 10 requests in a row hold two.
    assert statuses.count(500) == 20
    assert set(statuses) == {200, 500}
    assert all(statuses[i:i + 10].count(500) == 1 for i in range(0, 200, 10))
    assert all(app.get("/api/health/live").status == 200 for _unused in range(30))
    samples = metric_samples(app.get("/metrics").text)
    failed = (("method", "GET"), ("route", "/api/version"), ("status", "500"))
    assert samples[("unitehub_http_requests_total", failed)] == 20


def test_without_the_error_rate_fault_every_request_succeeds(start_app):
    app = start_app()
    assert all(app.get("/api/version").status == 200 for _unused in range(50))


def test_requests_still_running_after_the_shutdown_timeout_exit_1(start_app):
    app = start_app({"APP_DEBUG_ROUTES": "1", "APP_SHUTDOWN_TIMEOUT": "0.5"})
    worker = threading.Thread(target=lambda: _ignore_errors(http_request, app.port, "/api/debug/sleep?ms=5000"))
    worker.start()
    wait_until(lambda: in_flight(app.port) == 1, 5, what="the slow request to be in flight")
    start = time.monotonic()
    app.proc.send_signal(signal.SIGTERM)
    assert app.proc.wait(10) == 1
    assert time.monotonic() - start < 3
    [incomplete] = app.events("shutdown_incomplete")
    assert incomplete["level"] == "error"
    worker.join(10)


def _ignore_errors(fn, *args):
    try:
        fn(*args)
    except OSError:
        pass


def test_a_slow_request_head_is_cut_off(start_app):
    app = start_app({"APP_READ_TIMEOUT": "0.5"})
    with socket.create_connection(("127.0.0.1", app.port), timeout=5) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /api/version HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        raw = read_until_closed(sock)
        waited = time.monotonic() - start
    assert raw.startswith("HTTP/1.1 408") and 0.4 <= waited < 2, (raw, waited)
    assert_raw_app_headers(raw)
    with socket.create_connection(("127.0.0.1", app.port), timeout=5) as silent:  # not a byte sent
        assert read_until_closed(silent).startswith("HTTP/1.1 408")
    assert app.get("/api/version").status == 200  # a prompt client is served as ever


def test_past_the_connection_limit_idle_sockets_are_shed_and_prompt_clients_served(start_app):
    app = start_app({"APP_MAX_CONNECTIONS": "3"})
    keepalive = http.client.HTTPConnection("127.0.0.1", app.port, timeout=5)
    held = []
    try:
        keepalive.request("GET", "/api/version")
        assert keepalive.getresponse().read() and keepalive.sock is not None
        held = [socket.create_connection(("127.0.0.1", app.port), timeout=5) for _unused in range(4)]
        held[1].sendall(b"GET /api/version HTTP/1.1\r\n")  # a dribbled head counts as idle
        time.sleep(0.6)  # past the grace every new connection gets
        for _unused in range(3):
            assert app.get("/api/version").status == 200  # each sheds the oldest idle socket
        for sock in held[:3]:
            raw = read_until_closed(sock)
            assert raw.startswith("HTTP/1.1 503") and "too many open connections" in raw, raw
            assert_raw_app_headers(raw)
        keepalive.request("GET", "/api/version")  # a connection that sent a request is never shed
        response = keepalive.getresponse()
        assert response.status == 200 and response.read()
    finally:
        keepalive.close()
        for sock in held:
            sock.close()


def test_requests_beyond_the_limit_get_503(start_app):
    app = start_app({"APP_MAX_CONNECTIONS": "1", "APP_DEBUG_ROUTES": "1"})
    stop = threading.Event()

    def keep_a_slow_request_running():
        # In a loop: when a poll and a slow request arrive together, either one is the second.
        while not stop.is_set():
            http_request(app.port, "/api/debug/sleep?ms=500")

    slow = threading.Thread(target=keep_a_slow_request_running)
    slow.start()
    try:
        result = wait_until(lambda: app.get("/api/version"), 5, what="a 503 while the slow request runs",
                            accept=lambda answer: answer.status == 503, describe=lambda answer: answer.status)
        assert result.json() == {"error": "too many requests in progress"}
        assert_app_headers(result)
    finally:
        stop.set()
        slow.join(10)
    assert app.get("/api/version").status == 200


def test_handlers_run_on_at_most_app_threads_threads(start_app):
    app = start_app({"APP_DEBUG_ROUTES": "1", "APP_THREADS": "1"})
    results = []
    workers = [threading.Thread(target=lambda: results.append(http_request(app.port, "/api/debug/sleep?ms=400")))
               for _unused in range(2)]
    start = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    assert [r.status for r in results] == [200, 200]
    assert time.monotonic() - start >= 0.8  # one after the other


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"PORT": "eighty"}, "PORT='eighty' is not a whole number"),
        ({"DB_POOLER_MODE": "statement"}, "DB_POOLER_MODE='statement' is not one of transaction, session"),
        ({"DATABASE_URL": "mysql://root:cfg-secret@db/app"}, "DATABASE_URL=(value hidden) does not use"),
        ({"APP_ADMIN_TOKEN": "cfg-secret-only-25-chars!"},
         "APP_ADMIN_TOKEN=(value hidden) is shorter than 32 characters"),
    ],
)
def test_a_bad_setting_stops_the_start_with_exit_2(start_app, env, expected):
    app = start_app(env, wait=False)
    assert app.proc.wait(10) == 2
    assert expected in app.stderr()
    assert "configuration error" in app.stderr()
    assert "cfg-secret" not in app.stderr() + app.stdout()


def test_a_port_in_use_is_reported(start_app):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        app = start_app(wait=False, port=port)
        assert app.proc.wait(10) == 1
        assert f"cannot listen on 127.0.0.1:{port}" in app.stderr()


BLOCK_IMPORTS = '''
import sys


class _Block:
    """Make psycopg and redis unimportable, as on an image without python3-psycopg / python3-redis."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("psycopg", "redis"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Block())
'''


def test_without_psycopg_and_redis_the_app_serves_and_reports_why(start_app, tmp_path, redis_server):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCK_IMPORTS)
    app = start_app({"PYTHONPATH": f"{blocker}:{APP_DIR}", "REDIS_URL": redis_server.url,
                     "DATABASE_URL": f"postgresql://app@127.0.0.1:{free_port()}/app"})
    page = app.get("/")
    assert page.status == 200 and page.json()["hits"] is None  # Redis runs, but there is no client
    result = app.get("/api/health/system")
    assert result.status == 503
    checks = result.json()["checks"]
    assert checks["database:responseTime"][0]["output"].startswith("python module 'psycopg' is not installed")
    assert checks["redis:responseTime"][0]["output"].startswith("python module 'redis' is not installed")
    assert checks["circuitBreaker:redis"][0]["status"] == "pass"  # nothing was attempted


def test_a_burst_of_connections_waits_in_the_backlog_instead_of_being_dropped(start_app):
    # While the app is stopped (SIGSTOP) nothing accepts: every connection of the burst must
    # still complete its handshake in the listen backlog, and be answered once it runs again.
    app = start_app()
    burst = 60
    sockets = []
    app.proc.send_signal(signal.SIGSTOP)
    try:
        for _unused in range(burst):
            sock = socket.create_connection(("127.0.0.1", app.port), timeout=1)  # a dropped SYN times out here
            sockets.append(sock)
            sock.sendall(b"GET /api/version HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    finally:
        app.proc.send_signal(signal.SIGCONT)
    answers = []
    for sock in sockets:
        sock.settimeout(10)
        with sock:
            answers.append(sock.recv(12))
    assert answers == [b"HTTP/1.1 200"] * burst
