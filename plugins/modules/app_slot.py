#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_slot
short_description: Run one blue/green slot of the app as a Docker container
version_added: "0.1.0"
description:
  - Runs the container of one slot (V(blue) or V(green)) of the app with the Docker SDK, on the host
    network, with C(PORT), C(HOST), C(APP_NAME), C(APP_SLOT) and C(APP_VERSION) in its environment and the
    labels C(io.unitehub.app), C(io.unitehub.slot) and C(io.unitehub.version).
  - Each secret of O(secret_env) is a file the container reads, not a value in its environment; see O(secrets_dir).
  - The container is hardened; see O(cap_add), O(read_only), O(tmpfs), O(pids_limit), O(memory) and O(user).
  - Idempotent. An existing container is compared with the wanted one on image id, environment, secret values
    (through a keyed digest, without showing them), labels, restart policy, network mode, user, mounts and
    hardening, and recreated only when one of them differs. A stopped container that matches is started again.
  - The image must already be on the host; build or pull it first with M(unitehub.platform.app_image).
    This module never pulls.
  - Stopping gives the app O(stop_grace_period) seconds after C(SIGTERM) to finish its in-flight requests.
author:
  - unitehub platform team (@unitehub)
options:
  name:
    description:
      - Container name.
      - Defaults to C(<app_name>-<slot>), for example C(unitehub-blue).
    type: str
  app_name:
    description:
      - Name of the app; goes into the C(io.unitehub.app) label and the C(APP_NAME) variable.
    type: str
    default: unitehub
  slot:
    description:
      - The slot this container serves. Required when O(state=started), or when O(name) is not given.
    type: str
    choices: [blue, green]
  image:
    description:
      - Image repository without a tag, for example C(unitehub/app). Required when O(state=started).
      - The container runs C(<image>:<version>), or exactly O(image_id) when given.
    type: str
  version:
    description:
      - Image tag and app version; goes into C(APP_VERSION) and the C(io.unitehub.version) label.
        Required when O(state=started).
    type: str
  image_id:
    description:
      - Run exactly this image (C(sha256:...)) instead of whatever C(<image>:<version>) names now, for example the
        image id the deploy state recorded for the release a rollback goes back to.
      - It must be on the host; M(unitehub.platform.app_image) with
        O(unitehub.platform.app_image#module:repo_digest) pulls a recorded repo digest again.
      - A container that runs this image already is kept. A new one is created from the image's repo digest in
        O(image) when it has one (a name that cannot move), else from the id. O(version) still labels the container
        and sets C(APP_VERSION).
    type: str
  state:
    description:
      - V(started) creates the container when missing, recreates it when it differs, starts it when stopped.
      - V(stopped) stops a running container (SIGTERM, then SIGKILL after O(stop_grace_period) seconds).
        A missing container stays missing.
      - V(absent) stops the container the same way and removes it.
    type: str
    choices: [started, stopped, absent]
    default: started
  env:
    description:
      - Extra environment variables. Values are turned into strings; booleans become V(true)/V(false).
      - May repeat C(PORT), C(HOST), C(APP_NAME), C(APP_SLOT), C(APP_VERSION) only with the value the
        module derives from its options.
    type: dict
    default: {}
  secret_env:
    description:
      - Secrets (API keys, passwords, tokens), each handed to the app as a file C(/run/secrets/<NAME>) that
        C(<NAME>_FILE) points at (the convention of the official postgres and mysql images), unless it is listed
        in O(secret_env_in_environment). Names of file secrets are letters, digits and C(_).
      - Compared but never shown; diff mode prints V((secret)) or V((changed)) for those in the environment.
      - A variable may be in O(env) or O(secret_env), not both.
    type: dict
    default: {}
  port:
    description:
      - Port the app listens on, handed to it as C(PORT). Required when O(state=started).
    type: int
  bind_address:
    description:
      - Address the app binds to, handed to it as C(HOST). The container shares the host network.
    type: str
    default: 127.0.0.1
  stop_grace_period:
    description:
      - Seconds between C(SIGTERM) and C(SIGKILL) when the module stops the container (the Docker stop
        timeout). Also stored as the container's own stop timeout.
      - The API call that stops the container waits this long beyond O(timeout).
    type: int
    default: 30
  restart_policy:
    description:
      - Docker restart policy of the container.
    type: str
    choices: ["no", always, unless-stopped, on-failure]
    default: unless-stopped
  labels:
    description:
      - Extra labels. The C(io.unitehub.*) labels belong to the module.
    type: dict
    default: {}
  log_lines:
    description:
      - How many of the container's last log lines to return in RV(logs). V(0) returns none.
    type: int
    default: 0
  obsolete_files:
    description:
      - Files on the host that an earlier version of the deployment kept for this container and that must not
        outlive it, for example a clear-text copy of its secret environment. Removed with O(state=started).
    type: list
    elements: path
    default: []
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - unitehub.platform.docker
  - unitehub.platform.app_container
attributes:
  check_mode:
    support: full
    details: Reports the actions it would take (RV(actions)) and changes nothing.
  diff_mode:
    support: full
    details:
      - Shows state, image, image id, version and environment before and after.
      - Secret values are never shown, only V((secret)) or V((changed)).
notes:
  - The container always uses host networking; the app must bind to O(bind_address) and O(port) itself.
  - A container with the wanted name that has no C(io.unitehub.app) label was not created by this module;
    the module refuses to touch it.
  - The secret files are written with O(state=started) (before the container is created), removed with
    O(state=absent), and left alone with O(state=stopped).
seealso:
  - module: unitehub.platform.app_image
"""

EXAMPLES = r"""
- name: Run version v2 in the green slot
  unitehub.platform.app_slot:
    app_name: unitehub
    slot: green
    image: unitehub/app
    version: v2
    port: 3009
    env:
      REDIS_URL: redis://127.0.0.1:6379/0
      ENABLE_DB_POOLER: true
    secret_env:
      DATABASE_URL: "{{ vault_database_url }}"
      APP_ADMIN_TOKEN: "{{ vault_admin_token }}"
    log_lines: 50
  register: green

- name: Roll blue back to the exact image its deploy recorded, even if the tag v1 was pushed again since
  unitehub.platform.app_slot:
    app_name: unitehub
    slot: blue
    image: registry.example.com/unitehub/app
    version: v1
    image_id: "{{ deploy_state.slots.blue.image_id }}"
    port: 3008

- name: Show what answered
  ansible.builtin.debug:
    msg: "{{ green.container.name }} runs {{ green.container.version }} ({{ green.container.status }})"

- name: Stop the old slot, giving in-flight requests 30 seconds
  unitehub.platform.app_slot:
    app_name: unitehub
    slot: blue
    state: stopped
    stop_grace_period: 30

- name: Remove a slot's container
  unitehub.platform.app_slot:
    name: unitehub-blue
    state: absent
"""

RETURN = r"""
actions:
  description: What the module did, or would do in check mode, in order.
  returned: always
  type: list
  elements: str
  sample: [stop, remove, create, start]
secret_files_changed:
  description: Whether the container's secret files in O(secrets_dir) were written or removed (or would be).
  returned: always
  type: bool
removed_files:
  description: Those of O(obsolete_files) that existed and were removed (or would be).
  returned: always
  type: list
  elements: str
  sample: [/etc/unitehub/unitehub-green.env]
repo_digest:
  description:
    - The repo digest C(<repository>@sha256:...) of the image RV(container) runs, in the repository the container was
      created from (or O(image)). The deploy state records it, so a rollback can pull that exact image again.
    - Null for an image that was never pulled or pushed, and when there is no container.
  returned: always
  type: str
  sample: registry.example.com/unitehub/app@sha256:2fd2aa1c...
differences:
  description: Settings in which the existing container differed from the wanted one (V(state=started) only).
  returned: always
  type: list
  elements: str
  sample: [image, env, memory]
container:
  description:
    - The container after the run; V({}) when there is none.
    - In check mode, the container as it is now.
  returned: always
  type: dict
  contains:
    id:
      description: Container id.
      type: str
      sample: 3f4e1c0a9b7d...
    name:
      description: Container name.
      type: str
      sample: unitehub-green
    status:
      description: Docker status (created, running, restarting, exited, ...).
      type: str
      sample: running
    running:
      description: Whether the container's process runs.
      type: bool
      sample: true
    image:
      description: Image reference the container was created from.
      type: str
      sample: unitehub/app:v2
    image_id:
      description: Id of that image.
      type: str
      sample: sha256:9a0b...
    slot:
      description: Value of the C(io.unitehub.slot) label.
      type: str
      sample: green
    version:
      description: Value of the C(io.unitehub.version) label.
      type: str
      sample: v2
    port:
      description: C(PORT) in the container's environment.
      type: int
      sample: 3009
    started_at:
      description: When the process last started (RFC 3339).
      type: str
      sample: "2026-11-29T08:00:00.123456789Z"
    restart_count:
      description: How many times Docker restarted the process under the restart policy.
      type: int
      sample: 0
    exit_code:
      description: Exit code of the last run (0 while running).
      type: int
      sample: 0
logs:
  description:
    - The container's last O(log_lines) log lines (stdout and stderr); V([]) when there is no container.
    - In check mode, those of the container as it is now.
  returned: when O(log_lines) > 0
  type: list
  elements: str
  sample: ["listening on 127.0.0.1:3009"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitehub.platform.plugins.module_utils.app_slot import SlotManager
from ansible_collections.unitehub.platform.plugins.module_utils.app_slot_spec import (
    STATES,
    SlotSpec,
    container_argument_spec,
    slot_argument_spec,
)
from ansible_collections.unitehub.platform.plugins.module_utils.docker_client import docker_argument_spec, run_docker_module
from ansible_collections.unitehub.platform.plugins.module_utils.slots import SLOTS


def argument_spec():
    spec = dict(
        name=dict(type="str"),
        slot=dict(type="str", choices=list(SLOTS)),
        state=dict(type="str", choices=list(STATES), default="started"),
        labels=dict(type="dict", default={}),
    )
    spec.update(slot_argument_spec())
    spec.update(container_argument_spec())
    spec.update(docker_argument_spec())
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[("state", "started", ("slot", "image", "version", "port"))],
        required_one_of=[("name", "slot")],
        supports_check_mode=True,
    )
    run_docker_module(module, SlotSpec, lambda api, spec: SlotManager(api, check_mode=module.check_mode).ensure(spec))


if __name__ == "__main__":
    main()
