"""The app_slot_info module end to end, with the Docker client replaced by an in-memory fake."""

from __future__ import annotations

import json

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.unitehub.platform.plugins.module_utils.docker_common import DockerModuleError
from ansible_collections.unitehub.platform.plugins.module_utils.docker_slot import SlotManager, SlotSpec
from ansible_collections.unitehub.platform.plugins.modules import app_slot_info
from ansible_collections.unitehub.platform.tests.unit.plugins.module_utils.docker_fakes import FakeDockerAPI

SECRET = "token-that-must-not-leak"


@pytest.fixture
def api(monkeypatch):
    fake = FakeDockerAPI()
    fake.add_image("unitehub/app:v1")
    monkeypatch.setattr(app_slot_info, "docker_api_client", lambda host, timeout: fake)
    return fake


def start_blue(api):
    spec = SlotSpec(
        {
            "slot": "blue",
            "image": "unitehub/app",
            "version": "v1",
            "port": 3008,
            "secret_env": {"APP_ADMIN_TOKEN": SECRET},
        }
    )
    return SlotManager(api).ensure(spec)


def run(capsys, args, check_mode=False):
    args = dict(args, _ansible_check_mode=check_mode)
    with patch_module_args(args), pytest.raises(SystemExit) as exit_info:
        app_slot_info.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    assert (exit_info.value.code != 0) == bool(result.get("failed"))
    return result, out


def test_both_slots_by_default_one_running_one_absent(api, capsys):
    start_blue(api)
    api.log_lines["unitehub-blue"] = ["listening on 127.0.0.1:3008"]

    result, out = run(capsys, {"log_lines": 5})

    assert result["changed"] is False
    blue, green = result["containers"]
    assert (blue["name"], blue["exists"], blue["running"], blue["status"]) == ("unitehub-blue", True, True, "running")
    assert blue["logs"] == ["listening on 127.0.0.1:3008"]
    assert (green["name"], green["exists"], green["running"], green["status"]) == (
        "unitehub-green",
        False,
        False,
        "absent",
    )
    assert green["logs"] == []
    assert "container" not in result and "exists" not in result
    assert SECRET not in out


def test_by_name_gives_what_the_status_playbook_reads(api, capsys):
    start_blue(api)
    running, _unused = run(capsys, {"name": "unitehub-blue"})
    assert running["exists"] is True
    assert running["container"]["running"] is True and running["container"]["status"] == "running"
    assert running["containers"] == [running["container"]]

    SlotManager(api).ensure(SlotSpec({"name": "unitehub-blue", "state": "stopped"}))
    stopped, _unused = run(capsys, {"name": "unitehub-blue"})
    assert stopped["container"]["running"] is False and stopped["container"]["status"] == "exited"

    absent, _unused = run(capsys, {"name": "unitehub-green"})
    assert absent["exists"] is False
    assert absent["container"]["running"] is False and absent["container"]["status"] == "absent"


def test_check_mode_reads_the_same_and_changes_nothing(api, capsys):
    start_blue(api)
    api.calls.clear()
    normal, _unused = run(capsys, {"name": "unitehub-blue"})
    checked, _unused = run(capsys, {"name": "unitehub-blue"}, check_mode=True)
    assert checked["containers"] == normal["containers"] and checked["changed"] is False
    assert api.mutating_calls() == []


@pytest.mark.parametrize(
    "args, message",
    [
        ({"name": "unitehub-blue", "slots": ["blue"]}, "parameters are mutually exclusive: name|slots"),
        ({"name": "unitehub-blue", "app_name": "shop"}, "parameters are mutually exclusive: name|app_name"),
        ({"slots": ["purple"]}, "value of slots must be one or more of: blue, green. Got no match for: purple"),
        ({"name": "bad name"}, "name 'bad name' is not a valid container name"),
        ({"log_lines": -3}, "log_lines -3 is negative"),
    ],
)
def test_bad_input_fails_naming_it(api, capsys, args, message):
    result, _unused = run(capsys, args)
    assert result["failed"] is True
    assert message in result["msg"]
    assert api.calls == []


def test_unreachable_daemon_is_reported(monkeypatch, capsys):
    def unreachable(host, timeout):
        raise DockerModuleError("cannot reach the Docker daemon at tcp://127.0.0.1:1: refused")

    monkeypatch.setattr(app_slot_info, "docker_api_client", unreachable)
    result, _unused = run(capsys, {"docker_host": "tcp://127.0.0.1:1"})
    assert result["failed"] is True
    assert result["msg"] == "cannot reach the Docker daemon at tcp://127.0.0.1:1: refused"


def test_missing_sdk_is_reported_with_missing_required_lib(monkeypatch, capsys):
    monkeypatch.setattr(app_slot_info, "HAS_DOCKER", False)
    result, _unused = run(capsys, {})
    assert result["failed"] is True
    assert "Failed to import the required Python library (docker)" in result["msg"]


def test_return_documents_every_returned_key(api, capsys):
    documented = yaml.safe_load(app_slot_info.RETURN)
    start_blue(api)

    result, _unused = run(capsys, {"name": "unitehub-blue", "log_lines": 1})

    assert set(result) - {"changed", "invocation"} == set(documented)
    assert set(result["container"]) == set(documented["containers"]["contains"])
    assert set(result["container"]) == set(documented["container"]["sample"]) | {"logs"}
    listed, _unused = run(capsys, {})
    assert set(listed) - {"changed", "invocation"} == {"containers"}


def test_documentation_options_match_the_argument_spec():
    documented = yaml.safe_load(app_slot_info.DOCUMENTATION)["options"]
    spec = app_slot_info.argument_spec()
    assert set(documented) == set(spec)
    for name, option in spec.items():
        assert documented[name]["type"] == option["type"], name
        assert documented[name].get("default") == option.get("default"), name
        assert documented[name].get("choices") == option.get("choices"), name
