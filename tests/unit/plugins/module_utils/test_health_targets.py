"""Unit tests for plugins/module_utils/health_targets.py."""

from __future__ import annotations

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils.health_format import ProbeConfigError
from ansible_collections.unitehub.platform.plugins.module_utils.health_targets import resolve_target


# ---------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------


def test_resolve_target_merges_defaults_and_fills_ports():
    spec = resolve_target({"type": "redis", "name": "cache"}, {"timeout": 10, "login_password": "s3cret", "login_host": None})
    assert (spec["login_host"], spec["login_port"], spec["timeout"], spec["interval"], spec["name"]) == (
        "127.0.0.1", 6379, 10.0, 5.0, "cache")
    assert spec["target"] == "redis://127.0.0.1:6379"
    assert resolve_target({"type": "pgbouncer", "login_user": "pgbouncer", "login_password": "pw"})["target"] == \
        "pgbouncer://pgbouncer@127.0.0.1:6432/pgbouncer"
    assert resolve_target({"type": "postgres", "login_host": "::1", "login_db": "app"})["target"] == \
        "postgres://[::1]:5432/app"
    spec = resolve_target({"url": "http://127.0.0.1:3008/api/health/system"}, {"type": "http", "timeout": 0})
    assert (spec["name"], spec["timeout"], spec["expect"]) == ("http://127.0.0.1:3008/api/health/system", 0.0, "pass")


def test_target_labels_never_hold_a_password():
    for probe_type in ("redis", "postgres", "pgbouncer", "tcp"):
        spec = resolve_target({"type": probe_type, "login_port": 1234, "login_user": "u", "login_password": "hunter2"})
        assert "hunter2" not in spec["target"]


@pytest.mark.parametrize("target, message", [
    ({"type": "ftp"}, "type 'ftp' is not one of http, tcp, redis, postgres, pgbouncer"),
    ({}, "type None is not one of"),
    ({"type": "http"}, "type http needs url, e.g. http://127.0.0.1:3008/api/health/system"),
    ({"type": "http", "url": "127.0.0.1:3008/health"}, "url '127.0.0.1:3008/health' must be an absolute http://"),
    ({"type": "http", "url": "ftp://x/health"}, "must be an absolute http:// or https:// URL"),
    ({"type": "http", "url": "http:///health"}, "must be an absolute http:// or https:// URL"),
    ({"type": "tcp"}, "type tcp needs login_port"),
    ({"type": "tcp", "login_port": 70000}, "login_port 70000 is not between 1 and 65535"),
    ({"type": "tcp", "login_port": "abc"}, "login_port 'abc' is not a number"),
    ({"type": "redis", "interval": 0}, "interval 0 must be more than 0 seconds"),
    ({"type": "redis", "timeout": -1}, "timeout -1 must be 0 (one attempt) or more seconds"),
    ({"type": "redis", "request_timeout": 0}, "request_timeout 0 must be more than 0 seconds"),
    ({"type": "redis", "consecutive_successes": 0}, "consecutive_successes 0 must be 1 or more"),
    ({"type": "redis", "max_failures": 0}, "max_failures 0 must be 1 or more"),
    ({"type": "redis", "expect": "green"}, "expect 'green' is not one of pass, pass_or_warn"),
])
def test_resolve_target_names_the_bad_value(target, message):
    with pytest.raises(ProbeConfigError) as err:
        resolve_target(target)
    assert message in str(err.value)


@pytest.mark.parametrize("key", ["timeout", "interval", "request_timeout"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), "nan", "inf"])
def test_numbers_must_be_finite(key, value):
    with pytest.raises(ProbeConfigError, match="%s .* is not a finite number" % key):
        resolve_target({"type": "redis", key: value})
