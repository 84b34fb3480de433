# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one bounded poll of the tests and benches.

    wait_until(lambda: listening(port), 30, what="redis to listen")
    health = wait_until(read_health, 60, interval=0.1, what="slot 3008 to pass",
                        accept=lambda result: result.json()["status"] == "pass", describe=show)
"""

from __future__ import annotations

import time


def wait_until(predicate, timeout, interval=0.05, what="condition", accept=bool, describe=None):
    """Call ``predicate`` every ``interval`` seconds until ``accept(value)`` holds (by default:
    until the value is truthy) and return that value.

    After ``timeout`` seconds fail with an AssertionError naming ``what``; with ``describe``,
    the message ends with ``describe(last value)``. The predicate is always called at least
    once, and once more at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if accept(value):
            return value
        if time.monotonic() >= deadline:
            message = "timed out after %s s waiting for %s" % (timeout, what)
            if describe is not None:
                message += "; last value: %s" % describe(value)
            raise AssertionError(message)
        time.sleep(interval)
