# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Where the app slots' admin API answers and how to reach it: the options of
    # module_utils.breaker.admin_api_argument_spec(). Each module documents its own
    # token, since only changing a breaker requires it.
    DOCUMENTATION = r"""
attributes:
  platform:
    platforms: posix
options:
  endpoints:
    description:
      - Base URLs of the slots, for example C(http://10.0.1.5:3008).
      - When not set, O(host) and O(ports) build them.
    type: list
    elements: str
  host:
    description: Address of the app host, used with O(ports) when O(endpoints) is not set.
    type: str
    default: 127.0.0.1
  ports:
    description:
      - Slot ports on O(host). Defaults to C([3008, 3009]) (blue, green).
    type: list
    elements: int
  request_timeout:
    description:
      - Seconds to wait for each request to a slot.
      - The alias O(timeout) is deprecated and will be removed in 2.0.0; C(timeout) means an overall
        wait everywhere else in this collection.
    type: float
    default: 5
    aliases: [timeout]
  validate_certs:
    description: Verify TLS certificates of C(https) endpoints.
    type: bool
    default: true
notes:
  - Requests go to the slots directly; proxy environment variables are ignored.
"""
