"""The app image: built FROM the local Debian base image, run with host networking on loopback.

Needs dockerd and the ``unitehub/base:bookworm`` image, which ``playbooks/site.yml``
provides (roles docker_engine and base_image): hence the ``integration`` marker.
The image and container made here get a unique name and are removed afterwards.
"""

from __future__ import annotations

import threading
import time
import uuid

import docker
import pytest

from .conftest import APP_DIR, free_port, http_request, wait_until

pytestmark = pytest.mark.integration

BASE_IMAGE = "unitehub/base:bookworm"


@pytest.fixture(scope="module")
def client():
    c = docker.from_env(timeout=120)
    yield c
    c.close()


@pytest.fixture(scope="module")
def image(client):
    client.images.get(BASE_IMAGE)  # a clear ImageNotFound when the base image is missing
    tag = f"unitehub-apptest/app:{uuid.uuid4().hex[:12]}"
    built, _unused = client.images.build(
        path=APP_DIR, tag=tag, rm=True, forcerm=True, network_mode="none",
        buildargs={"BASE_IMAGE": BASE_IMAGE, "APP_VERSION": "v7.0.0-img"},
    )
    yield built
    client.images.remove(built.id, force=True)


def run(client, image, **env):
    port = free_port()
    environment = {"PORT": str(port), "HOST": "127.0.0.1", "APP_SLOT": "green", "APP_VERSION": "v7.0.0-img", **env}
    container = client.containers.run(
        image.id, detach=True, network_mode="host", environment=environment,
        name=f"unitehub-apptest-{uuid.uuid4().hex[:12]}",
    )
    return container, port


def test_the_image_declares_its_contract(image):
    config = image.attrs["Config"]
    assert config["Labels"]["io.unitehub.app"] == "unitehub"
    assert config["Labels"]["io.unitehub.version"] == "v7.0.0-img"
    assert config["StopSignal"] == "SIGTERM"
    assert config["User"] == "10001:10001"
    assert config["Cmd"] == ["python3", "-m", "unitehub_app"]
    assert config["Healthcheck"]["Test"] == ["CMD", "python3", "-m", "unitehub_app.probe"]


def test_the_container_serves_as_a_non_root_user_and_drains_on_stop(client, image, redis_server):
    container, port = run(client, image, REDIS_URL=redis_server.url, APP_DEBUG_ROUTES="1")
    try:
        def ready():
            container.reload()
            assert container.status in ("created", "running"), container.logs().decode()
            try:
                return http_request(port, "/api/health/live", timeout=1).status == 200
            except OSError:
                return False

        wait_until(ready, 20, what="the container to serve")
        version = http_request(port, "/api/version")
        assert version.json()["slot"] == "green" and version.headers["x-app-version"] == "v7.0.0-img"
        health = http_request(port, "/api/health/system").json()
        # Debian's python3-redis answers inside the image; no DATABASE_URL here, so overall fail.
        assert health["checks"]["redis:responseTime"][0]["status"] == "pass"
        assert health["checks"]["filesystem:writable"][0]["status"] == "pass"
        assert health["checks"]["environment:variables"][0]["observedValue"] == ["REDIS_URL"]
        assert container.exec_run(["id", "-u"]).output.decode().strip() == "10001"
        assert container.exec_run(["python3", "-m", "unitehub_app.probe"]).exit_code == 0

        results = []
        worker = threading.Thread(
            target=lambda: results.append(http_request(port, "/api/debug/sleep?ms=1500", timeout=15))
        )
        worker.start()
        time.sleep(0.3)
        container.stop(timeout=10)  # SIGTERM, SIGKILL after 10 s
        worker.join(15)
        assert [r.status for r in results] == [200]
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 0
        assert b'"event":"stopped"' in container.logs()
    finally:
        container.remove(force=True)
