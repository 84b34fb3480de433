"""The app_slot module end to end, with the Docker client replaced by an in-memory fake."""

from __future__ import annotations

import json

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.unitehub.platform.plugins.module_utils.docker_common import DockerModuleError
from ansible_collections.unitehub.platform.plugins.modules import app_slot
from ansible_collections.unitehub.platform.tests.unit.plugins.module_utils.docker_fakes import FakeDockerAPI

SECRET = "token-that-must-not-leak"


@pytest.fixture
def api(monkeypatch):
    fake = FakeDockerAPI()
    fake.add_image("unitehub/app:v1")
    monkeypatch.setattr(app_slot, "docker_api_client", lambda host, timeout: fake)
    return fake


def run(capsys, args, check_mode=False, diff=False):
    args = dict(args)
    args["_ansible_check_mode"] = check_mode
    args["_ansible_diff"] = diff
    with patch_module_args(args), pytest.raises(SystemExit) as exit_info:
        app_slot.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    assert (exit_info.value.code != 0) == bool(result.get("failed"))
    return result, out


BLUE = {
    "slot": "blue",
    "image": "unitehub/app",
    "version": "v1",
    "port": 3008,
    "env": {"REDIS_URL": "redis://127.0.0.1:6379/0"},
    "secret_env": {"APP_ADMIN_TOKEN": SECRET},
    "log_lines": 5,
}


def test_started_runs_the_container_and_never_prints_the_secret(api, capsys):
    api.log_lines["unitehub-blue"] = ["listening on 127.0.0.1:3008"]
    result, out = run(capsys, BLUE, diff=True)

    assert result["changed"] is True
    assert result["container"]["name"] == "unitehub-blue"
    assert result["container"]["running"] is True
    assert result["logs"] == ["listening on 127.0.0.1:3008"]
    assert result["diff"]["after"]["env"]["APP_ADMIN_TOKEN"] == "(changed)"
    assert SECRET not in out
    assert "APP_ADMIN_TOKEN=%s" % SECRET in api.container("unitehub-blue")["Config"]["Env"]

    again, _unused = run(capsys, BLUE)
    assert again["changed"] is False


def test_diff_is_returned_only_in_diff_mode(api, capsys):
    result, _unused = run(capsys, BLUE)
    assert "diff" not in result


def test_check_mode_changes_nothing(api, capsys):
    result, _unused = run(capsys, BLUE, check_mode=True)
    assert result["changed"] is True and result["actions"] == ["create", "start"]
    assert api.containers_by_id == {}


def test_started_without_port_fails_in_argument_validation(api, capsys):
    args = {k: v for k, v in BLUE.items() if k != "port"}
    result, _unused = run(capsys, args)
    assert result["failed"] is True
    assert result["msg"] == "state is started but all of the following are missing: port"


def test_missing_image_fails_with_the_image_named(api, capsys):
    result, _unused = run(capsys, dict(BLUE, version="v7"))
    assert result["failed"] is True
    assert result["msg"].startswith("image unitehub/app:v7 is not present on this Docker host")
    assert result["image"] == "unitehub/app:v7"
    assert api.containers_by_id == {}


def test_stop_by_name_needs_no_image(api, capsys):
    run(capsys, BLUE)
    result, _unused = run(capsys, {"name": "unitehub-blue", "state": "stopped", "stop_grace_period": 7})
    assert result["changed"] is True and result["container"]["running"] is False
    assert [c for c in api.calls if c[0] == "stop"][0][2] == {"timeout": 7}


def test_unreachable_daemon_is_reported(monkeypatch, capsys):
    def unreachable(host, timeout):
        raise DockerModuleError("cannot reach the Docker daemon at tcp://127.0.0.1:1: refused")

    monkeypatch.setattr(app_slot, "docker_api_client", unreachable)
    result, _unused = run(capsys, dict(BLUE, docker_host="tcp://127.0.0.1:1"))
    assert result["failed"] is True
    assert result["msg"] == "cannot reach the Docker daemon at tcp://127.0.0.1:1: refused"


def test_missing_sdk_is_reported_with_missing_required_lib(monkeypatch, capsys):
    monkeypatch.setattr(app_slot, "HAS_DOCKER", False)
    result, _unused = run(capsys, BLUE)
    assert result["failed"] is True
    assert "Failed to import the required Python library (docker)" in result["msg"]


def test_return_documents_every_returned_key(api, capsys):
    documented = yaml.safe_load(app_slot.RETURN)
    result, _unused = run(capsys, BLUE)
    returned = set(result) - {"changed", "invocation"}
    assert returned == set(documented)
    assert set(result["container"]) == set(documented["container"]["contains"])
