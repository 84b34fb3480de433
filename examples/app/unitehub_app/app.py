"""The application: its components and its routes, independent of the HTTP server."""

from __future__ import annotations

import hmac
import itertools
import json
import math
import re
import time
import urllib.parse
from collections.abc import Callable

from .apm import Recorder
from .breaker import TRIP_REASONS, CircuitBreaker, CircuitOpenError
from .cache import RedisCache
from .config import Config
from .db import Database
from .health import CONTENT_TYPE as HEALTH_CONTENT_TYPE
from .health import HealthService, IoCheck, filesystem_probe
from .logs import JsonLogger
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import AppMetrics

JSON = "application/json"
BREAKER_NAMES = ("redis", "database")
# APM providers whose spans and metrics leave the app over OTLP; ``custom`` keeps them in-process.
EXPORTING_PROVIDERS = ("opentelemetry", "datadog")
INDEX_DB_CACHE_TTL = 30  # seconds the database facts shown on / stay in Redis
MAX_DEBUG_SLEEP_MS = 60000
# Every path under this prefix needs the bearer token, reads included: breaker state tells
# an attacker which dependency is failing, and unknown admin paths answer 401, not 404.
ADMIN_PREFIX = "/api/admin"
# Routes the error-rate fault leaves alone: a faulty version must still pass its health
# checks and be scraped, so that only its traffic shows the errors.
FAULT_EXEMPT_ROUTES = ("/api/health/live", "/api/health/system", "/metrics")


class Response:
    __slots__ = ("status", "body", "content_type", "headers")

    def __init__(self, status: int, body: bytes, content_type: str = JSON, headers: dict | None = None):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}


def json_response(status: int, payload: object, content_type: str = JSON, headers: dict | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=False).encode() + b"\n"
    return Response(status, body, content_type, headers)


class Request:
    __slots__ = ("method", "path", "query", "headers", "params")

    def __init__(self, method: str, target: str, headers: dict):
        parts = urllib.parse.urlsplit(target)
        self.method = method
        self.path = parts.path or "/"
        self.query = urllib.parse.parse_qs(parts.query)
        self.headers = headers
        self.params: dict = {}


Handler = Callable[[Request], Response]


class ErrorRateFault:
    """APP_FAULT_ERROR_RATE: answer that share of requests with 500, spread evenly.

    Request n fails when floor(n * rate) grows, so the first n requests hold exactly
    floor(n * rate) failures: any run sees the share, with no randomness to make a test flaky.
    """

    def __init__(self, rate: float):
        self.rate = rate
        self._count = itertools.count(1)  # next() is atomic under the GIL

    def strikes(self) -> bool:
        if self.rate <= 0.0:
            return False
        n = next(self._count)
        return math.floor(n * self.rate) > math.floor((n - 1) * self.rate)


def is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


class Application:
    def __init__(self, config: Config, logger: JsonLogger):
        self.config = config
        self.log = logger
        self.breakers = {
            name: CircuitBreaker(
                name,
                failure_threshold=config.breaker_failure_threshold,
                reset_timeout=config.breaker_reset_timeout,
                success_threshold=config.breaker_success_threshold,
                half_open_max_calls=config.breaker_half_open_max_calls,
            )
            for name in BREAKER_NAMES
        }
        self.metrics = AppMetrics(
            app=config.app_name,
            slot=config.slot,
            version=config.version,
            release_id=config.release_id,
            breakers=lambda: [b.stats() for b in self.breakers.values()],
            breaker_names=BREAKER_NAMES,
        )
        for breaker in self.breakers.values():
            breaker.add_listener(self._on_breaker_change)
        self.error_fault = ErrorRateFault(config.fault_error_rate)
        self.telemetry = self._make_telemetry()
        self.recorder = Recorder(self.metrics, self.telemetry)
        self.cache = RedisCache(
            config.redis_url,
            self.breakers["redis"],
            self.metrics,
            timeout=config.health_check_timeout,
            namespace=config.app_name,
        )
        self.db = Database(config, self.breakers["database"], self.recorder)
        self.health = HealthService(
            config,
            [
                IoCheck(
                    "database:responseTime",
                    True,
                    "datastore",
                    self.db.ping,
                    lambda: self.db.unavailable_reason,
                    lambda: {"pooler": self.db.pooler, "poolerMode": self.db.pooler_mode},
                ),
                IoCheck(
                    "redis:responseTime", False, "datastore", self.cache.ping, lambda: self.cache.unavailable_reason
                ),
                IoCheck("filesystem:writable", True, "system", filesystem_probe),
            ],
            self.breakers,
        )
        self._routes: dict[str, dict[str, Handler]] = {
            "/": {"GET": self.index},
            "/api/version": {"GET": self.version},
            "/api/health/live": {"GET": self.live},
            "/api/health/system": {"GET": self.system_health},
            "/api/admin/breakers": {"GET": self.list_breakers},
            "/metrics": {"GET": self.metrics_page},
        }
        self._patterns: list[tuple[re.Pattern, str, dict[str, Handler]]] = [
            (
                re.compile(r"^/api/admin/breakers/(?P<name>[^/]+)/(?P<action>reset|open)$"),
                "/api/admin/breakers/{name}/{action}",
                {"POST": self.breaker_action},
            ),
        ]
        if config.debug_routes:
            self._routes["/api/debug/sleep"] = {"GET": self.debug_sleep}

    # -- lifecycle ---------------------------------------------------------

    def _make_telemetry(self):
        """The OpenTelemetry export, or None when APM is off or keeps its metrics local."""
        c = self.config
        if not c.enable_apm:
            return None
        if c.apm_provider not in EXPORTING_PROVIDERS:
            self.log.info(
                "apm_local_only",
                provider=c.apm_provider,
                note="metrics are recorded in-process and served on /metrics; "
                "spans and metrics are exported with APM_PROVIDER=opentelemetry or datadog",
            )
            return None
        from .otel import Telemetry  # the SDK is loaded only when it exports

        return Telemetry(c, self.metrics, self.log)

    def close(self) -> None:
        if self.telemetry is not None:
            self.telemetry.shutdown()
        self.cache.close()
        self.db.close()

    def _on_breaker_change(self, name: str, old: str, new: str, reason: str) -> None:
        if reason in TRIP_REASONS:
            self.metrics.breaker_trips.labels(breaker=name).inc()
        level = "warning" if new != "CLOSED" else "info"
        self.log.log(level, "breaker_state", breaker=name, old_state=old, new_state=new, reason=reason)

    # -- routing -----------------------------------------------------------

    def resolve(self, request: Request) -> tuple[str, Handler | None, list[str]]:
        """``(route label, handler or None, allowed methods)`` for a request."""
        methods = self._routes.get(request.path)
        route = request.path
        if methods is None:
            for pattern, label, candidates in self._patterns:
                match = pattern.match(request.path)
                if match:
                    request.params = match.groupdict()
                    methods, route = candidates, label
                    break
        if methods is None:
            route, handler, allowed = "unmatched", None, []
        else:
            handler = methods.get(request.method)
            if handler is None and request.method == "HEAD":
                handler = methods.get("GET")
            allowed = sorted(set(methods) | ({"HEAD"} if "GET" in methods else set()))
        if is_admin_path(request.path) and not self.authorized(request):
            return route, self.unauthorized, allowed
        if handler is not None and route not in FAULT_EXEMPT_ROUTES and not is_admin_path(request.path):
            if self.error_fault.strikes():
                return route, self.injected_error, allowed
        return route, handler, allowed

    def not_found(self, request: Request) -> Response:
        return json_response(404, {"error": "not found"})

    def method_not_allowed(self, request: Request, allowed: list[str]) -> Response:
        return json_response(405, {"error": "method not allowed"}, headers={"Allow": ", ".join(allowed)})

    def internal_error(self) -> Response:
        return json_response(500, {"error": "internal server error"})

    def injected_error(self, request: Request) -> Response:
        return json_response(500, {"error": "internal server error", "fault": "APP_FAULT_ERROR_RATE"})

    # -- handlers ----------------------------------------------------------

    def index(self, request: Request) -> Response:
        c = self.config
        hits = self.cache.incr("hits")
        database = self.cache.get_json("index:database")
        if database is not None:
            database["source"] = "cache"
        elif not self.db.configured:
            database = {"status": "not configured"}
        else:
            try:
                rows = self.db.query(
                    "SELECT current_setting('server_version'), current_database()",
                    operation="SELECT",
                    table="pg_settings",
                )
                database = {"status": "ok", "server_version": rows[0][0], "database": rows[0][1]}
                self.cache.set_json("index:database", database, INDEX_DB_CACHE_TTL)
                database["source"] = "database"
            except CircuitOpenError:
                database = {"status": "unavailable", "reason": "circuit breaker open"}
            except Exception:  # the page degrades instead of failing
                database = {"status": "unavailable", "reason": "query failed"}
        return json_response(
            200,
            {
                "message": f"Hello from {c.app_name} ({c.slot} slot)",
                "app": c.app_name,
                "slot": c.slot,
                "version": c.version,
                "hits": hits,
                "cache": "degraded" if hits is None else "ok",
                "database": database,
            },
        )

    def version(self, request: Request) -> Response:
        c = self.config
        return json_response(200, {"version": c.version, "slot": c.slot, "app": c.app_name, "releaseId": c.release_id})

    def live(self, request: Request) -> Response:
        c = self.config
        return json_response(
            200,
            {"status": "pass", "version": c.version, "releaseId": c.release_id},
            HEALTH_CONTENT_TYPE,
            {"Cache-Control": "no-store"},
        )

    def system_health(self, request: Request) -> Response:
        status, body = self.health.report()
        return json_response(status, body, HEALTH_CONTENT_TYPE, {"Cache-Control": "no-store"})

    def _breakers_body(self) -> dict:
        return {
            "slot": self.config.slot,
            "version": self.config.version,
            "breakers": {name: b.stats() for name, b in self.breakers.items()},
        }

    def list_breakers(self, request: Request) -> Response:
        return json_response(200, self._breakers_body(), headers={"Cache-Control": "no-store"})

    def authorized(self, request: Request) -> bool:
        """Whether the request carries the admin token; never, when no token is set."""
        expected = self.config.admin_token
        header = request.headers.get("authorization", "")
        scheme, _unused, given = header.partition(" ")
        if not expected or scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), expected.encode())

    def unauthorized(self, request: Request) -> Response:
        detail = (
            "send Authorization: Bearer <APP_ADMIN_TOKEN>"
            if self.config.admin_token
            else "the admin API is off: APP_ADMIN_TOKEN is not set"
        )
        return json_response(
            401,
            {"error": "unauthorized", "detail": detail},
            headers={"WWW-Authenticate": "Bearer", "Cache-Control": "no-store"},
        )

    def breaker_action(self, request: Request) -> Response:
        name, action = request.params["name"], request.params["action"]
        breaker = self.breakers.get(name)
        if breaker is None:
            return json_response(404, {"error": f"unknown breaker '{name}'", "breakers": sorted(self.breakers)})
        if action == "reset":
            breaker.reset()
        else:
            breaker.force_open()
        self.log.info("breaker_admin", breaker=name, action=action)
        return json_response(200, {"action": action, "breaker": breaker.stats()})

    def metrics_page(self, request: Request) -> Response:
        return Response(200, self.metrics.render(), METRICS_CONTENT_TYPE, {"Cache-Control": "no-store"})

    def debug_sleep(self, request: Request) -> Response:
        try:
            ms = int(request.query.get("ms", ["500"])[0])
        except ValueError:
            return json_response(400, {"error": "ms must be a whole number of milliseconds"})
        ms = max(0, min(ms, MAX_DEBUG_SLEEP_MS))
        time.sleep(ms / 1000.0)
        return json_response(200, {"slept_ms": ms})
