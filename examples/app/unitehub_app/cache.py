"""A Redis cache behind the ``redis`` circuit breaker.

Any Redis problem -- not configured, library missing, connection refused, a
timeout, the breaker open -- is a cache miss (``get``) or a skipped write
(``set`` / ``incr`` return ``False`` / ``None``), never an exception.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .metrics import AppMetrics
from .breaker import CircuitBreaker, CircuitOpenError

try:  # python3-redis from Debian (4.3) or redis-py from PyPI
    import redis as _redis
    from redis.backoff import NoBackoff as _NoBackoff
    from redis.retry import Retry as _Retry

    REDIS_IMPORT_ERROR = ""
except ImportError as _exc:  # the app still serves; the redis check reports this
    _redis = None
    REDIS_IMPORT_ERROR = f"python module 'redis' is not installed ({_exc})"

_FAILED = object()


class RedisCache:
    def __init__(
        self,
        url: str,
        breaker: CircuitBreaker,
        metrics: AppMetrics,
        *,
        timeout: float,
        namespace: str,
    ):
        self.url = url
        self.breaker = breaker
        self.metrics = metrics
        self.namespace = namespace.rstrip(":") + ":"
        self.timeout = timeout
        self._client = None
        self._init_error = ""
        if url and _redis is not None:
            try:
                # redis-py 5+ retries 3 times with backoff by default: one attempt only
                # here, so a dead Redis costs one timeout and the breaker sees it.
                self._client = _redis.Redis.from_url(
                    url,
                    socket_connect_timeout=timeout,
                    socket_timeout=timeout,
                    retry=_Retry(_NoBackoff(), 0),
                    decode_responses=True,
                    health_check_interval=0,
                )
            except (ValueError, TypeError) as exc:
                self._init_error = f"REDIS_URL is not usable: {type(exc).__name__}"

    @property
    def unavailable_reason(self) -> str:
        """Why no Redis call can be made at all, or '' when the client exists."""
        if not self.url:
            return "REDIS_URL is not set"
        if self._client is None:
            return self._init_error or REDIS_IMPORT_ERROR
        return ""

    def _key(self, key: str) -> str:
        return self.namespace + key

    def _failed(self, exc: Exception) -> object:
        reason = "breaker_open" if isinstance(exc, CircuitOpenError) else "error"
        self.metrics.cache_misses.labels(reason=reason).inc()
        return _FAILED

    def get(self, key: str) -> str | None:
        """The cached value, or None on a miss of any kind."""
        if self._client is None:
            self.metrics.cache_misses.labels(reason="unavailable").inc()
            return None
        value = self.breaker.call_with_fallback(lambda: self._client.get(self._key(key)), self._failed)
        if value is _FAILED:
            return None
        if value is None:
            self.metrics.cache_misses.labels(reason="absent").inc()
            return None
        self.metrics.cache_hits.inc()
        return value

    def get_json(self, key: str) -> Any:
        raw = self.get(key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def set(self, key: str, value: str, ttl: int) -> bool:
        if self._client is None:
            return False
        return bool(
            self.breaker.call_with_fallback(lambda: self._client.set(self._key(key), value, ex=ttl), lambda exc: False)
        )

    def set_json(self, key: str, value: Any, ttl: int) -> bool:
        return self.set(key, json.dumps(value, separators=(",", ":")), ttl)

    def incr(self, key: str) -> int | None:
        if self._client is None:
            return None
        return self.breaker.call_with_fallback(lambda: int(self._client.incr(self._key(key))), lambda exc: None)

    def ping(self) -> float:
        """PING Redis directly (not through the breaker); return the latency in ms or raise."""
        if self._client is None:
            raise RuntimeError(self.unavailable_reason)
        start = time.perf_counter()
        self._client.ping()
        return (time.perf_counter() - start) * 1000.0

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # closing a client whose server is gone
                pass
