#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: slot_switch
short_description: Point the nginx load balancer at one blue-green slot, verified
version_added: 0.1.0
description:
  - Moves the load balancer's traffic to one slot on every app host and verifies through
    the load balancer that the expected slot (and version) answers.
  - The nginx site defines one upstream per slot and picks the live one on every request
    from a marker file, C(<upstream_dir>/live/<slot>). The switch renames that marker, one
    atomic step that every nginx worker sees on its next request. There is no reload, so
    there is no moment in which old and new workers route to different slots, and the
    version served never flaps back.
  - Each slot's C(server) lines live in C(<upstream_dir>/blue.conf) and C(green.conf), the
    other slot listed as C(backup). They are rewritten, checked with C(nginx -t) and
    reloaded only when the servers change (app hosts added or moved).
  - The switch is refused while C(nginx -t) fails or nginx is not running. Any failure
    after the marker moved puts it (and the files) back, so traffic never stays on an
    unverified slot.
author:
  - unitehub platform team (@unitehub)
options:
  slot:
    description: The slot to route traffic to.
    type: str
    required: true
    choices: [blue, green]
  servers:
    description:
      - The C(host:port) of the slot on every app host.
    type: list
    elements: str
    required: true
  backup_servers:
    description:
      - The C(host:port) of the other slot on every app host. They form the other slot's
        upstream and are the C(backup) servers of this one. nginx uses a backup only when the
        live slot refused or dropped a request, so a crash of a freshly switched slot costs no
        request while it is being reverted.
    type: list
    elements: str
    required: true
  upstream_dir:
    description:
      - The directory the switch owns, which the nginx site reads. It holds C(blue.conf),
        C(green.conf) and the C(live/) marker.
    type: path
    default: /etc/nginx/unitehub/unitehub
  verify_url:
    description:
      - A URL served through the load balancer whose responses carry the
        C(X-App-Slot) and C(X-App-Version) headers.
    type: str
    default: http://127.0.0.1:8080/api/version
  expect_version:
    description: When set, the verified answers must also carry this version.
    type: str
  verify_timeout:
    description: Seconds to wait for the load balancer to answer from the new slot.
    type: float
    default: 10
  verify_consecutive:
    description: Answers in a row that must come from the new slot.
    type: int
    default: 3
  nginx_binary:
    description: The nginx executable.
    type: path
    default: nginx
  nginx_pidfile:
    description: The nginx master's pid file.
    type: path
    default: /run/nginx.pid
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports the change and its diff without touching the file or nginx.
  diff_mode:
    support: full
    details: Shows the live slot and both upstream files before and after.
  platform:
    platforms: posix
notes:
  - Run it on the load balancer host. The verification requests go to I(verify_url).
  - The verification requests ignore proxy environment variables, so the answers come from
    the load balancer that I(verify_url) names.
seealso:
  - module: unitehub.platform.deploy_state
  - module: unitehub.platform.health_probe
"""

EXAMPLES = r"""
- name: Route traffic to the green slot on both app hosts
  unitehub.platform.slot_switch:
    slot: green
    servers:
      - 10.0.1.11:3009
      - 10.0.1.12:3009
    backup_servers:
      - 10.0.1.11:3008
      - 10.0.1.12:3008
    expect_version: v2.3.1

- name: Show what a switch back to blue would change
  unitehub.platform.slot_switch:
    slot: blue
    servers: [127.0.0.1:3008]
    backup_servers: [127.0.0.1:3009]
  check_mode: true
  diff: true
"""

RETURN = r"""
slot:
  description: The slot traffic is routed to now.
  returned: always
  type: str
  sample: green
previous_slot:
  description: The slot the marker named before, or null when there was none.
  returned: always
  type: str
  sample: blue
reloaded:
  description: Whether nginx was reloaded, which happens only when the servers changed.
  returned: always
  type: bool
switch_seconds:
  description: Seconds from the marker's move to the first answer from the new slot.
  returned: always
  type: float
  sample: 0.12
verified:
  description: The last answer seen through the load balancer.
  returned: when not in check mode
  type: dict
  sample: {"slot": "green", "version": "v2.3.1", "error": null}
nginx_output:
  description: The output of C(nginx -t) when it refused the switch.
  returned: failure
  type: str
"""

import http.client

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitehub.platform.plugins.module_utils.direct_http import request
from ansible_collections.unitehub.platform.plugins.module_utils.slot_switch import SwitchError, switch


def make_fetch(url, timeout=2.0):
    """One GET through the load balancer -> (slot, version, error).

    Proxies from the environment are not used: the answer must come from the
    load balancer that I(verify_url) names.
    """
    def fetch():
        try:
            response = request(url, timeout=timeout, max_bytes=65536, agent="unitehub.platform.slot_switch")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return None, None, "%s: %s" % (url, exc)
        slot, version = response.headers.get("X-App-Slot"), response.headers.get("X-App-Version")
        return slot, version, None if 200 <= response.status < 300 else "HTTP %d" % response.status
    return fetch


def main():
    module = AnsibleModule(
        argument_spec=dict(
            slot=dict(type="str", required=True, choices=["blue", "green"]),
            servers=dict(type="list", elements="str", required=True),
            backup_servers=dict(type="list", elements="str", required=True),
            upstream_dir=dict(type="path", default="/etc/nginx/unitehub/unitehub"),
            verify_url=dict(type="str", default="http://127.0.0.1:8080/api/version"),
            expect_version=dict(type="str"),
            verify_timeout=dict(type="float", default=10.0),
            verify_consecutive=dict(type="int", default=3),
            nginx_binary=dict(type="path", default="nginx"),
            nginx_pidfile=dict(type="path", default="/run/nginx.pid"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = switch(
            params["upstream_dir"],
            params["slot"],
            params["servers"],
            params["backup_servers"],
            make_fetch(params["verify_url"]),
            expect_version=params["expect_version"],
            verify_timeout=params["verify_timeout"],
            consecutive=params["verify_consecutive"],
            nginx_bin=params["nginx_binary"],
            pidfile=params["nginx_pidfile"],
            check_mode=module.check_mode,
        )
    except SwitchError as exc:
        module.fail_json(msg=str(exc), slot=params["slot"], **exc.details)

    diff = {
        "before_header": params["upstream_dir"],
        "after_header": params["upstream_dir"],
        "before": result.pop("before"),
        "after": result.pop("after"),
    }
    if result["changed"]:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
