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
  - Renders the upstream include file that routes the load balancer to one slot on every
    app host, swaps it in only if C(nginx -t) accepts the whole configuration, reloads
    nginx gracefully and verifies through the load balancer that the expected slot (and
    version) answers.
  - Any failure after the file changed restores the previous file and reloads again, so
    traffic never stays on an unverified slot.
  - In-flight requests finish on the old workers; nothing is dropped by the reload.
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
      - The C(host:port) of the other slot, listed as C(backup) servers. nginx uses them only
        when the live slot refused or dropped a request, so a crash of a freshly switched slot
        costs no request while it is being reverted.
    type: list
    elements: str
    default: []
  upstream_file:
    description: The include file the nginx site's C(upstream) block includes.
    type: path
    default: /etc/nginx/unitehub/unitehub-upstream.conf
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
    details: Shows the upstream include file before and after.
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
  description: The slot the upstream pointed at before, or null when unknown.
  returned: always
  type: str
  sample: blue
reloaded:
  description: Whether nginx was reloaded.
  returned: always
  type: bool
switch_seconds:
  description: Seconds from the reload to the first answer from the new slot.
  returned: always
  type: float
  sample: 0.12
verified:
  description: The last answer seen through the load balancer.
  returned: when not in check mode
  type: dict
  sample: {"slot": "green", "version": "v2.3.1", "error": null}
nginx_output:
  description: The output of C(nginx -t) when it refused the change.
  returned: failure
  type: str
"""

import http.client
import urllib.error

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError, open_url

from ansible_collections.unitehub.platform.plugins.module_utils.slot_switch import SwitchError, switch


def make_fetch(url, timeout=2.0):
    """One GET through the load balancer -> (slot, version, error).

    Proxies from the environment are not used: the answer must come from the
    load balancer that I(verify_url) names.
    """
    def fetch():
        try:
            with open_url(url, method="GET", headers={"Connection": "close"}, timeout=timeout,
                          use_proxy=False, http_agent="unitehub-slot-switch") as response:
                return response.headers.get("X-App-Slot"), response.headers.get("X-App-Version"), None
        except urllib.error.HTTPError as exc:
            return exc.headers.get("X-App-Slot"), exc.headers.get("X-App-Version"), "HTTP %d" % exc.code
        except (urllib.error.URLError, OSError, http.client.HTTPException, UrlsConnectionError) as exc:
            return None, None, "%s: %s" % (url, getattr(exc, "reason", exc))
    return fetch


def main():
    module = AnsibleModule(
        argument_spec=dict(
            slot=dict(type="str", required=True, choices=["blue", "green"]),
            servers=dict(type="list", elements="str", required=True),
            backup_servers=dict(type="list", elements="str", default=[]),
            upstream_file=dict(type="path", default="/etc/nginx/unitehub/unitehub-upstream.conf"),
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
            params["upstream_file"],
            params["slot"],
            params["servers"],
            make_fetch(params["verify_url"]),
            expect_version=params["expect_version"],
            verify_timeout=params["verify_timeout"],
            consecutive=params["verify_consecutive"],
            nginx_bin=params["nginx_binary"],
            pidfile=params["nginx_pidfile"],
            check_mode=module.check_mode,
            backup_servers=params["backup_servers"],
        )
    except SwitchError as exc:
        module.fail_json(msg=str(exc), slot=params["slot"], **exc.details)

    diff = {
        "before_header": params["upstream_file"],
        "after_header": params["upstream_file"],
        "before": result.pop("before"),
        "after": result.pop("after"),
    }
    if result["changed"]:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
