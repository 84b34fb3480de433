# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every Docker module of the collection shares: the guarded SDK import,
the connection options, the client, and image reference rules.

The logic modules (``docker_slot``, ``docker_image``) talk to the low-level
``docker.APIClient`` interface (``inspect_container``, ``create_container``,
``build`` ...), which returns plain dicts. Unit tests hand them a fake object
with the same few methods.
"""

from __future__ import annotations

import re
import traceback

try:
    import docker
    from docker.errors import APIError, DockerException, ImageNotFound, NotFound
    # What a call to the daemon can raise: APIError for its refusals, RequestException for
    # transport errors such as a read timeout. The callers import both from here and catch
    # ``(APIError, RequestException)``.
    from requests.exceptions import RequestException  # pylint: disable=unused-import

    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - exercised only without the SDK
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = traceback.format_exc()

    class DockerException(Exception):
        """Placeholder so ``except`` clauses work without the SDK."""

    class APIError(DockerException):
        """Placeholder so ``except`` clauses work without the SDK."""

    class NotFound(APIError):
        """Placeholder so ``except`` clauses work without the SDK."""

    class ImageNotFound(NotFound):
        """Placeholder so ``except`` clauses work without the SDK."""

    class RequestException(Exception):
        """Placeholder so ``except`` clauses work without requests (a dependency of the SDK)."""


def docker_argument_spec():
    """The options every Docker module accepts, to merge into its argument_spec.
    Documented by the doc fragment ``unitehub.platform.docker``."""
    return dict(
        docker_host=dict(type="str"),
        timeout=dict(type="int", default=60),
    )


# A tag as Docker accepts it: https://docs.docker.com/reference/cli/docker/image/tag/
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# A repository path: lowercase components separated by '/', optional registry host[:port].
REPOSITORY_RE = re.compile(
    r"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)


class DockerModuleError(Exception):
    """A failure the module reports with ``fail_json``; ``details`` go into the result."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details


def api_error_text(exc):
    """The daemon's own explanation of an APIError (or the transport error), without the HTTP noise."""
    explanation = getattr(exc, "explanation", None)
    if explanation:
        return explanation.decode("utf-8", "replace") if isinstance(explanation, bytes) else str(explanation)
    return str(exc)


def docker_api_client(docker_host=None, timeout=60):
    """A low-level ``docker.APIClient`` for ``docker_host`` (``DOCKER_HOST`` or
    the local socket when unset), negotiating the daemon's API version."""
    try:
        if docker_host:
            client = docker.APIClient(base_url=docker_host, version="auto", timeout=timeout)
        else:
            client = docker.from_env(version="auto", timeout=timeout).api
        client.ping()
    except DockerException as exc:
        where = docker_host or "the local Docker socket (DOCKER_HOST unset)"
        raise DockerModuleError(
            "cannot reach the Docker daemon at %s: %s; start it (role unitehub.platform.docker_engine) "
            "or set docker_host" % (where, exc)
        ) from exc
    return client


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
    if not REPOSITORY_RE.match(image):
        raise DockerModuleError(
            "image '%s' is not a valid repository name; use lowercase letters, digits and . _ - separated by /" % image
        )


def validate_tag(version, option="version"):
    if not TAG_RE.match(version or ""):
        raise DockerModuleError(
            "%s '%s' is not a valid image tag; use up to 128 letters, digits, '_', '.' or '-', "
            "not starting with '.' or '-'" % (option, version)
        )


def image_reference(image, version):
    """``<image>:<version>`` after checking both parts."""
    validate_repository(image)
    validate_tag(version)
    return "%s:%s" % (image, version)


def inspect_image_or_none(api, ref):
    try:
        return api.inspect_image(ref)
    except (ImageNotFound, NotFound):
        return None


def inspect_container_or_none(api, name):
    try:
        return api.inspect_container(name)
    except NotFound:
        return None
