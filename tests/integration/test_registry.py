"""Deploys that pull from a registry, against the real stack and a real registry on loopback.

The registry is Debian's docker-registry (distribution 2.8), started by this module on
127.0.0.1 at a free port with htpasswd (bcrypt) authentication, its data in a temporary
directory, and stopped by its pid at the end. dockerd talks plain HTTP to it: Docker treats
127.0.0.0/8 as an insecure registry by default (checked below), and distribution sends and
checks basic-auth credentials over plain HTTP as well, so real credentials are tested
without a throwaway CA. Traffic goes to loopback only.

The images are the reference app's release with one label added (no build step runs
anything), pushed under the test's own repository, so nothing here touches unitehub/app.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import uuid

import bcrypt
import docker
import pytest

from ansible_collections.unitehub.platform.tests.integration.ansible_runner import run_playbook
from ansible_collections.unitehub.platform.tests.integration.deploy_helpers import (
    AUDIT_LOG, BASE_RELEASE, DEPLOY, FAST, LOCK_FILE, ROLLBACK, STATE_FILE, audit_lines, deploy, ensure_live,
    lb_version,
    read_state, routing_snapshot,
)
from ansible_collections.unitehub.platform.tests.integration.docker_helpers import docker_client
from ansible_collections.unitehub.platform.tests.support.loopback import free_port, listening
from ansible_collections.unitehub.platform.tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

REGISTRY_BINARY = "/usr/bin/docker-registry"
USER = "deployer"
# A fresh secret per run, so finding it anywhere means this run leaked it.
PASSWORD = "it-registry-" + uuid.uuid4().hex
SLOTS = ("blue", "green")
SECRETS_DIR = "/etc/unitehub/secrets"
CONFIG = """\
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: {secret}
auth:
  htpasswd:
    realm: unitehub-it
    path: {htpasswd}
"""


class Registry:
    """The running registry: where it listens, its repository for this test, its access log."""

    def __init__(self, port, log_path):
        self.host = "127.0.0.1:%d" % port
        self.repository = "%s/unitehub-it/app" % self.host
        self.log_path = log_path

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def manifests_served(self, reference):
        """How many times the registry served the manifest ``reference`` (a tag or a digest), from its access log.
        dockerd pulls a tag with HEAD, then GETs the manifest by digest."""
        served = re.compile(r'"(?:GET|HEAD) /v2/unitehub-it/app/manifests/%s HTTP/1\.1" 200 ' % re.escape(reference))
        return len(served.findall(self.log()))


@pytest.fixture(scope="module")
def client():
    client = docker_client()
    insecure = client.info()["RegistryConfig"].get("InsecureRegistryCIDRs") or []
    assert "127.0.0.0/8" in insecure, (
        "dockerd does not treat 127.0.0.0/8 as an insecure registry (%s); these tests talk plain HTTP to a "
        "registry on loopback" % insecure)
    return client


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    assert os.access(REGISTRY_BINARY, os.X_OK), "%s is missing: make os-prereqs installs docker-registry" % REGISTRY_BINARY
    root = tmp_path_factory.mktemp("registry")
    (root / "data").mkdir()
    (root / "htpasswd").write_text(
        "%s:%s\n" % (USER, bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()))
    port = free_port()
    (root / "config.yml").write_text(CONFIG.format(data=root / "data", port=port, secret=uuid.uuid4().hex,
                                                   htpasswd=root / "htpasswd"))
    log_path = root / "registry.log"
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen([REGISTRY_BINARY, "serve", str(root / "config.yml")], stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: proc.poll() is not None or listening(port), 30, interval=0.1,
                   what="the registry to listen on 127.0.0.1:%d" % port)
        assert proc.poll() is None, "the registry exited: %s" % log_path.read_text()
        yield Registry(port, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def images(client, registry):
    """``build(name)``: an image of the base release with one label, so each has its own id;
    ``push(image, tag)``: push it to the registry as ``<repository>:<tag>`` and return its repo
    digest. Every image and tag made here is removed at the end."""
    made = []
    ensure_live(BASE_RELEASE)  # its image is what the test images are made from

    def build(name):
        dockerfile = "FROM unitehub/app:%s\nLABEL io.unitehub.test.registry=%s\n" % (BASE_RELEASE, name)
        image, _log = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag="unitehub-it/registry-src:" + name,
                                          pull=False, rm=True, network_mode="none")
        made.append(image.id)
        return image

    def push(image, tag):
        image.tag(registry.repository, tag)
        digest = None
        for line in client.api.push(registry.repository, tag=tag, stream=True, decode=True,
                                    auth_config={"username": USER, "password": PASSWORD}):
            assert "error" not in line, "pushing %s:%s failed: %s" % (registry.repository, tag, line)
            digest = (line.get("aux") or {}).get("Digest") or digest
        assert digest, "the push of %s:%s reported no digest" % (registry.repository, tag)
        return "%s@%s" % (registry.repository, digest)

    yield build, push
    try:
        reset_stack()
    finally:
        remove_images(client, made)


def image_exists(client, ref):
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def remove_images(client, image_ids):
    """Remove the test's images with all their tags; one a container still uses (only when
    reset_stack failed, which fails the run anyway) stays."""
    for image_id in dict.fromkeys(image_ids):
        if not image_exists(client, image_id):
            continue
        try:
            client.images.remove(image_id, force=True)
        except docker.errors.APIError as exc:
            print("left image %s in place: %s" % (image_id, exc))


def reset_stack():
    """Leave the base release on both slots and live, as the stack tests expect it, with no
    registry image in the state."""
    ensure_live(BASE_RELEASE)
    idle = "green" if lb_version()[0] == "blue" else "blue"
    result = deploy(BASE_RELEASE, slot=idle)
    assert result.rc == 0, result.output[-6000:]
    assert lb_version() == (idle, BASE_RELEASE)
    assert all(entry["repo_digest"] is None for entry in read_state()["slots"].values())


def registry_vars(registry, password=PASSWORD, image=None):
    """The deploy variables that pull ``image`` (this test's repository by default) with the registry's login."""
    return dict(app_image=image or registry.repository, app_build_context="", app_registry_username=USER,
                app_registry_password=password)


def slot_containers(client):
    """(id, status, image id) of both slots' containers: what a refused deploy must leave alone."""
    found = {}
    for slot in SLOTS:
        container = client.containers.get("unitehub-" + slot)
        found[slot] = (container.id, container.status, container.attrs["Image"])
    return found


def files_holding(secret):
    """The deploy's files and the slots' containers that contain ``secret``."""
    paths = [STATE_FILE, AUDIT_LOG]
    for slot in SLOTS:  # the slots' secret files
        directory = os.path.join(SECRETS_DIR, "unitehub-%s" % slot)
        if os.path.isdir(directory):
            paths.extend(os.path.join(directory, name) for name in os.listdir(directory))
    leaks = []
    for path in paths:
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as handle:
                if secret in handle.read():
                    leaks.append(path)
    return leaks


def test_a_deploy_pulls_from_the_registry_and_records_the_digest(client, registry, images):
    build, push = images
    image = build("r1")
    digest = push(image, "it-reg1")
    client.images.remove(registry.repository + ":it-reg1")  # only the registry has that tag now
    old_slot = ensure_live(BASE_RELEASE)
    served = registry.manifests_served("it-reg1")

    # -v prints every module result, --diff every diff: the password must be in neither.
    result = run_playbook(DEPLOY, extra_vars=dict(FAST, version="it-reg1", **registry_vars(registry)), diff=True,
                          verbosity=1)

    assert result.rc == 0, result.output[-6000:]
    new_slot = "green" if old_slot == "blue" else "blue"
    assert lb_version() == (new_slot, "it-reg1")
    assert registry.manifests_served("it-reg1") > served, "the deploy did not pull the tag from the registry"
    record = read_state()["slots"][new_slot]
    assert record["version"] == "it-reg1"
    assert record["image"] == registry.repository + ":it-reg1"
    assert record["image_id"] == image.id
    assert record["repo_digest"] == digest
    container = client.containers.get("unitehub-" + new_slot)
    assert container.attrs["Image"] == image.id
    assert PASSWORD not in result.output
    assert not any(PASSWORD in item for item in container.attrs["Config"]["Env"])
    assert files_holding(PASSWORD) == []


def test_a_missing_tag_is_refused_before_anything_changes(client, registry, images):
    live_slot, version = lb_version()
    before_state, containers, routing = read_state(), slot_containers(client), routing_snapshot()

    result = deploy("it-reg-missing", **registry_vars(registry))

    assert result.rc != 0
    assert "could not pull %s:it-reg-missing: the registry %s has no such image" % (
        registry.repository, registry.host) in result.output, result.output[-6000:]
    assert "Traffic stayed on slot %s" % live_slot in result.output
    assert slot_containers(client) == containers
    assert routing_snapshot() == routing
    assert lb_version() == (live_slot, version)
    # No slot was started, so none is recorded: the idle slot stays the rollback target it was.
    assert read_state() == before_state
    assert audit_lines()[-1]["event"] == "failure" and "it-reg-missing" in audit_lines()[-1]["reason"]
    assert not os.path.exists(LOCK_FILE)


def test_bad_credentials_are_refused_clearly(client, registry, images):
    build, push = images
    push(build("r2"), "it-reg2")
    client.images.remove(registry.repository + ":it-reg2")
    live = lb_version()
    containers = slot_containers(client)
    wrong = "wrong-" + uuid.uuid4().hex

    result = run_playbook(DEPLOY, extra_vars=dict(FAST, version="it-reg2", **registry_vars(registry, password=wrong)),
                          verbosity=1)

    assert result.rc != 0
    assert "the registry %s refused the credentials" % registry.host in result.output, result.output[-6000:]
    assert "app_registry_username, app_registry_password" in result.output
    assert wrong not in result.output and PASSWORD not in result.output
    assert lb_version() == live and slot_containers(client) == containers
    assert not image_exists(client, registry.repository + ":it-reg2")
    assert files_holding(wrong) == []


def test_a_registry_that_is_down_is_refused_clearly(client, registry, images):
    down = "127.0.0.1:%d" % free_port()
    live = lb_version()
    containers = slot_containers(client)

    result = deploy("it-reg2", **registry_vars(registry, image=down + "/unitehub-it/app"))

    assert result.rc != 0
    assert "could not pull %s/unitehub-it/app:it-reg2: the registry %s cannot be reached" % (down, down) in (
        result.output), result.output[-6000:]
    assert lb_version() == live and slot_containers(client) == containers


def test_a_rollback_runs_the_recorded_image_even_after_the_tag_was_pushed_again(client, registry, images):
    build, push = images
    first = build("r1")
    first_digest = push(first, "it-reg1")
    deployed = deploy("it-reg1", **registry_vars(registry))  # nothing to do when the first test left it live
    assert deployed.rc == 0, deployed.output[-6000:]
    rollback_slot = lb_version()[0]
    assert lb_version()[1] == "it-reg1"
    push(build("r2"), "it-reg2")
    upgraded = deploy("it-reg2", **registry_vars(registry))
    assert upgraded.rc == 0, upgraded.output[-6000:]
    assert read_state()["slots"][rollback_slot]["repo_digest"] == first_digest

    # it-reg1 is pushed again as another image, and the host's tag follows it. The app host
    # also loses the old image and its container (as a host rebuilt since would).
    again = build("r1-again")
    push(again, "it-reg1")
    assert client.images.get(registry.repository + ":it-reg1").id == again.id
    client.containers.get("unitehub-" + rollback_slot).remove(force=True)
    client.images.remove(first.id, force=True)
    assert not image_exists(client, first.id)
    served = registry.manifests_served(first_digest.split("@")[1])

    result = run_playbook(ROLLBACK, extra_vars=dict(stability_window=0, drain_seconds=0, **registry_vars(registry)))

    assert result.rc == 0, result.output[-6000:]
    assert lb_version() == (rollback_slot, "it-reg1")
    container = client.containers.get("unitehub-" + rollback_slot)
    assert container.attrs["Image"] == first.id, "the rollback ran the image the tag names now"
    assert container.attrs["Config"]["Image"] == first_digest
    assert registry.manifests_served(first_digest.split("@")[1]) > served, "the image was not pulled by its digest"
    record = read_state()["slots"][rollback_slot]
    assert (record["version"], record["image_id"], record["repo_digest"]) == ("it-reg1", first.id, first_digest)
    assert client.images.get(registry.repository + ":it-reg1").id == again.id, "the tag is left as it is"
    events = [json.loads(line) for line in open(AUDIT_LOG, encoding="utf-8") if line.strip()]
    assert events[-1]["event"] == "rollback" and events[-1]["version"] == "it-reg1"
