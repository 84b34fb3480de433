"""Breaker admin API client against a real loopback server that emulates the app."""

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import breaker as br

from ..breaker_app import BreakerApp, breaker
from ansible_collections.unitehub.platform.tests.support.loopback import free_port

TOKEN = "s3cret-admin-token"


def test_build_endpoints():
    assert br.build_endpoints() == ["http://127.0.0.1:3008", "http://127.0.0.1:3009"]
    assert br.build_endpoints(host="::1", ports=[3009]) == ["http://[::1]:3009"]
    assert br.build_endpoints(["http://10.0.1.5:3008/"]) == ["http://10.0.1.5:3008"]
    with pytest.raises(br.BreakerError, match=r"endpoint '10.0.1.5:3008' is not an http\(s\) base URL"):
        br.build_endpoints(["10.0.1.5:3008"])
    with pytest.raises(br.BreakerError, match=r"port 70000 is not a TCP port \(1-65535\)"):
        br.build_endpoints(ports=[70000])


def test_fetch_endpoint_reads_slot_version_and_breakers():
    with BreakerApp("green", "v2", breakers={"redis": breaker("redis", "OPEN", failures=5, trips=1)}) as app:
        result = br.fetch_endpoint(app.url)
    assert result["slot"] == "green" and result["version"] == "v2"
    assert result["reachable"] and result["error"] is None
    assert result["breakers"]["redis"]["state"] == "OPEN"
    assert app.requests == [("GET", "/api/admin/breakers", None)]


def test_unreachable_endpoint_is_data_not_an_exception():
    url = "http://127.0.0.1:%d" % free_port()
    result = br.fetch_endpoint(url, timeout=2)
    assert result["reachable"] is False
    assert result["error"].startswith("cannot reach %s/api/admin/breakers" % url)
    assert result["breakers"] == {}


def test_http_error_and_wrong_api_are_data():
    with BreakerApp("blue", "v1") as app:
        app.list_status = 503
        failing = br.fetch_endpoint(app.url)
        wrong = br.fetch_endpoint(app.url + "/nope")
    assert failing["reachable"] and failing["error"] == 'GET %s/api/admin/breakers answered HTTP 503: {"error": "boom"}' % app.url
    assert "answered HTTP 404" in wrong["error"] and "is this the app's admin API?" in wrong["error"]


def test_summarize_lists_open_breakers_and_is_strict_about_all_closed():
    with BreakerApp("blue", "v1") as blue, BreakerApp("green", "v2") as green:
        green.breakers["redis"] = breaker("redis", "HALF_OPEN")
        results = [br.fetch_endpoint(blue.url), br.fetch_endpoint(green.url)]
        assert br.summarize(results) == {"open": ["green:redis"], "unreachable_endpoints": [], "all_closed": False}
        green.breakers["redis"] = breaker("redis")
        assert br.summarize([br.fetch_endpoint(blue.url), br.fetch_endpoint(green.url)])["all_closed"] is True
    down = br.fetch_endpoint("http://127.0.0.1:%d" % free_port(), timeout=2)
    summary = br.summarize([results[0], down])
    assert summary["all_closed"] is False and summary["unreachable_endpoints"] == [down["url"]]
    assert br.summarize([])["all_closed"] is False


@pytest.mark.parametrize("state, failures, action, expected", [
    ("CLOSED", 0, "reset", False),
    ("CLOSED", 3, "reset", True),
    ("OPEN", 5, "reset", True),
    ("HALF_OPEN", 0, "reset", True),
    ("OPEN", 5, "open", False),
    ("HALF_OPEN", 0, "open", True),
    ("CLOSED", 0, "open", True),
])
def test_needs_change(state, failures, action, expected):
    assert br.needs_change(breaker("redis", state, failures), action) is expected


def test_reset_an_open_breaker_then_again_is_idempotent():
    with BreakerApp("green", "v2", token=TOKEN) as app:
        app.breakers["redis"] = breaker("redis", "OPEN", failures=5, trips=1)
        first = br.set_breaker(app.url, "redis", "reset", TOKEN)
        second = br.set_breaker(app.url, "redis", "reset", TOKEN)
    assert first["changed"] and first["error"] is None
    assert (first["before"]["state"], first["after"]["state"], first["after"]["failures"]) == ("OPEN", "CLOSED", 0)
    assert second["changed"] is False and second["after"]["state"] == "CLOSED"
    assert app.posts() == [("POST", "/api/admin/breakers/redis/reset", "Bearer %s" % TOKEN)]


def test_open_then_open_again_sends_one_post():
    with BreakerApp("blue", "v1", token=TOKEN) as app:
        first = br.set_breaker(app.url, "database", "open", TOKEN)
        second = br.set_breaker(app.url, "database", "open", TOKEN)
    assert first["changed"] and first["after"]["state"] == "OPEN"
    assert not second["changed"]
    assert len(app.posts()) == 1


def test_check_mode_predicts_and_sends_nothing():
    with BreakerApp("blue", "v1", token=TOKEN) as app:
        app.breakers["redis"] = breaker("redis", "OPEN", failures=5)
        result = br.set_breaker(app.url, "redis", "reset", TOKEN, check_mode=True)
    assert result["changed"] and result["after"]["state"] == "CLOSED"
    assert app.posts() == [] and app.breakers["redis"]["state"] == "OPEN"


def test_wrong_token_gives_the_401_message_without_the_token():
    with BreakerApp("blue", "v1", token=TOKEN) as app:
        app.breakers["redis"] = breaker("redis", "OPEN", failures=5)
        result = br.set_breaker(app.url, "redis", "reset", "wrong-token-value")
    assert result["error"] == "the app refused the admin token (401): check APP_ADMIN_TOKEN / app_admin_token"
    assert result["changed"] is False
    assert "wrong-token-value" not in repr(result)
    assert app.breakers["redis"]["state"] == "OPEN"


def test_unknown_breaker_names_the_known_ones():
    with BreakerApp("blue", "v1", token=TOKEN) as app:
        result = br.set_breaker(app.url, "kafka", "reset", TOKEN)
    assert result["error"] == "breaker 'kafka' is not known to the app at %s; it has: database, redis" % app.url
    assert app.posts() == []
