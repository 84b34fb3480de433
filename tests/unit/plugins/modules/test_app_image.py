"""The app_image module end to end, with the Docker client replaced by an in-memory fake."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.unitehub.platform.plugins.module_utils import docker_client
from ansible_collections.unitehub.platform.plugins.modules import app_image


@pytest.fixture
def api(fake_docker):
    return fake_docker(app_image, "unitehub/base:bookworm")


def test_build_then_no_op(api, tmp_path, run_module):
    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    args = {
        "image": "unitehub/app",
        "version": "v1",
        "build_context": str(tmp_path),
        "base_image": "unitehub/base:bookworm",
    }

    first = run_module(app_image, args, diff=True).result
    assert first["changed"] is True and first["actions"] == ["build"]
    assert first["image"]["tags"] == ["unitehub/app:v1"]
    assert first["diff"] == {"before": {"tags": []}, "after": {"tags": ["v1"]}}
    assert api.mutating_calls()[0][2]["buildargs"] == {"BASE_IMAGE": "unitehub/base:bookworm", "APP_VERSION": "v1"}

    api.calls.clear()
    second = run_module(app_image, args).result
    assert second["changed"] is False and "diff" not in second
    assert api.mutating_calls() == []


def test_prune_needs_no_build_context(api, run_module):
    for tag in ("v1", "v2", "v3"):
        api.add_image("unitehub/app:%s" % tag)
    result = run_module(app_image, {"image": "unitehub/app", "version": "v3", "prune": True, "keep": ["v2"]}).result
    assert result["removed"] == ["v1"] and result["changed"] is True
    assert api.call_names() == ["remove_image"]


def test_bad_tag_fails_naming_it(api, run_module):
    result = run_module(app_image, {"image": "unitehub/app", "version": "v 1"}).result
    assert result["failed"] is True
    assert result["msg"].startswith("version 'v 1' is not a valid image tag")


def test_return_documents_every_returned_key(api, tmp_path, run_module):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    documented = yaml.safe_load(app_image.RETURN)
    result = run_module(app_image, {"image": "unitehub/app", "version": "v1", "build_context": str(tmp_path)}).result
    assert set(result) - {"changed", "invocation"} == set(documented)
    assert set(result["image"]) == set(documented["image"]["contains"])


REPO = "127.0.0.1:5000/unitehub/app"
PASSWORD = "registry-password-never-printed"


def test_registry_password_is_never_printed(api, run_module):
    api.fail_on["pull"] = docker_client.APIError(
        "500 Server Error", explanation="unauthorized: %s is not a valid password" % PASSWORD)
    run = run_module(app_image, {"image": REPO, "version": "v9", "registry_username": "deploy",
                                 "registry_password": PASSWORD})
    assert run.result["failed"] is True
    assert run.result["msg"].startswith("could not pull %s:v9: the registry 127.0.0.1:5000 refused the credentials"
                                        % REPO)
    assert PASSWORD not in run.out


def test_pulls_with_the_credentials_and_reports_the_repo_digest(api, run_module):
    digest = api.push(REPO + ":v2", api.add_image(None))
    run = run_module(app_image, {"image": REPO, "version": "v2", "registry_username": "deploy",
                                 "registry_password": PASSWORD})
    assert run.result["changed"] is True and run.result["image"]["repo_digests"] == [digest]
    assert api.mutating_calls()[0][2]["auth_config"] == {"username": "deploy", "password": PASSWORD}
    assert PASSWORD not in run.out


@pytest.mark.parametrize("args, message", [
    ({"registry_username": "deploy"}, "parameters are required together: registry_username, registry_password"),
    ({"repo_digest": REPO + "@sha256:" + "a" * 64, "build_context": "/srv/app"},
     "parameters are mutually exclusive: repo_digest|build_context"),
])
def test_option_combinations_are_checked(api, run_module, args, message):
    result = run_module(app_image, dict({"image": REPO, "version": "v1"}, **args)).result
    assert result["failed"] is True and message in result["msg"]
