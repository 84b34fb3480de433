#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_slot_info
short_description: Read the state of the app's blue/green slot containers
version_added: "0.1.0"
description:
  - Reports the Docker containers of the app's slots, or one container by name, with the same facts
    M(unitehub.platform.app_slot) returns in its RV(unitehub.platform.app_slot#module:container) (status,
    image, version, port, restart count, exit code, ...).
  - A container that does not exist is reported too, with RV(containers[].exists=false) and
    C(status=absent); it does not fail the task.
  - Optionally returns each container's last log lines.
  - Reads only; never changes a container.
author:
  - unitehub platform team (@unitehub)
options:
  name:
    description:
      - One container to report, by name (or id), for example C(unitehub-blue).
      - The result then also carries RV(container) and RV(exists).
      - Mutually exclusive with O(app_name) and O(slots).
    type: str
  app_name:
    description:
      - Name of the app whose slot containers to report; they are named C(<app_name>-<slot>).
      - Used when O(name) is not given.
    type: str
    default: unitehub
  slots:
    description:
      - The slots to report, in this order. Used when O(name) is not given.
    type: list
    elements: str
    choices: [blue, green]
    default: [blue, green]
  log_lines:
    description:
      - How many of each container's last log lines (stdout and stderr) to return in RV(containers[].logs).
        V(0) returns none.
    type: int
    default: 0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - unitehub.platform.docker
attributes:
  check_mode:
    support: full
    details: Reads only, so it runs and reports the same in check mode.
  diff_mode:
    support: none
    details: Changes nothing, so there is nothing to show.
notes:
  - A container that exists but has no C(io.unitehub.*) labels (not made by M(unitehub.platform.app_slot)) is
    reported like any other; its C(slot) and C(version) are V(null).
seealso:
  - module: unitehub.platform.app_slot
"""

EXAMPLES = r"""
- name: Read both slots of the app
  unitehub.platform.app_slot_info:
    app_name: unitehub
  register: slots

- name: Show what each slot runs
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.status }} {{ item.version | default('-', true) }}"
  loop: "{{ slots.containers }}"
  loop_control:
    label: "{{ item.name }}"

- name: Read one container with its last 50 log lines
  unitehub.platform.app_slot_info:
    name: unitehub-green
    log_lines: 50
  register: green

- name: Fail when the green slot is not running, showing its logs
  ansible.builtin.assert:
    that: green.container.running
    fail_msg: "{{ green.container.name }} is {{ green.container.status }}: {{ green.container.logs | join('\n') }}"
"""

RETURN = r"""
containers:
  description:
    - One entry per container asked for, in the order asked (O(name), or C(<app_name>-<slot>) for each of
      O(slots)), also for a container that does not exist.
    - Each entry has the keys of RV(unitehub.platform.app_slot#module:container) (C(id), C(name), C(status),
      C(running), C(image), C(image_id), C(slot), C(version), C(port), C(started_at), C(restart_count),
      C(exit_code)) plus the ones below. For a container that does not exist, C(status) is V(absent),
      C(running) V(false), C(slot) the slot it was asked for (if any) and the others V(null).
  returned: always
  type: list
  elements: dict
  contains:
    exists:
      description: Whether the container exists.
      type: bool
      sample: true
    logs:
      description: The container's last O(log_lines) log lines; V([]) when it does not exist.
      returned: when O(log_lines) > 0
      type: list
      elements: str
      sample: ["listening on 127.0.0.1:3009"]
container:
  description: The one entry of RV(containers), for a single O(name).
  returned: when O(name) is given
  type: dict
  sample:
    exists: true
    id: 3f4e1c0a9b7d...
    name: unitehub-blue
    status: running
    running: true
    image: unitehub/app:v1
    image_id: sha256:9a0b...
    slot: blue
    version: v1
    port: 3008
    started_at: "2026-11-29T08:00:00.123456789Z"
    restart_count: 0
    exit_code: 0
exists:
  description: Whether the container named by O(name) exists.
  returned: when O(name) is given
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitehub.platform.plugins.module_utils.app_slot import SlotQuery, slot_info
from ansible_collections.unitehub.platform.plugins.module_utils.docker_client import docker_argument_spec, run_docker_module
from ansible_collections.unitehub.platform.plugins.module_utils.slots import SLOTS


def argument_spec():
    spec = dict(
        name=dict(type="str"),
        app_name=dict(type="str", default="unitehub"),
        slots=dict(type="list", elements="str", choices=list(SLOTS), default=list(SLOTS)),
        log_lines=dict(type="int", default=0),
    )
    spec.update(docker_argument_spec())
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[("name", "app_name"), ("name", "slots")],
        supports_check_mode=True,
    )
    run_docker_module(module, SlotQuery, slot_info)


if __name__ == "__main__":
    main()
