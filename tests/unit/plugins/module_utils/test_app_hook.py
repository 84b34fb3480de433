"""Deploy hooks: the settings check (pure), HookSpec validation, and one-off runs against an
in-memory Docker API."""

from __future__ import annotations

import itertools
import json

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import deploy_audit
from ansible_collections.unitehub.platform.plugins.module_utils.app_hook import HookSpec, run_hook
from ansible_collections.unitehub.platform.plugins.module_utils.app_slot_spec import LABEL_APP, env_list_to_dict
from ansible_collections.unitehub.platform.plugins.module_utils.docker_client import APIError, DockerModuleError
from ansible_collections.unitehub.platform.plugins.module_utils.hook_settings import hook_errors
from ansible_collections.unitehub.platform.tests.unit.plugins.module_utils.docker_fakes import (
    IMAGE_UID,
    IMAGE_USER,
    FakeDockerAPI,
    FakeResponse,
)

SECRET = "postgresql://unitehub:pa55-never-shown@127.0.0.1:6432/unitehub"
NAME = "unitehub-hook-pre_deploy"
MIGRATE = ["python3", "-m", "unitehub_app.migrate"]


# Where the secret files go: a directory of each test's own (see the fixture secrets_dir).
WHERE = {}


@pytest.fixture(autouse=True)
def secrets_dir(tmp_path):
    WHERE["secrets_dir"] = str(tmp_path / "secrets")
    return tmp_path / "secrets"


def params(**overrides):
    base = {
        "secrets_dir": WHERE.get("secrets_dir"),
        "hook": "pre_deploy",
        "app_name": "unitehub",
        "image": "unitehub/app",
        "version": "v2",
        "slot": "green",
        "command": MIGRATE,
        "env": {"ENABLE_DB_POOLER": True},
        "secret_env": {"DATABASE_URL": SECRET},
        "run_timeout": 600,
        "stop_grace_period": 10,
        "output_lines": 20,
    }
    base.update(overrides)
    return base


def clock(*ticks):
    values = itertools.chain(ticks, itertools.repeat(ticks[-1]))
    return lambda: next(values)


def run(api, check_mode=False, ticks=(100.0, 101.5), **overrides):
    return run_hook(api, HookSpec(params(**overrides)), check_mode=check_mode, clock=clock(*ticks))


@pytest.fixture
def api():
    fake = FakeDockerAPI()
    fake.add_image("unitehub/app:v2", env=["PATH=/usr/bin:/bin", "PYTHONPATH=/opt/unitehub"])
    return fake


def created(api):
    return [c for c in api.calls if c[0] == "create_container"][-1]


# -- the settings ------------------------------------------------------------------------------

def test_good_hook_settings_have_no_errors():
    hooks = {
        "pre_deploy": {"command": ["python3", "-m", "app.migrate"], "timeout": 900, "output_lines": 50},
        "post_switch": {"command": ["sh", "-c", "curl -fsS http://127.0.0.1:3009/"], "timeout": "30"},
        "post_deploy": {"command": ["true"], "on_rollback": True},
        "on_failure": {"command": ["python3", "-c", "print('paging')"], "timeout": 1.5, "on_rollback": "false"},
    }
    assert hook_errors(hooks) == []


@pytest.mark.parametrize("hooks", [None, "", {}])
def test_no_hooks_is_fine(hooks):
    assert hook_errors(hooks) == []


def test_hooks_must_be_a_dictionary():
    assert hook_errors(["pre_deploy"]) == ["blue_green_hooks must be a dictionary of hook name -> settings, not list"]


def test_unknown_hooks_and_settings_are_named():
    errors = hook_errors({"pre_migrate": {"command": ["x"]}, "pre_deploy": {"command": ["x"], "retries": 3}})
    assert errors == [
        "blue_green_hooks.pre_migrate is not a hook; the hooks are pre_deploy, post_switch, post_deploy, on_failure",
        "blue_green_hooks.pre_deploy.retries is not a hook setting; the settings are command, timeout, output_lines, "
        "on_rollback",
    ]


@pytest.mark.parametrize("command, message", [
    (None, "must be a non-empty list of arguments (strings), not None"),
    ([], "must be a non-empty list of arguments (strings), not []"),
    ("rake db:migrate", "is the string 'rake db:migrate'; give a list of arguments"),
    (["python3", 3], "has arguments that are not strings: 3; quote them"),
    (["", "-c"], "starts with an empty program name"),
    ({"run": "x"}, "must be a non-empty list of arguments (strings), not {'run': 'x'}"),
])
def test_a_command_is_a_non_empty_list_of_strings(command, message):
    errors = hook_errors({"post_deploy": {"command": command}})
    assert len(errors) == 1 and errors[0].startswith("blue_green_hooks.post_deploy.command ")
    assert message in errors[0]


def test_a_hook_needs_a_command_and_a_dictionary():
    assert hook_errors({"pre_deploy": {"timeout": 30}, "on_failure": ["notify"]}) == [
        "blue_green_hooks.pre_deploy.command is missing: give the command to run, a list of arguments",
        "blue_green_hooks.on_failure must be a dictionary with command (and optionally timeout, output_lines, "
        "on_rollback), not ['notify']",
    ]


@pytest.mark.parametrize("timeout", [0, 0.5, 86401, float("nan"), float("inf"), "nan", "-inf", "soon", True, [1]])
def test_a_timeout_is_finite_and_bounded(timeout):
    errors = hook_errors({"pre_deploy": {"command": ["true"], "timeout": timeout}})
    assert len(errors) == 1 and errors[0].startswith("blue_green_hooks.pre_deploy.timeout=")
    assert "seconds" in errors[0]


@pytest.mark.parametrize("timeout", [1, 86400, "600", 2.5])
def test_timeouts_within_the_bounds_pass(timeout):
    assert hook_errors({"pre_deploy": {"command": ["true"], "timeout": timeout}}) == []


@pytest.mark.parametrize("lines", [-1, 1001, 2.5, "many", float("nan")])
def test_output_lines_is_a_whole_bounded_number(lines):
    errors = hook_errors({"pre_deploy": {"command": ["true"], "output_lines": lines}})
    assert len(errors) == 1 and errors[0].startswith("blue_green_hooks.pre_deploy.output_lines=")
    assert "number of lines" in errors[0]


def test_on_rollback_is_a_boolean():
    assert hook_errors({"post_deploy": {"command": ["true"], "on_rollback": "sometimes"}}, prefix="hooks") == [
        "hooks.post_deploy.on_rollback='sometimes' is not a boolean: use true or false"]


# -- HookSpec ----------------------------------------------------------------------------------

def test_spec_builds_the_environment_with_the_module_variables_on_top():
    spec = HookSpec(params())
    assert spec.name == NAME and spec.image_ref == "unitehub/app:v2" and spec.run_image == "unitehub/app:v2"
    assert spec.env == {"ENABLE_DB_POOLER": "true", "DATABASE_URL_FILE": "/run/secrets/DATABASE_URL", "APP_NAME": "unitehub",
                        "APP_VERSION": "v2", "APP_HOOK": "pre_deploy", "APP_SLOT": "green"}
    assert spec.secret_values == [SECRET] and spec.secret_files == {"DATABASE_URL": SECRET}
    kept = HookSpec(params(secret_env_in_environment=["DATABASE_URL"]))
    assert kept.env["DATABASE_URL"] == SECRET and kept.secret_files == {} and kept.secret_values == [SECRET]
    assert "APP_SLOT" not in HookSpec(params(slot=None)).env


@pytest.mark.parametrize("overrides, message", [
    ({"hook": "Pre-Deploy"}, "hook 'Pre-Deploy' is not a hook name"),
    ({"slot": "purple"}, "slot 'purple' is not one of blue, green"),
    ({"image": "unitehub/app:v2"}, "already carries a tag"),
    ({"version": "v 2"}, "is not a valid image tag"),
    ({"command": []}, "command must be a non-empty list"),
    ({"run_timeout": float("nan")}, "run_timeout=nan is not a finite number of seconds from 1 to 86400"),
    ({"run_timeout": 0}, "run_timeout=0 is not a finite number"),
    ({"output_lines": -3}, "output_lines=-3 is not a whole number of lines"),
    ({"stop_grace_period": -1}, "stop_grace_period -1 is negative"),
    ({"env": {"DATABASE_URL": "x"}}, "DATABASE_URL set in both env and secret_env"),
    ({"env": {"A=B": "x"}}, "environment variable name 'A=B' is empty or contains '='"),
    ({"env": {"APP_VERSION": "v9"}}, "env sets APP_VERSION='v9' but the module sets it to 'v2'"),
    ({"secret_env": {"APP_HOOK": "x"}}, "secret_env sets APP_HOOK=(hidden) but the module sets it to 'pre_deploy'"),
])
def test_spec_refuses_bad_options(overrides, message):
    with pytest.raises(DockerModuleError) as error:
        HookSpec(params(**overrides))
    assert message in error.value.msg


def test_repeating_a_module_variable_with_its_value_is_allowed():
    assert HookSpec(params(env={"APP_NAME": "unitehub"})).env["APP_NAME"] == "unitehub"


# -- the run -----------------------------------------------------------------------------------

def test_a_passing_hook_runs_once_in_a_one_off_container_and_removes_it(api):
    api.runs[NAME] = {"exit_code": 0, "output": ["applying 0042_add_column", "done"]}
    result = run(api)

    assert result == {
        "changed": True, "hook": "pre_deploy", "container": NAME, "image": "unitehub/app:v2",
        "image_id": api.tags["unitehub/app:v2"], "command": MIGRATE, "ran": True, "exit_code": 0,
        "timed_out": False, "duration_s": 1.5, "output": ["applying 0042_add_column", "done"], "removed": True,
    }
    assert api.call_names() == ["create_container", "start", "remove_container"]
    call = created(api)
    assert call[1] == ("unitehub/app:v2",)
    assert call[2]["name"] == NAME and call[2]["command"] == MIGRATE
    assert call[2]["host_config"]["NetworkMode"] == "host"
    assert call[2]["healthcheck"] == {"Test": ["NONE"]}
    assert call[2]["labels"] == {LABEL_APP: "unitehub", "io.unitehub.hook": "pre_deploy", "io.unitehub.version": "v2"}
    assert call[2]["environment"]["DATABASE_URL_FILE"] == "/run/secrets/DATABASE_URL"
    assert SECRET not in json.dumps(call[2])
    assert call[2]["user"] == IMAGE_USER
    assert call[2]["host_config"]["Binds"] == [WHERE["secrets_dir"] + "/" + NAME + ":/run/secrets:ro"]
    assert call[2]["host_config"]["CapDrop"] == ["ALL"] and call[2]["host_config"]["ReadonlyRootfs"] is True
    assert [c[2] for c in api.calls if c[0] == "wait"] == [{"timeout": 600}]
    assert [c[2]["tail"] for c in api.calls if c[0] == "logs"] == [20]
    assert api.containers_by_id == {}


def test_the_secret_files_are_there_for_the_run_only(api, secrets_dir):
    seen = {}
    real_start = api.start

    def start(container):
        directory = secrets_dir / NAME
        seen.update({p.name: (p.read_text(), oct(p.stat().st_mode & 0o777), p.stat().st_uid)
                     for p in directory.iterdir()})
        seen["(dir)"] = (oct(directory.stat().st_mode & 0o777), directory.stat().st_uid)
        real_start(container)

    api.start = start
    run(api)
    assert seen == {"DATABASE_URL": (SECRET, "0o400", IMAGE_UID), "(dir)": ("0o700", IMAGE_UID)}
    assert not (secrets_dir / NAME).exists()


def test_the_secret_files_are_removed_when_the_hook_fails(api, secrets_dir):
    api.runs[NAME] = {"exit_code": 3}
    with pytest.raises(DockerModuleError):
        run(api)
    assert not (secrets_dir / NAME).exists()


def test_a_hook_image_without_a_user_runs_as_nobody(api):
    api.add_image("unitehub/app:rootly", user="")
    run(api, version="rootly")
    assert created(api)[2]["user"] == "65534:65534"


def test_a_hook_user_naming_root_is_refused_before_anything_runs(api, secrets_dir):
    with pytest.raises(DockerModuleError) as error:
        run(api, user="0")
    assert "the pre_deploy hook container %s would run as root" % NAME in error.value.msg
    assert "app_allow_root" in error.value.msg
    assert api.call_names() == [] and not secrets_dir.exists()


def test_the_container_gets_the_image_environment_under_its_own(api):
    seen = {}
    real_start = api.start

    def start(container):
        seen.update(env_list_to_dict(api.container(container)["Config"]["Env"]))
        real_start(container)

    api.start = start
    run(api)
    assert seen["PYTHONPATH"] == "/opt/unitehub" and seen["APP_HOOK"] == "pre_deploy"


def test_a_failing_hook_raises_with_the_same_facts_and_still_removes_its_container(api):
    api.runs[NAME] = {"exit_code": 3, "output": ["Traceback (most recent call last):",
                                                 "psycopg.errors.DuplicateColumn: column \"email\" already exists"]}
    with pytest.raises(DockerModuleError) as error:
        run(api, ticks=(5.0, 5.25))
    details = error.value.details
    assert error.value.msg == ("pre_deploy hook (python3 -m unitehub_app.migrate) exited with code 3 after 0.25 s: "
                               "psycopg.errors.DuplicateColumn: column \"email\" already exists")
    assert details["exit_code"] == 3 and details["timed_out"] is False and details["duration_s"] == 0.25
    assert details["output"][-1].startswith("psycopg.errors.DuplicateColumn")
    assert details["removed"] is True and api.containers_by_id == {}


def test_a_hook_that_outlives_its_timeout_is_stopped_and_fails(api):
    api.runs[NAME] = {"hangs": True, "exit_code_on_stop": 137, "output": ["migrating table orders (3/12)"]}
    with pytest.raises(DockerModuleError) as error:
        run(api, run_timeout=30, stop_grace_period=4, ticks=(0.0, 34.0))
    assert error.value.msg == ("pre_deploy hook (python3 -m unitehub_app.migrate) did not end within 30 s and was "
                               "stopped (exit code 137): migrating table orders (3/12)")
    assert error.value.details["timed_out"] is True and error.value.details["exit_code"] == 137
    assert error.value.details["duration_s"] == 34.0
    assert [c[2] for c in api.calls if c[0] == "stop"] == [{"timeout": 4}]
    assert api.call_names() == ["create_container", "start", "stop", "remove_container"]


def test_a_timed_out_hook_fails_even_when_it_exits_0_on_sigterm(api):
    api.runs[NAME] = {"hangs": True}
    with pytest.raises(DockerModuleError) as error:
        run(api)
    assert error.value.details["timed_out"] is True and error.value.details["exit_code"] == 0


def test_a_wait_that_times_out_as_the_command_ends_is_not_a_timeout(api):
    api.runs[NAME] = {"hangs": True}
    real_wait = api.wait

    def wait(container, timeout=None):
        try:
            return real_wait(container, timeout)
        finally:
            api.container(container)["State"].update(Status="exited", Running=False, ExitCode=0)

    api.wait = wait
    result = run(api)
    assert result["timed_out"] is False and result["exit_code"] == 0
    assert "stop" not in api.call_names()


def test_secret_values_are_masked_in_the_output_and_long_lines_cut(api):
    api.runs[NAME] = {"output": ["connecting to %s" % SECRET, "x" * 2500]}
    result = run(api)
    assert result["output"][0] == "connecting to ********"
    assert result["output"][1] == "x" * 2000 + " ... (500 more characters)"
    assert SECRET not in json.dumps(result)


def test_a_secret_inside_a_longer_secret_leaves_no_part_of_either(api):
    api.runs[NAME] = {"output": ["url=%s" % SECRET]}
    result = run(api, secret_env={"DATABASE_URL": SECRET, "DB_PASSWORD": "pa55-never-shown"})
    assert result["output"] == ["url=********"]


def test_no_output_lines_reads_no_logs(api):
    result = run(api, output_lines=0)
    assert result["output"] == [] and "logs" not in [c[0] for c in api.calls]


def test_an_exact_image_id_is_run_instead_of_the_tag(api):
    pinned = api.add_image("unitehub/app:v2-old")
    result = run(api, image_id=pinned)
    assert created(api)[1] == (pinned,) and result["image_id"] == pinned and result["image"] == "unitehub/app:v2"


def test_a_missing_image_is_refused_before_anything_is_created(api):
    with pytest.raises(DockerModuleError, match="image unitehub/app:v9 is not present on this Docker host"):
        run(api, version="v9")
    assert api.mutating_calls() == []


def test_check_mode_runs_nothing(api):
    result = run(api, check_mode=True)
    assert result["changed"] is True and result["ran"] is False and result["exit_code"] is None
    assert result["image_id"] == api.tags["unitehub/app:v2"]
    assert api.mutating_calls() == []


def test_an_ended_leftover_of_a_killed_run_is_removed_first(api):
    api.create_container("unitehub/app:v2", name=NAME, labels={LABEL_APP: "unitehub", "io.unitehub.hook": "pre_deploy"})
    run(api)
    assert api.call_names()[1:] == ["remove_container", "create_container", "start", "remove_container"]


def test_a_leftover_that_still_runs_is_refused(api):
    leftover = api.create_container("unitehub/app:v2", name=NAME,
                                    labels={LABEL_APP: "unitehub", "io.unitehub.hook": "pre_deploy"})
    api.start(leftover["Id"])
    api.calls.clear()
    with pytest.raises(DockerModuleError, match="of an earlier run still runs .* it may be half-way through"):
        run(api)
    assert api.mutating_calls() == []


def test_a_foreign_container_with_the_name_is_refused(api):
    api.create_container("unitehub/app:v2", name=NAME, labels={})
    api.calls.clear()
    with pytest.raises(DockerModuleError, match="exists but is not a pre_deploy hook of app unitehub"):
        run(api)
    assert api.mutating_calls() == []


def test_a_container_that_cannot_be_removed_is_a_warning(api):
    api.fail_on["remove_container"] = APIError("500", response=FakeResponse(500), explanation="device busy")
    result = run(api)
    assert result["removed"] is False and result["exit_code"] == 0
    assert result["warnings"] == ["the pre_deploy hook container %s was not removed: device busy; the next run "
                                  "removes it once it has ended" % NAME]


def test_a_refused_create_is_reported(api):
    api.fail_on["create_container"] = APIError("500", response=FakeResponse(500), explanation="no space left")
    with pytest.raises(DockerModuleError, match="Docker refused to create the pre_deploy hook container "
                                                "unitehub-hook-pre_deploy: no space left"):
        run(api)


def test_a_refused_wait_is_reported_and_the_container_removed(api):
    api.fail_on["wait"] = APIError("500", response=FakeResponse(500), explanation="daemon shutting down")
    with pytest.raises(DockerModuleError, match="refused to wait for the pre_deploy hook container"):
        run(api)
    assert api.containers_by_id == {}


def test_an_unexpected_error_still_removes_the_container(api):
    api.fail_on["wait"] = KeyError("StatusCode")
    with pytest.raises(KeyError):
        run(api)
    assert api.containers_by_id == {}


# -- the audit line of a hook ----------------------------------------------------------------------

def test_a_hook_event_carries_its_name_exit_code_and_output(tmp_path):
    log = tmp_path / "deploy-audit.jsonl"
    entry = deploy_audit.append_audit(str(log), {
        "event": "hook", "hook": "pre_deploy", "app": "unitehub", "slot": "green", "version": "v2",
        "outcome": "failed", "exit_code": 3, "duration_s": 0.84, "output": ["applying 0042", "DuplicateColumn"],
        "reason": "pre_deploy hook (python3 -m app.migrate) exited with code 3 after 0.84 s: DuplicateColumn",
    })
    assert list(entry) == list(deploy_audit.AUDIT_FIELDS)
    assert deploy_audit.read_audit(str(log)) == [entry]
    assert entry["exit_code"] == 3 and entry["output"][-1] == "DuplicateColumn"


def test_other_events_leave_the_hook_fields_null(tmp_path):
    entry = deploy_audit.append_audit(str(tmp_path / "audit.jsonl"), {"event": "deploy", "version": "v2"})
    assert (entry["hook"], entry["exit_code"], entry["output"]) == (None, None, None)


@pytest.mark.parametrize("event, message", [
    ({"event": "hook"}, "an audit hook event names its hook (field hook)"),
    ({"event": "hook", "hook": 7}, "audit hook 7 is not a string"),
    ({"event": "hook", "hook": "pre_deploy", "exit_code": True}, "audit exit_code True is not a whole number"),
    ({"event": "hook", "hook": "pre_deploy", "exit_code": "3"}, "audit exit_code '3' is not a whole number"),
    ({"event": "hook", "hook": "pre_deploy", "output": "one line"}, "audit output 'one line' is not a list of lines"),
    ({"event": "hook", "hook": "pre_deploy", "output": [1]}, "audit output [1] is not a list of lines"),
])
def test_malformed_hook_events_are_refused(tmp_path, event, message):
    with pytest.raises(deploy_audit.AuditError) as error:
        deploy_audit.append_audit(str(tmp_path / "audit.jsonl"), event)
    assert str(error.value).startswith(message)
    assert not (tmp_path / "audit.jsonl").exists()
