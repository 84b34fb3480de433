"""SlotSpec validation and SlotManager behaviour against an in-memory Docker API."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils.app_slot import SlotManager, SlotQuery, slot_info
from ansible_collections.unitehub.platform.plugins.module_utils.app_slot_spec import (
    LABEL_APP,
    LABEL_SECRET_KEYS,
    LABEL_SECRETS_DIGEST,
    LABEL_SLOT,
    LABEL_VERSION,
    SECRET_CHANGED,
    SECRET_MASK,
    SlotSpec,
    env_list_to_dict,
)
from ansible_collections.unitehub.platform.plugins.module_utils.docker_client import APIError, DockerModuleError
from ansible_collections.unitehub.platform.tests.unit.plugins.module_utils.docker_fakes import (
    IMAGE_UID,
    IMAGE_USER,
    FakeDockerAPI,
    FakeResponse,
)

SECRET = "s3cr3t-value-never-shown"


# Where the secret files go: a directory of each test's own (see the fixture secrets_dir).
WHERE = {}


@pytest.fixture(autouse=True)
def secrets_dir(tmp_path):
    WHERE["secrets_dir"] = str(tmp_path / "secrets")
    return tmp_path / "secrets"


def params(**overrides):
    base = {
        "secrets_dir": WHERE.get("secrets_dir"),
        "app_name": "unitehub",
        "slot": "blue",
        "image": "unitehub/app",
        "version": "v1",
        "port": 3008,
        "env": {"REDIS_URL": "redis://127.0.0.1:6379/0"},
        "secret_env": {"APP_ADMIN_TOKEN": SECRET},
        "state": "started",
    }
    base.update(overrides)
    return base


def ensure(api, check_mode=False, **overrides):
    return SlotManager(api, check_mode=check_mode).ensure(SlotSpec(params(**overrides)))


@pytest.fixture
def api():
    fake = FakeDockerAPI()
    fake.add_image("unitehub/app:v1", env=["PATH=/usr/bin:/bin", "LANG=C.UTF-8"], labels={"org.base": "debian"})
    return fake


def container_env(api, name="unitehub-blue"):
    return env_list_to_dict(api.inspect_container(name)["Config"]["Env"])


# -- SlotSpec ---------------------------------------------------------------------------------


def test_spec_derives_name_env_and_labels():
    spec = SlotSpec(params(env={"ENABLE_APM": False, "DB_POOL_SIZE": 20, "EMPTY": None}))
    assert spec.name == "unitehub-blue"
    assert spec.image_ref == "unitehub/app:v1"
    assert spec.env == {
        "ENABLE_APM": "false",
        "DB_POOL_SIZE": "20",
        "EMPTY": "",
        "APP_ADMIN_TOKEN_FILE": "/run/secrets/APP_ADMIN_TOKEN",
        "PORT": "3008",
        "HOST": "127.0.0.1",
        "APP_NAME": "unitehub",
        "APP_SLOT": "blue",
        "APP_VERSION": "v1",
    }
    assert spec.secret_keys == frozenset() and spec.secret_files == {"APP_ADMIN_TOKEN": SECRET}
    assert spec.labels == {LABEL_APP: "unitehub", LABEL_SLOT: "blue", LABEL_VERSION: "v1"}


def test_spec_keeps_a_secret_in_the_environment_only_when_asked():
    spec = SlotSpec(params(secret_env={"APP_ADMIN_TOKEN": SECRET, "DD_API_KEY": "dd"},
                           secret_env_in_environment=["DD_API_KEY", "NOT_A_SECRET_HERE"]))
    assert spec.env["DD_API_KEY"] == "dd" and "DD_API_KEY_FILE" not in spec.env
    assert spec.env["APP_ADMIN_TOKEN_FILE"] == "/run/secrets/APP_ADMIN_TOKEN" and "APP_ADMIN_TOKEN" not in spec.env
    assert spec.secret_keys == {"DD_API_KEY"} and spec.secret_files == {"APP_ADMIN_TOKEN": SECRET}
    assert spec.labels[LABEL_SECRET_KEYS] == "DD_API_KEY"


def test_spec_allows_reserved_env_with_the_same_value():
    spec = SlotSpec(params(env={"PORT": 3008, "APP_SLOT": "blue"}))
    assert spec.env["PORT"] == "3008"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"env": {"PORT": "4000"}}, "env sets PORT='4000' but the module sets it to '3008'"),
        ({"secret_env": {"HOST": "0.0.0.0"}}, "secret_env sets HOST=(hidden)"),
        ({"env": {"A": "1"}, "secret_env": {"A": "2"}}, "A set in both env and secret_env"),
        ({"env": {"A=B": "1"}}, "environment variable name 'A=B'"),
        ({"port": 70000}, "port 70000 is out of range; use 1-65535"),
        ({"port": None}, "state=started needs port"),
        ({"version": "v 2"}, "version 'v 2' is not a valid image tag"),
        ({"image": "unitehub/app:v1"}, "image 'unitehub/app:v1' already carries a tag"),
        ({"image": "UniteHub/App"}, "image 'UniteHub/App' is not a valid repository name"),
        ({"labels": {LABEL_SLOT: "green"}}, "labels may not set io.unitehub.slot"),
        ({"slot": "purple"}, "slot 'purple' is not one of blue, green"),
        ({"stop_grace_period": -1}, "stop_grace_period -1 is negative"),
        ({"env": {"APP_ADMIN_TOKEN_FILE": "/x"}}, "APP_ADMIN_TOKEN_FILE is set, but the module sets it to the file"),
        ({"secret_env": {"my.key": "v"}}, "secret_env name 'my.key' cannot name a file"),
        ({"cap_add": ["ALL"]}, "cap_add has ALL"),
        ({"cap_add": ["net bind"]}, "cap_add has NET BIND"),
        ({"memory": "lots"}, "memory 'lots' is not a size"),
        ({"memory": "1m"}, "memory '1m' is below Docker's minimum of 6m"),
        ({"pids_limit": 0}, "pids_limit 0 is not a limit"),
        ({"tmpfs": {"tmp": "rw"}}, "tmpfs path 'tmp' is not an absolute path"),
        ({"tmpfs": {"/tmp": "rw size=1m"}}, "tmpfs options 'rw size=1m' of /tmp are not mount options"),
        ({"labels": {"io.unitehub.secrets-digest": "x"}}, "labels may not set io.unitehub.secrets-digest"),
    ],
)
def test_spec_rejects_bad_input_naming_the_value(overrides, message):
    with pytest.raises(DockerModuleError) as err:
        SlotSpec(params(**overrides))
    assert message in err.value.msg
    assert SECRET not in err.value.msg


def test_spec_for_stop_needs_only_a_name():
    spec = SlotSpec({"name": "other-blue", "state": "stopped"})
    assert spec.name == "other-blue"
    assert spec.image_ref is None


def test_spec_without_name_or_slot_is_refused():
    with pytest.raises(DockerModuleError, match="give the container name, or slot"):
        SlotSpec({"state": "absent"})


# -- started ----------------------------------------------------------------------------------


def test_started_creates_and_starts_on_the_host_network(api):
    result = ensure(api, stop_grace_period=45)

    assert result["changed"] is True
    assert result["actions"] == ["create", "start"]
    assert api.call_names() == ["create_container", "start"]
    create = api.mutating_calls()[0][2]
    assert create["host_config"] == {
        "NetworkMode": "host",
        "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
        "Binds": [WHERE["secrets_dir"] + "/unitehub-blue:/run/secrets:ro"],
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges"],
        "ReadonlyRootfs": True,
        "Tmpfs": {"/tmp": "rw,noexec,nosuid,nodev,size=64m"},
        "PidsLimit": 256,
        "Memory": 512 * 1024 * 1024,
    }
    assert create["stop_timeout"] == 45 and create["user"] == IMAGE_USER
    env = container_env(api)
    assert env["PORT"] == "3008" and env["HOST"] == "127.0.0.1"
    assert env["APP_SLOT"] == "blue" and env["APP_VERSION"] == "v1" and env["APP_NAME"] == "unitehub"
    assert env["APP_ADMIN_TOKEN_FILE"] == "/run/secrets/APP_ADMIN_TOKEN" and "APP_ADMIN_TOKEN" not in env
    assert SECRET not in json.dumps(api.inspect_container("unitehub-blue"))
    assert env["LANG"] == "C.UTF-8"  # the image's own ENV survives
    container = result["container"]
    assert container["name"] == "unitehub-blue"
    assert container["running"] is True and container["status"] == "running"
    assert (container["slot"], container["version"], container["port"]) == ("blue", "v1", 3008)
    assert container["image"] == "unitehub/app:v1"
    assert container["image_id"] == api.tags["unitehub/app:v1"]
    assert container["restart_count"] == 0 and container["exit_code"] == 0


def test_started_twice_changes_nothing(api):
    ensure(api)
    api.calls.clear()

    result = ensure(api)

    assert result["changed"] is False
    assert result["actions"] == [] and result["differences"] == []
    assert api.mutating_calls() == []


def test_started_removes_the_obsolete_files_that_exist_and_reports_them(api, tmp_path):
    record = tmp_path / "unitehub-blue.env"
    record.write_text("APP_ADMIN_TOKEN=" + SECRET)
    missing = tmp_path / "never-there.env"
    ensure(api)

    planned = ensure(api, check_mode=True, obsolete_files=[str(record), str(missing)])
    assert (planned["changed"], planned["removed_files"], record.exists()) == (True, [str(record)], True)

    result = ensure(api, obsolete_files=[str(record), str(missing)])
    assert (result["changed"], result["removed_files"], result["actions"]) == (True, [str(record)], [])
    assert not record.exists()
    assert ensure(api, obsolete_files=[str(record)])["changed"] is False


def test_stopped_leaves_the_obsolete_files_alone(api, tmp_path):
    record = tmp_path / "unitehub-blue.env"
    record.write_text("kept")
    ensure(api)

    result = ensure(api, state="stopped", obsolete_files=[str(record)])

    assert result["removed_files"] == [] and record.exists()


def test_started_on_a_stopped_matching_container_only_starts_it(api):
    ensure(api)
    api.stop("unitehub-blue")
    api.calls.clear()

    result = ensure(api)

    assert result["actions"] == ["start"]
    assert api.call_names() == ["start"]
    assert result["container"]["running"] is True


def test_started_leaves_a_restarting_container_to_docker(api):
    ensure(api)
    api.container("unitehub-blue")["State"].update(Status="restarting", Running=False, Restarting=True)
    api.calls.clear()

    assert ensure(api)["changed"] is False
    assert api.mutating_calls() == []


def test_new_image_id_under_the_same_tag_recreates(api):
    ensure(api)
    old_id = api.inspect_container("unitehub-blue")["Id"]
    # Rebuilt: same tag, same ENV and labels, new id.
    api.add_image("unitehub/app:v1", env=["PATH=/usr/bin:/bin", "LANG=C.UTF-8"], labels={"org.base": "debian"})
    api.calls.clear()

    result = ensure(api, stop_grace_period=12)

    assert result["differences"] == ["image"]
    assert result["actions"] == ["stop", "remove", "create", "start"]
    assert api.mutating_calls()[0] == ("stop", (old_id,), {"timeout": 12})
    assert result["container"]["id"] != old_id
    assert result["container"]["image_id"] == api.tags["unitehub/app:v1"]


def test_image_env_changes_count_as_env_differences(api):
    ensure(api)
    api.add_image(
        "unitehub/app:v1", env=["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "TZ=UTC"], labels={"org.base": "debian"}
    )
    assert ensure(api)["differences"] == ["image", "env"]
    assert container_env(api)["TZ"] == "UTC"


def test_new_version_recreates_with_new_labels_and_env(api):
    ensure(api)
    api.add_image("unitehub/app:v2")

    result = ensure(api, version="v2")

    assert set(result["differences"]) == {"image", "env", "labels"}
    assert result["container"]["version"] == "v2"
    assert container_env(api)["APP_VERSION"] == "v2"


@pytest.mark.parametrize(
    "change, difference",
    [
        ({"env": {"REDIS_URL": "redis://127.0.0.1:6380/0"}}, ["env"]),
        ({"env": {}}, ["env"]),
        ({"labels": {"team": "web"}}, ["labels"]),
        ({"restart_policy": "always"}, ["restart_policy"]),
        ({"bind_address": "127.0.0.2"}, ["env"]),
    ],
)
def test_each_compared_setting_triggers_a_recreate(api, change, difference):
    ensure(api)
    result = ensure(api, **change)
    assert result["differences"] == difference
    assert "create" in result["actions"]


def test_network_mode_difference_recreates(api):
    ensure(api)
    api.container("unitehub-blue")["HostConfig"]["NetworkMode"] = "bridge"
    assert ensure(api)["differences"] == ["network_mode"]


# Secrets kept in the environment (secret_env_in_environment) are compared as values, never shown.
IN_ENV = {"secret_env_in_environment": ["APP_ADMIN_TOKEN"]}


def test_changed_secret_in_the_environment_recreates_without_revealing_either_value(api):
    ensure(api, **IN_ENV)
    new_secret = "another-secret-value"

    result = ensure(api, secret_env={"APP_ADMIN_TOKEN": new_secret}, **IN_ENV)

    assert result["differences"] == ["env"]
    assert result["diff"]["before"]["env"]["APP_ADMIN_TOKEN"] == SECRET_MASK
    assert result["diff"]["after"]["env"]["APP_ADMIN_TOKEN"] == SECRET_CHANGED
    dumped = json.dumps(result)
    assert SECRET not in dumped and new_secret not in dumped
    assert container_env(api)["APP_ADMIN_TOKEN"] == new_secret


def test_unchanged_secret_shows_masked_on_both_sides(api):
    ensure(api, **IN_ENV)
    result = ensure(api, env={"REDIS_URL": "redis://127.0.0.1:6380/0"}, **IN_ENV)
    assert result["diff"]["before"]["env"]["APP_ADMIN_TOKEN"] == SECRET_MASK
    assert result["diff"]["after"]["env"]["APP_ADMIN_TOKEN"] == SECRET_MASK
    assert result["diff"]["after"]["env"]["REDIS_URL"] == "redis://127.0.0.1:6380/0"
    assert SECRET not in json.dumps(result)


def test_a_secret_dropped_from_secret_env_stays_masked_in_the_diff(api):
    ensure(api, **IN_ENV)
    result = ensure(api, secret_env={})
    assert result["diff"]["before"]["env"]["APP_ADMIN_TOKEN"] == SECRET_MASK
    assert "APP_ADMIN_TOKEN" not in result["diff"]["after"]["env"]
    assert SECRET not in json.dumps(result)
    assert LABEL_SECRET_KEYS not in api.inspect_container("unitehub-blue")["Config"]["Labels"]


def test_diff_shows_image_version_and_state(api):
    ensure(api)
    api.add_image("unitehub/app:v2")
    diff = ensure(api, version="v2")["diff"]
    assert (diff["before"]["image"], diff["before"]["version"], diff["before"]["state"]) == (
        "unitehub/app:v1",
        "v1",
        "running",
    )
    assert (diff["after"]["image"], diff["after"]["version"], diff["after"]["state"]) == (
        "unitehub/app:v2",
        "v2",
        "running",
    )
    assert diff["before"]["image_id"] != diff["after"]["image_id"]


def test_check_mode_reports_the_plan_and_calls_nothing(api):
    result = ensure(api, check_mode=True)
    assert result["changed"] is True
    assert result["actions"] == ["create", "start"]
    assert result["container"] == {}
    assert result["diff"]["before"] == {"state": "absent", "env": {}}
    assert result["diff"]["after"]["env"]["APP_ADMIN_TOKEN_FILE"] == "/run/secrets/APP_ADMIN_TOKEN"
    assert result["secret_files_changed"] is True
    assert api.mutating_calls() == []
    assert not os.path.exists(WHERE["secrets_dir"])  # neither the files nor the digest key

    ensure(api)
    api.add_image("unitehub/app:v2")
    api.calls.clear()
    result = ensure(api, check_mode=True, version="v2")
    assert result["actions"] == ["stop", "remove", "create", "start"]
    assert result["container"]["version"] == "v1"
    assert api.mutating_calls() == []


def test_missing_image_names_it_and_how_to_get_it(api):
    with pytest.raises(DockerModuleError) as err:
        ensure(api, version="v9")
    assert "image unitehub/app:v9 is not present" in err.value.msg
    assert "unitehub.platform.app_image" in err.value.msg and "docker pull unitehub/app:v9" in err.value.msg
    assert api.mutating_calls() == []


REPO = "127.0.0.1:5000/unitehub/app"


def test_image_id_runs_that_image_even_after_the_tag_moved(api):
    old = api.add_image(REPO + ":v1", repo_digests=[REPO + "@sha256:" + "1" * 64])
    api.add_image(REPO + ":v1")  # v1 pulled again: the tag names another image now
    api.calls.clear()

    result = ensure(api, image=REPO, image_id=old)

    create = api.mutating_calls()[0]
    assert create[:2] == ("create_container", (REPO + "@sha256:" + "1" * 64,)), "created from its repo digest"
    assert result["container"]["image_id"] == old
    assert result["container"]["image"] == REPO + "@sha256:" + "1" * 64
    assert result["repo_digest"] == REPO + "@sha256:" + "1" * 64
    assert result["container"]["version"] == "v1" and container_env(api)["APP_VERSION"] == "v1"
    assert result["diff"]["after"]["image"] == REPO + "@sha256:" + "1" * 64


def test_image_id_keeps_a_container_that_runs_that_image(api):
    ensure(api)
    image_id = api.tags["unitehub/app:v1"]
    api.add_image("unitehub/app:v1")  # the tag moves on
    api.calls.clear()

    result = ensure(api, image_id=image_id)

    assert result["differences"] == [] and result["actions"] == []
    assert result["container"]["image"] == "unitehub/app:v1"
    assert result["diff"]["after"]["image"] == result["diff"]["before"]["image"] == "unitehub/app:v1"


def test_image_id_of_a_built_image_creates_from_the_id(api):
    image_id = api.tags["unitehub/app:v1"]
    result = ensure(api, image_id=image_id)
    assert api.mutating_calls()[0][:2] == ("create_container", (image_id,))
    assert result["container"]["image_id"] == image_id
    assert result["repo_digest"] is None


def test_a_missing_image_id_says_how_to_get_that_exact_image(api):
    with pytest.raises(DockerModuleError) as err:
        ensure(api, image_id="sha256:" + "9" * 64)
    assert err.value.msg.startswith("image sha256:9999")
    assert "the exact image asked for version v1, is not present" in err.value.msg
    assert "unitehub.platform.app_image repo_digest" in err.value.msg
    assert "A new deploy of v1 would run whatever its tag names now" in err.value.msg
    assert api.mutating_calls() == []


def test_a_bad_image_id_is_refused():
    with pytest.raises(DockerModuleError, match="image_id 'unitehub/app:v1' is not an image id; give sha256:"):
        SlotSpec(params(image_id="unitehub/app:v1"))


def test_repo_digest_is_the_one_in_the_containers_repository(api):
    api.add_image(REPO + ":v2", repo_digests=["mirror.example.com/unitehub/app@sha256:" + "2" * 64,
                                              REPO + "@sha256:" + "3" * 64])
    assert ensure(api, image=REPO, version="v2")["repo_digest"] == REPO + "@sha256:" + "3" * 64
    assert ensure(api, state="stopped")["repo_digest"] == REPO + "@sha256:" + "3" * 64
    assert ensure(api, state="absent")["repo_digest"] is None


def test_refuses_a_container_it_did_not_create(api):
    api.create_container("unitehub/app:v1", name="unitehub-blue", environment={}, labels={}, host_config={})
    api.calls.clear()
    with pytest.raises(DockerModuleError, match="was not created by unitehub.platform.app_slot"):
        ensure(api)
    assert api.mutating_calls() == []


def test_docker_errors_are_reported_with_the_step(api):
    api.fail_on["start"] = APIError("500", response=FakeResponse(500), explanation="exec: python3: not found")
    with pytest.raises(DockerModuleError) as err:
        ensure(api)
    assert err.value.msg.startswith("Docker refused to start container unitehub-blue: ")
    assert "exec: python3: not found" in err.value.msg
    assert err.value.details["actions"] == ["create", "start"]


def test_logs_returns_the_last_lines(api):
    ensure(api)
    api.log_lines["unitehub-blue"] = ["line %d" % i for i in range(10)]
    result = ensure(api, log_lines=3)
    assert result["logs"] == ["line 7", "line 8", "line 9"]
    assert "logs" not in ensure(api)


# -- stopped / absent -------------------------------------------------------------------------


def test_stopped_stops_with_the_grace_period_once(api):
    ensure(api)
    container_id = api.inspect_container("unitehub-blue")["Id"]
    api.calls.clear()

    result = ensure(api, state="stopped", stop_grace_period=40)

    assert result["changed"] is True and result["actions"] == ["stop"]
    assert api.mutating_calls() == [("stop", (container_id,), {"timeout": 40})]
    assert result["container"]["running"] is False and result["container"]["status"] == "exited"
    assert result["diff"]["after"]["state"] == "exited"
    assert ensure(api, state="stopped")["changed"] is False


def test_stopped_and_absent_on_a_missing_container_change_nothing(api):
    for state in ("stopped", "absent"):
        result = SlotManager(api).ensure(SlotSpec({"slot": "green", "state": state,
                                                   "secrets_dir": WHERE["secrets_dir"]}))
        assert result["changed"] is False and result["container"] == {}
    assert api.mutating_calls() == []


def test_absent_stops_then_removes(api):
    ensure(api, **IN_ENV)
    api.calls.clear()

    result = ensure(api, state="absent", stop_grace_period=5)

    assert api.call_names() == ["stop", "remove_container"]
    assert api.mutating_calls()[0][2] == {"timeout": 5}
    assert result["container"] == {} and result["changed"] is True
    assert result["diff"] == {
        "before": {
            "state": "running",
            "image": "unitehub/app:v1",
            "image_id": api.tags["unitehub/app:v1"],
            "version": "v1",
            "env": result["diff"]["before"]["env"],
        },
        "after": {"state": "absent"},
    }
    assert result["diff"]["before"]["env"]["APP_ADMIN_TOKEN"] == SECRET_MASK


def test_absent_in_check_mode_keeps_the_container(api):
    ensure(api)
    api.calls.clear()
    result = ensure(api, check_mode=True, state="absent")
    assert result["changed"] is True and result["actions"] == ["stop", "remove"]
    assert api.mutating_calls() == []
    assert result["container"]["running"] is True


def test_check_mode_still_reads_the_logs_of_the_current_container(api):
    ensure(api)
    api.log_lines["unitehub-blue"] = ["crashed: boom"]
    api.calls.clear()
    result = ensure(api, check_mode=True, state="absent", log_lines=5)
    assert result["logs"] == ["crashed: boom"]
    assert result["actions"] == ["stop", "remove"] and api.mutating_calls() == []


# -- slot_info (app_slot_info) ----------------------------------------------------------------

SUMMARY_KEYS = {
    "id",
    "name",
    "status",
    "running",
    "image",
    "image_id",
    "slot",
    "version",
    "port",
    "started_at",
    "restart_count",
    "exit_code",
}


def info(api, **params):
    return slot_info(api, SlotQuery(params))


def test_info_by_slots_reports_present_and_absent_in_order(api):
    ensure(api)  # unitehub-blue runs, unitehub-green does not exist
    api.calls.clear()

    result = info(api, slots=["green", "blue"])

    assert result["changed"] is False
    assert "container" not in result and "exists" not in result
    green, blue = result["containers"]
    assert green == {
        "exists": False,
        "id": None,
        "name": "unitehub-green",
        "status": "absent",
        "running": False,
        "image": None,
        "image_id": None,
        "slot": "green",
        "version": None,
        "port": None,
        "started_at": None,
        "restart_count": None,
        "exit_code": None,
    }
    assert blue["exists"] is True
    assert (blue["name"], blue["status"], blue["running"]) == ("unitehub-blue", "running", True)
    assert (blue["slot"], blue["version"], blue["port"], blue["image"]) == ("blue", "v1", 3008, "unitehub/app:v1")
    assert blue["image_id"] == api.tags["unitehub/app:v1"]
    assert set(blue) == set(green) == SUMMARY_KEYS | {"exists"}
    assert [c[0] for c in api.calls] == ["inspect_container", "inspect_container"]


def test_info_entry_is_what_app_slot_reports_plus_exists(api):
    started = ensure(api)
    blue = info(api, slots=["blue"])["containers"][0]
    assert {k: v for k, v in blue.items() if k != "exists"} == started["container"]


def test_info_defaults_to_both_slots_of_the_app_name(api):
    result = info(api, app_name="shop")
    assert [c["name"] for c in result["containers"]] == ["shop-blue", "shop-green"]
    assert [c["slot"] for c in result["containers"]] == ["blue", "green"]


def test_info_drops_a_repeated_slot(api):
    assert [c["name"] for c in info(api, slots=["blue", "blue"])["containers"]] == ["unitehub-blue"]


def test_info_by_name_also_returns_container_and_exists(api):
    ensure(api)
    ensure(api, state="stopped")
    api.container("unitehub-blue")["State"]["ExitCode"] = 137

    result = info(api, name="unitehub-blue")

    assert result["exists"] is True
    assert result["container"] is result["containers"][0]
    assert (result["container"]["status"], result["container"]["running"]) == ("exited", False)
    assert result["container"]["exit_code"] == 137


def test_info_by_name_of_a_missing_container_reports_absent(api):
    result = info(api, name="unitehub-purple")
    assert result["exists"] is False
    assert result["container"]["status"] == "absent" and result["container"]["running"] is False
    assert result["container"]["name"] == "unitehub-purple" and result["container"]["slot"] is None


def test_info_reports_a_foreign_container_without_slot_or_version(api):
    api.create_container("unitehub/app:v1", name="unitehub-blue", environment={}, labels={}, host_config={})
    blue = info(api, name="unitehub-blue")["container"]
    assert blue["exists"] is True and blue["status"] == "created"
    assert blue["slot"] is None and blue["version"] is None and blue["port"] is None


def test_info_logs_per_container_and_empty_for_an_absent_one(api):
    ensure(api)
    api.log_lines["unitehub-blue"] = ["line %d" % i for i in range(6)]

    blue, green = info(api, log_lines=2)["containers"]

    assert blue["logs"] == ["line 4", "line 5"]
    assert green["logs"] == []
    assert all("logs" not in c for c in info(api)["containers"])


def test_info_never_calls_anything_that_changes_docker(api):
    ensure(api)
    api.calls.clear()
    info(api, log_lines=10)
    info(api, name="unitehub-blue", log_lines=1)
    assert api.mutating_calls() == []


def test_info_does_not_reveal_secret_environment_values(api):
    ensure(api)
    assert SECRET not in json.dumps(info(api, name="unitehub-blue", log_lines=5))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"name": "unitehub blue"}, "name 'unitehub blue' is not a valid container name"),
        ({"name": "/unitehub-blue"}, "name '/unitehub-blue' is not a valid container name"),
        ({"slots": []}, "slots is empty; give blue, green or both"),
        ({"slots": ["blue", "purple"]}, "slot 'purple' in slots is not one of blue, green"),
        ({"app_name": "my app"}, "app_name 'my app' gives the container name 'my app-blue'"),
        ({"log_lines": -1}, "log_lines -1 is negative; give 0 for no logs"),
    ],
)
def test_info_rejects_bad_input_naming_the_value(params, message):
    with pytest.raises(DockerModuleError) as err:
        SlotQuery(params)
    assert message in err.value.msg


def test_info_reports_a_failed_inspect_with_the_container(api):
    api.fail_on["inspect_container"] = APIError("500", response=FakeResponse(500), explanation="daemon busy")
    with pytest.raises(DockerModuleError) as err:
        info(api)
    assert err.value.msg == "cannot inspect container unitehub-blue: daemon busy"


def test_info_reports_unreadable_logs_with_the_container_name(api):
    ensure(api)
    api.fail_on["logs"] = APIError("500", response=FakeResponse(500), explanation="log driver none")
    with pytest.raises(DockerModuleError) as err:
        info(api, name="unitehub-blue", log_lines=3)
    assert err.value.msg == "cannot read the logs of container unitehub-blue: log driver none"


# -- secrets as files ---------------------------------------------------------------------------


def secret_files(secrets_dir, name="unitehub-blue"):
    """{file name: (text, mode, uid)} of a container's secret directory, and the directory's (mode, uid)."""
    directory = secrets_dir / name
    files = {p.name: (p.read_text(), stat.S_IMODE(p.stat().st_mode), p.stat().st_uid) for p in directory.iterdir()}
    return files, (stat.S_IMODE(directory.stat().st_mode), directory.stat().st_uid)


def test_each_secret_is_a_0400_file_of_the_containers_uid_in_a_0700_directory(api, secrets_dir):
    result = ensure(api, secret_env={"APP_ADMIN_TOKEN": SECRET, "DATABASE_URL": "postgresql://u:p%40ss@h/db\n"})
    assert result["changed"] and result["secret_files_changed"]
    files, directory = secret_files(secrets_dir)
    assert files == {"APP_ADMIN_TOKEN": (SECRET, 0o400, IMAGE_UID),
                     "DATABASE_URL": ("postgresql://u:p%40ss@h/db\n", 0o400, IMAGE_UID)}
    assert directory == (0o700, IMAGE_UID)
    # the digest key is root-only, beside the containers' directories
    assert stat.S_IMODE((secrets_dir / ".digest-key").stat().st_mode) == 0o400
    attrs = api.inspect_container("unitehub-blue")
    assert attrs["HostConfig"]["Binds"] == [str(secrets_dir / "unitehub-blue") + ":/run/secrets:ro"]
    assert attrs["Config"]["Labels"][LABEL_SECRETS_DIGEST].startswith("hmac-sha256:")
    dumped = json.dumps(attrs) + json.dumps(result)
    assert SECRET not in dumped and "p%40ss" not in dumped

    again = ensure(api, secret_env={"APP_ADMIN_TOKEN": SECRET, "DATABASE_URL": "postgresql://u:p%40ss@h/db\n"})
    assert not again["changed"] and not again["secret_files_changed"] and again["differences"] == []


def test_a_changed_secret_value_rewrites_its_file_and_recreates_the_container(api, secrets_dir):
    ensure(api)
    before = api.inspect_container("unitehub-blue")
    api.calls.clear()
    result = ensure(api, secret_env={"APP_ADMIN_TOKEN": "rotated-value"})
    assert result["differences"] == ["labels"]
    assert result["actions"] == ["stop", "remove", "create", "start"]
    assert secret_files(secrets_dir)[0]["APP_ADMIN_TOKEN"][0] == "rotated-value"
    after = api.inspect_container("unitehub-blue")
    assert after["Config"]["Labels"][LABEL_SECRETS_DIGEST] != before["Config"]["Labels"][LABEL_SECRETS_DIGEST]
    assert "rotated-value" not in json.dumps(result) + json.dumps(after)


def test_the_digest_label_depends_on_the_hosts_key_not_on_the_value_alone(api, secrets_dir, tmp_path):
    ensure(api)
    label = api.inspect_container("unitehub-blue")["Config"]["Labels"][LABEL_SECRETS_DIGEST]
    other = FakeDockerAPI()
    other.add_image("unitehub/app:v1")
    ensure(other, secrets_dir=str(tmp_path / "another-host"))
    assert other.inspect_container("unitehub-blue")["Config"]["Labels"][LABEL_SECRETS_DIGEST] != label
    assert hashlib.sha256(SECRET.encode()).hexdigest() not in label


def test_a_loosened_mode_or_a_stray_file_is_repaired_without_touching_the_container(api, secrets_dir):
    ensure(api)
    (secrets_dir / "unitehub-blue" / "APP_ADMIN_TOKEN").chmod(0o644)
    (secrets_dir / "unitehub-blue").chmod(0o755)
    (secrets_dir / "unitehub-blue" / "OLD_SECRET").write_text("left over")
    api.calls.clear()
    result = ensure(api)
    assert result["changed"] and result["secret_files_changed"] and result["actions"] == []
    files, directory = secret_files(secrets_dir)
    assert files == {"APP_ADMIN_TOKEN": (SECRET, 0o400, IMAGE_UID)} and directory == (0o700, IMAGE_UID)


def test_secret_files_are_kept_on_stop_and_removed_with_the_slot(api, secrets_dir):
    ensure(api)
    assert not ensure(api, state="stopped")["secret_files_changed"]
    assert (secrets_dir / "unitehub-blue").is_dir()
    assert ensure(api, check_mode=True, state="absent")["secret_files_changed"]
    assert (secrets_dir / "unitehub-blue").is_dir()
    assert ensure(api, state="absent")["secret_files_changed"]
    assert not (secrets_dir / "unitehub-blue").exists()


def test_no_file_secret_left_means_no_directory_and_no_mount(api, secrets_dir):
    ensure(api)
    result = ensure(api, **IN_ENV)
    assert "mounts" in result["differences"] and result["secret_files_changed"]
    assert not (secrets_dir / "unitehub-blue").exists()
    assert not api.inspect_container("unitehub-blue")["HostConfig"].get("Binds")


def test_a_symlink_in_place_of_the_directory_is_refused(api, secrets_dir, tmp_path):
    secrets_dir.mkdir()
    (secrets_dir / "unitehub-blue").symlink_to(tmp_path)
    with pytest.raises(DockerModuleError) as err:
        ensure(api)
    assert "is not a directory" in err.value.msg
    assert api.mutating_calls() == []


# -- hardening ---------------------------------------------------------------------------------


def test_an_image_that_would_run_as_root_runs_as_nobody_unless_root_is_allowed(api, secrets_dir):
    api.add_image("unitehub/app:root", user="")
    result = ensure(api, version="root")
    assert result["changed"] and api.inspect_container("unitehub-blue")["Config"]["User"] == "65534:65534"
    assert os.stat(secrets_dir / "unitehub-blue" / "APP_ADMIN_TOKEN").st_uid == 65534
    assert ensure(api, version="root")["changed"] is False

    result = ensure(api, version="root", allow_root=True)
    assert result["changed"] and api.inspect_container("unitehub-blue")["Config"]["User"] == ""


def test_a_user_option_naming_root_is_refused_unless_allowed(api):
    with pytest.raises(DockerModuleError) as err:
        ensure(api, user="0:0")
    assert "would run as root (uid 0, user '0:0')" in err.value.msg
    assert "app_allow_root: true" in err.value.msg and "app_user" in err.value.msg
    assert api.mutating_calls() == []


def test_a_user_name_is_refused_with_how_to_give_the_uid(api):
    api.add_image("unitehub/app:named", user="app")
    with pytest.raises(DockerModuleError) as err:
        ensure(api, version="named")
    assert "container unitehub-blue runs as user 'app', a name" in err.value.msg
    assert "declare USER <uid> in the image" in err.value.msg


def test_the_user_option_overrides_the_image_user(api):
    ensure(api, user="%d" % IMAGE_UID)
    assert api.inspect_container("unitehub-blue")["Config"]["User"] == "%d" % IMAGE_UID


@pytest.mark.parametrize("change, difference", [
    ({"cap_add": ["net_bind_service"]}, "cap_add"),
    ({"read_only": False}, "read_only"),
    ({"tmpfs": {"/tmp": "rw,size=16m"}}, "tmpfs"),
    ({"pids_limit": 512}, "pids_limit"),
    ({"memory": "1g"}, "memory"),
    ({"user": "%d:0" % IMAGE_UID}, "user"),
])
def test_a_changed_hardening_setting_recreates_the_slot(api, change, difference):
    ensure(api)
    result = ensure(api, **change)
    assert result["differences"] == [difference]
    assert result["actions"] == ["stop", "remove", "create", "start"]
    assert ensure(api, **change)["changed"] is False  # and it is kept from then on


def test_added_capabilities_compare_whichever_way_docker_shows_them(api):
    ensure(api, cap_add=["NET_BIND_SERVICE"])
    assert api.inspect_container("unitehub-blue")["HostConfig"]["CapAdd"] == ["CAP_NET_BIND_SERVICE"]
    assert ensure(api, cap_add=["CAP_NET_BIND_SERVICE"])["changed"] is False


def test_a_container_made_without_the_hardening_is_recreated(api):
    ensure(api)
    host = api.container("unitehub-blue")["HostConfig"]
    for key in ("CapDrop", "SecurityOpt", "ReadonlyRootfs", "Tmpfs", "PidsLimit", "Memory"):
        del host[key]
    result = ensure(api)
    assert result["differences"] == ["cap_drop", "security_opt", "read_only", "tmpfs", "pids_limit", "memory"]


def test_memory_takes_dockers_notation():
    assert SlotSpec(params(memory="256m")).confinement.memory == 256 * 1024 ** 2
    assert SlotSpec(params(memory="1G")).confinement.memory == 1024 ** 3
    assert SlotSpec(params(memory=str(64 * 1024 ** 2))).confinement.memory == 64 * 1024 ** 2
