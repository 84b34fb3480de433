#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: breaker_info
short_description: Read the circuit-breaker state of the running app slots
version_added: 0.1.0
description:
  - Queries C(GET /api/admin/breakers) on each app slot directly (not through the load
    balancer) and returns every breaker's state, failures and trips per slot.
  - An endpoint that does not answer, or answers an HTTP error, is reported in its result
    (C(reachable), C(error)); it does not fail the task.
  - Summarises the fleet as RV(open), the breakers that are not C(CLOSED), and
    RV(all_closed), which the deploy health gate asserts.
author:
  - unitehub platform team (@unitehub)
options:
  token:
    description:
      - "The app's admin token (C(APP_ADMIN_TOKEN)), sent as C(Authorization: Bearer). The reference
        app answers every admin request without it, reads included, with 401."
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - unitehub.platform.app_admin
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
seealso:
  - module: unitehub.platform.breaker
"""

EXAMPLES = r"""
- name: Read the breakers of both slots on this host
  unitehub.platform.breaker_info:
    token: "{{ app_admin_token }}"
  register: breakers

- name: The new slot's breakers must all be closed
  unitehub.platform.breaker_info:
    endpoints:
      - http://127.0.0.1:3009
    token: "{{ app_admin_token }}"
  register: gate
  failed_when: not gate.all_closed

- name: Report open breakers across the app hosts
  unitehub.platform.breaker_info:
    host: "{{ ansible_host }}"
    ports: [3008, 3009]
    token: "{{ app_admin_token }}"
  register: fleet_breakers
"""

RETURN = r"""
endpoints:
  description: One entry per endpoint, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    url:
      description: The base URL queried.
      type: str
      sample: http://127.0.0.1:3009
    slot:
      description: The slot that answered (from the body or the C(X-App-Slot) header), or null.
      type: str
      sample: green
    version:
      description: The version that answered, or null.
      type: str
      sample: v2
    reachable:
      description: Whether an HTTP answer came back.
      type: bool
      sample: true
    error:
      description: What went wrong with this endpoint, or null.
      type: str
      sample: "cannot reach http://127.0.0.1:3008/api/admin/breakers: [Errno 111] Connection refused"
    breakers:
      description: The app's breakers by name, as the app reports them.
      type: dict
      sample: {"redis": {"name": "redis", "state": "CLOSED", "failures": 0, "successes": 0, "trips": 0,
               "opened_at": null, "last_failure_at": null, "failure_threshold": 5, "reset_timeout": 60,
               "success_threshold": 2}}
open:
  description: Every breaker that is not C(CLOSED), as C(slot:name).
  returned: always
  type: list
  elements: str
  sample: ["green:redis"]
unreachable_endpoints:
  description:
    - The endpoints that gave no HTTP answer.
    - Called C(unreachable) before 0.2.0; Ansible reads a result key of that name as "host
      unreachable", so the task's host dropped out of the play.
  returned: always
  type: list
  elements: str
  sample: ["http://127.0.0.1:3008"]
all_closed:
  description: True when every endpoint answered and every breaker is C(CLOSED).
  returned: always
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitehub.platform.plugins.module_utils import breaker


def main():
    argument_spec = breaker.admin_api_argument_spec()
    argument_spec.update(token=dict(type="str", no_log=True))
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=[("endpoints", "ports")],
                           supports_check_mode=True)
    try:
        module.exit_json(**breaker.read_breakers(module.params))
    except breaker.BreakerError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
