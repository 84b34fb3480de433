# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Timestamps and ages as the deploy files write and read them.

Wall-clock times are for people and for comparing across processes and hosts
(``started_at`` of a lock, ``ts`` of an audit line); they are ISO 8601 UTC with
a ``Z``. Durations inside one process use ``time.monotonic`` instead, so a clock
step never makes one negative.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone


def format_ts(epoch=None, precision="seconds"):
    """ISO 8601 UTC with a ``Z`` suffix; ``precision`` is seconds or milliseconds."""
    moment = datetime.fromtimestamp(time.time() if epoch is None else epoch, tz=timezone.utc)
    return moment.isoformat(timespec=precision).replace("+00:00", "Z")


def parse_ts(text):
    """Epoch seconds of an ISO 8601 timestamp, or None when it is not one."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def format_age(seconds):
    """Human age: ``42s``, ``5m12s``, ``3h04m``, ``2d05h``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return "%ds" % seconds
    if seconds < 3600:
        return "%dm%02ds" % divmod(seconds, 60)
    if seconds < 86400:
        hours, rest = divmod(seconds, 3600)
        return "%dh%02dm" % (hours, rest // 60)
    days, rest = divmod(seconds, 86400)
    return "%dd%02dh" % (days, rest // 3600)
