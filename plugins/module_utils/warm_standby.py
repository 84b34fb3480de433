# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The warm standby: the slot a deploy or rollback left, kept running for ``keep_warm``
seconds as the backup of the live slot, so that a rollback to it is one switch.

The state records it as ``warm_standby: {"slot": ..., "until": ...}`` (deploy_state).
Pure logic (``keep_warm_problem``, ``mark_warm``, ``warm_slot``, ``expiry_plan``) works on
plain values; ``expire`` is what the standby timer (standby_timer) runs at the deadline:
under the deploy lock, it stops the slot only while the state still names it warm with
that same deadline and neither the state nor the live-slot marker makes it live.
"""

from __future__ import annotations

import copy
import math
import time

from ansible_collections.unitehub.platform.plugins.module_utils import deploy_lock as locks
from ansible_collections.unitehub.platform.plugins.module_utils import deploy_state as ds
from ansible_collections.unitehub.platform.plugins.module_utils.clock import format_ts, parse_ts
from ansible_collections.unitehub.platform.plugins.module_utils.slot_switch import current_slot

# The longest a standby may be kept: a day. Longer is a second live release, not a standby.
MAX_KEEP_WARM = 86400
# How long the timer keeps trying when a run holds the deploy lock at the deadline.
LOCK_PATIENCE = 600


def keep_warm_problem(value, name="blue_green_keep_warm"):
    """None when ``value`` is a whole number of seconds from 0 to MAX_KEEP_WARM, else the
    message naming the value and the fix."""
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(str(value).strip())
    except (TypeError, ValueError):
        number = None
    if number is None or not math.isfinite(number) or number != int(number) \
            or not 0 <= number <= MAX_KEEP_WARM:
        return ("%s=%r is not a whole number of seconds from 0 to %d: give how long the old slot stays "
                "running as a warm standby after the switch, e.g. -e keep_warm=300, or 0 to stop it "
                "(the default)" % (name, value, MAX_KEEP_WARM))
    return None


def mark_warm(state, slot, until):
    """The state after recording ``slot`` as the warm standby until ``until`` (epoch s). Pure."""
    new = copy.deepcopy(state)
    new["warm_standby"] = {"slot": slot, "until": format_ts(math.ceil(until))}
    return new


def warm_slot(state, now=None):
    """The slot a rollback can switch to at once, or None with the reason: ``(slot, why_not)``.

    It is warm while the state names it the warm standby, it is the previous slot (the
    rollback target) with status standby, and its deadline has not passed."""
    warm = state.get("warm_standby")
    target = state.get("previous_slot")
    if not warm:
        return None, "no slot is kept warm (deploy with -e keep_warm=<seconds> to keep one)"
    if warm["slot"] != target or state["slots"][target]["status"] != "standby":
        return None, "the warm standby %s is not the rollback target" % warm["slot"]
    now = time.time() if now is None else now
    if parse_ts(warm["until"]) <= now:
        return None, "the standby %s was warm until %s, which has passed" % (warm["slot"], warm["until"])
    return target, None


def expiry_plan(state, slot, until, live_slot):
    """Whether the timer for (``slot``, ``until``) may stop ``slot`` now: ``(stop, why_not)``.

    Never a slot that went live again (the state's or the marker's), and never one whose
    warm time was renewed or ended by a later run (another deadline, or none)."""
    warm = state.get("warm_standby")
    if warm != {"slot": slot, "until": until}:
        return False, "the state no longer names %s warm until %s" % (slot, until)
    if state["active_slot"] == slot or live_slot == slot:
        return False, "%s is live" % slot
    return True, None


def expire(state_dir, app, upstream_dir, slot, until, stop, run_id, pid, sleep=time.sleep, patience=LOCK_PATIENCE):
    """Stop the standby ``slot`` whose warm time ``until`` ran out, if it still is one.

    Takes the deploy lock, so no run switches to the slot meanwhile (a run holding it is
    waited for, up to ``patience`` seconds; its outcome is then judged afresh). ``stop()``
    stops the slot's containers. Returns what happened, as a short sentence."""
    lock_path = locks.lock_file(state_dir)
    deadline = time.monotonic() + patience
    while True:
        try:
            taken = locks.acquire_lock(lock_path, "standby timer", run_id, pid, ttl=max(60, int(patience)))
            break
        except locks.LockHeld:
            if time.monotonic() > deadline:
                return "left %s running: the deploy lock stayed held; the next deploy or rollback handles it" % slot
            sleep(1)
    try:
        path = ds.state_file(state_dir)
        state = ds.load_state(path, app)
        ok, why_not = expiry_plan(state, slot, until, current_slot(upstream_dir))
        if not ok:
            return "left %s alone: %s" % (slot, why_not)
        stop()
        new = copy.deepcopy(state)
        new["warm_standby"] = None
        if new["slots"][slot]["status"] == "standby":
            new["slots"][slot]["status"] = "stopped"
        new["updated_at"] = format_ts()
        ds.save_state(path, new)
        return "stopped the standby %s: its warm time ended at %s" % (slot, until)
    finally:
        locks.release_lock(lock_path, token=taken["lock"]["token"])
