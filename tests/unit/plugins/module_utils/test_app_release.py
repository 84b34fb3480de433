"""Release: image, slot and health gate of one app host in one call, against an in-memory Docker API
and an injected gate (the health wait itself is tested in test_health_wait)."""

from __future__ import annotations

import itertools

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils.app_release import Release, ReleaseSpec
from ansible_collections.unitehub.platform.plugins.module_utils.docker_client import APIError, DockerModuleError
from ansible_collections.unitehub.platform.tests.unit.plugins.module_utils.docker_fakes import FakeDockerAPI, FakeResponse


@pytest.fixture
def api():
    fake = FakeDockerAPI()
    fake.add_image("unitehub/app:v1", env=["PATH=/usr/bin:/bin"])
    return fake


@pytest.fixture
def params(tmp_path):
    return {
        "secrets_dir": str(tmp_path / "secrets"), "app_name": "unitehub", "slot": "green", "state": "started",
        "image": "unitehub/app", "version": "v1", "port": 3009, "env": {}, "secret_env": {},
        "health_path": "/api/health/system", "health_expect": "pass", "health_timeout": 5.0,
        "health_interval": 0.2, "health_consecutive": 3,
    }


class Gate:
    """A stand-in for the health wait: records the target and the container check, answers ``ok``."""

    def __init__(self, ok=True, msg="http://127.0.0.1:3009/api/health/system is pass after 3 attempts in 0.4 s"):
        self.ok, self.msg, self.calls = ok, msg, []

    def __call__(self, spec, container_check=None):
        self.calls.append((spec, container_check()))
        return {"ok": self.ok, "msg": self.msg, "status": "pass" if self.ok else "fail", "attempts": 3}


def ticking_clock():
    counter = itertools.count()
    return lambda: next(counter) * 0.5


def test_started_ensures_the_image_starts_the_slot_then_gates_it_directly(api, params):
    gate = Gate()
    result = Release(api, clock=ticking_clock(), gate=gate).run(ReleaseSpec(params))
    assert result["changed"] and result["actions"] == ["create", "start"]
    assert result["container"]["running"] and result["container"]["version"] == "v1"
    spec, container_problem = gate.calls[0]
    # Probed on the slot's own address and port, watching its container, which runs.
    assert spec["url"] == "http://127.0.0.1:3009/api/health/system" and spec["container"] == "unitehub-green"
    assert spec["interval"] == 0.2 and spec["consecutive_successes"] == 3 and container_problem is None
    assert list(result["phases"]) == ["image", "start", "health_gate"]
    assert all(seconds == 0.5 for seconds in result["phases"].values())
    assert not result["image_changed"] and "pull" not in api.call_names()


def test_a_missing_image_is_pulled_in_the_same_call(api, params):
    result = Release(api, gate=Gate()).run(ReleaseSpec(dict(params, version="v2")))
    assert result["image_changed"] and "pull" in api.call_names()
    assert result["container"]["version"] == "v2"


def test_a_failed_gate_fails_with_its_reason_the_container_and_the_timings(api, params):
    gate = Gate(ok=False, msg="http://127.0.0.1:3009/api/health/system is fail after 9 attempts in 5.0 s: "
                              "redis:responseTime fail")
    with pytest.raises(DockerModuleError) as failure:
        Release(api, gate=gate).run(ReleaseSpec(params))
    assert failure.value.msg == gate.msg
    details = failure.value.details
    # The container is left running: the caller collects its logs and stops it on every host.
    assert details["container"]["running"] and details["gate"]["ok"] is False
    assert set(details["phases"]) == {"image", "start", "health_gate"} and "diff" not in details
    assert details["stage"] == "health_gate"


def test_breakers_not_closed_refuse_the_slot_after_its_gate(api, params):
    seen = {}

    def fetch(base_url, token=None, timeout=5.0):
        seen.update(url=base_url, token=token)
        return {"url": base_url, "slot": "green", "version": "v1", "reachable": True, "error": None,
                "breakers": {"redis": {"state": "OPEN"}, "database": {"state": "CLOSED"}}}

    spec = ReleaseSpec(dict(params, health_expect="pass_or_warn", require_closed_breakers=True, admin_token="t0k"))
    with pytest.raises(DockerModuleError) as failure:
        Release(api, gate=Gate(), fetch=fetch).run(spec)
    assert seen == {"url": "http://127.0.0.1:3009", "token": "t0k"}
    assert failure.value.msg.startswith("slot green is not ready: breakers not CLOSED: green:redis.")
    assert failure.value.details["breakers"]["all_closed"] is False


def test_closed_breakers_pass(api, params):
    def fetch(base_url, token=None, timeout=5.0):
        return {"url": base_url, "slot": "green", "version": "v1", "reachable": True, "error": None,
                "breakers": {"redis": {"state": "CLOSED"}}}

    spec = ReleaseSpec(dict(params, require_closed_breakers=True))
    assert Release(api, gate=Gate(), fetch=fetch).run(spec)["breakers"]["all_closed"] is True


def test_check_mode_with_an_image_to_fetch_stops_before_the_container_and_probes_nothing(api, params):
    gate = Gate()
    result = Release(api, check_mode=True, gate=gate).run(ReleaseSpec(dict(params, version="v9")))
    assert result["changed"] and result["container"] == {} and not gate.calls
    assert result["msg"].startswith("Check mode: unitehub/app:v9 would be pulled first")
    assert not api.mutating_calls()


def test_check_mode_of_a_live_unchanged_slot_reports_no_change(api, params):
    Release(api, gate=Gate()).run(ReleaseSpec(params))
    gate = Gate()
    result = Release(api, check_mode=True, gate=gate).run(ReleaseSpec(params))
    assert not result["changed"] and result["container"]["running"] and not gate.calls


def test_a_recorded_image_id_runs_as_it_is_without_fetching(api, params):
    image_id = api.inspect_image("unitehub/app:v1")["Id"]
    result = Release(api, gate=Gate()).run(ReleaseSpec(dict(params, image_id=image_id)))
    assert result["image"] == {} and result["phases"]["image"] == 0.0
    assert result["container"]["image_id"] == image_id and "pull" not in api.call_names()


def test_without_a_health_path_there_is_no_gate(api, params):
    gate = Gate()
    result = Release(api, gate=gate).run(ReleaseSpec(dict(params, health_path=None)))
    assert result["gate"] is None and not gate.calls and list(result["phases"]) == ["image", "start"]


def test_stopped_only_stops_the_slot(api, params):
    Release(api, gate=Gate()).run(ReleaseSpec(params))
    gate = Gate()
    stop = {"slot": "green", "state": "stopped", "stop_grace_period": 7, "secrets_dir": params["secrets_dir"]}
    result = Release(api, gate=gate).run(ReleaseSpec(stop))
    assert result["actions"] == ["stop"] and not result["container"]["running"] and not gate.calls
    assert list(result["phases"]) == ["stop"]


def test_a_bad_gate_setting_is_refused_before_the_daemon_is_reached(params):
    with pytest.raises(DockerModuleError, match="consecutive_successes"):
        ReleaseSpec(dict(params, health_consecutive=0))


def test_an_image_that_cannot_be_fetched_fails_before_the_slot_is_touched(api, params):
    api.fail_on["pull"] = APIError("404 Not Found", response=FakeResponse(404, "Not Found"),
                                   explanation="manifest for unitehub/app:v404 not found")
    gate = Gate()
    with pytest.raises(DockerModuleError) as failure:
        Release(api, gate=gate).run(ReleaseSpec(dict(params, version="v404")))
    assert failure.value.details["stage"] == "image" and "image" in failure.value.details["phases"]
    assert api.call_names()[-1] == "pull" and "create_container" not in api.call_names() and not gate.calls
