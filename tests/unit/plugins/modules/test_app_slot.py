"""The app_slot module end to end, with the Docker client replaced by an in-memory fake."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.unitehub.platform.plugins.module_utils import docker_client
from ansible_collections.unitehub.platform.plugins.module_utils.docker_client import DockerModuleError
from ansible_collections.unitehub.platform.plugins.modules import app_slot

SECRET = "token-that-must-not-leak"


@pytest.fixture
def api(fake_docker):
    return fake_docker(app_slot, "unitehub/app:v1")


BLUE = {
    "slot": "blue",
    "image": "unitehub/app",
    "version": "v1",
    "port": 3008,
    "env": {"REDIS_URL": "redis://127.0.0.1:6379/0"},
    "secret_env": {"APP_ADMIN_TOKEN": SECRET},
    "log_lines": 5,
}


@pytest.fixture(autouse=True)
def secrets_dir(tmp_path, monkeypatch):
    """Every run's secret files go to the test's own directory."""
    monkeypatch.setitem(BLUE, "secrets_dir", str(tmp_path / "secrets"))
    return tmp_path / "secrets"


def test_started_runs_the_container_and_never_prints_the_secret(api, run_module, secrets_dir):
    api.log_lines["unitehub-blue"] = ["listening on 127.0.0.1:3008"]
    _rc, result, out = run_module(app_slot, BLUE, diff=True)

    assert result["changed"] is True and result["secret_files_changed"] is True
    assert result["container"]["name"] == "unitehub-blue"
    assert result["container"]["running"] is True
    assert result["logs"] == ["listening on 127.0.0.1:3008"]
    assert result["diff"]["after"]["env"]["APP_ADMIN_TOKEN_FILE"] == "/run/secrets/APP_ADMIN_TOKEN"
    assert SECRET not in out
    assert SECRET not in str(api.container("unitehub-blue"))
    assert (secrets_dir / "unitehub-blue" / "APP_ADMIN_TOKEN").read_text() == SECRET

    again = run_module(app_slot, BLUE).result
    assert again["changed"] is False


def test_a_secret_kept_in_the_environment_is_never_printed(api, run_module):
    _rc, result, out = run_module(app_slot, dict(BLUE, secret_env_in_environment=["APP_ADMIN_TOKEN"]), diff=True)
    assert result["diff"]["after"]["env"]["APP_ADMIN_TOKEN"] == "(changed)"
    assert SECRET not in out
    assert "APP_ADMIN_TOKEN=%s" % SECRET in api.container("unitehub-blue")["Config"]["Env"]


def test_diff_is_returned_only_in_diff_mode(api, run_module):
    result = run_module(app_slot, BLUE).result
    assert "diff" not in result


def test_check_mode_changes_nothing(api, run_module):
    result = run_module(app_slot, BLUE, check_mode=True).result
    assert result["changed"] is True and result["actions"] == ["create", "start"]
    assert api.containers_by_id == {}


def test_started_without_port_fails_in_argument_validation(api, run_module):
    args = {k: v for k, v in BLUE.items() if k != "port"}
    result = run_module(app_slot, args).result
    assert result["failed"] is True
    assert result["msg"] == "state is started but all of the following are missing: port"


def test_missing_image_fails_with_the_image_named(api, run_module):
    result = run_module(app_slot, dict(BLUE, version="v7")).result
    assert result["failed"] is True
    assert result["msg"].startswith("image unitehub/app:v7 is not present on this Docker host")
    assert result["image"] == "unitehub/app:v7"
    assert api.containers_by_id == {}


def test_stop_by_name_needs_no_image(api, run_module):
    run_module(app_slot, BLUE)
    result = run_module(app_slot, {"name": "unitehub-blue", "state": "stopped", "stop_grace_period": 7}).result
    assert result["changed"] is True and result["container"]["running"] is False
    assert [c for c in api.calls if c[0] == "stop"][0][2] == {"timeout": 7}


def test_unreachable_daemon_is_reported(monkeypatch, run_module):
    def unreachable(host, timeout):
        raise DockerModuleError("cannot reach the Docker daemon at tcp://127.0.0.1:1: refused")

    monkeypatch.setattr(docker_client, "docker_api_client", unreachable)
    result = run_module(app_slot, dict(BLUE, docker_host="tcp://127.0.0.1:1")).result
    assert result["failed"] is True
    assert result["msg"] == "cannot reach the Docker daemon at tcp://127.0.0.1:1: refused"


def test_missing_sdk_is_reported_with_missing_required_lib(monkeypatch, run_module):
    monkeypatch.setattr(docker_client, "HAS_DOCKER", False)
    result = run_module(app_slot, BLUE).result
    assert result["failed"] is True
    assert "Failed to import the required Python library (docker)" in result["msg"]


def test_return_documents_every_returned_key(api, run_module):
    documented = yaml.safe_load(app_slot.RETURN)
    result = run_module(app_slot, BLUE).result
    returned = set(result) - {"changed", "invocation"}
    assert returned == set(documented)
    assert set(result["container"]) == set(documented["container"]["contains"])


def test_image_id_runs_the_recorded_image_whatever_the_tag_names_now(api, run_module):
    recorded = api.tags["unitehub/app:v1"]
    api.add_image("unitehub/app:v1")  # the tag was pushed and pulled again

    result = run_module(app_slot, dict(BLUE, image_id=recorded)).result

    assert result["changed"] is True
    assert result["container"]["image_id"] == recorded
    assert result["container"]["version"] == "v1"
