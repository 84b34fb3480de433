"""PostgreSQL through psycopg 3: a small connection pool and the ``database`` breaker.

The pool keeps at most ``DB_POOL_SIZE`` connections, reuses the most recently
used one, and closes connections idle longer than ``DB_IDLE_TIMEOUT`` or older
than ``DB_MAX_LIFETIME`` (checked whenever a connection is taken or returned).
In ``DB_POOLER_MODE=transaction`` connections are opened with
``prepare_threshold=None``: a transaction pooler such as PgBouncer hands each
transaction to any server connection, where a prepared statement may not exist.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from . import deadline
from .apm import Recorder
from .breaker import CircuitBreaker
from .config import Config

try:  # python3-psycopg from Debian (3.1) or psycopg from PyPI
    import psycopg as _psycopg

    PSYCOPG_IMPORT_ERROR = ""
except ImportError as _exc:  # the app still serves; the database check reports this
    _psycopg = None
    PSYCOPG_IMPORT_ERROR = f"python module 'psycopg' is not installed ({_exc})"


class PoolTimeout(TimeoutError):
    pass


class _Entry:
    __slots__ = ("conn", "created", "last_used")

    def __init__(self, conn: Any, now: float):
        self.conn = conn
        self.created = now
        self.last_used = now


class ConnectionPool:
    """A bounded LIFO pool. ``connect``/``close``/``usable`` make it testable without a server."""

    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        size: int,
        idle_timeout: float,
        max_lifetime: float,
        close: Callable[[Any], None] = lambda conn: conn.close(),
        usable: Callable[[Any], bool] = lambda conn: not conn.closed,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._connect = connect
        self._close = close
        self._usable = usable
        self._clock = clock
        self.size = size
        self.idle_timeout = idle_timeout
        self.max_lifetime = max_lifetime
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[_Entry] = []
        self._in_use = 0
        self._opened = 0
        self._closed = False

    def _expired(self, entry: _Entry, now: float) -> bool:
        return now - entry.created >= self.max_lifetime or now - entry.last_used >= self.idle_timeout

    def _prune(self, now: float) -> list[_Entry]:
        """Take expired entries out of the idle list (lock held); the caller closes them."""
        stale = [e for e in self._idle if self._expired(e, now)]
        if stale:
            self._idle = [e for e in self._idle if not self._expired(e, now)]
        return stale

    def _discard(self, entries: list[_Entry]) -> None:
        for entry in entries:
            try:
                self._close(entry.conn)
            except Exception:  # closing a connection whose server is gone
                pass

    def acquire(self, timeout: float) -> tuple[_Entry, bool]:
        """Take a connection; return ``(entry, fresh)``. Raise :class:`PoolTimeout` when all are busy."""
        if self._closed:
            raise RuntimeError("the connection pool is closed")
        if not self._slots.acquire(timeout=max(0.0, timeout)):
            raise PoolTimeout(f"all {self.size} database connections are busy")
        try:
            now = self._clock()
            with self._lock:
                stale = self._prune(now)
                entry = None
                while self._idle:
                    candidate = self._idle.pop()
                    if self._usable(candidate.conn):
                        entry = candidate
                        break
                    stale.append(candidate)
                self._in_use += 1
            self._discard(stale)
            if entry is not None:
                return entry, False
            try:
                conn = self._connect()
            except BaseException:
                with self._lock:
                    self._in_use -= 1
                raise
            with self._lock:
                self._opened += 1
            return _Entry(conn, self._clock()), True
        except BaseException:
            self._slots.release()
            raise

    def release(self, entry: _Entry, broken: bool = False) -> None:
        """Give a connection back; a broken, unusable or expired one is closed instead."""
        try:
            now = self._clock()
            keep = not broken and not self._closed and self._usable(entry.conn)
            if keep:
                entry.last_used = now
                keep = not self._expired(entry, now)
            with self._lock:
                self._in_use -= 1
                stale = self._prune(now)
                if keep:
                    self._idle.append(entry)
                else:
                    stale.append(entry)
            self._discard(stale)
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            stale, self._idle = self._idle, []
        self._discard(stale)

    def stats(self) -> dict:
        with self._lock:
            return {"size": self.size, "idle": len(self._idle), "in_use": self._in_use, "opened": self._opened}


class Database:
    """Queries through the pool, timed by the APM recorder, guarded by the ``database`` breaker."""

    def __init__(self, config: Config, breaker: CircuitBreaker, recorder: Recorder):
        self.breaker = breaker
        self.recorder = recorder
        self.timeout = config.health_check_timeout
        self.pooler = config.enable_db_pooler
        self.pooler_mode = config.db_pooler_mode
        self.prepare_threshold_disabled = config.db_pooler_mode == "transaction"
        self._url = config.database_url
        self._connect_kwargs: dict = {
            "autocommit": True,
            # libpq wants whole seconds (psycopg raises anything below 2 to 2);
            # the real deadline is enforced by deadline.call around each use.
            "connect_timeout": max(2, math.ceil(self.timeout)),
            "application_name": f"{config.app_name}-{config.slot}",
        }
        if self.prepare_threshold_disabled:
            self._connect_kwargs["prepare_threshold"] = None
        self.pool: ConnectionPool | None = None
        if self._url and _psycopg is not None:
            self.pool = ConnectionPool(
                self._connect,
                size=config.db_pool_size,
                idle_timeout=config.db_idle_timeout,
                max_lifetime=config.db_max_lifetime,
                usable=lambda conn: not conn.closed and not conn.broken,
            )

    @property
    def configured(self) -> bool:
        return bool(self._url)

    @property
    def unavailable_reason(self) -> str:
        if not self._url:
            return "DATABASE_URL is not set"
        if self.pool is None:
            return PSYCOPG_IMPORT_ERROR
        return ""

    def _connect(self) -> Any:
        return _psycopg.connect(self._url, **self._connect_kwargs)

    def _run(self, sql: str, params: Any = None) -> list:
        """Run one statement on a pooled connection; retry once on a fresh one if a reused one died."""
        if self.pool is None:
            raise RuntimeError(self.unavailable_reason)
        for attempt in (1, 2):
            entry, fresh = self.pool.acquire(timeout=self.timeout)
            broken = False
            try:
                with entry.conn.execute(sql, params) as cursor:
                    return cursor.fetchall() if cursor.description is not None else []
            except _psycopg.Error as exc:
                broken = entry.conn.broken or isinstance(exc, _psycopg.OperationalError)
                if fresh or not broken or attempt == 2:
                    raise
            finally:
                self.pool.release(entry, broken=broken)
        raise AssertionError("unreachable")

    def query(self, sql: str, params: Any = None, *, operation: str, table: str) -> list:
        """A query through the breaker, with the deadline; raises on failure or when the breaker is open."""

        def timed() -> list:
            return self.recorder.track_db_query(
                operation, table, lambda: deadline.call(lambda: self._run(sql, params), self.timeout, "db-query")
            )

        return self.breaker.call(timed)

    def ping(self) -> float:
        """``SELECT 1`` directly (not through the breaker); the latency in ms. The caller sets the deadline."""
        start = time.perf_counter()
        self.recorder.track_db_query("SELECT", "health", lambda: self._run("SELECT 1"))
        return (time.perf_counter() - start) * 1000.0

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
