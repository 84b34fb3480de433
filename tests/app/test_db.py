"""The connection pool (fake connections, fake clock) and Database against a private PostgreSQL."""

from __future__ import annotations

import time

import psycopg
import pytest
from unitehub_app.apm import Recorder
from unitehub_app.metrics import AppMetrics
from unitehub_app.breaker import OPEN, CircuitBreaker
from unitehub_app.config import load_config
from unitehub_app.db import ConnectionPool, Database, PoolTimeout
from unitehub_app.deadline import DeadlineExceeded

from .conftest import free_port


class FakeConn:
    opened = 0

    def __init__(self):
        FakeConn.opened += 1
        self.id = FakeConn.opened
        self.closed = False

    def close(self):
        self.closed = True


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def pool(clock, **kwargs) -> ConnectionPool:
    kwargs.setdefault("size", 2)
    kwargs.setdefault("idle_timeout", 600)
    kwargs.setdefault("max_lifetime", 3600)
    return ConnectionPool(FakeConn, clock=clock, **kwargs)


def test_connections_are_reused_most_recent_first():
    clock = Clock()
    p = pool(clock)
    a, fresh_a = p.acquire(1)
    b, fresh_b = p.acquire(1)
    assert fresh_a and fresh_b
    p.release(a)
    p.release(b)
    again, fresh = p.acquire(1)
    assert again is b and not fresh
    assert p.stats() == {"size": 2, "idle": 1, "in_use": 1, "opened": 2}


def test_the_pool_is_bounded():
    p = pool(Clock(), size=1)
    entry, _unused = p.acquire(1)
    start = time.monotonic()
    with pytest.raises(PoolTimeout, match="all 1 database connections are busy"):
        p.acquire(0.1)
    assert time.monotonic() - start >= 0.1
    p.release(entry)
    assert p.acquire(0.1)[0] is entry


def test_idle_timeout_and_max_lifetime_close_connections():
    clock = Clock()
    p = pool(clock, idle_timeout=600, max_lifetime=3600)
    entry, _unused = p.acquire(1)
    p.release(entry)
    clock.now = 599.5
    same, _unused = p.acquire(1)
    assert same is entry
    p.release(same)  # last used at 599.5
    clock.now = 599.5 + 600
    newer, fresh = p.acquire(1)
    assert fresh and entry.conn.closed  # idle too long
    clock.now = 599.5 + 600 + 3599.5
    p.release(newer)
    assert not newer.conn.closed  # 3599.5 s old: still kept
    again, _unused = p.acquire(1)
    assert again is newer
    clock.now = 599.5 + 600 + 3600
    p.release(again)  # too old to keep
    assert newer.conn.closed and p.stats()["idle"] == 0


def test_broken_connections_are_not_reused_and_close_empties_the_pool():
    p = pool(Clock())
    a, _unused = p.acquire(1)
    b, _unused = p.acquire(1)
    p.release(a, broken=True)
    p.release(b)
    assert a.conn.closed and not b.conn.closed
    b.conn.closed = True  # the server went away while it sat idle
    c, fresh = p.acquire(1)
    assert fresh and c is not b
    p.release(c)
    p.close()
    assert c.conn.closed
    with pytest.raises(RuntimeError, match="closed"):
        p.acquire(1)


def test_a_failed_connect_gives_its_slot_back():
    def refuse():
        raise ConnectionRefusedError("no")

    p = ConnectionPool(refuse, size=1, idle_timeout=600, max_lifetime=3600)
    for _unused in range(3):
        with pytest.raises(ConnectionRefusedError):
            p.acquire(0.1)
    assert p.stats()["in_use"] == 0


def database(url: str, **env) -> tuple[Database, AppMetrics, CircuitBreaker]:
    config = load_config({"DATABASE_URL": url, "HEALTH_CHECK_TIMEOUT_MS": "500", **env})
    metrics = AppMetrics(app="unitehub", slot="blue", version="v1", release_id="v1")
    breaker = CircuitBreaker("database", failure_threshold=2)
    return Database(config, breaker, Recorder(metrics)), metrics, breaker


def test_queries_run_on_a_real_server(postgres_server):
    db, metrics, _unused = database(postgres_server.url())
    try:
        rows = db.query("SELECT current_database(), %s::int + 1", (41,), operation="SELECT", table="-")
        assert rows == [("postgres", 42)]
        assert db.ping() > 0
        assert metrics.sample("unitehub_db_query_duration_seconds_count", operation="SELECT", table="-", outcome="ok") == 1
        assert metrics.sample("unitehub_db_query_duration_seconds_count", operation="SELECT", table="health", outcome="ok") == 1
        assert db.pool.stats()["opened"] == 1  # the second statement reused the connection
    finally:
        db.close()


@pytest.mark.parametrize("mode, threshold", [("transaction", None), ("session", 5)])
def test_transaction_pooling_disables_prepared_statements(postgres_server, mode, threshold):
    db, _unused, _unused = database(postgres_server.url(), DB_POOLER_MODE=mode, ENABLE_DB_POOLER="true")
    try:
        for _unused in range(8):  # psycopg prepares a statement after 5 runs unless disabled
            db.query("SELECT 1", operation="SELECT", table="-")
        entry, _unused = db.pool.acquire(1)
        try:
            assert entry.conn.prepare_threshold == threshold
            prepared = entry.conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0]
            assert (prepared == 0) == (threshold is None)
            app_name = entry.conn.execute("SHOW application_name").fetchone()[0]
            assert app_name == "unitehub-local"
        finally:
            db.pool.release(entry)
    finally:
        db.close()


def test_a_reused_connection_killed_by_the_server_is_retried_once(postgres_server):
    db, _unused, breaker = database(postgres_server.url())
    try:
        [(pid,)] = db.query("SELECT pg_backend_pid()", operation="SELECT", table="-")
        with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        [(new_pid,)] = db.query("SELECT pg_backend_pid()", operation="SELECT", table="-")
        assert new_pid != pid
        assert breaker.stats()["total_failures"] == 0
    finally:
        db.close()


def test_a_closed_port_fails_and_feeds_the_breaker():
    db, metrics, breaker = database(f"postgresql://app:pw@127.0.0.1:{free_port()}/app")
    for _unused in range(2):
        with pytest.raises(psycopg.OperationalError):
            db.query("SELECT 1", operation="SELECT", table="-")
    assert breaker.state == OPEN
    assert metrics.sample("unitehub_db_query_duration_seconds_count", operation="SELECT", table="-", outcome="error") == 2
    db.close()


def test_a_hanging_server_is_cut_off_at_the_deadline(hanging_server):
    db, _unused, breaker = database(f"postgresql://app:pw@127.0.0.1:{hanging_server.port}/app")
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        db.query("SELECT 1", operation="SELECT", table="-")
    assert 0.45 <= time.monotonic() - start < 1.2  # psycopg alone would wait its 2 s connect_timeout
    assert breaker.stats()["failures"] == 1
    db.close()


def test_without_psycopg_settings_the_database_reports_why():
    db, _unused, _unused = database("")
    assert not db.configured and db.unavailable_reason == "DATABASE_URL is not set"
    with pytest.raises(RuntimeError, match="DATABASE_URL is not set"):
        db.query("SELECT 1", operation="SELECT", table="-")
