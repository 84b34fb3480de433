# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deploy hooks: one command in a one-off container of the app's image, and the checks of
the hook settings a deploy is given.

``run_hook(api, HookSpec(params))`` creates the container ``<app_name>-hook-<hook>`` on
the host network from ``<image>:<version>`` (or an exact image id), with the app's
environment, runs it to its end or until ``run_timeout`` (then stops it: SIGTERM, SIGKILL
after ``stop_grace_period``), keeps its last output lines and removes it, whatever
happened. A non-zero exit or a timeout raises a ``DockerModuleError`` that carries the
same facts as a success (exit code, duration, output), so the caller can audit both.
Secret values never leave here: they are masked in the output lines too.

The rules of the hook settings (``hook_errors`` for the role's preflight) are in hook_settings.py.
"""

from __future__ import annotations

import time

from ansible_collections.unitehub.platform.plugins.module_utils.app_image import image_reference
from ansible_collections.unitehub.platform.plugins.module_utils.app_slot import container_logs
from ansible_collections.unitehub.platform.plugins.module_utils.app_slot_spec import (
    DEFAULT_SECRETS_DIR,
    LABEL_APP,
    LABEL_VERSION,
    NETWORK_MODE,
    Confinement,
    container_environment,
    env_value,
    secrets_binds,
    validate_container_name,
)
from ansible_collections.unitehub.platform.plugins.module_utils.docker_client import (
    APIError,
    DockerModuleError,
    RequestException,
    api_error_text,
    docker_call,
    inspect_container_or_none,
    inspect_image_or_none,
)
from ansible_collections.unitehub.platform.plugins.module_utils.hook_settings import (
    DEFAULT_OUTPUT_LINES,
    DEFAULT_TIMEOUT,
    HOOK_NAME_RE,
    command_problem,
    output_lines_problem,
    timeout_problem,
)
from ansible_collections.unitehub.platform.plugins.module_utils.secret_files import (
    container_secret_dir,
    remove_secret_dir,
    sync_secret_dir,
)
from ansible_collections.unitehub.platform.plugins.module_utils.slots import SLOTS

# A line longer than this is cut: the output goes into the audit log, one JSON line per event.
LINE_MAX_CHARS = 2000
DEFAULT_STOP_GRACE = 10

LABEL_HOOK = "io.unitehub.hook"
SECRET_MASK = "********"
# A one-off command is not a server: the image's HEALTHCHECK would only probe a port nobody serves.
NO_HEALTHCHECK = {"Test": ["NONE"]}


def container_name(app_name, hook):
    return "%s-hook-%s" % (app_name, hook)


# -- the run --------------------------------------------------------------------------------------

def mask_secrets(line, secret_values):
    """``line`` with every secret value in it replaced (longest first, so no part of one survives)."""
    for value in secret_values:
        line = line.replace(value, SECRET_MASK)
    return line


def shorten(line):
    if len(line) <= LINE_MAX_CHARS:
        return line
    return line[:LINE_MAX_CHARS] + " ... (%d more characters)" % (len(line) - LINE_MAX_CHARS)


class HookSpec:
    """The validated wish for one hook run, built from app_hook's parameters."""

    def __init__(self, params):
        self.hook = params["hook"]
        self.app_name = params.get("app_name") or "unitehub"
        self.slot = params.get("slot")
        self.command = list(params.get("command") or [])
        self.run_timeout = params.get("run_timeout", DEFAULT_TIMEOUT)
        self.output_lines = params.get("output_lines", DEFAULT_OUTPUT_LINES)
        self.stop_grace_period = params.get("stop_grace_period", DEFAULT_STOP_GRACE)
        self.image_id = params.get("image_id")
        self.version = env_value(params.get("version"))
        if not HOOK_NAME_RE.fullmatch(self.hook or ""):
            raise DockerModuleError("hook %r is not a hook name: use a lowercase letter, then up to 62 lowercase "
                                    "letters, digits or '_' (for example pre_deploy)" % (self.hook,))
        self.name = container_name(self.app_name, self.hook)
        validate_container_name(self.name)
        if self.slot is not None and self.slot not in SLOTS:
            raise DockerModuleError("slot '%s' is not one of %s" % (self.slot, ", ".join(SLOTS)))
        self.image_ref = image_reference(params.get("image"), self.version)
        for problem in (command_problem(self.command), timeout_problem(self.run_timeout, "run_timeout"),
                        output_lines_problem(self.output_lines)):
            if problem:
                raise DockerModuleError(problem)
        if self.stop_grace_period < 0:
            raise DockerModuleError("stop_grace_period %s is negative; give the seconds the command gets after SIGTERM"
                                    % self.stop_grace_period)
        module_env = {"APP_NAME": self.app_name, "APP_VERSION": self.version, "APP_HOOK": self.hook}
        if self.slot:
            module_env["APP_SLOT"] = self.slot
        self.env, secret, self.secret_files = container_environment(
            module_env, params.get("env"), params.get("secret_env"), params.get("secret_env_in_environment"))
        every_secret = list(secret.values()) + list(self.secret_files.values())
        # Longest first, so that masking one secret never leaves part of a longer one in a line.
        self.secret_values = sorted({value for value in every_secret if value}, key=len, reverse=True)
        self.labels = {LABEL_APP: self.app_name, LABEL_HOOK: self.hook, LABEL_VERSION: self.version}
        self.confinement = Confinement(params)
        self.secrets_dir = params.get("secrets_dir") or DEFAULT_SECRETS_DIR

    @property
    def binds(self):
        """The read-only mount of the hook's secret directory, ``<secrets_dir>/<container name>``."""
        return secrets_binds(container_secret_dir(self.secrets_dir, self.name) if self.secret_files else None)

    @property
    def run_image(self):
        """What the container is created from: the exact image id when given, else the tag."""
        return self.image_id or self.image_ref


class HookRunner:
    """Runs a HookSpec through a low-level Docker API client; ``clock`` is monotonic seconds."""

    def __init__(self, api, check_mode=False, clock=time.monotonic):
        self.api = api
        self.check_mode = check_mode
        self.clock = clock

    def _image(self, spec):
        attrs = docker_call("inspect image %s" % spec.run_image, inspect_image_or_none, self.api, spec.run_image)
        if attrs is None:
            raise DockerModuleError(
                "image %s is not present on this Docker host; build or pull %s first (unitehub.platform.app_image), "
                "then run again" % (spec.run_image, spec.image_ref), image=spec.image_ref)
        return attrs

    def _clear_leftover(self, spec):
        """A container of an earlier run that was killed before it removed its own; never a running one."""
        current = docker_call("inspect container %s" % spec.name, inspect_container_or_none, self.api, spec.name)
        if not current:
            return
        labels = (current.get("Config") or {}).get("Labels") or {}
        if labels.get(LABEL_HOOK) != spec.hook or labels.get(LABEL_APP) != spec.app_name:
            raise DockerModuleError(
                "container %s exists but is not a %s hook of app %s (labels %s, %s); remove it "
                "(docker rm -f %s) or rename it" % (spec.name, spec.hook, spec.app_name, LABEL_APP, LABEL_HOOK, spec.name))
        state = current.get("State") or {}
        if state.get("Running") or state.get("Restarting"):
            raise DockerModuleError(
                "the %s hook container %s of an earlier run still runs (started %s); it may be half-way through "
                "its work: wait for it to end (docker wait %s), or stop it (docker rm -f %s), then run again"
                % (spec.hook, spec.name, state.get("StartedAt") or "at an unknown time", spec.name, spec.name))
        docker_call("remove the leftover container %s" % spec.name, self.api.remove_container, current["Id"], force=True)

    def run(self, spec):
        image = self._image(spec)
        user, uid = spec.confinement.run_user(image, "the %s hook container %s" % (spec.hook, spec.name))
        result = {
            "changed": True, "hook": spec.hook, "container": spec.name, "image": spec.image_ref,
            "image_id": image.get("Id"), "command": list(spec.command), "ran": False, "exit_code": None,
            "timed_out": False, "duration_s": None, "output": [], "removed": False,
        }
        if self.check_mode:
            return result
        self._clear_leftover(spec)
        try:
            if spec.secret_files:
                sync_secret_dir(spec.secrets_dir, spec.name, spec.secret_files, uid)
            host_config = self.api.create_host_config(network_mode=NETWORK_MODE, binds=spec.binds,
                                                      **spec.confinement.host_config())
            created = docker_call(
                "create the %s hook container %s" % (spec.hook, spec.name), self.api.create_container,
                image=spec.run_image, name=spec.name, command=list(spec.command), user=user, environment=spec.env,
                labels=spec.labels, host_config=host_config, healthcheck=NO_HEALTHCHECK,
                stop_timeout=spec.stop_grace_period, detach=True)
            container_id = created["Id"]
            try:
                self._run(container_id, spec, result)
            finally:
                result["removed"] = self._remove(container_id, spec, result)
        finally:
            # The files outlive no run (a container that could not be removed keeps its mount).
            remove_secret_dir(spec.secrets_dir, spec.name)
        if result["timed_out"] or result["exit_code"] != 0:
            raise DockerModuleError(self.failure_message(spec, result), **result)
        return result

    def _run(self, container_id, spec, result):
        started = self.clock()
        docker_call("start the %s hook container %s" % (spec.hook, spec.name), self.api.start, container_id)
        result["ran"] = True
        try:
            status = self.api.wait(container_id, timeout=spec.run_timeout)
            exit_code = status.get("StatusCode")
        except APIError as exc:  # before RequestException, which it subclasses
            raise DockerModuleError("Docker refused to wait for the %s hook container %s: %s"
                                    % (spec.hook, spec.name, api_error_text(exc))) from exc
        except RequestException:
            # The read timed out: the command outlived run_timeout (unless it ended just then).
            exit_code = None
        if exit_code is None:
            attrs = docker_call("inspect container %s" % spec.name, self.api.inspect_container, container_id)
            state = attrs.get("State") or {}
            if state.get("Running") or state.get("Restarting"):
                result["timed_out"] = True
                docker_call("stop the %s hook container %s" % (spec.hook, spec.name), self.api.stop,
                            container_id, timeout=spec.stop_grace_period)
                attrs = docker_call("inspect container %s" % spec.name, self.api.inspect_container, container_id)
                state = attrs.get("State") or {}
            exit_code = state.get("ExitCode")
        result["duration_s"] = round(max(0.0, self.clock() - started), 3)
        result["exit_code"] = exit_code
        if spec.output_lines:
            lines = container_logs(self.api, container_id, spec.output_lines, name=spec.name)
            result["output"] = [shorten(mask_secrets(line, spec.secret_values)) for line in lines]

    def _remove(self, container_id, spec, result):
        try:
            self.api.remove_container(container_id, force=True)
        except (APIError, RequestException) as exc:
            result.setdefault("warnings", []).append(
                "the %s hook container %s was not removed: %s; the next run removes it once it has ended"
                % (spec.hook, spec.name, api_error_text(exc)))
            return False
        return True

    @staticmethod
    def failure_message(spec, result):
        last = (": %s" % result["output"][-1]) if result["output"] else ""
        if result["timed_out"]:
            return ("%s hook (%s) did not end within %s s and was stopped (exit code %s)%s"
                    % (spec.hook, " ".join(spec.command), spec.run_timeout, result["exit_code"], last))
        return ("%s hook (%s) exited with code %s after %s s%s"
                % (spec.hook, " ".join(spec.command), result["exit_code"], result["duration_s"], last))


def run_hook(api, spec, check_mode=False, clock=time.monotonic):
    """What app_hook returns; raises DockerModuleError (with the same facts) when the hook fails."""
    return HookRunner(api, check_mode=check_mode, clock=clock).run(spec)
