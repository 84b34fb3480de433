# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The two uses of a warm standby, each one call of the ``warm_standby`` module.

- ``rollback``: the fast path of a rollback while the previous slot is warm. Under the deploy
  lock it refuses a state/marker divergence or a missing target as every run does, checks the
  standby with one health probe, moves the marker and verifies it through the load balancer
  (slot_switch), records the state and the audit line, releases the lock, and hands the slot
  it left to the standby timer. When the standby is not warm or not healthy, or the switch
  was undone, it releases the lock and says why: the full rollback then runs.
- ``keep``: a deploy or full rollback that keeps the old slot warm records it and starts the
  timer, in place of draining and stopping it.
"""

from __future__ import annotations

import http.client
import math
import os
import time

from ansible_collections.unitehub.platform.plugins.module_utils import deploy_audit as audit
from ansible_collections.unitehub.platform.plugins.module_utils import deploy_lock as locks
from ansible_collections.unitehub.platform.plugins.module_utils import deploy_state as ds
from ansible_collections.unitehub.platform.plugins.module_utils import standby_timer, warm_standby
from ansible_collections.unitehub.platform.plugins.module_utils.clock import format_ts
from ansible_collections.unitehub.platform.plugins.module_utils.direct_http import request
from ansible_collections.unitehub.platform.plugins.module_utils.health_format import (
    HealthFormatError,
    meets_expectation,
    parse_health,
)
from ansible_collections.unitehub.platform.plugins.module_utils.slot_switch import (
    SwitchError,
    current_slot,
    make_fetch,
    switch,
)
from ansible_collections.unitehub.platform.plugins.module_utils.slots import other_slot


class WarmError(ds.DeployStateError):
    """A refusal of the warm standby module; ``details`` go into its result."""

    def __init__(self, message, **details):
        super().__init__(message)
        self.details = details


def probe_standby(url):
    """One GET of a slot's health path -> (status, version, error). Not the health_probe module's
    probe: that one brings the database and Redis clients along, and this call is on the clock."""
    try:
        response = request(url, timeout=2.0, max_bytes=1024 * 1024, agent="unitehub.platform.warm_standby")
        document = parse_health(response.body)
    except (OSError, http.client.HTTPException, ValueError, HealthFormatError) as exc:
        return "fail", None, "%s: %s" % (url, exc)
    if not 200 <= response.status < 300:
        return "fail", document["version"], "HTTP %d" % response.status
    return document["status"], response.headers.get("X-App-Version") or document["version"], None


def standby_problem(servers, path, expect, version, probe=probe_standby):
    """Why the standby is not fit to take traffic (one probe per app host), or None."""
    for server in servers:
        status, running, error = probe("http://%s%s" % (server, path))
        if not meets_expectation(status, expect):
            return "the standby does not answer healthy on %s: %s" % (server, error or status)
        if running and running != version:
            return "the standby on %s runs %s, not %s" % (server, running, version)
    return None


def deadline(seconds, now=None):
    """The warm deadline, a whole epoch second, as the state and the timer both name it."""
    return math.ceil((time.time() if now is None else now) + seconds)


class Standby:
    """One call of the module: ``p`` its parameters (and, for tests, ``nginx_binary`` and
    ``nginx_pidfile``). ``stopper()`` returns ``stop(slot)``, which stops that slot's containers
    (what the timer runs); it is called only to start a timer, after the switch, because loading
    the Docker client takes a tenth of a second. ``start_timer``, ``probe`` and ``fetch`` are
    replaceable in tests."""

    def __init__(self, p, stopper, check_mode=False, start_timer=standby_timer.start, probe=probe_standby,
                 fetch=None, clock=time.monotonic):
        self.p = p
        self.stopper = stopper
        self.check_mode = check_mode
        self.start_timer = start_timer
        self.probe = probe
        self.fetch = fetch or make_fetch(p["verify_url"], ca_path=p["ca_path"])
        self.clock = clock
        self.state_path = ds.state_file(p["state_dir"])
        self.lock_path = locks.lock_file(p["state_dir"])

    def timer(self, slot, until):
        """Hand ``slot`` to the standby timer (never in check mode). A timer that cannot start is
        reported, not fatal: the deadline is in the state, and the next run acts on it."""
        p = self.p
        if self.check_mode:
            return None
        stop = self.stopper()  # loaded here: the forked timer cannot import once the module's files are gone

        def work():
            return warm_standby.expire(p["state_dir"], p["app"], p["upstream_dir"], slot, format_ts(until),
                                       lambda: stop(slot), "standby-timer-%s" % slot, os.getpid())
        try:
            return self.start_timer(p["state_dir"], p["app"], slot, until, work)
        except OSError as exc:
            return {"error": "the standby timer could not be started (%s); the next deploy or rollback stops %s"
                             % (exc, slot)}

    # -- keep -----------------------------------------------------------------

    def keep(self):
        """Record ``slot`` (the old live slot of this run, which holds the lock) warm for
        keep_warm seconds, and start its timer."""
        p = self.p
        lock = locks.read_lock(self.lock_path)
        if not self.check_mode and not locks.is_holder(lock, p["run_id"], p["pid"]):
            raise WarmError("refusing to keep %s warm: this run (%s, pid %s) does not hold the deploy lock %s"
                            % (p["slot"], p["run_id"], p["pid"], self.lock_path))
        state = ds.load_state(self.state_path, p["app"])
        until = deadline(p["keep_warm"])
        new = warm_standby.mark_warm(state, p["slot"], until)
        if not self.check_mode:
            ds.save_state(self.state_path, new)
        return {"changed": True, "warm_standby": new["warm_standby"], "timer": self.timer(p["slot"], until)}

    # -- rollback -------------------------------------------------------------

    def rollback(self):
        p = self.p
        started = self.clock()
        taken = locks.acquire_lock(self.lock_path, p["owner"], p["run_id"], p["pid"], host=p["controller_host"],
                                   ttl=p["ttl"], force=p["force"], dry_run=self.check_mode)
        token = taken["lock"]["token"]
        try:
            result = self._rollback_locked(started)
        except BaseException:
            self._release(token)
            raise
        self._release(token)
        if result["rolled_back"]:
            result["timer"] = self.timer(result["from_slot"], result["until"])
        return result

    def _release(self, token):
        if not self.check_mode:
            locks.release_lock(self.lock_path, token=token)

    def _rollback_locked(self, started):
        p = self.p
        state = ds.load_state(self.state_path, p["app"])
        live_slot = current_slot(p["upstream_dir"])
        problem = ds.route_problem(state, live_slot)
        if problem:
            raise WarmError(problem, live_slot=live_slot)
        target, version = ds.rollback_target(state)
        left = state["active_slot"]
        declined = {"rolled_back": False, "changed": False, "slot": target, "from_slot": left, "version": version}
        slot, why_not = warm_standby.warm_slot(state)
        if slot is None:
            return dict(declined, why_not=why_not)
        if p.get("rollback_hooks"):
            return dict(declined, why_not="the deploy hooks %s run on rollbacks (on_rollback), and only the full "
                                          "rollback runs hooks" % ", ".join(p["rollback_hooks"]))
        servers, backups = p["slot_servers"][target], p["slot_servers"][other_slot(target)]
        why_not = standby_problem(servers, p["health_path"], p["health_expect"], version, self.probe)
        if why_not:
            return dict(declined, why_not=why_not)
        try:
            switched = switch(p["upstream_dir"], target, servers, backups, self.fetch, nginx_bin=p.get("nginx_binary", "nginx"),
                              pidfile=p.get("nginx_pidfile", "/run/nginx.pid"), check_mode=self.check_mode)
        except SwitchError as exc:
            return dict(declined, why_not=str(exc))
        until = deadline(max(p["keep_warm"], p["drain_seconds"]))
        new = ds.record(state, target, status="active", activate=True, replaced_status="standby")
        new = warm_standby.mark_warm(new, left, until)
        event = {"event": "rollback", "app": p["app"], "slot": target, "from_slot": left, "version": version,
                 "previous_version": state["slots"][left]["version"], "outcome": "success",
                 "run_id": p["run_id"], "user": p["owner"], "source": "module",
                 "reason": "fast path: %s was a warm standby until %s" % (target, state["warm_standby"]["until"]),
                 "duration_s": round(self.clock() - started, 3)}
        not_written = None
        if not self.check_mode:
            try:
                ds.save_state(self.state_path, new)
            except ds.StateError as exc:
                not_written = exc
                event["reason"] += "; the state was not written: %s" % exc
            audit.append_audit(p["audit_log"], event)
        if not_written is not None:
            raise WarmError("%s. Traffic is on %s (%s); run playbooks/reconcile.yml once the state can be written"
                            % (not_written, target, version))
        return {"rolled_back": True, "changed": True, "slot": target, "from_slot": left, "version": version,
                "why_not": None, "until": until, "warm_standby": new["warm_standby"], "state": new,
                "switch_seconds": switched["switch_seconds"], "audit_event": audit.normalize_event(event)}
