# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of a failed deploy or rollback: where traffic goes, what keeps running,
what the state records.

Pure functions over what the run knows; the blue_green role reads ``rescue_plan`` through
the filter of that name, and the state-machine tests drive it with the real state, lock
and marker code. The rules:

- Traffic goes back only to an old slot that still runs on every app host and was not
  drained: a stopped slot never gets traffic.
- When traffic cannot go back, it stays on the new slot, which passed its gate; the
  state then records that slot as live, because the marker is what nginx serves.
- The failed slot is stopped only when nothing depends on it: traffic is elsewhere and,
  if a switch happened, the revert was verified (otherwise nginx falls back to it).
"""

from __future__ import annotations


def revert_decision(switched, target, old, old_stopped, old_running):
    """``(revert, why_not)``: whether to move traffic back to ``old``, and why not.

    ``old_running`` is True only when the old slot's container runs on every app host,
    None when that was not (or could not be) checked.
    """
    if not switched:
        return False, "traffic never left the old slot"
    if old is None:
        return False, "there is no other slot"
    if old == target:
        return False, "the new release replaced the live slot itself"
    if old_stopped:
        return False, "the old slot %s was already drained and stopped" % old
    if old_running is not True:
        return False, "the old slot %s is not running on every app host" % old
    return True, None


def failure_outcome(switched, target, old, live_slot, reverted, old_running, started=True):
    """What a failed run leaves behind, given where the marker is now (``live_slot``).

    Returns ``on_new`` (traffic stays on the new slot), ``stop_target`` (stop the failed
    slot), ``record`` (whether to record the target), ``status`` and ``activate`` for
    that record, and ``replaced_status`` for the slot it replaces. A run that failed
    before it ``started`` the target (its image, a pre-deploy hook) changed no slot, so
    it records none: the slot keeps what it ran, and stays a rollback target.
    """
    on_new = bool(switched) and live_slot == target
    stop_target = bool(started) and target != old and not on_new and (not switched or bool(reverted))
    return {
        "on_new": on_new,
        "stop_target": stop_target,
        # Recording the live slot as failed would contradict it (a forced redeploy of the live slot).
        "record": bool(started) and (target != old or on_new),
        "status": "active" if on_new else "failed",
        "activate": on_new,
        "replaced_status": "standby" if old_running else "stopped",
    }


def rescue_plan(facts):
    """Both decisions at once, from what the run knows so far: ``switched``, ``started``,
    ``target``, ``old``, ``old_stopped``, ``old_running`` and, once traffic was (or was not)
    moved back, ``live_slot`` and ``reverted``.

    Returns ``revert``, ``why_not`` and ``reverted`` (a revert was decided and succeeded),
    then the keys of ``failure_outcome``.
    """
    switched, reverted = bool(facts.get("switched")), bool(facts.get("reverted"))
    target, old, old_running = facts.get("target"), facts.get("old"), facts.get("old_running")
    revert, why_not = revert_decision(switched, target, old, bool(facts.get("old_stopped")), old_running)
    plan = {"revert": revert, "why_not": why_not, "reverted": revert and reverted}
    plan.update(failure_outcome(switched, target, old, facts.get("live_slot"), reverted, old_running,
                                started=bool(facts.get("started", True))))
    return plan
