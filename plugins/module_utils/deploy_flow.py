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
- With several load balancers the decisions are taken once for the fleet (``fleet_outcome``):
  traffic moved if any load balancer switched, it went back only if every one that switched
  was put back, and the load balancers must agree on the live slot (``lb_divergence``).
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


def _marker_name(slot):
    return slot if slot else "no marker (blue)"


def lb_divergence(markers):
    """A message naming each load balancer and the slot its live-slot marker names, when they
    do not all name the same one; None when they agree (or there is one load balancer).

    ``markers`` maps each load balancer's inventory name to its marker's slot (None: no marker
    yet, so nginx serves blue). No marker and a blue marker are different facts: a first
    deploy that switched one load balancer only leaves exactly that.
    """
    if len(set(markers.values())) <= 1:
        return None
    return ("the load balancers serve different slots (%s): a run was killed during its switch or revert, "
            "or a load balancer was changed by hand. Run playbooks/reconcile.yml, which puts every load balancer "
            "on the slot the conductor's marker names (-e blue_green_reconcile_to_state=true: the slot the state "
            "names), then deploy again"
            % ", ".join("%s %s" % (lb, _marker_name(slot)) for lb, slot in sorted(markers.items())))


def fleet_outcome(outcomes):
    """What a failed run did to the traffic of every load balancer, as ``rescue_plan`` reads it.

    ``outcomes`` lists one ``{"lb", "switched", "reverted", "live_slot"}`` per load balancer.
    Traffic ``switched`` if any load balancer switched; it was ``reverted`` only when every one
    that switched was put back; ``live_slot`` is the slot the ones that switched now serve when
    they agree, else None (a load balancer that never switched serves the old slot). ``diverged``
    names the load balancers on each slot when they do not agree.
    """
    switched = [o for o in outcomes if o.get("switched")]
    live = {o.get("lb"): o.get("live_slot") for o in switched}
    slots = set(live.values())
    return {
        "switched": bool(switched),
        "reverted": bool(switched) and all(o.get("reverted") for o in switched),
        "live_slot": slots.pop() if len(slots) == 1 else None,
        "diverged": lb_divergence(live),
    }


def slot_breaks(observed, released):
    """App hosts whose new slot did not run unbroken since its gate, with why: ``observed`` maps
    each app host to its slot's container as read now (None when there is none), ``released``
    to the container its release reported after the gate. A container that stopped, was
    replaced or restarted in between broke, even when it answers again: a crash that the
    restart policy hid, or that nginx hid by sending its requests to the other app hosts."""
    breaks = {}
    for host in sorted(observed):
        now, then = observed[host] or {}, released.get(host) or {}
        if not now.get("running"):
            breaks[host] = "not running (%s)" % (now.get("status") or "gone")
        elif then.get("id") and now.get("id") != then.get("id"):
            breaks[host] = "replaced by another container"
        elif (now.get("restart_count") or 0) != (then.get("restart_count") or 0):
            breaks[host] = "restarted %d time(s)" % ((now.get("restart_count") or 0) - (then.get("restart_count") or 0))
        elif then.get("started_at") and now.get("started_at") != then.get("started_at"):
            breaks[host] = "started again at %s" % now.get("started_at")
    return breaks


def step_results(stamped, step):
    """Each app host's result of one step that a play over the app hosts ran (the blue_green role's
    tasks_from: app_host), from what each host kept: ``stamped`` maps each app host to its
    ``{"step": ..., "result": ...}`` (None when it kept nothing), ``step`` names the step this run
    handed out. A host with no result of this very step (its batch never ran, or it kept one of an
    earlier step) and a host that was not reached have failed: the step is all or none."""
    results = {}
    for host in stamped:
        kept = stamped[host] or {}
        result = kept.get("result") or {}
        if kept.get("step") != step:
            results[host] = {"failed": True, "stage": "not run", "msg": "no result of this step: it never ran on %s" % host}
        elif result.get("unreachable"):
            results[host] = dict(result, failed=True, msg="%s was not reached: %s" % (host, result.get("msg") or "unreachable"))
        else:
            results[host] = result
    return results
