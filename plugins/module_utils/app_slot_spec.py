# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one blue/green slot container should be, and how a running one differs.

``SlotSpec`` is the validated wish built from app_slot's parameters. The pure
functions compare a container (docker's inspect document) with it on the things
that matter (image id, environment, labels, restart policy, network mode) and
build the diff view. Secrets reach the container as files by default
(``secret_files``): its environment holds ``<NAME>_FILE`` paths, and a label holds a
keyed digest of the values. A secret the app may only read from its environment
(``secret_env_in_environment``) never leaves here either: the diff shows ``(secret)``
or ``(changed)`` in its place, and the names of such keys are recorded in a label so
a later run can still mask them after they were moved out of ``secret_env``.

``Confinement`` is how every container the collection creates (slots and hooks) is
hardened: all capabilities dropped, no-new-privileges, a read-only root filesystem with
tmpfs mounts, pids and memory limits, and a non-root user.
"""

from __future__ import annotations

import re

from ansible_collections.unitehub.platform.plugins.module_utils.app_image import image_reference, validate_image_id
from ansible_collections.unitehub.platform.plugins.module_utils.docker_client import DockerModuleError
from ansible_collections.unitehub.platform.plugins.module_utils.secret_files import container_secret_dir, secrets_digest
from ansible_collections.unitehub.platform.plugins.module_utils.slots import SLOTS

STATES = ("started", "stopped", "absent")
RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")

LABEL_APP = "io.unitehub.app"
LABEL_SLOT = "io.unitehub.slot"
LABEL_VERSION = "io.unitehub.version"
LABEL_SECRET_KEYS = "io.unitehub.secret-env-keys"
LABEL_SECRETS_DIGEST = "io.unitehub.secrets-digest"
RESERVED_LABELS = (LABEL_APP, LABEL_SLOT, LABEL_VERSION, LABEL_SECRET_KEYS, LABEL_SECRETS_DIGEST)

# A container name as dockerd accepts it.
CONTAINER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]+$")

NETWORK_MODE = "host"
SECRET_MASK = "(secret)"
SECRET_CHANGED = "(changed)"

# Where a container finds its secret files, and the suffix of the variables that point at them
# (the convention of the official postgres and mysql images).
SECRETS_MOUNT = "/run/secrets"
FILE_SUFFIX = "_FILE"
# Persistent and root-only: a container restarted by Docker after a reboot still finds its files.
DEFAULT_SECRETS_DIR = "/etc/unitehub/secrets"
# A secret's variable names its file, so it must be a plain portable name.
SECRET_FILE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

DEFAULT_TMPFS = {"/tmp": "rw,noexec,nosuid,nodev,size=64m"}
DEFAULT_PIDS_LIMIT = 256
DEFAULT_MEMORY = "512m"
# nobody:nogroup, what an image that would run as root runs as instead.
UNPRIVILEGED_USER = "65534:65534"
# Docker refuses a memory limit below 6 MiB.
MEMORY_MIN = 6 * 1024 * 1024
NO_NEW_PRIVILEGES = "no-new-privileges"
CAPABILITY_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
MEMORY_RE = re.compile(r"^([0-9]+)([bkmg]?)$")
MEMORY_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
# tmpfs options go to the kernel as one comma-separated string.
TMPFS_OPTIONS_RE = re.compile(r"^[A-Za-z0-9_=,.:-]*$")


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


def container_environment(module_env, env, secret_env, in_environment=()):
    """``(environment, secret part, secret files)`` of a container the collection creates.

    Each secret becomes a file (``secret files``, name -> value) and the environment gets
    ``<NAME>_FILE`` pointing at it under ``SECRETS_MOUNT``; only the names in ``in_environment``
    go into the environment as values (``secret part``). ``env`` (values as strings) and
    ``module_env``, the variables the module sets from its options, are on top. Refused when a
    name is bad, set in both, or sets a module variable to another value."""
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
    in_environment = {str(name) for name in in_environment or ()}
    files = {k: v for k, v in secret.items() if k not in in_environment}
    secret = {k: v for k, v in secret.items() if k in in_environment}
    pointers = {}
    for key in sorted(files):
        if not SECRET_FILE_NAME_RE.fullmatch(key):
            raise DockerModuleError("secret_env name '%s' cannot name a file; use letters, digits and '_', or list it "
                                    "in secret_env_in_environment" % key)
        pointer = key + FILE_SUFFIX
        if pointer in plain or pointer in secret or pointer in module_env:
            raise DockerModuleError("%s is set, but the module sets it to the file of secret %s; remove %s"
                                    % (pointer, key, pointer))
        pointers[pointer] = "%s/%s" % (SECRETS_MOUNT, key)
    merged = dict(plain)
    merged.update(secret)
    merged.update(pointers)
    merged.update(module_env)
    return merged, secret, files


def slot_argument_spec():
    """The options of app_slot and app_release that say what a slot's container runs and how it runs: the
    app it belongs to, image, environment, port, restart policy, stop and logs. ``slot`` and ``state`` are each
    module's own (app_release requires the slot and cannot remove the container). Each module documents these
    options in its own words."""
    return dict(
        app_name=dict(type="str", default="unitehub"),
        image=dict(type="str"),
        version=dict(type="str"),
        image_id=dict(type="str"),
        env=dict(type="dict", default={}),
        secret_env=dict(type="dict", default={}, no_log=True),
        port=dict(type="int"),
        bind_address=dict(type="str", default="127.0.0.1"),
        stop_grace_period=dict(type="int", default=30),
        restart_policy=dict(type="str", choices=list(RESTART_POLICIES), default="unless-stopped"),
        log_lines=dict(type="int", default=0),
        obsolete_files=dict(type="list", elements="path", default=[]),
    )


def container_argument_spec():
    """The options of app_slot and app_hook that say how a container is confined and gets its
    secrets. Documented by the doc fragment ``unitehub.platform.app_container``."""
    return dict(
        # Names of secrets, not values.
        secret_env_in_environment=dict(type="list", elements="str", default=[], no_log=False),
        secrets_dir=dict(type="path", default=DEFAULT_SECRETS_DIR),
        user=dict(type="str", default=""),
        allow_root=dict(type="bool", default=False),
        cap_add=dict(type="list", elements="str", default=[]),
        read_only=dict(type="bool", default=True),
        tmpfs=dict(type="dict", default=dict(DEFAULT_TMPFS)),
        pids_limit=dict(type="int", default=DEFAULT_PIDS_LIMIT),
        memory=dict(type="str", default=DEFAULT_MEMORY),
    )


def normalize_capability(name):
    """``net_bind_service``, ``CAP_NET_BIND_SERVICE`` -> ``NET_BIND_SERVICE`` (Docker shows either)."""
    name = str(name).strip().upper()
    return name[4:] if name.startswith("CAP_") else name


def memory_bytes(value):
    """A memory size in Docker's notation (``512m``, ``1g``, bytes) as bytes."""
    match = MEMORY_RE.fullmatch(str(value).strip().lower())
    if not match:
        raise DockerModuleError("memory '%s' is not a size; give bytes or a number with b, k, m or g, for example 512m"
                                % value)
    size = int(match.group(1)) * MEMORY_UNITS[match.group(2)]
    if size < MEMORY_MIN:
        raise DockerModuleError("memory '%s' is below Docker's minimum of 6m" % value)
    return size


def _numeric_uid(user, what):
    """The uid of ``<uid>[:<gid>]``, 0 for root or empty; a name is refused (it is not looked up)."""
    name = user.split(":", 1)[0]
    if name in ("", "root"):
        return 0
    if name.isdigit():
        return int(name)
    raise DockerModuleError(
        "%s runs as user '%s', a name; the secret files are given to its numeric uid, which this module "
        "does not look up: set user (role variable app_user) to the uid, or declare USER <uid> in the image"
        % (what, user))


def _security_option(option):
    return str(option).replace("=", ":").replace(":true", "")


class Confinement:
    """How a container is hardened, from the options of ``container_argument_spec``: what
    ``create_host_config`` gets, and how a container differs from it."""

    def __init__(self, params):
        def given(key, default):
            value = params.get(key)
            return default if value is None else value

        self.user = str(params.get("user") or "").strip()
        self.allow_root = bool(params.get("allow_root"))
        self.read_only = bool(given("read_only", True))
        self.cap_add = sorted({normalize_capability(c) for c in params.get("cap_add") or []})
        bad = [c for c in self.cap_add if not CAPABILITY_RE.fullmatch(c) or c == "ALL"]
        if bad:
            raise DockerModuleError("cap_add has %s; give capability names such as NET_BIND_SERVICE, each one the "
                                    "app needs" % ", ".join(bad))
        self.tmpfs = {str(k): str(v if v is not None else "") for k, v in given("tmpfs", DEFAULT_TMPFS).items()}
        for path, options in self.tmpfs.items():
            if not path.startswith("/") or path == "/" or "," in path or ":" in path:
                raise DockerModuleError("tmpfs path '%s' is not an absolute path below /" % path)
            if not TMPFS_OPTIONS_RE.fullmatch(options):
                raise DockerModuleError("tmpfs options '%s' of %s are not mount options such as "
                                        "rw,noexec,nosuid,size=64m" % (options, path))
        self.pids_limit = given("pids_limit", DEFAULT_PIDS_LIMIT)
        if self.pids_limit < 1:
            raise DockerModuleError("pids_limit %s is not a limit; give the most processes and threads the app "
                                    "runs, at least 1" % self.pids_limit)
        self.memory = memory_bytes(given("memory", DEFAULT_MEMORY))

    def host_config(self):
        """The keyword arguments of ``create_host_config`` that confine the container."""
        return dict(
            cap_drop=["ALL"],
            cap_add=list(self.cap_add),
            security_opt=[NO_NEW_PRIVILEGES],
            read_only=self.read_only,
            tmpfs=dict(self.tmpfs),
            pids_limit=self.pids_limit,
            mem_limit=self.memory,
        )

    def run_user(self, image_attrs, what):
        """``(user, uid)`` the container runs as: the ``user`` option, else the image's USER. Its uid
        must be numeric (it owns the secret files). An image that would run as root (most stock
        images declare no USER) runs as ``nobody`` instead, unless ``allow_root``; a ``user``
        option that names root without ``allow_root`` is refused."""
        image_user = str(((image_attrs or {}).get("Config") or {}).get("User") or "").strip()
        user = self.user or image_user
        uid = _numeric_uid(user, what)
        if uid == 0 and not self.allow_root:
            if self.user:
                raise DockerModuleError(
                    "%s would run as root (uid 0, user '%s'); set user (role variable app_user) to a non-root "
                    "numeric uid, or to run it as root set allow_root (role variable app_allow_root: true)"
                    % (what, user))
            return UNPRIVILEGED_USER, _numeric_uid(UNPRIVILEGED_USER, what)
        return user, uid

    def differences(self, container_attrs, user, binds):
        """Names of the confinement settings in which the container differs."""
        host = container_attrs.get("HostConfig") or {}
        found = []
        if {normalize_capability(c) for c in host.get("CapDrop") or []} != {"ALL"}:
            found.append("cap_drop")
        if sorted({normalize_capability(c) for c in host.get("CapAdd") or []}) != self.cap_add:
            found.append("cap_add")
        if NO_NEW_PRIVILEGES not in [_security_option(o) for o in host.get("SecurityOpt") or []]:
            found.append("security_opt")
        if bool(host.get("ReadonlyRootfs")) != self.read_only:
            found.append("read_only")
        if (host.get("Tmpfs") or {}) != self.tmpfs:
            found.append("tmpfs")
        if host.get("PidsLimit") != self.pids_limit:
            found.append("pids_limit")
        if host.get("Memory") != self.memory:
            found.append("memory")
        if ((container_attrs.get("Config") or {}).get("User") or "") != user:
            found.append("user")
        if sorted(host.get("Binds") or []) != sorted(binds):
            found.append("mounts")
        return found


def secrets_binds(host_dir):
    """The bind mount of a container's secret directory, read-only, as Docker shows it."""
    return ["%s:%s:ro" % (host_dir, SECRETS_MOUNT)] if host_dir else []


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
        self.secrets_dir = params.get("secrets_dir") or DEFAULT_SECRETS_DIR
        # Files an earlier version of the deployment kept for this container (removed on start).
        self.obsolete_files = list(params.get("obsolete_files") or [])
        self.env = {}
        self.secret_keys = frozenset()
        # name -> value of the secrets handed over as files
        self.secret_files = {}
        self.labels = {}
        # Known once the image is: the user the container runs as and its uid (see ``settle``).
        self.run_user = None
        self.run_uid = None
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
        self.confinement = Confinement(params)
        self.env, self.secret_keys, self.secret_files = self._build_env(
            params.get("env") or {}, params.get("secret_env") or {}, params.get("secret_env_in_environment") or ())
        self.labels = self._build_labels()

    @property
    def binds(self):
        """The read-only mount of the container's secret directory, when it has secret files."""
        return secrets_binds(container_secret_dir(self.secrets_dir, self.name) if self.secret_files else None)

    def settle(self, image_attrs, key):
        """What needs the image and the host's digest key (None in check mode before the first run):
        the user the container runs as, and the digest label of the secret files."""
        self.run_user, self.run_uid = self.confinement.run_user(image_attrs, "container %s" % self.name)
        if self.secret_files:
            self.labels[LABEL_SECRETS_DIGEST] = secrets_digest(key, self.secret_files) or "(no key yet)"

    def _build_env(self, env, secret_env, in_environment):
        module_env = {
            "PORT": str(self.port),
            "HOST": self.bind_address,
            "APP_NAME": self.app_name,
            "APP_SLOT": self.slot,
            "APP_VERSION": self.version,
        }
        merged, secret, files = container_environment(module_env, env, secret_env, in_environment)
        return merged, frozenset(secret), files

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
    found.extend(spec.confinement.differences(container_attrs, spec.run_user, spec.binds))
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
