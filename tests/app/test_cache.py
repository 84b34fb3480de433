"""The Redis cache against a real, private redis-server that the tests stop and restart."""

from __future__ import annotations

import os
import time

import pytest
import redis
import yaml
from unitehub_app.metrics import AppMetrics
from unitehub_app.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from unitehub_app.cache import RedisCache

from .conftest import REPO_ROOT, RedisServer


def make_cache(url: str, breaker: CircuitBreaker | None = None, timeout: float = 0.5):
    metrics = AppMetrics(app="unitehub", slot="blue", version="v1", release_id="v1")
    breaker = breaker or CircuitBreaker("redis", failure_threshold=3, reset_timeout=0.5, success_threshold=2)
    return RedisCache(url, breaker, metrics, timeout=timeout, namespace="unitehub-test"), metrics, breaker


def misses(metrics: AppMetrics) -> dict:
    return {r: metrics.sample("unitehub_cache_misses_total", reason=r) for r in ("absent", "error", "breaker_open", "unavailable")}


def test_hits_misses_and_counters(redis_server):
    cache, metrics, _unused = make_cache(redis_server.url)
    assert cache.get("greeting") is None
    assert cache.set("greeting", "hello", ttl=30) is True
    assert cache.get("greeting") == "hello"
    assert cache.set_json("facts", {"n": 1}, ttl=30) and cache.get_json("facts") == {"n": 1}
    assert [cache.incr("hits") for _unused in range(3)] == [1, 2, 3]
    assert metrics.sample("unitehub_cache_hits_total") == 2
    assert misses(metrics) == {"absent": 1, "error": 0, "breaker_open": 0, "unavailable": 0}
    assert cache.ping() >= 0


def test_keys_are_namespaced(redis_server):
    cache, _unused, _unused = make_cache(redis_server.url)
    cache.set("k", "v", ttl=30)
    assert redis.Redis.from_url(redis_server.url).get("unitehub-test:k") == b"v"


def test_the_acl_user_of_the_url_is_enough_for_the_app(tmp_path):
    """REDIS_URL carries the app's ACL user and password (URL-encoded). With the default
    user off and only the commands the redis role grants the app by default, on the app's
    own keys, every cache operation works (database 3: SELECT is one of them)."""
    with open(os.path.join(REPO_ROOT, "roles", "redis", "defaults", "main.yml"), encoding="utf-8") as handle:
        commands = yaml.safe_load(handle)["redis_app_commands"]
    acl = ["--user", "default", "off", "--user", "app", "on", ">p/w@:", "~unitehub-test:*", "-@all"]
    server = RedisServer(str(tmp_path), args=acl + ["+" + command for command in commands]).start()
    try:
        cache, metrics, breaker = make_cache("redis://app:p%%2Fw%%40%%3A@127.0.0.1:%d/3" % server.port)
        assert cache.set_json("facts", {"n": 1}, ttl=30) is True and cache.get_json("facts") == {"n": 1}
        assert [cache.incr("hits") for _unused in range(2)] == [1, 2]
        assert cache.ping() >= 0
        assert misses(metrics)["error"] == 0 and breaker.state == CLOSED

        anonymous, metrics, _unused = make_cache(server.url)
        assert anonymous.get("facts") is None and misses(metrics)["error"] == 1
        with pytest.raises(redis.exceptions.AuthenticationError):
            anonymous.ping()
    finally:
        server.stop()


def test_a_dead_redis_is_a_miss_then_the_breaker_opens_then_recovers(tmp_path):
    server = RedisServer(str(tmp_path)).start()
    try:
        cache, metrics, breaker = make_cache(server.url)
        cache.set("greeting", "hello", ttl=60)
        server.stop()

        assert cache.get("greeting") is None  # failure 1: a miss, not an exception
        assert cache.set("greeting", "x", ttl=60) is False  # failure 2
        assert cache.incr("hits") is None  # failure 3: trips
        assert breaker.state == OPEN
        with pytest.raises(redis.exceptions.ConnectionError):
            cache.ping()  # the health probe sees the real state

        start = time.monotonic()
        assert cache.get("greeting") is None  # rejected by the breaker, no network wait
        assert time.monotonic() - start < 0.05
        assert misses(metrics) == {"absent": 0, "error": 1, "breaker_open": 1, "unavailable": 0}

        server.start()  # same port
        time.sleep(0.55)  # past reset_timeout
        assert breaker.state == HALF_OPEN
        assert cache.get("greeting") is None  # the restarted server is empty: trial 1 succeeds
        assert cache.set("greeting", "back", ttl=60) is True  # trial 2 succeeds: closed
        assert breaker.state == CLOSED
        assert cache.get("greeting") == "back"
    finally:
        server.stop()


def test_a_hanging_redis_costs_one_timeout_per_call(hanging_server):
    cache, metrics, breaker = make_cache(f"redis://127.0.0.1:{hanging_server.port}/0", timeout=0.2)
    start = time.monotonic()
    assert cache.get("greeting") is None
    elapsed = time.monotonic() - start
    assert 0.19 <= elapsed < 0.9  # one attempt: redis-py 5+ would retry 3 times with >= 1 s backoff
    assert misses(metrics)["error"] == 1
    assert breaker.stats()["failures"] == 1


def test_without_redis_configured_everything_is_a_miss():
    cache, metrics, breaker = make_cache("")
    assert cache.get("x") is None and cache.set("x", "y", ttl=1) is False and cache.incr("x") is None
    assert cache.unavailable_reason == "REDIS_URL is not set"
    assert misses(metrics)["unavailable"] == 1
    assert breaker.stats()["total_failures"] == 0
