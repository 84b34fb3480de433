#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_release
short_description: Release a version onto one slot of one app host - image, container and health gate in one call
version_added: "0.3.0"
description:
  - One app host's share of a blue-green release, in one module run. Makes C(<image>:<version>) present (as
    M(unitehub.platform.app_image) does), brings the slot's container to O(state) (as M(unitehub.platform.app_slot)
    does), then, with O(health_path), probes the slot directly until it passes O(health_consecutive) times in a row
    while watching its container (as M(unitehub.platform.health_probe) does), and with O(require_closed_breakers)
    requires every circuit breaker of the slot to be CLOSED (as M(unitehub.platform.breaker_info) reads them).
  - Each module run costs a Python start on the host; one call instead of three or four is what keeps a deploy short.
  - With O(image_id) (a rollback's recorded image) the image is only pulled again when O(repo_digest) is given.
  - O(state=stopped) stops the slot's container and does nothing else.
  - Fails with the gate's or the breakers' reason when the slot is not ready; the container is left running for
    the caller to collect its logs and stop it.
author:
  - unitehub platform team (@unitehub)
options:
  app_name:
    description: Name of the app; the container is C(<app_name>-<slot>).
    type: str
    default: unitehub
  slot:
    description: The slot to release onto or stop.
    type: str
    choices: [blue, green]
    required: true
  state:
    description:
      - V(started) makes the image present, creates, recreates or starts the container and gates it.
      - V(stopped) stops the container (SIGTERM, then SIGKILL after O(stop_grace_period) seconds).
    type: str
    choices: [started, stopped]
    default: started
  image:
    description: Image repository without a tag, for example C(unitehub/app). Required when O(state=started).
    type: str
  version:
    description: Image tag and app version (C(APP_VERSION), label C(io.unitehub.version)). Required when O(state=started).
    type: str
  image_id:
    description:
      - Run exactly this image (C(sha256:...)), for example the one the deploy state recorded for a rollback.
        See O(unitehub.platform.app_slot#module:image_id).
    type: str
  repo_digest:
    description:
      - Make this exact image (C(<repository>@sha256:...)) present first, pulled by its digest when missing; never built.
        See O(unitehub.platform.app_image#module:repo_digest).
    type: str
  build_context:
    description: Directory on the host holding the Dockerfile; when set a missing image is built, else it is pulled.
    type: path
  base_image:
    description: Image handed to the build as C(BASE_IMAGE).
    type: str
  force_rebuild:
    description: Build (or pull) again although the tag exists.
    type: bool
    default: false
  build_timeout:
    description: Seconds to wait for build or pull output.
    type: int
    default: 600
  prune:
    description: Remove every other tag of O(image) that is not in O(keep) (and not in use), as the image is ensured.
    type: bool
    default: false
  keep:
    description: Tags O(prune) must not remove.
    type: list
    elements: str
    default: []
  registry_username:
    description: User name for the registry O(image) is pulled from; sent to dockerd with the pull only.
    type: str
  registry_password:
    description: Password or token for O(registry_username); never shown.
    type: str
  port:
    description: Port the app listens on (C(PORT)); the gate probes it. Required when O(state=started).
    type: int
  bind_address:
    description: Address the app binds to (C(HOST)); the gate probes it.
    type: str
    default: 127.0.0.1
  env:
    description: Extra environment variables; see O(unitehub.platform.app_slot#module:env).
    type: dict
    default: {}
  secret_env:
    description: Secrets handed over as files; see O(unitehub.platform.app_slot#module:secret_env).
    type: dict
    default: {}
  stop_grace_period:
    description: Seconds between C(SIGTERM) and C(SIGKILL) when the container is stopped.
    type: int
    default: 30
  restart_policy:
    description: Docker restart policy of the container.
    type: str
    choices: ["no", always, unless-stopped, on-failure]
    default: unless-stopped
  log_lines:
    description: How many of the container's last log lines to return in RV(logs).
    type: int
    default: 0
  obsolete_files:
    description: Files an earlier version of the deployment kept for this container; removed with O(state=started).
    type: list
    elements: path
    default: []
  health_path:
    description:
      - URL path of the app's health document, probed at C(http://<bind_address>:<port><health_path>) once the
        container runs. Without it there is no gate.
    type: str
  health_expect:
    description: Health that passes the gate; V(pass_or_warn) lets a degraded optional dependency through.
    type: str
    choices: [pass, pass_or_warn]
    default: pass
  health_timeout:
    description: Seconds the gate waits for the slot.
    type: float
    default: 60
  health_interval:
    description: Seconds between two gate probes.
    type: float
    default: 5
  health_consecutive:
    description: Passing probes in a row the gate needs.
    type: int
    default: 3
  require_closed_breakers:
    description: After the gate, require every circuit breaker of the slot's admin API to be CLOSED.
    type: bool
    default: false
  admin_token:
    description: The app's admin token (C(APP_ADMIN_TOKEN)) for its breaker API; never shown.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - unitehub.platform.docker
  - unitehub.platform.app_container
attributes:
  check_mode:
    support: full
    details: Reports what the image and the container would need, and probes nothing.
  diff_mode:
    support: full
    details: Shows the container's state, image and environment before and after; secret values are never shown.
notes:
  - The single-purpose modules stay for their own uses; this one runs their logic in one process.
seealso:
  - module: unitehub.platform.app_image
  - module: unitehub.platform.app_slot
  - module: unitehub.platform.health_probe
"""

EXAMPLES = r"""
- name: Release v2 onto the green slot and gate it, on each app host
  unitehub.platform.app_release:
    app_name: unitehub
    slot: green
    image: unitehub/app
    version: v2
    port: 3009
    secret_env:
      DATABASE_URL: "{{ vault_database_url }}"
    health_path: /api/health/system
    health_interval: 0.5
  delegate_to: "{{ item }}"
  loop: "{{ groups['app'] }}"
  register: released

- name: Stop the blue slot
  unitehub.platform.app_release:
    slot: blue
    state: stopped
"""

RETURN = r"""
changed:
  description: Whether the image or the container changed (or would).
  returned: always
  type: bool
image:
  description: What the image step returned (M(unitehub.platform.app_image)'s RV(unitehub.platform.app_image#module:image)
    and RV(unitehub.platform.app_image#module:actions)); V({}) when no image was ensured.
  returned: always
  type: dict
image_changed:
  description: Whether the image was built or pulled (or would be).
  returned: always
  type: bool
actions:
  description: What the container step did, or would do, in order.
  returned: success
  type: list
  elements: str
  sample: [stop, remove, create, start]
container:
  description: The container after the run, as M(unitehub.platform.app_slot) returns it.
  returned: success
  type: dict
repo_digest:
  description: The repo digest of the image the container runs; null for an image never pulled or pushed.
  returned: success
  type: str
differences:
  description: Settings in which the existing container differed from the wanted one.
  returned: success
  type: list
  elements: str
gate:
  description: The gate's outcome, as M(unitehub.platform.health_probe) returns one target; null without a gate.
  returned: always
  type: dict
breakers:
  description: With O(require_closed_breakers), C(open), C(unreachable_endpoints), C(all_closed) and C(endpoints).
  returned: always
  type: dict
phases:
  description: Seconds each step took, by deploy phase (C(image), C(start) or C(stop), C(health_gate)).
  returned: always
  type: dict
  sample: {image: 0.004, start: 0.41, health_gate: 0.83}
stage:
  description:
    - On failure, the step that failed - V(image) (the slot was not touched) or V(health_gate) (the container
      runs and is left to the caller).
  returned: on a failed image or gate
  type: str
  sample: image
logs:
  description: The container's last O(log_lines) log lines.
  returned: when O(log_lines) > 0
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitehub.platform.plugins.module_utils.app_image import (
    IMAGE_MUTUALLY_EXCLUSIVE,
    IMAGE_REQUIRED_TOGETHER,
    image_argument_spec,
)
from ansible_collections.unitehub.platform.plugins.module_utils.app_release import Release, ReleaseSpec
from ansible_collections.unitehub.platform.plugins.module_utils.app_slot_spec import container_argument_spec, slot_argument_spec
from ansible_collections.unitehub.platform.plugins.module_utils.docker_client import docker_argument_spec, run_docker_module
from ansible_collections.unitehub.platform.plugins.module_utils.health_format import EXPECTATIONS
from ansible_collections.unitehub.platform.plugins.module_utils.slots import SLOTS


def argument_spec():
    spec = dict(
        slot=dict(type="str", choices=list(SLOTS), required=True),
        state=dict(type="str", choices=["started", "stopped"], default="started"),
        health_path=dict(type="str"),
        health_expect=dict(type="str", choices=list(EXPECTATIONS), default="pass"),
        health_timeout=dict(type="float", default=60),
        health_interval=dict(type="float", default=5),
        health_consecutive=dict(type="int", default=3),
        require_closed_breakers=dict(type="bool", default=False),
        admin_token=dict(type="str", no_log=True),
    )
    spec.update(slot_argument_spec())
    spec.update(container_argument_spec())
    spec.update(image_argument_spec())
    spec.update(docker_argument_spec())
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[("state", "started", ("image", "version", "port"))],
        required_together=IMAGE_REQUIRED_TOGETHER,
        mutually_exclusive=IMAGE_MUTUALLY_EXCLUSIVE,
        supports_check_mode=True,
    )
    run_docker_module(module, ReleaseSpec, lambda api, spec: Release(api, check_mode=module.check_mode).run(spec))


if __name__ == "__main__":
    main()
