"""The breaker module end to end against loopback app stand-ins."""

import json

from ansible_collections.unitehub.platform.plugins.modules import breaker

from ..breaker_app import BreakerApp, breaker as make_breaker
from ansible_collections.unitehub.platform.tests.support.loopback import free_port

TOKEN = "s3cret-admin-token"


def test_breaker_reset_across_slots_is_idempotent_with_diff(run_module):
    with BreakerApp("blue", "v1", token=TOKEN) as blue, BreakerApp("green", "v2", token=TOKEN) as green:
        green.breakers["redis"] = make_breaker("redis", "OPEN", failures=5, trips=1)
        _rc, first, first_out = run_module(
            breaker, dict(name="redis", state="reset", token=TOKEN, endpoints=[blue.url, green.url]), diff=True)
        second = run_module(
            breaker, dict(name="redis", state="reset", token=TOKEN, endpoints=[blue.url, green.url])).result
    assert first["changed"] is True
    assert [e["changed"] for e in first["endpoints"]] == [False, True]
    assert first["diff"] == {"before": {"blue": "CLOSED", "green": "OPEN"}, "after": {"blue": "CLOSED", "green": "CLOSED"}}
    assert second["changed"] is False
    assert blue.posts() == [] and len(green.posts()) == 1
    assert TOKEN not in first_out


def test_breaker_open_in_check_mode_changes_nothing(run_module):
    with BreakerApp("blue", "v1", token=TOKEN) as blue:
        result = run_module(
            breaker, dict(name="database", state="open", token=TOKEN, endpoints=[blue.url]), check_mode=True).result
        assert blue.breakers["database"]["state"] == "CLOSED"
    assert result["changed"] and result["endpoints"][0]["after"]["state"] == "OPEN"
    assert blue.posts() == []


def test_breaker_wrong_token_fails_with_the_fix_and_no_token(run_module):
    with BreakerApp("blue", "v1", token=TOKEN) as blue:
        blue.breakers["redis"] = make_breaker("redis", "OPEN", failures=5)
        _rc, result, out = run_module(breaker, dict(name="redis", token="not-the-admin-token", endpoints=[blue.url]))
    assert result["failed"]
    assert result["msg"] == "the app refused the admin token (401): check APP_ADMIN_TOKEN / app_admin_token"
    assert "not-the-admin-token" not in out


def test_breaker_unreachable_fails_unless_skipped(run_module):
    down = "http://127.0.0.1:%d" % free_port()
    with BreakerApp("blue", "v1", token=TOKEN) as blue:
        blue.breakers["redis"] = make_breaker("redis", "OPEN", failures=5)
        failed = run_module(breaker, dict(name="redis", token=TOKEN, endpoints=[blue.url, down], timeout=2)).result
        assert failed["failed"] and failed["msg"].startswith("cannot reach %s" % down)
        assert failed["changed"] is True, "the reachable slot was reset and that is reported"
        blue.breakers["redis"] = make_breaker("redis", "OPEN", failures=5)
        skipped = run_module(
            breaker, dict(name="redis", token=TOKEN, endpoints=[blue.url, down], request_timeout=2, skip_unreachable=True)).result
    assert not skipped.get("failed") and skipped["changed"]
    assert "skipped unreachable endpoint(s): %s" % down in json.dumps(skipped["warnings"])


def test_breaker_unknown_name_fails(run_module):
    with BreakerApp("blue", "v1", token=TOKEN) as blue:
        result = run_module(breaker, dict(name="kafka", token=TOKEN, endpoints=[blue.url])).result
    assert result["failed"] and "breaker 'kafka' is not known to the app" in result["msg"]
