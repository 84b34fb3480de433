"""The app_hook module end to end, with the Docker client replaced by an in-memory fake."""

from __future__ import annotations

import pytest

from ansible_collections.unitehub.platform.plugins.modules import app_hook

SECRET = "redis-pa55-that-must-not-leak"
NAME = "unitehub-hook-post_deploy"
ARGS = {
    "hook": "post_deploy",
    "image": "unitehub/app",
    "version": "v3",
    "slot": "blue",
    "command": ["python3", "-c", "import os; print('warmed', os.environ['APP_VERSION'])"],
    "env": {"CACHE_WARM": True},
    "secret_env": {"REDIS_URL": "redis://:%s@127.0.0.1:6379/0" % SECRET},
    "run_timeout": 30,
}


@pytest.fixture
def api(fake_docker):
    return fake_docker(app_hook, "unitehub/app:v3")


@pytest.fixture(autouse=True)
def secrets_dir(tmp_path, monkeypatch):
    """Every run's secret files go to the test's own directory."""
    monkeypatch.setitem(ARGS, "secrets_dir", str(tmp_path / "secrets"))
    return tmp_path / "secrets"


def test_a_passing_hook_reports_its_exit_code_duration_and_output(api, run_module):
    api.runs[NAME] = {"exit_code": 0, "output": ["warmed v3"]}
    rc, result, out = run_module(app_hook, ARGS)
    assert rc == 0 and result["changed"] is True and result["ran"] is True
    assert result["exit_code"] == 0 and result["timed_out"] is False and result["removed"] is True
    assert result["output"] == ["warmed v3"] and 0 <= result["duration_s"] < 5
    assert result["container"] == NAME and result["image"] == "unitehub/app:v3"
    create = [c for c in api.calls if c[0] == "create_container"][0][2]
    assert create["environment"]["CACHE_WARM"] == "true" and create["environment"]["APP_SLOT"] == "blue"
    assert SECRET not in out
    assert api.containers_by_id == {}


def test_a_failing_hook_fails_with_its_facts_and_no_secret(api, run_module):
    api.runs[NAME] = {"exit_code": 1, "output": ["cannot reach redis://:%s@127.0.0.1:6379/0" % SECRET]}
    rc, result, out = run_module(app_hook, ARGS)
    assert rc == 1 and result["failed"] is True
    assert result["msg"].startswith("post_deploy hook (python3 -c import os; print('warmed', os.environ['APP_VERSION'])) "
                                    "exited with code 1 after ")
    assert result["exit_code"] == 1 and result["output"] == ["cannot reach ********"]
    assert SECRET not in out


def test_a_timeout_fails_the_module(api, run_module):
    api.runs[NAME] = {"hangs": True, "exit_code_on_stop": 143}
    result = run_module(app_hook, dict(ARGS, run_timeout=2, stop_grace_period=1)).result
    assert result["failed"] is True and result["timed_out"] is True and result["exit_code"] == 143
    assert "did not end within 2.0 s and was stopped (exit code 143)" in result["msg"]


def test_check_mode_runs_nothing(api, run_module):
    result = run_module(app_hook, ARGS, check_mode=True).result
    assert result["changed"] is True and result["ran"] is False and result["exit_code"] is None
    assert api.mutating_calls() == []


def test_bad_options_are_refused_before_docker_is_reached(monkeypatch, run_module):
    from ansible_collections.unitehub.platform.plugins.module_utils import docker_client

    def unreachable(*_args):
        raise AssertionError("the daemon must not be reached")

    monkeypatch.setattr(docker_client, "docker_api_client", unreachable)
    result = run_module(app_hook, dict(ARGS, run_timeout=float("inf"))).result
    assert result["failed"] is True
    assert result["msg"] == "run_timeout=inf is not a finite number of seconds from 1 to 86400"


def test_a_command_is_required(api, run_module):
    args = {k: v for k, v in ARGS.items() if k != "command"}
    result = run_module(app_hook, args).result
    assert result["failed"] is True and result["msg"] == "missing required arguments: command"


def test_an_unexpected_error_is_a_failure_with_context_not_a_traceback(api, run_module):
    api.fail_on["wait"] = KeyError("StatusCode")
    result = run_module(app_hook, ARGS).result
    assert result["failed"] is True
    assert result["msg"] == "unexpected KeyError while talking to Docker: 'StatusCode'"
    assert api.containers_by_id == {}
