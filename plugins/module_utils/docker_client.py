# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker client every Docker module of the collection shares: the guarded SDK
import, the connection options, the client, its errors, and the module body.

The logic (``app_slot``, ``app_image``) talks to the low-level ``docker.APIClient``
interface (``inspect_container``, ``create_container``, ``build`` ...), which
returns plain dicts. Unit tests hand it a fake object with the same few methods.
"""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import missing_required_lib

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
        request_timeout=dict(type="int", default=60, aliases=["timeout"],
                             deprecated_aliases=[dict(name="timeout", version="2.0.0",
                                                      collection_name="unitehub.platform")]),
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


def docker_call(what, func, *args, **kwargs):
    """``func(*args, **kwargs)``, with the daemon's refusal raised as a DockerModuleError that says
    what it refused to do."""
    try:
        return func(*args, **kwargs)
    except (APIError, RequestException) as exc:
        raise DockerModuleError("Docker refused to %s: %s" % (what, api_error_text(exc))) from exc


def docker_api_client(docker_host=None, request_timeout=60):
    """A low-level ``docker.APIClient`` for ``docker_host`` (``DOCKER_HOST`` or
    the local socket when unset), negotiating the daemon's API version."""
    try:
        if docker_host:
            client = docker.APIClient(base_url=docker_host, version="auto", timeout=request_timeout)
        else:
            client = docker.from_env(version="auto", timeout=request_timeout).api
        client.ping()
    except DockerException as exc:
        where = docker_host or "the local Docker socket (DOCKER_HOST unset)"
        raise DockerModuleError(
            "cannot reach the Docker daemon at %s: %s; start it (role unitehub.platform.docker_engine) "
            "or set docker_host" % (where, exc)
        ) from exc
    return client


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


def run_docker_module(module, prepare, work):
    """The body every Docker module shares.

    ``prepare(params)`` validates the options before any connection (a bad value
    is refused without touching the daemon); ``work(api, prepared)`` does the job
    and returns the result. A ``DockerModuleError`` fails the module with its
    details; any other exception fails it with its type and message instead of a
    traceback. The result's ``diff`` is reported only in diff mode.
    """
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker"), exception=DOCKER_IMPORT_ERROR)
    try:
        prepared = prepare(module.params)
        api = docker_api_client(module.params["docker_host"], module.params["request_timeout"])
        result = work(api, prepared)
    except DockerModuleError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    except Exception as exc:  # a bug or an environment problem: report it with context, not a traceback
        module.fail_json(msg="unexpected %s while talking to Docker: %s" % (type(exc).__name__, exc),
                         exception=traceback.format_exc())
    diff = result.pop("diff", None)
    if module._diff and diff is not None:
        result["diff"] = diff
    module.exit_json(**result)
