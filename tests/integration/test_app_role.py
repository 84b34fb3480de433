"""The app role against the real dockerd: validation before any change, a
clean failure when the image cannot be had, and an idempotent slot."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.unitehub.platform.tests.integration.docker_helpers import (
    BASE_IMAGE,
    SLOT_APP_CONTEXT,
    docker_client,
    http_get_json,
    playbook,
    recap,
    remove_containers,
    remove_image_tags,
    unique,
)
from ansible_collections.unitehub.platform.tests.support.loopback import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def client():
    return docker_client()


@pytest.fixture
def app(client, tmp_path):
    """Role variables for a throwaway app; its containers and images are removed afterwards."""
    name = unique("uhrole")
    variables = {
        "app_name": name,
        "app_image": "unitehub-test/%s" % name,
        "app_version": "v1",
        "app_slot": "green",
        "app_slot_ports": {"blue": free_port(), "green": free_port()},
        "app_build_context": SLOT_APP_CONTEXT,
        "app_base_image": BASE_IMAGE,
        "app_secret_env": {"APP_ADMIN_TOKEN": "role-secret-91b2"},
        "app_stop_grace_period": 5,
        "app_env_dir": str(tmp_path / "etc-unitehub"),
    }
    yield variables
    remove_containers(client, name + "-blue", name + "-green")
    remove_image_tags(client, variables["app_image"])


def role_play(variables):
    return [
        {
            "name": "Run the app role",
            "hosts": "localhost",
            "gather_facts": False,
            "roles": [{"role": "unitehub.platform.app", "vars": variables}],
        }
    ]


def containers_of(client, name):
    return client.containers.list(all=True, filters={"label": "io.unitehub.app=%s" % name})


@pytest.mark.parametrize(
    "override, message",
    [
        ({"app_name": ""}, "app_name '' is not usable"),
        (
            {"app_slot_ports": {"blue": 70000, "green": 3009}},
            "app_slot_ports.blue is 70000; use a port between 1 and 65535",
        ),
        ({"app_slot_ports": {"blue": 3009, "green": 3009}}, "give each slot its own port"),
        ({"app_version": "v 1"}, "app_version='v 1' is not a valid image tag"),
    ],
)
def test_bad_values_fail_before_anything_changes(client, app, tmp_path, override, message):
    variables = dict(app, **override)
    proc = playbook(tmp_path, role_play(variables))
    assert recap(proc)["failed"] == 1 and recap(proc)["changed"] == 0
    assert message in proc.stdout
    assert containers_of(client, app["app_name"]) == []
    assert client.images.list(name=app["app_image"]) == []


def test_wrong_type_fails_in_argument_validation(tmp_path, app):
    proc = playbook(tmp_path, role_play(dict(app, app_slot="purple")))
    assert recap(proc)["failed"] == 1
    assert "value of app_slot must be one of: blue, green, got: purple" in proc.stdout


def test_missing_base_image_fails_cleanly(client, app, tmp_path):
    proc = playbook(tmp_path, role_play(dict(app, app_base_image="unitehub-test/absent-base:none")))
    assert recap(proc)["failed"] == 1 and recap(proc)["changed"] == 0
    assert "base image unitehub-test/absent-base:none is not present on this Docker host" in proc.stdout
    assert containers_of(client, app["app_name"]) == []


def test_role_runs_the_slot_idempotently_and_check_mode_changes_nothing(client, app, tmp_path):
    first = playbook(tmp_path, role_play(app))
    assert recap(first)["failed"] == 0, first.stdout
    # image built; container created and started, its 0600 secret env record written by the same task
    assert recap(first)["changed"] == 2
    port = app["app_slot_ports"]["green"]
    assert http_get_json(port) == {"version": "v1", "slot": "green"}
    assert "role-secret-91b2" not in first.stdout
    record = os.path.join(app["app_env_dir"], app["app_name"] + "-green.env")
    assert stat.S_IMODE(os.stat(record).st_mode) == 0o600
    with open(record, encoding="utf-8") as handle:
        assert "APP_ADMIN_TOKEN=role-secret-91b2\n" in handle.read()

    second = playbook(tmp_path, role_play(app))
    assert recap(second)["changed"] == 0 and recap(second)["failed"] == 0, second.stdout

    checked = playbook(tmp_path, role_play(app), "--check", "--diff")
    assert recap(checked)["changed"] == 0 and recap(checked)["failed"] == 0, checked.stdout

    # A new version in check mode: the image would be built, nothing else happens.
    planned = playbook(tmp_path, role_play(dict(app, app_version="v2")), "--check")
    assert recap(planned)["failed"] == 0, planned.stdout
    assert "would be built first" in planned.stdout
    assert client.images.list(name=app["app_image"])[0].tags == [app["app_image"] + ":v1"]

    stopped = playbook(tmp_path, role_play(dict(app, app_state="absent")))
    # container and its secret env record removed, in one task
    assert recap(stopped)["changed"] == 1 and recap(stopped)["failed"] == 0, stopped.stdout
    assert containers_of(client, app["app_name"]) == []
    assert not os.path.exists(record)
