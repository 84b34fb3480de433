# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: monotonic
author: unitehub platform team (@unitehub)
version_added: "0.2.0"
short_description: The controller's monotonic clock, for durations that a clock step cannot break
description:
  - Returns the controller's monotonic clock in seconds (Python's C(time.monotonic())), a float.
  - Its value means nothing by itself; the difference of two readings in the same run is the time
    that passed, even when the wall clock is stepped (NTP, a manual C(date -s)) in between. A
    duration computed from wall-clock readings can then come out negative.
  - Every process of a run on the same controller reads the same clock.
options: {}
"""

EXAMPLES = r"""
- name: Note when the run started
  ansible.builtin.set_fact:
    started: "{{ lookup('unitehub.platform.monotonic') }}"
  run_once: true

- name: Report how long it took
  ansible.builtin.debug:
    msg: "{{ (lookup('unitehub.platform.monotonic') - started | float) | round(2) }} s"
"""

RETURN = r"""
_raw:
  description: Seconds on the controller's monotonic clock.
  type: list
  elements: float
"""

import time

from ansible.plugins.lookup import LookupBase


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        return [time.monotonic()]
