"""Unit tests for plugins/module_utils/health_report.py: the rows health.yml shows."""

from __future__ import annotations

from ansible_collections.unitehub.platform.plugins.module_utils.health_report import (
    health_rows,
    health_table,
    slot_targets,
)

PORTS = {"blue": 3008, "green": 3009}


def probe_result(name, status, target, latency=1.25, checks=None, error=None):
    return {"name": name, "status": status, "target": target, "latency_ms": latency, "checks": checks or {},
            "error": error, "msg": "%s is %s" % (target, status)}


def slots(*running):
    return {"containers": [{"slot": slot, "running": slot in running} for slot in ("blue", "green")]}


def test_slot_targets_are_the_running_slots_watching_their_containers():
    assert slot_targets(slots("green"), "127.0.0.1", PORTS, "/health", "shop") == [{
        "name": "app-green", "type": "http", "url": "http://127.0.0.1:3009/health", "container": "shop-green",
        "expect": "pass_or_warn"}]
    assert slot_targets(slots(), "127.0.0.1", PORTS, "/health", "shop") == []
    assert slot_targets({}, "127.0.0.1", PORTS, "/health", "shop") == []


def test_probed_components_become_rows_naming_what_does_not_pass():
    warn_checks = {"redis:responseTime": [{"status": "warn", "output": "slow"}],
                   "ai:config": [{"status": "pass"}]}
    report = {"groups": ["lb", "cache"], "probe": {"target_results": [
        probe_result("nginx", "warn", "http://127.0.0.1:8080/api/health/system", checks=warn_checks),
        probe_result("redis", "fail", "redis://127.0.0.1:6379", latency=None, error="connection refused"),
    ]}}
    rows = health_rows({"lb1": report}, ["lb1"])
    assert [(r["component"], r["host"], r["status"], r["latency"], r["failing"]) for r in rows] == [
        ("nginx", "lb1", "warn", "1.2 ms", "redis:responseTime"),
        ("redis", "lb1", "fail", "-", "connection refused")]


def test_a_check_with_several_failing_objects_is_named_once_in_document_order():
    checks = {"db:up": [{"status": "fail"}, {"status": "fail"}], "cache:up": [{"status": "fail"}]}
    report = {"groups": ["lb"], "probe": {"target_results": [
        probe_result("nginx", "fail", "http://127.0.0.1:8080/api/health/system", checks=checks)]}}
    assert health_rows({"lb1": report}, ["lb1"])[0]["failing"] == "db:up, cache:up"


def test_hosts_that_cannot_tell_are_failing_rows():
    reports = {
        "app1": {"groups": ["app"], "probe": {}, "slots": {"failed": True, "msg": "cannot reach the Docker daemon"}},
        "app2": {"groups": ["app"], "probe": {"target_results": []}, "slots": slots(), "app_name": "shop"},
        "db1": {"groups": ["db"], "probe": {"failed": True, "msg": "psycopg is missing\nmore"}},
    }
    rows = health_rows(reports, ["app1", "app2", "db1", "ghost"])
    assert [(r["component"], r["host"], r["status"], r["failing"]) for r in rows] == [
        ("app", "app1", "fail", "cannot reach the Docker daemon"),
        ("app", "app2", "fail", "no slot running"),
        ("-", "db1", "fail", "psycopg is missing"),
        ("-", "ghost", "fail", "no result"),
    ]
    assert rows[1]["msg"] == "no shop slot is running on app2"
    assert rows[3]["msg"] == "ghost did not report: no result"


def test_an_app_host_with_a_running_slot_reports_it_alone():
    report = {"groups": ["app"], "slots": slots("blue"), "probe": {"target_results": [
        probe_result("app-blue", "pass", "http://127.0.0.1:3008/api/health/system")]}}
    rows = health_rows({"app1": report}, ["app1"])
    assert [(r["component"], r["status"], r["failing"]) for r in rows] == [("app-blue", "pass", "")]


def test_table_aligns_the_rows_under_the_header():
    rows = health_rows({"lb1": {"groups": ["lb"], "probe": {"target_results": [
        probe_result("nginx", "pass", "http://127.0.0.1:8080/api/health/system")]}}}, ["lb1"])
    lines = health_table(rows)
    assert lines[0].split() == ["COMPONENT", "HOST", "STATUS", "LATENCY", "TARGET", "FAILING"]
    assert lines[1].split() == ["nginx", "lb1", "pass", "1.2", "ms", "http://127.0.0.1:8080/api/health/system"]
    assert lines[1].index("pass") == lines[0].index("STATUS")
