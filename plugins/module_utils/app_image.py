# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The app image: build it or pull it once per version, remove it, prune old tags.

A build gets the build arguments ``APP_VERSION`` (the version, which the app's
Dockerfile writes into the ``io.unitehub.version`` label and its ENV) and,
with ``base_image``, ``BASE_IMAGE``. An existing tag is not built again, so
they change nothing on a second run.

A pull sends the registry credentials, when given, to dockerd with that one
request (``X-Registry-Auth``): nothing is stored on the host, and they never
appear in a result. A failed pull says which of the usual causes it is: no
such tag, credentials refused, registry out of reach. A *repo digest*
(``<repository>@sha256:...``) names one image whatever its tag names now: the
image a rollback goes back to, pulled by that digest when it is missing.

``ImageManager.ensure(spec)`` works through the low-level Docker API client.
Pruning removes ``<image>:<tag>`` for tags outside ``keep`` (and the version
being ensured) but never an image a container still uses, so the images the
deploy state names (which the caller passes in ``keep``) and those of stopped
standby slots survive.
"""

from __future__ import annotations

import os

import re

from ansible_collections.unitehub.platform.plugins.module_utils.docker_client import (
    APIError,
    DockerModuleError,
    RequestException,
    api_error_text,
    docker_call,
    inspect_image_or_none,
)
from ansible_collections.unitehub.platform.plugins.module_utils.slots import tag_problem

# A repository path: lowercase components separated by '/', optional registry host[:port].
REPOSITORY_RE = re.compile(
    r"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
# A content digest: an image id, or the digest of a manifest in a registry.
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
STATES = ("present", "absent")
# How many lines of the build output to keep in the result.
LOG_TAIL = 40
# What dockerd says when a pull fails, by cause (lowercase fragments of its messages).
_REFUSED = ("unauthorized", "authentication required", "no basic auth credentials", "denied",
            "incorrect username or password")
_UNKNOWN = ("manifest unknown", "name unknown", "not found")
_UNREACHABLE = ("connection refused", "no such host", "i/o timeout", "dial tcp", "connection reset",
                "network is unreachable", "server misbehaving", "context deadline exceeded", "tls:")


def validate_repository(image):
    """``image`` must be a repository without a tag or digest: the tag comes from ``version``."""
    if "@" in image:
        raise DockerModuleError(
            "image '%s' carries a digest; give the repository (e.g. unitehub/app) in image and the tag in version"
            % image
        )
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        raise DockerModuleError(
            "image '%s' already carries a tag; give the repository ('%s') in image and the tag ('%s') in version"
            % (image, image.rsplit(":", 1)[0], image.rsplit(":", 1)[1])
        )
    if not REPOSITORY_RE.fullmatch(image):
        raise DockerModuleError(
            "image '%s' is not a valid repository name; use lowercase letters, digits and . _ - separated by /" % image
        )


def validate_tag(version, option="version"):
    problem = tag_problem(version, option)
    if problem:
        raise DockerModuleError(problem)


def image_reference(image, version):
    """``<image>:<version>`` after checking both parts."""
    validate_repository(image)
    validate_tag(version)
    return "%s:%s" % (image, version)


def validate_image_id(image_id, option="image_id"):
    if not DIGEST_RE.fullmatch(image_id or ""):
        raise DockerModuleError("%s '%s' is not an image id; give sha256:<64 hex digits>" % (option, image_id))


def split_repo_digest(ref, option="repo_digest"):
    """``(repository, digest)`` of a repo digest ``<repository>@sha256:<64 hex digits>``."""
    repository, sep, digest = (ref or "").partition("@")
    if not (sep and DIGEST_RE.fullmatch(digest) and REPOSITORY_RE.fullmatch(repository)):
        raise DockerModuleError(
            "%s '%s' is not a repo digest; give <repository>@sha256:<64 hex digits>" % (option, ref)
        )
    return repository, digest


def repository_of(ref):
    """The repository of an image reference, without its ``@digest`` or ``:tag``."""
    name = (ref or "").split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    return name


def registry_of(repository):
    """The registry a repository lives in, as Docker reads the name."""
    first, sep, _rest = repository.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "Docker Hub"


def repo_digest(image_attrs, *repositories):
    """The image's repo digest (``<repository>@sha256:...``) in the first of ``repositories``
    that has one, or None. Only pulled (or pushed) images have one."""
    digests = (image_attrs or {}).get("RepoDigests") or []
    for repository in repositories:
        for entry in digests:
            if repository and repository_of(entry) == repository:
                return entry
    return None


def pull_failure(ref, error, credentials_given):
    """The message of a failed pull of ``ref``: the cause in words, dockerd's own text, the fix."""
    text = error.lower()
    registry = registry_of(repository_of(ref))
    if any(fragment in text for fragment in _REFUSED):
        if credentials_given:
            return ("could not pull %s: the registry %s refused the credentials (%s); check registry_username and "
                    "registry_password (role variables app_registry_username, app_registry_password)"
                    % (ref, registry, error))
        return ("could not pull %s: the registry %s wants credentials and none were given (%s); set "
                "registry_username and registry_password (role variables app_registry_username, "
                "app_registry_password)" % (ref, registry, error))
    if any(fragment in text for fragment in _UNKNOWN):
        return ("could not pull %s: the registry %s has no such image (%s); push it first, or check the version "
                "and the image repository" % (ref, registry, error))
    if any(fragment in text for fragment in _UNREACHABLE):
        return ("could not pull %s: the registry %s cannot be reached (%s); check that it runs and that this host "
                "reaches it" % (ref, registry, error))
    return ("could not pull %s: %s; check the registry and credentials, or build the image on this host with "
            "build_context (role variable app_build_context)" % (ref, error))


def image_argument_spec():
    """The options of app_image and app_release that say how the image is made present (built, pulled,
    or pulled by its repo digest) and which other tags are pruned. ``image`` and ``version`` are each
    module's own: app_image always needs them, app_release only to start a slot. Each module documents
    these options in its own words."""
    return dict(
        build_context=dict(type="path"),
        base_image=dict(type="str"),
        force_rebuild=dict(type="bool", default=False),
        build_timeout=dict(type="int", default=600),
        prune=dict(type="bool", default=False),
        keep=dict(type="list", elements="str", default=[]),
        registry_username=dict(type="str"),
        registry_password=dict(type="str", no_log=True),
        repo_digest=dict(type="str"),
    )


# How the options of image_argument_spec() go together, for AnsibleModule: registry credentials come
# as a pair, and a repo digest is pulled, never built.
IMAGE_REQUIRED_TOGETHER = (("registry_username", "registry_password"),)
IMAGE_MUTUALLY_EXCLUSIVE = (("repo_digest", "build_context"),)


class ImageSpec:
    """The validated wish for one image, built from the module's parameters."""

    def __init__(self, params):
        self.image = params["image"]
        self.version = params.get("version")
        self.state = params.get("state") or "present"
        self.build_context = params.get("build_context")
        self.dockerfile = params.get("dockerfile") or "Dockerfile"
        self.base_image = params.get("base_image")
        self.build_args = {str(k): str(v) for k, v in (params.get("build_args") or {}).items()}
        self.force_rebuild = bool(params.get("force_rebuild"))
        self.nocache = bool(params.get("nocache"))
        self.build_timeout = params.get("build_timeout") or 600
        self.prune = bool(params.get("prune"))
        self.keep = [str(tag) for tag in (params.get("keep") or [])]
        self.registry_username = params.get("registry_username")
        self.registry_password = params.get("registry_password")
        self.repo_digest = params.get("repo_digest")
        if self.state not in STATES:
            raise DockerModuleError("state '%s' is not one of %s" % (self.state, ", ".join(STATES)))
        self.ref = image_reference(self.image, self.version)
        if self.repo_digest:
            self._check_repo_digest()
        for tag in self.keep:
            validate_tag(tag, option="keep entry")
        if self.base_image:
            self._set_build_arg("BASE_IMAGE", self.base_image, "base_image")
        self._set_build_arg("APP_VERSION", self.version, "version")
        if self.state == "present" and self.build_context:
            self._check_context()

    def _check_repo_digest(self):
        """A repo digest names one image in a registry: never built, only pulled by that digest."""
        split_repo_digest(self.repo_digest)
        if self.state != "present":
            raise DockerModuleError("repo_digest applies to state=present only; remove tags with version")
        if self.build_context or self.force_rebuild:
            raise DockerModuleError(
                "repo_digest %s names one image in a registry; a build cannot make it again, so drop "
                "build_context and force_rebuild" % self.repo_digest
            )
        self.ref = self.repo_digest

    @property
    def auth_config(self):
        """The credentials dockerd gets with the pull request, or None (then the host's own docker login applies)."""
        if not self.registry_username:
            return None
        return {"username": self.registry_username, "password": self.registry_password or ""}

    def _set_build_arg(self, name, value, option):
        """Build arguments the module derives from its options; build_args may repeat them only unchanged."""
        if name in self.build_args and self.build_args[name] != value:
            raise DockerModuleError(
                "build_args %s '%s' contradicts %s '%s'; give it in %s only"
                % (name, self.build_args[name], option, value, option)
            )
        self.build_args[name] = value

    def _check_context(self):
        if not os.path.isdir(self.build_context):
            raise DockerModuleError(
                "build_context '%s' is not a directory on this host; give the directory holding the Dockerfile"
                % self.build_context
            )
        dockerfile = os.path.join(self.build_context, self.dockerfile)
        if not os.path.isfile(dockerfile):
            raise DockerModuleError(
                "no %s in build_context '%s'; add it or set dockerfile" % (self.dockerfile, self.build_context)
            )

    @property
    def kept_tags(self):
        kept = set(self.keep)
        if self.state == "present":
            kept.add(self.version)
        return kept


def summarize(image_attrs):
    """The ``image`` return value."""
    if not image_attrs:
        return {}
    return {
        "id": image_attrs.get("Id"),
        "tags": sorted(image_attrs.get("RepoTags") or []),
        "repo_digests": sorted(image_attrs.get("RepoDigests") or []),
        "created": image_attrs.get("Created"),
        "size": image_attrs.get("Size"),
    }


def _tail(lines, count=LOG_TAIL):
    return [line for line in lines if line.strip()][-count:]


class ImageManager:
    """Applies an ImageSpec through a low-level Docker API client."""

    def __init__(self, api, check_mode=False):
        self.api = api
        self.check_mode = check_mode
        self.actions = []
        self.build_log = []

    # -- reading ------------------------------------------------------------------------------

    def repository_tags(self, image):
        """``{tag: image_id}`` for every ``<image>:<tag>`` on the host."""
        tags = {}
        prefix = image + ":"
        for entry in self.api.images(name=image) or []:
            for repo_tag in entry.get("RepoTags") or []:
                if repo_tag.startswith(prefix):
                    tags[repo_tag[len(prefix) :]] = entry.get("Id")
        return tags

    def containers_by_image(self):
        """``{image_id: [container names]}`` over all containers, running or not."""
        users = {}
        for entry in self.api.containers(all=True) or []:
            names = [n.lstrip("/") for n in entry.get("Names") or []]
            users.setdefault(entry.get("ImageID"), []).extend(names)
        return users

    # -- changing -----------------------------------------------------------------------------

    def _consume(self, stream, what):
        """Read a build or pull progress stream into the log; return its error message, if any."""
        for chunk in stream:
            if not isinstance(chunk, dict):
                continue
            if "stream" in chunk:
                self.build_log.extend(chunk["stream"].splitlines())
            elif "status" in chunk and what == "pull":
                self.build_log.append(" ".join(str(chunk.get(k, "")) for k in ("id", "status")).strip())
            if "error" in chunk:
                detail = (chunk.get("errorDetail") or {}).get("message") or chunk["error"]
                return detail.strip()
        return None

    def build(self, spec):
        if spec.base_image and inspect_image_or_none(self.api, spec.base_image) is None:
            raise DockerModuleError(
                "base image %s is not present on this Docker host; build it with the role "
                "unitehub.platform.base_image (or pull it), then run again" % spec.base_image,
                image_ref=spec.ref,
            )
        self.actions.append("build")
        if self.check_mode:
            return
        try:
            stream = self.api.build(
                path=spec.build_context,
                dockerfile=spec.dockerfile,
                tag=spec.ref,
                buildargs=spec.build_args,
                network_mode="host",
                rm=True,
                forcerm=True,
                pull=False,
                nocache=spec.nocache,
                timeout=spec.build_timeout,
                decode=True,
            )
            error = self._consume(stream, "build")
        except (APIError, RequestException) as exc:
            error = api_error_text(exc)
        if error:
            raise DockerModuleError(
                "building %s from %s failed: %s" % (spec.ref, spec.build_context, error),
                build_log=_tail(self.build_log),
            )

    def pull(self, spec):
        repository, tag = split_repo_digest(spec.repo_digest) if spec.repo_digest else (spec.image, spec.version)
        self.actions.append("pull")
        if self.check_mode:
            return
        try:
            stream = self.api.pull(repository, tag=tag, stream=True, decode=True, auth_config=spec.auth_config)
            error = self._consume(stream, "pull")
        except (APIError, RequestException) as exc:
            error = api_error_text(exc)
        if not error and inspect_image_or_none(self.api, spec.ref) is None:
            error = "no image after the pull"
        if error:
            # dockerd never echoes a password, but a message must not carry one whatever it says.
            if spec.registry_password:
                error = error.replace(spec.registry_password, "********")
            raise DockerModuleError(pull_failure(spec.ref, error, spec.auth_config is not None), image_ref=spec.ref)

    def remove_tag(self, ref):
        self.actions.append("remove %s" % ref)
        if self.check_mode:
            return
        docker_call("remove %s" % ref, self.api.remove_image, ref, force=False, noprune=False)

    # -- the states ---------------------------------------------------------------------------

    def ensure(self, spec):
        before_tags = self.repository_tags(spec.image)
        existing = inspect_image_or_none(self.api, spec.ref)
        result = {"removed": [], "kept_in_use": []}

        if spec.state == "present":
            if existing is None or spec.force_rebuild:
                if spec.build_context:
                    self.build(spec)
                else:
                    self.pull(spec)
        elif existing is not None:
            users = self.containers_by_image().get(existing.get("Id"))
            if users:
                raise DockerModuleError(
                    "image %s is used by container(s) %s; remove them first (unitehub.platform.app_slot "
                    "state=absent)" % (spec.ref, ", ".join(sorted(users))),
                    image=summarize(existing),
                )
            self.remove_tag(spec.ref)
            result["removed"].append(spec.version)

        if spec.prune:
            self._prune(spec, before_tags, result)

        final = existing
        if not self.check_mode and self.actions:
            final = inspect_image_or_none(self.api, spec.ref)
        after_tags = (
            self.repository_tags(spec.image) if not self.check_mode else self._predicted_tags(spec, before_tags, result)
        )
        changed = bool(result["removed"]) or (
            any(a in ("build", "pull") for a in self.actions)
            and (self.check_mode or (final or {}).get("Id") != (existing or {}).get("Id"))
        )
        result.update(
            changed=changed,
            actions=list(self.actions),
            image=summarize(final) if spec.state == "present" else {},
            diff={
                "before": {"tags": sorted(before_tags)},
                "after": {"tags": sorted(after_tags)},
            },
        )
        if self.build_log:
            result["build_log"] = _tail(self.build_log)
        return result

    def _prune(self, spec, before_tags, result):
        users = self.containers_by_image()
        kept = spec.kept_tags
        for tag, image_id in sorted(before_tags.items()):
            if tag in kept or tag in result["removed"]:
                continue
            if users.get(image_id):
                result["kept_in_use"].append(
                    {"tag": tag, "reason": "used by container(s) %s" % ", ".join(sorted(users[image_id]))}
                )
                continue
            self.remove_tag("%s:%s" % (spec.image, tag))
            result["removed"].append(tag)

    @staticmethod
    def _predicted_tags(spec, before_tags, result):
        tags = set(before_tags) - set(result["removed"])
        if spec.state == "present" and not spec.repo_digest:  # a pull by digest tags nothing
            tags.add(spec.version)
        return tags
