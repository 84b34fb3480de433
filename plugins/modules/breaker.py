#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: breaker
short_description: Reset or open a circuit breaker of the running app slots
version_added: 0.1.0
description:
  - Resets (closes) or forces open one circuit breaker of the app on each slot, through
    C(POST /api/admin/breakers/<name>/reset|open) with the admin token.
  - Idempotent. Each slot's breaker is read first; a reset of a C(CLOSED) breaker with no
    counted failures, or an open of an C(OPEN) breaker, sends nothing and reports no change.
author:
  - unitehub platform team (@unitehub)
options:
  name:
    description: The breaker, as the app names it, for example C(redis) or C(database).
    type: str
    required: true
  state:
    description:
      - C(reset) closes the breaker and clears its counters.
      - C(open) forces it open, so the app stops calling the dependency and uses its fallback.
    type: str
    choices: [reset, open]
    default: reset
  token:
    description: "The app's admin token (C(APP_ADMIN_TOKEN)), sent as C(Authorization: Bearer)."
    type: str
    required: true
  skip_unreachable:
    description:
      - Report an endpoint that gives no HTTP answer (a stopped slot) instead of failing.
      - HTTP errors, a refused token and an unknown breaker always fail.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - unitehub.platform.app_admin
attributes:
  check_mode:
    support: full
    details: Reads each breaker and reports what would change; sends no reset or open.
  diff_mode:
    support: full
    details: Shows each slot's breaker state before and after.
seealso:
  - module: unitehub.platform.breaker_info
"""

EXAMPLES = r"""
- name: Close the redis breaker on both slots once Redis is back
  unitehub.platform.breaker:
    name: redis
    state: reset
    token: "{{ app_admin_token }}"

- name: Force the database breaker open on the green slot of every app host
  unitehub.platform.breaker:
    name: database
    state: open
    endpoints:
      - "http://{{ ansible_host }}:3009"
    token: "{{ app_admin_token }}"

- name: Reset on whichever slots are running
  unitehub.platform.breaker:
    name: redis
    token: "{{ app_admin_token }}"
    skip_unreachable: true
"""

RETURN = r"""
endpoints:
  description:
    - One entry per endpoint, in the order given.
    - Each has C(url), C(slot), C(version), C(reachable) and C(error) as described in
      RV(unitehub.platform.breaker_info#module:endpoints), and the keys below.
  returned: always
  type: list
  elements: dict
  contains:
    changed:
      description: Whether this endpoint's breaker changed (or would, in check mode).
      type: bool
      sample: true
    before:
      description: The breaker before, as the app reports it; null when it could not be read.
      type: dict
      sample: {"name": "redis", "state": "OPEN", "failures": 5, "trips": 1}
    after:
      description: The breaker after (predicted in check mode); null when it could not be read.
      type: dict
      sample: {"name": "redis", "state": "CLOSED", "failures": 0, "trips": 1}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitehub.platform.plugins.module_utils import breaker


def main():
    argument_spec = breaker.admin_api_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=list(breaker.ACTIONS), default="reset"),
        token=dict(type="str", required=True, no_log=True),
        skip_unreachable=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=[("endpoints", "ports")],
                           supports_check_mode=True)
    try:
        outcome = breaker.change_breakers(module.params, check_mode=module.check_mode)
    except breaker.BreakerError as exc:
        module.fail_json(msg=str(exc))
    errors, skipped, diff = outcome.pop("errors"), outcome.pop("skipped"), outcome.pop("diff")
    if module._diff:
        outcome["diff"] = diff
    if errors:
        module.fail_json(msg="; ".join(errors), **outcome)
    if skipped:
        module.warn("skipped unreachable endpoint(s): %s" % ", ".join(skipped))
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
