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
    the load balancer that the answers come from that slot.
  - The nginx site defines one upstream per slot and picks the live one on every request
    from a marker file, C(<upstream_dir>/live/<slot>). The switch renames that marker, one
    atomic step that every nginx worker sees on its next request. There is no reload, so
    there is no moment in which old and new workers route to different slots, and the
    version served never flaps back.
  - Each slot's C(server) lines live in C(<upstream_dir>/blue.conf) and C(green.conf), the
    other slot listed as C(backup); C(slots.map) maps each server's address to its slot. They
    are rewritten, checked with C(nginx -t) and reloaded only when the servers change.
  - The verification reads the C(X-Upstream-Slot) header that the site derives from
    C($upstream_addr), the server nginx actually reached. It never depends on headers the app
    sets, and an answer from the other slot (the backup) never counts.
  - The switch is refused while C(nginx -t) fails or nginx is not running. Any failure
    after the marker moved, expected or not, puts it (and the files) back, so traffic never
    stays on an unverified slot.
  - With O(revert), the marker is moved back without C(nginx -t) and without a reload, so an
    automatic revert works even while nginx is down or its configuration is broken.
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
      - A host name is resolved on the load balancer, as nginx resolves it.
      - Not used with O(revert).
    type: list
    elements: str
  backup_servers:
    description:
      - The C(host:port) of the other slot on every app host. They form the other slot's
        upstream and are the C(backup) servers of this one. nginx uses a backup only when the
        live slot refused or dropped a request, so a crash of a freshly switched slot costs no
        request while it is being reverted.
      - Not used with O(revert).
    type: list
    elements: str
  revert:
    description:
      - Put traffic back on O(slot) by moving the marker only. Nothing is validated or reloaded,
        so it works while nginx is stopped or C(nginx -t) fails; traffic follows the marker as
        soon as nginx serves.
      - With nginx running the answers are verified; a failed verification fails the task but
        leaves the marker on O(slot).
    type: bool
    default: false
  upstream_dir:
    description:
      - The directory the switch owns, which the nginx site reads. It holds C(blue.conf),
        C(green.conf), C(slots.map) and the C(live/) marker.
    type: path
    default: /etc/nginx/unitehub/unitehub
  verify_url:
    description:
      - A URL served through the load balancer, for example the app's health path. Any 2xx
        answer from the slot counts.
      - An C(https) URL's certificate is checked against the system's CAs, or against O(ca_path).
    type: str
    default: http://127.0.0.1:8080/
  ca_path:
    description:
      - PEM file, on the load balancer host, with the CA certificates the certificate of an C(https)
        O(verify_url) is checked against, instead of the system's; for a private CA such as the local
        stack's.
    type: path
  validate_certs:
    description:
      - Verify the certificate of an C(https) O(verify_url). Set V(false) only for a throwaway test certificate.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait, overall, for the load balancer to answer from the slot.
      - The alias O(verify_timeout) is deprecated and will be removed in 2.0.0.
    type: float
    default: 10
    aliases: [verify_timeout]
  verify_consecutive:
    description: Answers in a row that must come from the slot.
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
    details: Reports the change and its diff without touching the files or nginx.
  diff_mode:
    support: full
    details: Shows the live slot and the switch's files before and after.
  platform:
    platforms: posix
notes:
  - Run it on the load balancer host. The verification requests go to O(verify_url) and
    ignore proxy environment variables, so the answers come from that load balancer.
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
    verify_url: http://127.0.0.1/api/health/system

- name: Route traffic to green, verified over HTTPS with a private CA
  unitehub.platform.slot_switch:
    slot: green
    servers: [127.0.0.1:3009]
    backup_servers: [127.0.0.1:3008]
    verify_url: https://127.0.0.1:8443/api/health/system
    ca_path: /etc/ssl/unitehub/ca.crt

- name: Put traffic back on blue, whatever state nginx is in
  unitehub.platform.slot_switch:
    slot: blue
    revert: true

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
  description: Seconds from the marker's move to the first answer from the slot.
  returned: always
  type: float
  sample: 0.002
verified:
  description:
    - The last answer seen through the load balancer, its slot (from C(X-Upstream-Slot)) and error.
    - Null in check mode, and for a revert while nginx is not running.
  returned: always
  type: dict
  sample: {"slot": "green", "error": null}
nginx_output:
  description: The output of C(nginx -t) when it refused the switch.
  returned: failure
  type: str
undo_error:
  description: What went wrong while a failed switch was being undone.
  returned: when undoing a failed switch failed too
  type: str
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitehub.platform.plugins.module_utils.slot_switch import (
    SwitchError,
    make_fetch,
    put_back,
    switch,
)
from ansible_collections.unitehub.platform.plugins.module_utils.slots import SLOTS


def main():
    module = AnsibleModule(
        argument_spec=dict(
            slot=dict(type="str", required=True, choices=list(SLOTS)),
            servers=dict(type="list", elements="str"),
            backup_servers=dict(type="list", elements="str"),
            revert=dict(type="bool", default=False),
            upstream_dir=dict(type="path", default="/etc/nginx/unitehub/unitehub"),
            verify_url=dict(type="str", default="http://127.0.0.1:8080/"),
            ca_path=dict(type="path"),
            validate_certs=dict(type="bool", default=True),
            timeout=dict(type="float", default=10.0, aliases=["verify_timeout"],
                         deprecated_aliases=[dict(name="verify_timeout", version="2.0.0",
                                                  collection_name="unitehub.platform")]),
            verify_consecutive=dict(type="int", default=3),
            nginx_binary=dict(type="path", default="nginx"),
            nginx_pidfile=dict(type="path", default="/run/nginx.pid"),
        ),
        required_if=[("revert", False, ("servers", "backup_servers"))],
        supports_check_mode=True,
    )
    p = module.params
    fetch = make_fetch(p["verify_url"], ca_path=p["ca_path"], validate_certs=p["validate_certs"])
    try:
        if p["revert"]:
            result = put_back(p["upstream_dir"], p["slot"], fetch, timeout=p["timeout"],
                              consecutive=p["verify_consecutive"], pidfile=p["nginx_pidfile"],
                              check_mode=module.check_mode)
        else:
            result = switch(p["upstream_dir"], p["slot"], p["servers"], p["backup_servers"], fetch,
                            timeout=p["timeout"], consecutive=p["verify_consecutive"], nginx_bin=p["nginx_binary"],
                            pidfile=p["nginx_pidfile"], check_mode=module.check_mode)
    except SwitchError as exc:
        module.fail_json(msg=str(exc), slot=p["slot"], **exc.details)
    except Exception as exc:  # a bug or an environment problem: report it with context, not a traceback
        module.fail_json(msg="unexpected %s while switching to %s: %s" % (type(exc).__name__, p["slot"], exc),
                         slot=p["slot"], exception=traceback.format_exc())

    warning = result.pop("warning", None)
    if warning:
        module.warn(warning)
    diff = {"before_header": p["upstream_dir"], "after_header": p["upstream_dir"],
            "before": result.pop("before"), "after": result.pop("after")}
    if module._diff and result["changed"]:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
