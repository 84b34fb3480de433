# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A clock for unit tests of wait loops: pass it as ``clock`` and its ``sleep`` as ``sleep``."""

from __future__ import annotations


class FakeClock:
    """Monotonic time that only moves when someone sleeps or a probe takes time."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds > 0, "sleep(%r): the wait loop must not spin" % seconds
        self.sleeps.append(seconds)
        self.now += seconds

    def elapsed(self):
        return self.now - 1000.0
