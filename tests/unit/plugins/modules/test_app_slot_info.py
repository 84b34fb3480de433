"""The app_slot_info module end to end, with the Docker client replaced by an in-memory fake."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.unitehub.platform.plugins.module_utils import docker_client
from ansible_collections.unitehub.platform.plugins.module_utils.docker_client import DockerModuleError
from ansible_collections.unitehub.platform.plugins.module_utils.app_slot import SlotManager
from ansible_collections.unitehub.platform.plugins.module_utils.app_slot_spec import SlotSpec
from ansible_collections.unitehub.platform.plugins.modules import app_slot, app_slot_info

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))))
SECRET = "token-that-must-not-leak"


@pytest.fixture
def api(fake_docker):
    return fake_docker(app_slot_info, "unitehub/app:v1")


@pytest.fixture(autouse=True)
def secrets_dir(tmp_path):
    """The secret files of the slots these tests start go to the test's own directory."""
    WHERE["secrets_dir"] = str(tmp_path / "secrets")


WHERE = {}


def start_blue(api):
    spec = SlotSpec(
        {
            "slot": "blue",
            "image": "unitehub/app",
            "version": "v1",
            "port": 3008,
            "secret_env": {"APP_ADMIN_TOKEN": SECRET},
            "secrets_dir": WHERE["secrets_dir"],
        }
    )
    return SlotManager(api).ensure(spec)


def test_both_slots_by_default_one_running_one_absent(api, run_module):
    start_blue(api)
    api.log_lines["unitehub-blue"] = ["listening on 127.0.0.1:3008"]

    _rc, result, out = run_module(app_slot_info, {"log_lines": 5})

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


def test_by_name_gives_what_the_status_playbook_reads(api, run_module):
    start_blue(api)
    running = run_module(app_slot_info, {"name": "unitehub-blue"}).result
    assert running["exists"] is True
    assert running["container"]["running"] is True and running["container"]["status"] == "running"
    assert running["containers"] == [running["container"]]

    SlotManager(api).ensure(SlotSpec({"name": "unitehub-blue", "state": "stopped"}))
    stopped = run_module(app_slot_info, {"name": "unitehub-blue"}).result
    assert stopped["container"]["running"] is False and stopped["container"]["status"] == "exited"

    absent = run_module(app_slot_info, {"name": "unitehub-green"}).result
    assert absent["exists"] is False
    assert absent["container"]["running"] is False and absent["container"]["status"] == "absent"


def test_check_mode_reads_the_same_and_changes_nothing(api, run_module):
    start_blue(api)
    api.calls.clear()
    normal = run_module(app_slot_info, {"name": "unitehub-blue"}).result
    checked = run_module(app_slot_info, {"name": "unitehub-blue"}, check_mode=True).result
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
def test_bad_input_fails_naming_it(api, run_module, args, message):
    result = run_module(app_slot_info, args).result
    assert result["failed"] is True
    assert message in result["msg"]
    assert api.calls == []


def test_unreachable_daemon_is_reported(monkeypatch, run_module):
    def unreachable(host, timeout):
        raise DockerModuleError("cannot reach the Docker daemon at tcp://127.0.0.1:1: refused")

    monkeypatch.setattr(docker_client, "docker_api_client", unreachable)
    result = run_module(app_slot_info, {"docker_host": "tcp://127.0.0.1:1"}).result
    assert result["failed"] is True
    assert result["msg"] == "cannot reach the Docker daemon at tcp://127.0.0.1:1: refused"


def test_missing_sdk_is_reported_with_missing_required_lib(monkeypatch, run_module):
    monkeypatch.setattr(docker_client, "HAS_DOCKER", False)
    result = run_module(app_slot_info, {}).result
    assert result["failed"] is True
    assert "Failed to import the required Python library (docker)" in result["msg"]


def test_return_documents_every_returned_key(api, run_module):
    documented = yaml.safe_load(app_slot_info.RETURN)
    start_blue(api)

    result = run_module(app_slot_info, {"name": "unitehub-blue", "log_lines": 1}).result

    assert set(result) - {"changed", "invocation"} == set(documented)
    # The shared keys are documented once, in app_slot's container; the entry adds its own.
    shared = set(yaml.safe_load(app_slot.RETURN)["container"]["contains"])
    assert set(result["container"]) == shared | set(documented["containers"]["contains"])
    assert set(result["container"]) == set(documented["container"]["sample"]) | {"logs"}
    listed = run_module(app_slot_info, {}).result
    assert set(listed) - {"changed", "invocation"} == {"containers"}


def rendered_options(module):
    """The options ansible-doc shows for ``module``, doc fragments merged in."""
    ansible_doc = os.path.join(os.path.dirname(sys.executable), "ansible-doc")
    proc = subprocess.run([ansible_doc, "--json", "unitehub.platform." + module],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["unitehub.platform." + module]["doc"]["options"]


def test_documentation_options_match_the_argument_spec():
    documented = rendered_options("app_slot_info")
    spec = app_slot_info.argument_spec()
    assert set(documented) == set(spec)
    for name, option in spec.items():
        assert documented[name]["type"] == option["type"], name
        assert documented[name].get("default") == option.get("default"), name
        assert documented[name].get("choices") == option.get("choices"), name


def test_the_old_timeout_name_still_works_and_is_deprecated(api, run_module):
    start_blue(api)
    result = run_module(app_slot_info, {"name": "unitehub-blue", "timeout": 30}).result
    assert result["exists"] is True
    deprecations = json.dumps(result["deprecations"])
    assert "Alias 'timeout' is deprecated" in deprecations and '"2.0.0"' in deprecations
