"""The breaker_info module end to end against loopback app stand-ins."""

import json

from ansible_collections.unitehub.platform.plugins.modules import breaker_info

from ..breaker_app import BreakerApp, breaker as make_breaker
from ansible_collections.unitehub.platform.tests.support.loopback import free_port

TOKEN = "s3cret-admin-token"


def test_breaker_info_reports_both_slots(run_module):
    with BreakerApp("blue", "v1") as blue, BreakerApp("green", "v2") as green:
        green.breakers["redis"] = make_breaker("redis", "OPEN", failures=5, trips=1)
        result = run_module(breaker_info, dict(endpoints=[blue.url, green.url]), check_mode=True).result
    assert result["changed"] is False
    assert [(e["slot"], e["version"], e["reachable"]) for e in result["endpoints"]] == [
        ("blue", "v1", True), ("green", "v2", True)]
    assert result["open"] == ["green:redis"]
    assert result["all_closed"] is False and result["unreachable_endpoints"] == []


def test_breaker_info_from_host_and_ports_with_a_stopped_slot(run_module):
    down = free_port()
    with BreakerApp("blue", "v1") as blue:
        port = int(blue.url.rsplit(":", 1)[1])
        result = run_module(breaker_info, dict(host="127.0.0.1", ports=[port, down], request_timeout=2)).result
    assert result["endpoints"][0]["reachable"] and result["endpoints"][0]["breakers"]["redis"]["state"] == "CLOSED"
    assert result["endpoints"][1]["reachable"] is False
    assert result["unreachable_endpoints"] == ["http://127.0.0.1:%d" % down]
    assert result["open"] == [] and result["all_closed"] is False


def test_breaker_info_token_is_not_logged(run_module):
    with BreakerApp("blue", "v1", token=TOKEN) as blue:
        _rc, result, out = run_module(breaker_info, dict(endpoints=[blue.url], token=TOKEN))
    assert result["all_closed"] is True
    assert blue.requests[0][2] == "Bearer %s" % TOKEN
    assert TOKEN not in out


def test_the_old_timeout_name_still_works_and_is_deprecated(run_module):
    with BreakerApp("blue", "v1") as blue:
        result = run_module(breaker_info, dict(endpoints=[blue.url], timeout=2)).result
    assert result["all_closed"] is True
    deprecations = json.dumps(result["deprecations"])
    assert "Alias 'timeout' is deprecated" in deprecations and '"2.0.0"' in deprecations


def test_no_result_key_is_one_ansible_reserves(run_module):
    down = free_port()
    result = run_module(breaker_info, dict(host="127.0.0.1", ports=[down], request_timeout=1)).result
    assert "unreachable" not in result, "Ansible would read it as 'host unreachable'"
    assert result["unreachable_endpoints"] == ["http://127.0.0.1:%d" % down]
