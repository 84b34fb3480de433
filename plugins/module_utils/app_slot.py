# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The app's blue/green slot containers: bring one to its wanted state, or describe them.

``SlotManager.ensure(spec)`` brings the container named by a ``SlotSpec`` to the
wanted state and returns what app_slot reports; it recreates the container only
when ``differences`` finds one. ``slot_info(api, SlotQuery(params))`` only reads:
it describes slot containers (present or not) with the same ``summarize``.
"""

from __future__ import annotations

from ansible_collections.unitehub.platform.plugins.module_utils.app_image import repo_digest, repository_of
from ansible_collections.unitehub.platform.plugins.module_utils.app_slot_spec import (
    CONTAINER_NAME_RE,
    LABEL_APP,
    LABEL_SLOT,
    LABEL_VERSION,
    NETWORK_MODE,
    container_state_name,
    default_container_name,
    differences,
    diff_view,
    env_list_to_dict,
    expected_env,
    validate_container_name,
)
from ansible_collections.unitehub.platform.plugins.module_utils.docker_client import (
    APIError,
    DockerModuleError,
    RequestException,
    api_error_text,
    inspect_container_or_none,
    inspect_image_or_none,
)
from ansible_collections.unitehub.platform.plugins.module_utils.fileio import remove_files
from ansible_collections.unitehub.platform.plugins.module_utils.secret_files import (
    digest_key,
    remove_secret_dir,
    sync_secret_dir,
)
from ansible_collections.unitehub.platform.plugins.module_utils.slots import SLOTS


def summarize(container_attrs):
    """The ``container`` return value."""
    if not container_attrs:
        return {}
    config = container_attrs.get("Config") or {}
    labels = config.get("Labels") or {}
    state = container_attrs.get("State") or {}
    port = env_list_to_dict(config.get("Env")).get("PORT")
    return {
        "id": container_attrs.get("Id"),
        "name": (container_attrs.get("Name") or "").lstrip("/"),
        "status": state.get("Status"),
        "running": bool(state.get("Running")),
        "image": config.get("Image"),
        "image_id": container_attrs.get("Image"),
        "slot": labels.get(LABEL_SLOT),
        "version": labels.get(LABEL_VERSION),
        "port": int(port) if port and port.isdigit() else None,
        "started_at": state.get("StartedAt"),
        "restart_count": container_attrs.get("RestartCount", 0),
        "exit_code": state.get("ExitCode"),
    }


def container_logs(api, container_id, lines, name=None):
    """The last ``lines`` lines of a container's stdout and stderr."""
    try:
        raw = api.logs(container_id, stdout=True, stderr=True, tail=lines, timestamps=False)
    except (APIError, RequestException) as exc:
        raise DockerModuleError(
            "cannot read the logs of container %s: %s" % (name or container_id, api_error_text(exc))
        ) from exc
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    return raw.splitlines()[-lines:]


def absent_summary(name, slot=None):
    """The ``container`` value of app_slot_info for a container that does not
    exist: the keys of ``summarize`` with nothing known but the name (and the
    slot it was asked for)."""
    return {
        "id": None,
        "name": name,
        "status": "absent",
        "running": False,
        "image": None,
        "image_id": None,
        "slot": slot,
        "version": None,
        "port": None,
        "started_at": None,
        "restart_count": None,
        "exit_code": None,
    }


class SlotQuery:
    """The validated question of app_slot_info: which containers, how many log lines.

    ``targets`` lists ``(container name, slot or None)`` in the order asked: the
    one ``name``, or ``<app_name>-<slot>`` for each of ``slots`` (repeats dropped).
    """

    def __init__(self, params):
        self.name = params.get("name")
        self.app_name = params.get("app_name") or "unitehub"
        self.slots = params.get("slots")
        if self.slots is None:
            self.slots = list(SLOTS)
        self.log_lines = params.get("log_lines") or 0
        if self.log_lines < 0:
            raise DockerModuleError("log_lines %s is negative; give 0 for no logs" % self.log_lines)
        if self.name is not None:
            validate_container_name(self.name)
            self.targets = [(self.name, None)]
        else:
            self.targets = self._slot_targets()

    def _slot_targets(self):
        if not self.slots:
            raise DockerModuleError("slots is empty; give blue, green or both, or one container in name")
        targets = []
        for slot in self.slots:
            if slot not in SLOTS:
                raise DockerModuleError("slot '%s' in slots is not one of %s" % (slot, ", ".join(SLOTS)))
            name = default_container_name(self.app_name, slot)
            if (name, slot) not in targets:
                targets.append((name, slot))
        if not CONTAINER_NAME_RE.fullmatch(targets[0][0]):
            raise DockerModuleError(
                "app_name '%s' gives the container name '%s', which Docker does not accept; "
                "use letters, digits, '_', '.' or '-' in app_name, starting with a letter or digit"
                % (self.app_name, targets[0][0])
            )
        return targets

    @property
    def single(self):
        """Asked for one container by ``name``: the result also carries ``container`` and ``exists``."""
        return self.name is not None


def slot_info(api, query):
    """What app_slot_info returns: ``containers``, one entry per target in order,
    each ``summarize`` (or ``absent_summary``) plus ``exists`` and, with
    ``log_lines``, ``logs``; for a single ``name`` also ``container`` and ``exists``.
    Reads only."""
    containers = []
    for name, slot in query.targets:
        try:
            attrs = inspect_container_or_none(api, name)
        except (APIError, RequestException) as exc:
            raise DockerModuleError("cannot inspect container %s: %s" % (name, api_error_text(exc))) from exc
        entry = summarize(attrs) if attrs else absent_summary(name, slot)
        entry["exists"] = bool(attrs)
        if query.log_lines:
            entry["logs"] = container_logs(api, attrs["Id"], query.log_lines, name=name) if attrs else []
        containers.append(entry)
    result = {"changed": False, "containers": containers}
    if query.single:
        result.update(container=containers[0], exists=containers[0]["exists"])
    return result


def create_reference(image_attrs, spec):
    """What a container is created from: ``<image>:<version>``; with ``image_id``, the image's repo
    digest in ``image`` (a readable name that cannot move), or else the id itself."""
    if not spec.image_id:
        return spec.image_ref
    return repo_digest(image_attrs, spec.image) or spec.image_id


def _is_active(container_attrs):
    state = container_attrs.get("State") or {}
    return bool(state.get("Running") or state.get("Restarting"))


class SlotManager:
    """Applies a SlotSpec through a low-level Docker API client."""

    def __init__(self, api, check_mode=False):
        self.api = api
        self.check_mode = check_mode
        self.actions = []

    # -- the steps, each one recorded and skipped in check mode ---------------------------

    def _call(self, action, what, func, *args, **kwargs):
        self.actions.append(action)
        if self.check_mode:
            return None
        try:
            return func(*args, **kwargs)
        except (APIError, RequestException) as exc:
            raise DockerModuleError(
                "Docker refused to %s container %s: %s" % (action, what, api_error_text(exc)),
                actions=list(self.actions),
            ) from exc

    def _stop(self, container_attrs, spec):
        if _is_active(container_attrs):
            self._call("stop", spec.name, self.api.stop, container_attrs["Id"], timeout=spec.stop_grace_period)

    def _remove(self, container_attrs, spec):
        self._stop(container_attrs, spec)
        self._call("remove", spec.name, self.api.remove_container, container_attrs["Id"], force=True)

    def _create(self, spec, image_ref):
        host_config = self.api.create_host_config(
            network_mode=NETWORK_MODE,
            restart_policy={"Name": spec.restart_policy, "MaximumRetryCount": 0},
            binds=spec.binds,
            **spec.confinement.host_config()
        )
        created = self._call(
            "create",
            spec.name,
            self.api.create_container,
            image=image_ref,
            name=spec.name,
            user=spec.run_user,
            environment=spec.env,
            labels=spec.labels,
            host_config=host_config,
            stop_timeout=spec.stop_grace_period,
            detach=True,
        )
        return (created or {}).get("Id")

    def _start(self, container_id, spec):
        self._call("start", spec.name, self.api.start, container_id)

    # -- the states --------------------------------------------------------------------------

    @staticmethod
    def _refuse_foreign(container_attrs, spec):
        labels = (container_attrs.get("Config") or {}).get("Labels") or {}
        if LABEL_APP not in labels:
            raise DockerModuleError(
                "container %s exists but was not created by unitehub.platform.app_slot (it has no %s label); "
                "remove it (docker rm -f %s) or give another name" % (spec.name, LABEL_APP, spec.name)
            )

    def ensure(self, spec):
        current = inspect_container_or_none(self.api, spec.name)
        if current:
            self._refuse_foreign(current, spec)
        result = {"differences": [], "secret_files_changed": False, "removed_files": []}
        image_attrs = None

        if spec.state == "absent":
            if current:
                self._remove(current, spec)
            result["secret_files_changed"] = remove_secret_dir(spec.secrets_dir, spec.name, self.check_mode)
            diff = diff_view(current, spec, None, "absent", None)
        elif spec.state == "stopped":
            if current:
                self._stop(current, spec)
            after_state = container_state_name(current)
            if current and "stop" in self.actions:
                after_state = "exited"
            diff = diff_view(current, spec, None, after_state, None)
        else:
            image_attrs = self._image(spec)
            image_ref = create_reference(image_attrs, spec)
            key = digest_key(spec.secrets_dir, create=not self.check_mode) if spec.secret_files else None
            spec.settle(image_attrs, key)
            # The files are in place before a container that reads them is created.
            if spec.secret_files:
                result["secret_files_changed"] = sync_secret_dir(
                    spec.secrets_dir, spec.name, spec.secret_files, spec.run_uid, self.check_mode)
            if current:
                result["differences"] = differences(current, image_attrs, spec)
            if not current:
                container_id = self._create(spec, image_ref)
                self._start(container_id, spec)
            elif result["differences"]:
                self._remove(current, spec)
                container_id = self._create(spec, image_ref)
                self._start(container_id, spec)
            else:
                if not _is_active(current):
                    self._start(current["Id"], spec)
                image_ref = (current.get("Config") or {}).get("Image")  # kept as it is
            diff = diff_view(current, spec, expected_env(image_attrs, spec), "running", image_attrs.get("Id"),
                             after_image=image_ref)
            if not spec.secret_files:
                result["secret_files_changed"] = remove_secret_dir(spec.secrets_dir, spec.name, self.check_mode)
            result["removed_files"] = remove_files(spec.obsolete_files, self.check_mode)

        final = current
        if self.actions and not self.check_mode:
            final = inspect_container_or_none(self.api, spec.name)
        result.update(
            changed=bool(self.actions) or result["secret_files_changed"] or bool(result["removed_files"]),
            actions=list(self.actions),
            container=summarize(final),
            repo_digest=self._repo_digest(final, spec) if final else None,
            diff=diff,
        )
        if spec.log_lines:
            result["logs"] = self.logs(final["Id"], spec.log_lines) if final else []
        return result

    def _image(self, spec):
        """The image the container is to run; it must be on the host already (this module never pulls)."""
        image_attrs = inspect_image_or_none(self.api, spec.run_image)
        if image_attrs is not None:
            return image_attrs
        if spec.image_id:
            raise DockerModuleError(
                "image %s, the exact image asked for version %s, is not present on this Docker host; pull it by its "
                "repo digest first (unitehub.platform.app_image repo_digest, or docker pull <repository>@sha256:...). "
                "A new deploy of %s would run whatever its tag names now" % (spec.image_id, spec.version, spec.version),
                image=spec.image_id,
            )
        raise DockerModuleError(
            "image %s is not present on this Docker host; build it with unitehub.platform.app_image "
            "(build_context, or role variable app_build_context) or pull it (docker pull %s), "
            "then run again" % (spec.image_ref, spec.image_ref),
            image=spec.image_ref,
        )

    def _repo_digest(self, container_attrs, spec):
        """The repo digest of the container's image, in the repository it was created from (or the
        spec's); None for an image that was never pulled or pushed."""
        image_attrs = inspect_image_or_none(self.api, container_attrs.get("Image"))
        return repo_digest(image_attrs, repository_of((container_attrs.get("Config") or {}).get("Image")), spec.image)

    def logs(self, container_id, lines):
        return container_logs(self.api, container_id, lines)
