"""The app role against the real dockerd: validation before any change, a
clean failure when the image cannot be had, and an idempotent slot."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.unitehub.platform.tests.integration.ansible_runner import role_play, run_plays
from ansible_collections.unitehub.platform.tests.integration.docker_helpers import (
    docker_client,
    http_get_json,
    throwaway_app,
)

pytestmark = pytest.mark.integration

APP_ROLE = "unitehub.platform.app"


@pytest.fixture
def client():
    return docker_client()


@pytest.fixture
def app(tmp_path):
    """Role variables for a throwaway app with an admin token; its containers and images
    are removed afterwards."""
    with throwaway_app(tmp_path, "uhrole") as (_client, variables):
        variables["app_secret_env"] = {"APP_ADMIN_TOKEN": "role-secret-91b2"}
        yield variables


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
    proc = run_plays(tmp_path, role_play(APP_ROLE, variables=variables))
    assert proc.counts()["failed"] == 1 and proc.counts()["changed"] == 0
    assert message in proc.stdout
    assert containers_of(client, app["app_name"]) == []
    assert client.images.list(name=app["app_image"]) == []


def test_a_short_admin_token_fails_before_anything_changes_and_is_not_shown(client, app, tmp_path):
    token = "short-admin-token-31-characters"
    variables = dict(app, app_admin_token=token, app_integrations=["breakers"])
    proc = run_plays(tmp_path, role_play(APP_ROLE, variables=variables))
    assert proc.counts()["failed"] == 1 and proc.counts()["changed"] == 0
    assert "app_admin_token is shorter than 32 characters" in proc.stdout
    assert token not in proc.stdout
    assert containers_of(client, app["app_name"]) == []


def test_wrong_type_fails_in_argument_validation(tmp_path, app):
    proc = run_plays(tmp_path, role_play(APP_ROLE, variables=dict(app, app_slot="purple")))
    assert proc.counts()["failed"] == 1
    assert "value of app_slot must be one of: blue, green, got: purple" in proc.stdout


def test_missing_base_image_fails_cleanly(client, app, tmp_path):
    proc = run_plays(tmp_path, role_play(APP_ROLE, variables=dict(app, app_base_image="unitehub-test/absent-base:none")))
    assert proc.counts()["failed"] == 1 and proc.counts()["changed"] == 0
    assert "base image unitehub-test/absent-base:none is not present on this Docker host" in proc.stdout
    assert containers_of(client, app["app_name"]) == []


def test_role_runs_the_slot_idempotently_and_check_mode_changes_nothing(client, app, tmp_path):
    first = run_plays(tmp_path, role_play(APP_ROLE, variables=app))
    assert first.counts()["failed"] == 0, first.stdout
    # image built; container created and started, its secret files written by the same task
    assert first.counts()["changed"] == 2
    port = app["app_slot_ports"]["green"]
    assert http_get_json(port) == {"version": "v1", "slot": "green"}
    assert "role-secret-91b2" not in first.stdout
    container = client.containers.get(app["app_name"] + "-green")
    assert "role-secret-91b2" not in str(container.attrs)
    secrets = os.path.join(app["app_secrets_dir"], app["app_name"] + "-green")
    record = os.path.join(secrets, "APP_ADMIN_TOKEN")
    uid = int(container.attrs["Config"]["User"].split(":")[0])
    assert uid != 0
    assert (stat.S_IMODE(os.stat(secrets).st_mode), os.stat(secrets).st_uid) == (0o700, uid)
    assert (stat.S_IMODE(os.stat(record).st_mode), os.stat(record).st_uid) == (0o400, uid)
    with open(record, encoding="utf-8") as handle:
        assert handle.read() == "role-secret-91b2"

    second = run_plays(tmp_path, role_play(APP_ROLE, variables=app))
    assert second.counts()["changed"] == 0 and second.counts()["failed"] == 0, second.stdout

    checked = run_plays(tmp_path, role_play(APP_ROLE, variables=app), check=True, diff=True)
    assert checked.counts()["changed"] == 0 and checked.counts()["failed"] == 0, checked.stdout

    # A new version in check mode: the image would be built, nothing else happens.
    planned = run_plays(tmp_path, role_play(APP_ROLE, variables=dict(app, app_version="v2")), check=True)
    assert planned.counts()["failed"] == 0, planned.stdout
    assert "would be built first" in planned.stdout
    assert client.images.list(name=app["app_image"])[0].tags == [app["app_image"] + ":v1"]

    stopped = run_plays(tmp_path, role_play(APP_ROLE, variables=dict(app, app_state="absent")))
    # container and its secret files removed, in one task
    assert stopped.counts()["changed"] == 1 and stopped.counts()["failed"] == 0, stopped.stdout
    assert containers_of(client, app["app_name"]) == []
    assert not os.path.exists(secrets)
