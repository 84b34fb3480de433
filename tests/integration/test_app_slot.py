"""app_image and app_slot against the real dockerd: a tiny app built FROM the
base image runs on the host network, bound to 127.0.0.1 on a free port."""

from __future__ import annotations

import functools
import json
import os

import pytest

from ansible_collections.unitehub.platform.tests.integration import ansible_runner
from ansible_collections.unitehub.platform.tests.integration.docker_helpers import (
    BASE_IMAGE,
    SLOT_APP_CONTEXT,
    docker_client,
    http_get_json,
    remove_containers,
    remove_image_tags,
    unique,
)
from ansible_collections.unitehub.platform.tests.support.loopback import free_port, listening

pytestmark = pytest.mark.integration

SECRET = "integration-secret-7f3a9c"
# At -v the module's result is printed too, so "SECRET not in run.output" means something.
run_module = functools.partial(ansible_runner.run_module, verbosity=1)


@pytest.fixture(scope="module")
def client():
    client = docker_client()
    if not client.images.list(name=BASE_IMAGE.split(":", maxsplit=1)[0]):
        pytest.fail("%s is missing: run the unitehub.platform.base_image role first" % BASE_IMAGE)
    return client


@pytest.fixture(scope="module")
def repository(client, tmp_path_factory):
    """A test app image built through app_image, removed afterwards."""
    repo = unique("unitehub-test/slot-app-")
    tmp = tmp_path_factory.mktemp("build")
    result, run = run_module(
        tmp,
        "unitehub.platform.app_image",
        {
            "image": repo,
            "version": "v1",
            "build_context": SLOT_APP_CONTEXT,
            "base_image": BASE_IMAGE,
        },
    )
    assert not result.get("failed"), run.output[-4000:]
    assert result["changed"] is True and result["actions"] == ["build"]
    yield repo
    remove_image_tags(client, repo)


@pytest.fixture
def slot(client, tmp_path):
    """A unique app name, a free loopback port and a directory for the secret files; its
    containers are removed afterwards."""
    app_name = unique("uhtest")
    yield {"app_name": app_name, "port": free_port(), "secrets_dir": str(tmp_path / "secrets")}
    remove_containers(client, app_name + "-blue", app_name + "-green")


def slot_args(repository, slot, **overrides):
    args = {
        "app_name": slot["app_name"],
        "slot": "blue",
        "image": repository,
        "version": "v1",
        "port": slot["port"],
        "env": {"REDIS_URL": "redis://127.0.0.1:6379/0"},
        "secret_env": {"APP_ADMIN_TOKEN": SECRET},
        "secrets_dir": slot["secrets_dir"],
        "stop_grace_period": 5,
    }
    args.update(overrides)
    return args


def test_app_image_is_idempotent_and_prunes_only_unkept_unused_tags(client, repository, tmp_path):
    args = {"image": repository, "version": "v1", "build_context": SLOT_APP_CONTEXT, "base_image": BASE_IMAGE}
    again, run = run_module(tmp_path, "unitehub.platform.app_image", args)
    assert again["changed"] is False and again["actions"] == [], run.output[-4000:]
    # The build got APP_VERSION=<version>, which the Dockerfile turns into the label.
    assert client.images.get(repository + ":v1").labels["io.unitehub.version"] == "v1"

    image = client.images.get(repository + ":v1")
    image.tag(repository, "keepme")
    image.tag(repository, "old")

    planned, _unused = run_module(
        tmp_path, "unitehub.platform.app_image", dict(args, prune=True, keep=["keepme"]), check=True
    )
    assert planned["changed"] is True and planned["removed"] == ["old"]
    assert repository + ":old" in client.images.get(repository + ":v1").tags

    pruned, _unused = run_module(tmp_path, "unitehub.platform.app_image", dict(args, prune=True, keep=["keepme"]))
    assert pruned["changed"] is True and pruned["removed"] == ["old"]
    assert sorted(client.images.get(repository + ":v1").tags) == [repository + ":keepme", repository + ":v1"]


def test_started_serves_on_loopback_and_second_run_changes_nothing(client, repository, slot, tmp_path):
    args = slot_args(repository, slot, log_lines=20)

    first, run = run_module(tmp_path, "unitehub.platform.app_slot", args, diff=True)

    assert not first.get("failed"), run.output[-4000:]
    assert first["changed"] is True and first["actions"] == ["create", "start"]
    assert http_get_json(slot["port"]) == {"version": "v1", "slot": "blue"}
    container = client.containers.get(slot["app_name"] + "-blue")
    assert container.attrs["HostConfig"]["NetworkMode"] == "host"
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert container.labels["io.unitehub.app"] == slot["app_name"]
    assert container.labels["io.unitehub.slot"] == "blue" and container.labels["io.unitehub.version"] == "v1"
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert env["PORT"] == str(slot["port"]) and env["HOST"] == "127.0.0.1"
    # The secret is a file the container reads, not a value in its environment.
    assert env["APP_ADMIN_TOKEN_FILE"] == "/run/secrets/APP_ADMIN_TOKEN" and "APP_ADMIN_TOKEN" not in env
    assert SECRET not in json.dumps(container.attrs)
    assert container.exec_run(["cat", "/run/secrets/APP_ADMIN_TOKEN"]).output.decode() == SECRET
    assert SECRET not in run.output and SECRET not in str(first)
    host = container.attrs["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"]
    assert host["ReadonlyRootfs"] is True and host["PidsLimit"] == 256 and host["Memory"] == 512 * 1024 * 1024
    assert container.attrs["Config"]["User"] == "65534:65534"  # the image has no USER: nobody, not root

    second, run = run_module(tmp_path, "unitehub.platform.app_slot", args)
    assert second["changed"] is False and second["actions"] == [], run.output[-4000:]
    assert second["container"]["id"] == container.id
    summary = second["container"]
    assert summary["running"] is True and summary["status"] == "running"
    assert (summary["slot"], summary["version"], summary["port"]) == ("blue", "v1", slot["port"])
    assert summary["image_id"] == client.images.get(repository + ":v1").id
    assert "listening on 127.0.0.1:%d" % slot["port"] in second["logs"]


def test_check_mode_plans_but_changes_nothing(client, repository, slot, tmp_path):
    planned, _unused = run_module(tmp_path, "unitehub.platform.app_slot", slot_args(repository, slot), check=True)
    assert planned["changed"] is True and planned["actions"] == ["create", "start"]
    assert not client.containers.list(all=True, filters={"name": slot["app_name"]})

    run_module(tmp_path, "unitehub.platform.app_slot", slot_args(repository, slot))
    before = client.containers.get(slot["app_name"] + "-blue")
    changed_args = slot_args(
        repository,
        slot,
        env={"REDIS_URL": "redis://127.0.0.1:6380/0"},
        secret_env={"APP_ADMIN_TOKEN": SECRET + "-rotated"},
    )

    planned, run = run_module(tmp_path, "unitehub.platform.app_slot", changed_args, check=True, diff=True)

    # env: REDIS_URL; labels: the digest of the rotated secret
    assert planned["changed"] is True and planned["differences"] == ["env", "labels"]
    assert planned["actions"] == ["stop", "remove", "create", "start"]
    assert planned["secret_files_changed"] is True
    assert planned["diff"]["after"]["env"]["REDIS_URL"] == "redis://127.0.0.1:6380/0"
    assert SECRET not in run.output
    after = client.containers.get(slot["app_name"] + "-blue")
    assert after.id == before.id and after.status == "running"
    assert after.attrs["Config"]["Env"] == before.attrs["Config"]["Env"]
    with open(os.path.join(slot["secrets_dir"], slot["app_name"] + "-blue", "APP_ADMIN_TOKEN"), encoding="utf-8") as fh:
        assert fh.read() == SECRET  # check mode wrote nothing


def test_new_version_recreates_the_container(client, repository, slot, tmp_path):
    run_module(tmp_path, "unitehub.platform.app_slot", slot_args(repository, slot))
    old_id = client.containers.get(slot["app_name"] + "-blue").id
    client.images.get(repository + ":v1").tag(repository, "v2")

    result, run = run_module(tmp_path, "unitehub.platform.app_slot", slot_args(repository, slot, version="v2"))

    assert result["changed"] is True, run.output[-4000:]
    assert set(result["differences"]) == {"env", "labels"}  # same image id, new APP_VERSION and label
    assert result["container"]["id"] != old_id
    assert http_get_json(slot["port"]) == {"version": "v2", "slot": "blue"}


def test_stopped_started_and_absent(client, repository, slot, tmp_path):
    args = slot_args(repository, slot)
    run_module(tmp_path, "unitehub.platform.app_slot", args)
    http_get_json(slot["port"])
    container_id = client.containers.get(slot["app_name"] + "-blue").id

    stopped, run = run_module(tmp_path, "unitehub.platform.app_slot", dict(args, state="stopped"))
    assert stopped["changed"] is True and stopped["actions"] == ["stop"], run.output[-4000:]
    assert stopped["container"]["running"] is False and stopped["container"]["status"] == "exited"
    assert not listening(slot["port"])
    again, _unused = run_module(tmp_path, "unitehub.platform.app_slot", dict(args, state="stopped"))
    assert again["changed"] is False

    restarted, _unused = run_module(tmp_path, "unitehub.platform.app_slot", args)
    assert restarted["actions"] == ["start"] and restarted["container"]["id"] == container_id
    assert http_get_json(slot["port"]) == {"version": "v1", "slot": "blue"}

    removed, _unused = run_module(
        tmp_path,
        "unitehub.platform.app_slot",
        {"name": slot["app_name"] + "-blue", "state": "absent", "stop_grace_period": 5},
    )
    assert removed["changed"] is True and removed["actions"] == ["stop", "remove"]
    assert removed["container"] == {}
    assert not client.containers.list(all=True, filters={"name": slot["app_name"]})
    gone, _unused = run_module(
        tmp_path, "unitehub.platform.app_slot", {"name": slot["app_name"] + "-blue", "state": "absent"}
    )
    assert gone["changed"] is False


def test_missing_image_fails_with_a_clear_message(client, repository, slot, tmp_path):
    result, _unused = run_module(tmp_path, "unitehub.platform.app_slot", slot_args(repository, slot, version="v404"))

    assert result["failed"] is True
    assert result["msg"].startswith("image %s:v404 is not present on this Docker host" % repository)
    assert "unitehub.platform.app_image" in result["msg"]
    assert not client.containers.list(all=True, filters={"name": slot["app_name"]})


def test_slot_info_reports_running_stopped_and_absent(client, repository, slot, tmp_path):
    args = slot_args(repository, slot, log_lines=0)
    run_module(tmp_path, "unitehub.platform.app_slot", args)
    http_get_json(slot["port"])
    blue_name, green_name = slot["app_name"] + "-blue", slot["app_name"] + "-green"
    blue_id = client.containers.get(blue_name).id

    both, run = run_module(
        tmp_path, "unitehub.platform.app_slot_info", {"app_name": slot["app_name"], "log_lines": 20}, check=True
    )

    assert not both.get("failed"), run.output[-4000:]
    assert both["changed"] is False and "container" not in both
    blue, green = both["containers"]
    assert (blue["name"], blue["exists"], blue["running"], blue["status"]) == (blue_name, True, True, "running")
    assert (blue["id"], blue["slot"], blue["version"], blue["port"]) == (blue_id, "blue", "v1", slot["port"])
    assert blue["image"] == repository + ":v1" and blue["image_id"] == client.images.get(repository + ":v1").id
    assert blue["exit_code"] == 0 and blue["restart_count"] == 0
    assert "listening on 127.0.0.1:%d" % slot["port"] in blue["logs"]
    assert (green["name"], green["exists"], green["running"], green["status"]) == (green_name, False, False, "absent")
    assert green["slot"] == "green" and green["logs"] == []
    assert SECRET not in run.output and SECRET not in str(both)

    run_module(tmp_path, "unitehub.platform.app_slot", dict(args, state="stopped"))
    stopped, run = run_module(tmp_path, "unitehub.platform.app_slot_info", {"name": blue_name})
    assert stopped["exists"] is True, run.output[-4000:]
    assert stopped["container"]["running"] is False and stopped["container"]["status"] == "exited"
    assert stopped["container"]["id"] == blue_id and stopped["containers"] == [stopped["container"]]
    assert client.containers.get(blue_name).status == "exited"  # reading did not start it

    absent, run = run_module(tmp_path, "unitehub.platform.app_slot_info", {"name": green_name})
    assert absent["exists"] is False, run.output[-4000:]
    assert absent["container"]["status"] == "absent" and absent["container"]["running"] is False
    assert not client.containers.list(all=True, filters={"name": green_name})
