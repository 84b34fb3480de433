"""The app_release module end to end, with the Docker client replaced by an in-memory fake."""

from __future__ import annotations

import pytest

from ansible_collections.unitehub.platform.plugins.modules import app_release
from ansible_collections.unitehub.platform.tests.support.loopback import free_port

SECRET = "token-that-must-not-leak"


@pytest.fixture
def api(fake_docker):
    return fake_docker(app_release, "unitehub/app:v1")


@pytest.fixture
def green(tmp_path):
    return {"slot": "green", "image": "unitehub/app", "version": "v1", "port": 3009,
            "secret_env": {"APP_ADMIN_TOKEN": SECRET}, "secrets_dir": str(tmp_path / "secrets")}


def test_started_without_a_gate_runs_the_slot_and_never_prints_the_secret(api, run_module, green):
    _rc, result, out = run_module(app_release, green, diff=True)
    assert result["changed"] and result["container"]["running"] and result["gate"] is None
    assert list(result["phases"]) == ["image", "start"] and result["diff"]["after"]["state"] == "running"
    assert SECRET not in out
    assert run_module(app_release, green).result["changed"] is False


def test_a_slot_that_does_not_answer_fails_its_gate_with_the_reason_and_the_timings(api, run_module, green):
    port = free_port()  # nothing listens there: every probe is refused
    rc, result, _out = run_module(app_release, dict(green, port=port, health_path="/api/health/system",
                                                    health_timeout=0, health_interval=0.1))
    assert rc == 1 and result["failed"]
    assert result["msg"].startswith("http://127.0.0.1:%d/api/health/system is fail after 1 attempt" % port)
    assert "connection refused" in result["msg"]
    assert result["container"]["running"] and set(result["phases"]) == {"image", "start", "health_gate"}


def test_started_needs_image_version_and_port(api, run_module):
    rc, result, _out = run_module(app_release, {"slot": "green"})
    assert rc == 1 and "state is started but all of the following are missing: image, version, port" in result["msg"]


def test_stopped_stops_only_the_slot(api, run_module, green):
    run_module(app_release, green)
    result = run_module(app_release, {"slot": "green", "state": "stopped"}).result
    assert result["actions"] == ["stop"] and result["container"]["running"] is False
