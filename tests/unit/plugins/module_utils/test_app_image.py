"""ImageSpec validation and ImageManager behaviour against an in-memory Docker API."""

from __future__ import annotations

import pytest
from docker.errors import APIError
from requests.exceptions import ReadTimeout

from ansible_collections.unitehub.platform.plugins.module_utils.app_image import ImageManager, ImageSpec
from ansible_collections.unitehub.platform.plugins.module_utils.docker_client import DockerModuleError
from ansible_collections.unitehub.platform.tests.unit.plugins.module_utils.docker_fakes import FakeDockerAPI

BASE = "unitehub/base:bookworm"


@pytest.fixture
def context(tmp_path):
    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    return str(tmp_path)


@pytest.fixture
def api():
    fake = FakeDockerAPI()
    fake.add_image(BASE)
    return fake


def spec(**overrides):
    params = {"image": "unitehub/app", "version": "v1", "state": "present"}
    params.update(overrides)
    return ImageSpec(params)


def ensure(api, check_mode=False, **overrides):
    return ImageManager(api, check_mode=check_mode).ensure(spec(**overrides))


def test_builds_a_missing_tag_with_base_image_and_host_network(api, context):
    result = ensure(api, build_context=context, base_image=BASE, build_args={"PIP_INDEX": "x"})

    assert result["changed"] is True and result["actions"] == ["build"]
    build = api.mutating_calls()[0][2]
    assert build["path"] == context and build["tag"] == "unitehub/app:v1"
    assert build["buildargs"] == {"PIP_INDEX": "x", "BASE_IMAGE": BASE, "APP_VERSION": "v1"}
    assert build["network_mode"] == "host" and build["pull"] is False
    assert result["image"]["id"] == api.tags["unitehub/app:v1"]
    assert result["image"]["tags"] == ["unitehub/app:v1"]
    assert "Successfully tagged unitehub/app:v1" in result["build_log"]
    assert result["diff"] == {"before": {"tags": []}, "after": {"tags": ["v1"]}}


def test_the_version_is_the_build_argument_app_version(api, context):
    ensure(api, build_context=context, version="2.4.0-rc1", build_args={"APP_VERSION": "2.4.0-rc1"})
    assert api.mutating_calls()[0][2]["buildargs"] == {"APP_VERSION": "2.4.0-rc1"}


def test_a_force_rebuild_passes_app_version_again_and_stays_unchanged_on_a_cache_hit(api, context):
    ensure(api, build_context=context, version="v2")
    image_id = api.tags["unitehub/app:v2"]
    api.build_stream = [{"stream": "Successfully built %s\n" % image_id[7:19]}]
    api.calls.clear()

    result = ensure(api, build_context=context, version="v2", force_rebuild=True)

    assert api.mutating_calls()[0][2]["buildargs"] == {"APP_VERSION": "v2"}
    assert result["changed"] is False and result["image"]["id"] == image_id


def test_present_tag_is_left_alone(api, context):
    api.add_image("unitehub/app:v1")
    api.calls.clear()
    result = ensure(api, build_context=context, base_image=BASE)
    assert result["changed"] is False and result["actions"] == []
    assert api.mutating_calls() == []


def test_force_rebuild_reports_a_change_only_for_a_new_id(api, context):
    api.add_image("unitehub/app:v1")
    old_id = api.tags["unitehub/app:v1"]
    result = ensure(api, build_context=context, force_rebuild=True)
    assert result["actions"] == ["build"]
    assert result["changed"] is True and result["image"]["id"] != old_id

    same = iter([{"stream": "Successfully built cached\n"}])
    api.build_stream = same
    result = ensure(api, build_context=context, force_rebuild=True)
    assert result["actions"] == ["build"] and result["changed"] is False


def test_missing_base_image_is_named_before_building(api, context):
    with pytest.raises(DockerModuleError) as err:
        ensure(api, build_context=context, base_image="unitehub/base:trixie")
    assert "base image unitehub/base:trixie is not present" in err.value.msg
    assert "unitehub.platform.base_image" in err.value.msg
    assert api.mutating_calls() == []


def test_build_error_carries_the_message_and_the_log_tail(api, context):
    api.build_stream = [
        {"stream": "Step 2/3 : RUN false\n"},
        {
            "error": "The command '/bin/sh -c false' returned a non-zero code: 1",
            "errorDetail": {"message": "The command '/bin/sh -c false' returned a non-zero code: 1"},
        },
    ]
    with pytest.raises(DockerModuleError) as err:
        ensure(api, build_context=context)
    assert err.value.msg == (
        "building unitehub/app:v1 from %s failed: The command '/bin/sh -c false' returned a non-zero code: 1" % context
    )
    assert err.value.details["build_log"] == ["Step 2/3 : RUN false"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"build_context": "/nonexistent/ctx"}, "build_context '/nonexistent/ctx' is not a directory"),
        ({"dockerfile": "Dockerfile.prod"}, "no Dockerfile.prod in build_context"),
        ({"build_args": {"BASE_IMAGE": "x:y"}, "base_image": BASE}, "build_args BASE_IMAGE 'x:y' contradicts"),
        (
            {"build_args": {"APP_VERSION": "v0"}},
            "build_args APP_VERSION 'v0' contradicts version 'v1'; give it in version only",
        ),
        ({"version": "-bad"}, "version '-bad' is not a valid image tag"),
        ({"keep": ["ok", "not ok"]}, "keep entry 'not ok' is not a valid image tag"),
    ],
)
def test_bad_input_is_refused_before_any_call(api, context, overrides, message):
    overrides.setdefault("build_context", context)
    with pytest.raises(DockerModuleError) as err:
        ensure(api, **overrides)
    assert message in err.value.msg
    assert api.mutating_calls() == []


def test_without_build_context_it_pulls(api):
    result = ensure(api, image="registry.example.com/unitehub/app", version="v3")
    assert api.mutating_calls()[0][:2] == ("pull", ("registry.example.com/unitehub/app",))
    assert api.mutating_calls()[0][2]["tag"] == "v3"
    assert result["changed"] is True and result["image"]["tags"] == ["registry.example.com/unitehub/app:v3"]


def test_a_failed_pull_of_an_unknown_cause_says_how_to_build_instead(api):
    api.pull_stream = [{"error": "received unexpected HTTP status: 500 Internal Server Error"}]
    with pytest.raises(DockerModuleError) as err:
        ensure(api)
    assert err.value.msg.startswith("could not pull unitehub/app:v1: received unexpected HTTP status: 500")
    assert "build_context (role variable app_build_context)" in err.value.msg


REGISTRY = "127.0.0.1:5000"
REPO = REGISTRY + "/unitehub/app"
CREDENTIALS = {"registry_username": "deploy", "registry_password": "s3cret-token"}


def api_error(message):
    return APIError("500 Server Error", explanation=message)


def test_the_credentials_go_with_the_pull_request_only(api):
    result = ensure(api, image=REPO, version="v3", **CREDENTIALS)
    assert api.mutating_calls()[0][2]["auth_config"] == {"username": "deploy", "password": "s3cret-token"}
    assert result["changed"] is True
    assert "s3cret-token" not in repr(result)


def test_without_credentials_the_hosts_own_login_applies(api):
    ensure(api, image=REPO, version="v3")
    assert api.mutating_calls()[0][2]["auth_config"] is None


def test_a_pulled_image_reports_its_repo_digest(api):
    pushed = api.push(REPO + ":v3", api.add_image(None))
    result = ensure(api, image=REPO, version="v3")
    assert result["image"]["repo_digests"] == [pushed]
    assert result["image"]["tags"] == [REPO + ":v3"]


@pytest.mark.parametrize(
    "error, credentials, cause",
    [
        ("manifest for %s:v9 not found: manifest unknown: manifest unknown" % REPO, True,
         "the registry 127.0.0.1:5000 has no such image (manifest for"),
        ("unauthorized: authentication required", True,
         "the registry 127.0.0.1:5000 refused the credentials (unauthorized: authentication required); check "
         "registry_username and registry_password (role variables app_registry_username, app_registry_password)"),
        ('Head "http://%s/v2/unitehub/app/manifests/v9": no basic auth credentials' % REGISTRY, False,
         "the registry 127.0.0.1:5000 wants credentials and none were given"),
        ('Get "http://%s/v2/": dial tcp %s: connect: connection refused' % (REGISTRY, REGISTRY), True,
         "the registry 127.0.0.1:5000 cannot be reached (Get"),
    ],
)
def test_a_failed_pull_names_its_cause(api, error, credentials, cause):
    api.fail_on["pull"] = api_error(error)
    with pytest.raises(DockerModuleError) as err:
        ensure(api, image=REPO, version="v9", **(CREDENTIALS if credentials else {}))
    assert err.value.msg.startswith("could not pull %s:v9: %s" % (REPO, cause))
    assert err.value.details["image_ref"] == REPO + ":v9"


def test_a_failure_message_never_carries_the_password(api):
    api.fail_on["pull"] = api_error("unauthorized: user deploy with password s3cret-token refused")
    with pytest.raises(DockerModuleError) as err:
        ensure(api, image=REPO, version="v9", **CREDENTIALS)
    assert "s3cret-token" not in err.value.msg and "********" in err.value.msg


def test_a_repo_digest_present_on_the_host_is_left_alone(api):
    image_id = api.add_image(REPO + ":v1", repo_digests=[REPO + "@sha256:" + "a" * 64])
    api.calls.clear()
    result = ensure(api, image=REPO, version="v1", repo_digest=REPO + "@sha256:" + "a" * 64)
    assert result["changed"] is False and api.mutating_calls() == []
    assert result["image"]["id"] == image_id


def test_a_missing_repo_digest_is_pulled_by_digest_whatever_the_tag_names_now(api):
    old = api.add_image(None)
    digest = api.push(REPO + ":v1", old)
    api.push(REPO + ":v1", api.add_image(REPO + ":v1"))  # v1 pushed again: the tag names another image
    del api.images_by_id[old]  # and the old image is gone from the host

    result = ensure(api, image=REPO, version="v1", repo_digest=digest, **CREDENTIALS)

    pull = api.mutating_calls()[0]
    assert pull[:2] == ("pull", (REPO,)) and pull[2]["tag"] == digest.split("@")[1]
    assert pull[2]["auth_config"] == {"username": "deploy", "password": "s3cret-token"}
    assert result["changed"] is True and result["image"]["id"] == old
    assert result["image"]["repo_digests"] == [digest]
    assert api.tags[REPO + ":v1"] != old, "a pull by digest leaves the tag alone"
    assert result["diff"]["before"] == result["diff"]["after"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"repo_digest": "sha256:" + "a" * 64}, "repo_digest 'sha256:aaaa"),
        ({"repo_digest": REPO + "@sha256:short"}, "is not a repo digest; give <repository>@sha256:<64 hex digits>"),
        ({"repo_digest": REPO + "@sha256:" + "a" * 64, "force_rebuild": True}, "a build cannot make it again"),
        ({"repo_digest": REPO + "@sha256:" + "a" * 64, "state": "absent"}, "repo_digest applies to state=present"),
    ],
)
def test_a_bad_repo_digest_is_refused_before_any_call(api, overrides, message):
    with pytest.raises(DockerModuleError) as err:
        ensure(api, image=REPO, **overrides)
    assert message in err.value.msg
    assert api.mutating_calls() == []


def test_check_mode_plans_the_pull_by_digest(api):
    digest = REPO + "@sha256:" + "b" * 64
    result = ensure(api, check_mode=True, image=REPO, repo_digest=digest)
    assert result["changed"] is True and result["actions"] == ["pull"]
    assert result["diff"]["after"] == {"tags": []}
    assert api.mutating_calls() == []


def test_check_mode_plans_a_build_without_calling_docker(api, context):
    result = ensure(api, check_mode=True, build_context=context, base_image=BASE)
    assert result["changed"] is True and result["actions"] == ["build"]
    assert result["image"] == {}
    assert result["diff"]["after"] == {"tags": ["v1"]}
    assert api.mutating_calls() == []


def test_absent_removes_the_tag(api):
    api.add_image("unitehub/app:v1")
    result = ensure(api, state="absent")
    assert result["changed"] is True and result["removed"] == ["v1"]
    assert "unitehub/app:v1" not in api.tags
    assert ensure(api, state="absent")["changed"] is False


def test_absent_refuses_an_image_a_container_uses(api):
    api.add_image("unitehub/app:v1")
    api.create_container("unitehub/app:v1", name="unitehub-blue", environment={}, labels={}, host_config={})
    with pytest.raises(DockerModuleError, match=r"used by container\(s\) unitehub-blue; remove them first"):
        ensure(api, state="absent")
    assert "unitehub/app:v1" in api.tags


def test_prune_keeps_the_version_the_keep_list_and_images_in_use(api):
    for tag in ("v1", "v2", "v3", "v4"):
        api.add_image("unitehub/app:%s" % tag)
    api.add_image("other/app:v1")
    api.create_container("unitehub/app:v2", name="unitehub-green", environment={}, labels={}, host_config={})

    result = ensure(api, version="v4", prune=True, keep=["v3"])

    assert result["removed"] == ["v1"]
    assert result["kept_in_use"] == [{"tag": "v2", "reason": "used by container(s) unitehub-green"}]
    assert sorted(t for t in api.tags if t.startswith("unitehub/app:")) == [
        "unitehub/app:v2",
        "unitehub/app:v3",
        "unitehub/app:v4",
    ]
    assert "other/app:v1" in api.tags
    assert result["changed"] is True
    assert result["diff"] == {"before": {"tags": ["v1", "v2", "v3", "v4"]}, "after": {"tags": ["v2", "v3", "v4"]}}


def test_prune_in_check_mode_lists_but_keeps(api):
    for tag in ("v1", "v2"):
        api.add_image("unitehub/app:%s" % tag)
    api.calls.clear()
    result = ensure(api, check_mode=True, version="v2", prune=True)
    assert result["removed"] == ["v1"] and result["changed"] is True
    assert result["diff"]["after"] == {"tags": ["v2"]}
    assert api.mutating_calls() == []
    assert "unitehub/app:v1" in api.tags


def test_prune_with_nothing_to_remove_changes_nothing(api):
    api.add_image("unitehub/app:v1")
    result = ensure(api, prune=True)
    assert result["changed"] is False and result["removed"] == []


def test_a_build_that_times_out_is_reported_not_raised(api, context):
    api.fail_on["build"] = ReadTimeout("UnixHTTPConnectionPool(host='localhost'): Read timed out. (read timeout=600)")
    with pytest.raises(DockerModuleError) as err:
        ensure(api, build_context=context)
    assert err.value.msg.startswith("building unitehub/app:v1 from %s failed: UnixHTTPConnectionPool" % context)
    assert "Read timed out" in err.value.msg
