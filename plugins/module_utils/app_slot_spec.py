# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one blue/green slot container should be, and how a running one differs.

``SlotSpec`` is the validated wish built from app_slot's parameters. The pure
functions compare a container (docker's inspect document) with it on the things
that matter (image id, environment, labels, restart policy, network mode) and
build the diff view. Secret environment values never leave here: the diff shows
``(secret)`` or ``(changed)`` in their place, and the names of the secret keys
are recorded in a label so a later run can still mask them after they were moved
out of ``secret_env``.
"""

from __future__ import annotations

import re

from ansible_collections.unitehub.platform.plugins.module_utils.app_image import image_reference, validate_image_id
from ansible_collections.unitehub.platform.plugins.module_utils.docker_client import DockerModuleError
from ansible_collections.unitehub.platform.plugins.module_utils.slots import SLOTS

STATES = ("started", "stopped", "absent")
RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")

LABEL_APP = "io.unitehub.app"
LABEL_SLOT = "io.unitehub.slot"
LABEL_VERSION = "io.unitehub.version"
LABEL_SECRET_KEYS = "io.unitehub.secret-env-keys"
RESERVED_LABELS = (LABEL_APP, LABEL_SLOT, LABEL_VERSION, LABEL_SECRET_KEYS)

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


def container_environment(module_env, env, secret_env):
    """``(environment, secret part)`` of a container the collection creates: ``env`` and
    ``secret_env`` (values as strings) with ``module_env``, the variables the module sets from
    its options, on top. Refused when a name is bad, set in both, or sets a module variable to
    another value."""
    plain = {str(k): env_value(v) for k, v in (env or {}).items()}
    secret = {str(k): env_value(v) for k, v in (secret_env or {}).items()}
    for key in list(plain) + list(secret):
        if not key or "=" in key:
            raise DockerModuleError("environment variable name '%s' is empty or contains '='" % key)
    both = sorted(set(plain) & set(secret))
    if both:
        raise DockerModuleError("%s set in both env and secret_env; keep each variable in one of them" % ", ".join(both))
    for source, values in (("env", plain), ("secret_env", secret)):
        for key, value in module_env.items():
            if key in values and values[key] != value:
                shown = "(hidden)" if source == "secret_env" else "'%s'" % values[key]
                raise DockerModuleError("%s sets %s=%s but the module sets it to '%s' from its options; remove %s from %s"
                                        % (source, key, shown, value, key, source))
    merged = dict(plain)
    merged.update(secret)
    merged.update(module_env)
    return merged, secret


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
        # The image the container runs: <image>:<version>, or exactly image_id (a rollback's recorded image).
        self.image_id = params.get("image_id")
        self.run_image = None
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
        if self.image_id:
            validate_image_id(self.image_id)
        self.run_image = self.image_id or self.image_ref
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
        merged, secret = container_environment(module_env, env, secret_env)
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


def restart_policy_name(container_attrs):
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
    if restart_policy_name(container_attrs) != spec.restart_policy:
        found.append("restart_policy")
    if (container_attrs.get("HostConfig") or {}).get("NetworkMode") != NETWORK_MODE:
        found.append("network_mode")
    return found


def secret_keys_of(container_attrs):
    labels = ((container_attrs or {}).get("Config") or {}).get("Labels") or {}
    return frozenset(k for k in (labels.get(LABEL_SECRET_KEYS) or "").split(",") if k)


def masked_env(env, secret_keys):
    return {k: (SECRET_MASK if k in secret_keys else v) for k, v in sorted(env.items())}


def container_state_name(container_attrs):
    if not container_attrs:
        return "absent"
    return (container_attrs.get("State") or {}).get("Status") or "unknown"


def diff_view(container_attrs, spec, after_env, after_state, after_image_id, after_image=None):
    """``before``/``after`` for diff mode. Secret values never appear: both
    sides show ``(secret)``, and ``after`` shows ``(changed)`` for a secret
    that differs. ``after_image`` is the reference the container will show
    (``spec.run_image`` unless it is kept as it is)."""
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
    before["env"] = masked_env(before_env, hidden)
    after = {"state": after_state}
    if after_env is None:
        after_env = before_env
        after.update({k: before[k] for k in ("image", "image_id", "version") if k in before})
    else:
        after.update(image=after_image or spec.run_image, image_id=after_image_id, version=spec.version)
    after["env"] = {
        k: ((SECRET_CHANGED if before_env.get(k) != v else SECRET_MASK) if k in hidden else v)
        for k, v in sorted(after_env.items())
    }
    if after_state == "absent":
        after = {"state": "absent"}
    return {"before": before, "after": after}


def validate_container_name(name):
    if not CONTAINER_NAME_RE.fullmatch(name or ""):
        raise DockerModuleError(
            "name '%s' is not a valid container name; use at least two letters, digits, '_', '.' or '-', "
            "starting with a letter or digit" % name
        )
