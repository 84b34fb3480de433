# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One blue/green slot of the app as a Docker container.

``SlotManager.ensure(spec)`` brings the container named by the spec to the
wanted state and returns what the module reports. It compares the running
container with the spec on the things that matter (image id, environment,
labels, restart policy, network mode) and recreates it only on a difference.

Secret environment values are compared like any other value but never leave
this module: the diff shows ``(secret)`` or ``(changed)`` in their place, and
the names of the secret keys are recorded in a label so a later run can still
mask them after they were moved out of ``secret_env``.

``slot_info(api, SlotQuery(params))`` only reads: it describes slot containers
(present or not) with the same ``summarize`` that app_slot reports.
"""

from __future__ import annotations

import os
import re

from ansible_collections.unitehub.platform.plugins.module_utils.docker_common import (
    APIError,
    DockerModuleError,
    RequestException,
    api_error_text,
    image_reference,
    inspect_container_or_none,
    inspect_image_or_none,
)
from ansible_collections.unitehub.platform.plugins.module_utils.fileio import atomic_write, read_text

SLOTS = ("blue", "green")
STATES = ("started", "stopped", "absent")
RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")

LABEL_APP = "io.unitehub.app"
LABEL_SLOT = "io.unitehub.slot"
LABEL_VERSION = "io.unitehub.version"
LABEL_SECRET_KEYS = "io.unitehub.secret-env-keys"
RESERVED_LABELS = (LABEL_APP, LABEL_SLOT, LABEL_VERSION, LABEL_SECRET_KEYS)

# Set by the module from its options; env may repeat them only with the same value.
RESERVED_ENV = ("PORT", "HOST", "APP_NAME", "APP_SLOT", "APP_VERSION")

# A container name as dockerd accepts it.
CONTAINER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]+$")

NETWORK_MODE = "host"
SECRET_MASK = "(secret)"
SECRET_CHANGED = "(changed)"


def env_value(value):
    """Environment values are strings; YAML booleans become ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def env_list_to_dict(env_list):
    """Docker's ``["K=V", ...]`` as a dict (a bare ``K`` maps to an empty string)."""
    result = {}
    for item in env_list or []:
        key, _sep, value = item.partition("=")
        result[key] = value
    return result


def default_container_name(app_name, slot):
    return "%s-%s" % (app_name, slot)


class SlotSpec:
    """The validated wish for one slot, built from the module's parameters."""

    def __init__(self, params):
        self.app_name = params.get("app_name") or "unitehub"
        self.slot = params.get("slot")
        self.state = params.get("state") or "started"
        self.name = params.get("name") or (default_container_name(self.app_name, self.slot) if self.slot else None)
        self.stop_grace_period = params.get("stop_grace_period")
        if self.stop_grace_period is None:
            self.stop_grace_period = 30
        self.log_lines = params.get("log_lines") or 0
        self.image = params.get("image")
        self.version = params.get("version")
        self.port = params.get("port")
        self.bind_address = params.get("bind_address") or "127.0.0.1"
        self.restart_policy = params.get("restart_policy") or "unless-stopped"
        self.extra_labels = dict(params.get("labels") or {})
        self.secret_env_file = params.get("secret_env_file")
        self.env = {}
        self.secret_keys = frozenset()
        self.labels = {}
        self.image_ref = None
        self._validate(params)

    def _validate(self, params):
        if not self.name:
            raise DockerModuleError("give the container name, or slot (and app_name) to derive it from")
        if self.slot is not None and self.slot not in SLOTS:
            raise DockerModuleError("slot '%s' is not one of %s" % (self.slot, ", ".join(SLOTS)))
        if self.state not in STATES:
            raise DockerModuleError("state '%s' is not one of %s" % (self.state, ", ".join(STATES)))
        if self.stop_grace_period < 0:
            raise DockerModuleError(
                "stop_grace_period %s is negative; give the seconds the app gets after SIGTERM" % self.stop_grace_period
            )
        if self.log_lines < 0:
            raise DockerModuleError("log_lines %s is negative; give 0 for no logs" % self.log_lines)
        if self.state != "started":
            return
        missing = [opt for opt in ("slot", "image", "version", "port") if params.get(opt) in (None, "")]
        if missing:
            raise DockerModuleError("state=started needs %s" % ", ".join(missing))
        if not 1 <= self.port <= 65535:
            raise DockerModuleError("port %s is out of range; use 1-65535" % self.port)
        if self.restart_policy not in RESTART_POLICIES:
            raise DockerModuleError(
                "restart_policy '%s' is not one of %s" % (self.restart_policy, ", ".join(RESTART_POLICIES))
            )
        self.version = env_value(self.version)
        self.image_ref = image_reference(self.image, self.version)
        self.env, self.secret_keys = self._build_env(params.get("env") or {}, params.get("secret_env") or {})
        self.labels = self._build_labels()

    def _build_env(self, env, secret_env):
        module_env = {
            "PORT": str(self.port),
            "HOST": self.bind_address,
            "APP_NAME": self.app_name,
            "APP_SLOT": self.slot,
            "APP_VERSION": self.version,
        }
        plain = {str(k): env_value(v) for k, v in env.items()}
        secret = {str(k): env_value(v) for k, v in secret_env.items()}
        for key in list(plain) + list(secret):
            if not key or "=" in key:
                raise DockerModuleError("environment variable name '%s' is empty or contains '='" % key)
        both = sorted(set(plain) & set(secret))
        if both:
            raise DockerModuleError(
                "%s set in both env and secret_env; keep each variable in one of them" % ", ".join(both)
            )
        for source, values in (("env", plain), ("secret_env", secret)):
            for key in RESERVED_ENV:
                if key in values and values[key] != module_env[key]:
                    shown = "(hidden)" if source == "secret_env" else "'%s'" % values[key]
                    raise DockerModuleError(
                        "%s sets %s=%s but the module sets it to '%s' from its options; "
                        "remove %s from %s" % (source, key, shown, module_env[key], key, source)
                    )
        merged = dict(plain)
        merged.update(secret)
        merged.update(module_env)
        return merged, frozenset(secret)

    def _build_labels(self):
        clashes = sorted(k for k in self.extra_labels if k in RESERVED_LABELS)
        if clashes:
            raise DockerModuleError("labels may not set %s; the module owns them" % ", ".join(clashes))
        labels = {str(k): env_value(v) for k, v in self.extra_labels.items()}
        labels[LABEL_APP] = self.app_name
        labels[LABEL_SLOT] = self.slot
        labels[LABEL_VERSION] = self.version
        if self.secret_keys:
            labels[LABEL_SECRET_KEYS] = ",".join(sorted(self.secret_keys))
        return labels


def expected_env(image_attrs, spec):
    """The environment a container created from the spec would have: the
    image's ENV with the spec's variables on top."""
    env = env_list_to_dict(((image_attrs or {}).get("Config") or {}).get("Env"))
    env.update(spec.env)
    return env


def expected_labels(image_attrs, spec):
    labels = dict(((image_attrs or {}).get("Config") or {}).get("Labels") or {})
    labels.update(spec.labels)
    return labels


def _restart_policy_name(container_attrs):
    policy = (container_attrs.get("HostConfig") or {}).get("RestartPolicy") or {}
    return policy.get("Name") or "no"


def differences(container_attrs, image_attrs, spec):
    """Names of the settings in which the container differs from the spec."""
    config = container_attrs.get("Config") or {}
    found = []
    if container_attrs.get("Image") != image_attrs.get("Id"):
        found.append("image")
    if env_list_to_dict(config.get("Env")) != expected_env(image_attrs, spec):
        found.append("env")
    if (config.get("Labels") or {}) != expected_labels(image_attrs, spec):
        found.append("labels")
    if _restart_policy_name(container_attrs) != spec.restart_policy:
        found.append("restart_policy")
    if (container_attrs.get("HostConfig") or {}).get("NetworkMode") != NETWORK_MODE:
        found.append("network_mode")
    return found


def secret_keys_of(container_attrs):
    labels = ((container_attrs or {}).get("Config") or {}).get("Labels") or {}
    return frozenset(k for k in (labels.get(LABEL_SECRET_KEYS) or "").split(",") if k)


def _masked_env(env, secret_keys):
    return {k: (SECRET_MASK if k in secret_keys else v) for k, v in sorted(env.items())}


def container_state_name(container_attrs):
    if not container_attrs:
        return "absent"
    return (container_attrs.get("State") or {}).get("Status") or "unknown"


def diff_view(container_attrs, spec, after_env, after_state, after_image_id):
    """``before``/``after`` for diff mode. Secret values never appear: both
    sides show ``(secret)``, and ``after`` shows ``(changed)`` for a secret
    that differs."""
    before = {"state": container_state_name(container_attrs)}
    before_env = {}
    if container_attrs:
        config = container_attrs.get("Config") or {}
        labels = config.get("Labels") or {}
        before_env = env_list_to_dict(config.get("Env"))
        before.update(
            image=config.get("Image"),
            image_id=container_attrs.get("Image"),
            version=labels.get(LABEL_VERSION),
        )
    hidden = spec.secret_keys | secret_keys_of(container_attrs)
    before["env"] = _masked_env(before_env, hidden)
    after = {"state": after_state}
    if after_env is None:
        after_env = before_env
        after.update({k: before[k] for k in ("image", "image_id", "version") if k in before})
    else:
        after.update(image=spec.image_ref, image_id=after_image_id, version=spec.version)
    after["env"] = {
        k: ((SECRET_CHANGED if before_env.get(k) != v else SECRET_MASK) if k in hidden else v)
        for k, v in sorted(after_env.items())
    }
    if after_state == "absent":
        after = {"state": "absent"}
    return {"before": before, "after": after}


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


def validate_container_name(name):
    if not CONTAINER_NAME_RE.match(name or ""):
        raise DockerModuleError(
            "name '%s' is not a valid container name; use at least two letters, digits, '_', '.' or '-', "
            "starting with a letter or digit" % name
        )


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
        if not CONTAINER_NAME_RE.match(targets[0][0]):
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


def secret_env_record(name, secret_env):
    """The operator's copy of a container's secret environment, in docker --env-file format."""
    lines = ["# Secret environment of the %s container, written by unitehub.platform.app_slot.\n" % name]
    lines.extend("%s=%s\n" % (key, secret_env[key]) for key in sorted(secret_env))
    return "".join(lines)


def sync_secret_env_file(path, content, check_mode=False):
    """Make ``path`` hold ``content`` with mode 0600 (None removes it). Returns
    whether anything changed. The directory is created 0750."""
    if content is None:
        if not os.path.exists(path):
            return False
        if not check_mode:
            os.unlink(path)
        return True
    unchanged = read_text(path) == content and (os.stat(path).st_mode & 0o777) == 0o600
    if unchanged:
        return False
    if not check_mode:
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o750)
        atomic_write(path, content, 0o600)
    return True


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

    def _create(self, spec):
        host_config = self.api.create_host_config(
            network_mode=NETWORK_MODE,
            restart_policy={"Name": spec.restart_policy, "MaximumRetryCount": 0},
        )
        created = self._call(
            "create",
            spec.name,
            self.api.create_container,
            image=spec.image_ref,
            name=spec.name,
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
        result = {"differences": []}
        image_attrs = None

        if spec.state == "absent":
            if current:
                self._remove(current, spec)
            diff = diff_view(current, spec, None, "absent", None)
        elif spec.state == "stopped":
            if current:
                self._stop(current, spec)
            after_state = container_state_name(current)
            if current and "stop" in self.actions:
                after_state = "exited"
            diff = diff_view(current, spec, None, after_state, None)
        else:
            image_attrs = inspect_image_or_none(self.api, spec.image_ref)
            if image_attrs is None:
                raise DockerModuleError(
                    "image %s is not present on this Docker host; build it with unitehub.platform.app_image "
                    "(build_context, or role variable app_build_context) or pull it (docker pull %s), "
                    "then run again" % (spec.image_ref, spec.image_ref),
                    image=spec.image_ref,
                )
            if current:
                result["differences"] = differences(current, image_attrs, spec)
            if not current:
                container_id = self._create(spec)
                self._start(container_id, spec)
            elif result["differences"]:
                self._remove(current, spec)
                container_id = self._create(spec)
                self._start(container_id, spec)
            elif not _is_active(current):
                self._start(current["Id"], spec)
            diff = diff_view(current, spec, expected_env(image_attrs, spec), "running", image_attrs.get("Id"))

        final = current
        if self.actions and not self.check_mode:
            final = inspect_container_or_none(self.api, spec.name)
        result["secret_env_file_changed"] = self._sync_record(spec)
        result.update(
            changed=bool(self.actions) or result["secret_env_file_changed"],
            actions=list(self.actions),
            container=summarize(final),
            diff=diff,
        )
        if spec.log_lines:
            result["logs"] = self.logs(final["Id"], spec.log_lines) if final else []
        return result

    def _sync_record(self, spec):
        if not spec.secret_env_file or spec.state == "stopped":
            return False
        content = None
        if spec.state == "started":
            content = secret_env_record(spec.name, {key: spec.env[key] for key in spec.secret_keys})
        return sync_secret_env_file(spec.secret_env_file, content, self.check_mode)

    def logs(self, container_id, lines):
        return container_logs(self.api, container_id, lines)
