# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One app host's share of a release, in one call: the image, the slot's container, then its
health gate (and, when asked, its circuit breakers), with the seconds each step took.

Every module run costs a Python start and an AnsiballZ unpack on the host, so a deploy that
made one call per step paid that three times per app host. The steps are the ones the
single-purpose modules run: ``ImageManager`` (app_image), ``SlotManager`` (app_slot),
``run_target`` with a ``ContainerWatch`` (health_probe) and ``fetch_endpoint`` (breaker_info).
"""

from __future__ import annotations

import time

from ansible_collections.unitehub.platform.plugins.module_utils.app_image import ImageManager, ImageSpec, image_argument_spec
from ansible_collections.unitehub.platform.plugins.module_utils.app_slot import SlotManager
from ansible_collections.unitehub.platform.plugins.module_utils.app_slot_spec import SlotSpec
from ansible_collections.unitehub.platform.plugins.module_utils.breaker import fetch_endpoint, summarize
from ansible_collections.unitehub.platform.plugins.module_utils.docker_client import (
    DockerModuleError,
    inspect_container_or_none,
)
from ansible_collections.unitehub.platform.plugins.module_utils.health_format import ProbeConfigError
from ansible_collections.unitehub.platform.plugins.module_utils.health_targets import resolve_target
from ansible_collections.unitehub.platform.plugins.module_utils.health_wait import ContainerWatch, run_target


class ReleaseSpec:
    """The validated wish: a SlotSpec, the ImageSpec to ensure first (None when the release runs a
    recorded image id that is not to be pulled), and the resolved gate target (None without
    ``health_path``, or for a stop). Bad values are refused before the daemon is reached."""

    def __init__(self, params):
        self.slot = SlotSpec(params)
        self.state = self.slot.state
        started = self.state == "started"
        # A rollback runs its recorded image id; only a pulled one (repo_digest) is fetched again.
        self.image = None
        if started and (params.get("repo_digest") or not params.get("image_id")):
            image_params = {key: params.get(key) for key in image_argument_spec()}
            if image_params["repo_digest"]:
                image_params.update(build_context=None, base_image=None, force_rebuild=False)
            self.image = ImageSpec(dict(image_params, image=params["image"], version=params["version"],
                                        state="present"))
        self.gate = None
        if started and params.get("health_path"):
            url = "http://%s:%d%s" % (self.slot.bind_address, self.slot.port, params["health_path"])
            try:
                self.gate = resolve_target({
                    "type": "http", "url": url, "expect": params.get("health_expect"),
                    "timeout": params.get("health_timeout"), "interval": params.get("health_interval"),
                    "consecutive_successes": params.get("health_consecutive"), "container": self.slot.name,
                })
            except ProbeConfigError as exc:
                raise DockerModuleError(str(exc)) from None
        self.require_closed_breakers = bool(params.get("require_closed_breakers")) and self.gate is not None
        self.admin_token = params.get("admin_token") or None
        self.base_url = "http://%s:%s" % (self.slot.bind_address, self.slot.port)


def breaker_refusal(slot, summary, endpoint):
    """Why a slot whose breakers are not all CLOSED is not ready, or None when they are."""
    if summary["all_closed"]:
        return None
    parts = []
    if summary["open"]:
        parts.append("breakers not CLOSED: " + ", ".join(summary["open"]))
    if summary["unreachable_endpoints"]:
        parts.append("admin API unreachable: " + ", ".join(summary["unreachable_endpoints"]))
    if endpoint["reachable"] and endpoint["error"]:
        parts.append(endpoint["error"])
    return ("slot %s is not ready: %s. Its dependencies are failing; fix them (or reset with "
            "unitehub.platform.breaker) and deploy again." % (slot, "; ".join(parts)))


class Release:
    """Runs a ReleaseSpec through a low-level Docker API client. ``clock``, ``gate`` (the
    health wait) and ``fetch`` (the breaker reader) are injectable for unit tests."""

    def __init__(self, api, check_mode=False, clock=time.monotonic, gate=run_target, fetch=fetch_endpoint):
        self.api = api
        self.check_mode = check_mode
        self.clock = clock
        self.gate = gate
        self.fetch = fetch
        self.phases = {}

    def _timed(self, phase, func, *args):
        started = self.clock()
        try:
            return func(*args)
        finally:
            self.phases[phase] = round(self.clock() - started, 3)

    def run(self, spec):
        result = {"image": {}, "image_changed": False, "gate": None, "breakers": None}
        if spec.image is None and spec.state == "started":
            self.phases["image"] = 0.0  # the recorded image id runs as it is
        if spec.image is not None:
            try:
                image = self._timed("image", ImageManager(self.api, check_mode=self.check_mode).ensure, spec.image)
            except DockerModuleError as exc:
                # Nothing of the slot was touched: the caller has no container to stop or record.
                exc.details.update(stage="image", phases=dict(self.phases))
                raise
            image.pop("diff", None)
            result.update(image=image, image_changed=image["changed"])
            if self.check_mode and image["changed"]:
                # The container cannot be compared with an image that is not there yet.
                result.update(
                    changed=True, actions=list(image["actions"]), container={}, repo_digest=None, differences=[],
                    phases=dict(self.phases),
                    msg="Check mode: %s would be %s first, then the %s container would be created or recreated "
                        "from it." % (spec.image.ref, "built" if spec.image.build_context else "pulled",
                                      spec.slot.name))
                return result
        slot = self._timed("stop" if spec.state != "started" else "start",
                           SlotManager(self.api, check_mode=self.check_mode).ensure, spec.slot)
        result.update(slot, changed=slot["changed"] or result["image_changed"])
        if spec.gate is not None and not self.check_mode:
            refusal = self._timed("health_gate", self._gate, spec, result)
            if refusal:
                result.update(phases=dict(self.phases), stage="health_gate")
                result.pop("diff", None)
                raise DockerModuleError(refusal, **result)
        result["phases"] = dict(self.phases)
        return result

    def _gate(self, spec, result):
        """Why the started slot is not ready (its gate or its breakers), or None."""
        try:
            watch = ContainerWatch(spec.slot.name, lambda: inspect_container_or_none(self.api, spec.slot.name))
        except ProbeConfigError as exc:
            return "%s after it was started" % exc
        gate = self.gate(spec.gate, container_check=watch)
        result["gate"] = gate
        if not gate["ok"]:
            return gate["msg"]
        if spec.require_closed_breakers:
            endpoint = self.fetch(spec.base_url, token=spec.admin_token, timeout=5.0)
            summary = summarize([endpoint])
            result["breakers"] = dict(summary, endpoints=[endpoint])
            return breaker_refusal(spec.slot.slot, summary, endpoint)
        return None
