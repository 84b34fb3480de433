"""Helpers for the Docker integration tests: talk to dockerd directly to check and
clean up, and a throwaway app for the app role. Playbooks and modules run through
ansible_runner; ports come from tests/support/loopback.py."""

from __future__ import annotations

import contextlib
import json
import os
import urllib.request
import uuid

import docker

from ansible_collections.unitehub.platform.tests.integration.ansible_runner import REPO_ROOT
from ansible_collections.unitehub.platform.tests.support.loopback import free_port
from ansible_collections.unitehub.platform.tests.support.waiting import wait_until

BASE_IMAGE = "unitehub/base:bookworm"
SLOT_APP_CONTEXT = os.path.join(REPO_ROOT, "tests", "integration", "fixtures", "slot_app")


def unique(prefix):
    return "%s%s" % (prefix, uuid.uuid4().hex[:8])


def docker_client():
    client = docker.from_env(version="auto")
    client.ping()
    return client


def http_get_json(port, path="/api/version", timeout=10.0):
    """GET http://127.0.0.1:<port><path> until it answers (the app may be starting), at
    most ``timeout`` seconds. Returns the decoded JSON body."""
    url = "http://127.0.0.1:%d%s" % (port, path)

    def get():
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read().decode())
        except OSError as exc:
            return exc

    return wait_until(get, timeout, interval=0.2, what="an answer from %s" % url,
                      accept=lambda body: not isinstance(body, OSError), describe=repr)


def remove_containers(client, *names):
    for name in names:
        try:
            client.containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass


def remove_image_tags(client, repository):
    for image in client.images.list(name=repository):
        for tag in image.tags:
            if tag.startswith(repository + ":"):
                client.images.remove(tag, force=True)


@contextlib.contextmanager
def throwaway_app(tmp_path, prefix):
    """(client, role variables) of a throwaway app for unitehub.platform.app: built from the
    slot fixture as unitehub-test/<name>, green live, free loopback ports, its own env dir.
    Its containers and image tags are removed afterwards."""
    client = docker_client()
    name = unique(prefix)
    variables = {
        "app_name": name,
        "app_image": "unitehub-test/%s" % name,
        "app_version": "v1",
        "app_slot": "green",
        "app_slot_ports": {"blue": free_port(), "green": free_port()},
        "app_build_context": SLOT_APP_CONTEXT,
        "app_base_image": BASE_IMAGE,
        "app_stop_grace_period": 5,
        "app_secrets_dir": str(tmp_path / "secrets"),
    }
    try:
        yield client, variables
    finally:
        remove_containers(client, name + "-blue", name + "-green")
        remove_image_tags(client, variables["app_image"])
