# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The actions of the ``deploy_state`` module: read, lock, unlock, record, audit.

Each action takes the module's parameters and returns the module's result; a
refusal raises ``ActionError`` (or one of the deploy files' errors) with the
details to report. The module itself only parses its options and reports.
"""

from __future__ import annotations

import os
import pwd

from ansible_collections.unitehub.platform.plugins.module_utils import deploy_audit as audit
from ansible_collections.unitehub.platform.plugins.module_utils import deploy_lock as locks
from ansible_collections.unitehub.platform.plugins.module_utils import deploy_state as ds
from ansible_collections.unitehub.platform.plugins.module_utils.slot_switch import current_slot

ACTIONS = ("read", "lock", "unlock", "record", "audit", "reconcile")


class ActionError(ds.DeployStateError):
    """An action refused; ``details`` go into the module's result."""

    def __init__(self, message, **details):
        super().__init__(message)
        self.details = details


def argument_spec():
    return dict(
        action=dict(type="str", required=True, choices=list(ACTIONS)),
        state_dir=dict(type="path"),
        audit_log=dict(type="path"),
        legacy_state_dir=dict(type="path", default=ds.LEGACY_STATE_DIR),
        app=dict(type="str", default="unitehub"),
        owner=dict(type="str"),
        run_id=dict(type="str"),
        pid=dict(type="int"),
        controller_host=dict(type="str"),
        token=dict(type="str", no_log=False),
        ttl=dict(type="int", default=locks.DEFAULT_TTL),
        force=dict(type="bool", default=False),
        slot=dict(type="str", choices=["blue", "green", "auto"]),
        version=dict(type="str"),
        image=dict(type="str"),
        image_id=dict(type="str"),
        repo_digest=dict(type="str"),
        status=dict(type="str", choices=list(ds.STATUSES)),
        activate=dict(type="bool", default=False),
        replaced_status=dict(type="str", choices=["standby", "stopped"], default="standby"),
        for_rollback=dict(type="bool", default=False),
        release_lock=dict(type="bool", default=False),
        event=dict(type="raw"),
        last_n=dict(type="int", default=10),
        upstream_dir=dict(type="path"),
    )


REQUIRED_IF = [
    ("action", "lock", ("run_id", "pid")),
    ("action", "record", ("slot",)),
    ("action", "audit", ("event",)),
    ("action", "reconcile", ("upstream_dir", "version")),
]


def default_user():
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def derived(state):
    """What a run derives from the state: idle slot, rollback target, images to keep."""
    if state is None:
        return {"idle_slot": None, "rollback": None, "rollback_error": None, "protected_images": []}
    try:
        slot, version = ds.rollback_target(state)
        entry = state["slots"][slot]
        rollback, rollback_error = {"slot": slot, "version": version, "image": entry["image"],
                                    "image_id": entry["image_id"], "repo_digest": entry["repo_digest"]}, None
    except ds.StateError as exc:
        rollback, rollback_error = None, str(exc)
    return {"idle_slot": ds.idle_slot(state), "rollback": rollback, "rollback_error": rollback_error,
            "protected_images": ds.protected_images(state)}


class Run:
    """One call of the module: its parameters, check mode, diff mode and warnings."""

    def __init__(self, params, check_mode=False, diff=False, warn=None):
        self.p = dict(params)
        if self.p.get("owner") is None:
            self.p["owner"] = default_user()
        if not self.p.get("state_dir"):
            self.p["state_dir"] = ds.default_state_dir(self.p["app"])
        if not self.p.get("audit_log"):
            self.p["audit_log"] = audit.default_audit_log(self.p["app"])
        self.check_mode = check_mode
        self.diff = diff
        self.warn = warn or (lambda message: None)
        self.state_path = ds.state_file(self.p["state_dir"])
        self.lock_path = locks.lock_file(self.p["state_dir"])
        self.local_host = locks.this_host()

    # -- audit helpers ------------------------------------------------------

    def audit_break(self, broken, reason_prefix):
        """Append a lock_broken event; a failure to audit is a warning, not a failure."""
        p = self.p
        event = {"event": "lock_broken", "app": p["app"], "outcome": "success", "run_id": p["run_id"],
                 "user": p["owner"], "source": "module",
                 "reason": "%s %s%s" % (reason_prefix, locks.describe_holder(broken),
                                        ": " + broken["stale_reason"] if broken.get("stale_reason") else "")}
        self.warn("deploy lock: %s" % event["reason"])
        if self.check_mode:
            return
        try:
            audit.append_audit(p["audit_log"], event)
        except audit.AuditError as exc:
            self.warn("the lock break could not be audited: %s" % exc)

    def events(self):
        """The ``event`` option as a list of complete events (one event, or a list of them)."""
        p = self.p
        given = p["event"] if isinstance(p["event"], list) else [p["event"]]
        events = []
        for item in given:
            if not isinstance(item, dict):
                raise ActionError("event must be an event (a dictionary) or a list of them, not %r" % (item,))
            event = dict(item)
            for key, value in (("app", p["app"]), ("run_id", p["run_id"]), ("user", p["owner"]),
                               ("source", "module")):
                if event.get(key) is None:
                    event[key] = value
            events.append(audit.normalize_event(event))
        return events

    def audit_events(self, events, not_written=None):
        """Append ``events``; the last one is returned (the ``audit_event`` result). With
        ``not_written`` (why the state could not be written) each reason says so."""
        for event in events if not_written is not None else ():
            event["reason"] = "; ".join(filter(None, (event.get("reason"),
                                                      "the state was not written: %s" % not_written)))
        if not self.check_mode:
            for event in events:
                audit.append_audit(self.p["audit_log"], event)
        return events[-1] if events else None

    # -- the actions --------------------------------------------------------

    def run(self):
        p = self.p
        result = {"changed": False, "broken_lock": None, "audit": []}
        if p["legacy_state_dir"]:
            moved = ds.migrate_legacy_state(self.state_path, ds.state_file(p["legacy_state_dir"]), p["app"],
                                            dry_run=self.check_mode)
            if moved:
                result["migrated_from"] = moved
                self.warn("moved the deploy state of %s from %s to %s (each app now has its own state_dir)"
                          % (p["app"], moved, self.state_path))
        try:
            # In check mode a state that would be moved is read where it still is.
            state = ds.load_state(result.get("migrated_from") if self.check_mode and result.get("migrated_from")
                                  else self.state_path, p["app"])
        except ds.StateError as exc:
            if p["action"] == "record" and p["event"]:
                # The state cannot be read, so it cannot be written either: the audit line still is.
                self.audit_events(self.events(), not_written=exc)
            if p["action"] == "read" and p["upstream_dir"]:
                # What nginx serves is known without the state: a rescue needs it most when the state is broken.
                raise ActionError(str(exc), live_slot=current_slot(p["upstream_dir"])) from None
            if p["action"] in ("read", "record") or p["for_rollback"]:
                raise
            # A broken state file must not stop a run from releasing its lock or auditing.
            self.warn(str(exc))
            state = None
        lock = locks.read_lock(self.lock_path, local_host=self.local_host, default_ttl=p["ttl"])
        action = getattr(self, "_" + p["action"])
        state, lock, show_token = action(result, state, lock)
        result.update(derived(state), state=state, lock=locks.public_lock(lock, with_token=show_token))
        return result

    def _read(self, result, state, lock):
        p = self.p
        if p["upstream_dir"]:
            result["live_slot"] = current_slot(p["upstream_dir"])
            result["divergence"] = ds.route_problem(state, result["live_slot"])
        if p["slot"] is not None:
            result["target_slot"] = ds.resolve_slot(state, p["slot"], force=p["force"],
                                                    live_slot=result.get("live_slot"))
        result["audit"] = audit.read_audit(p["audit_log"], p["last_n"])
        return state, lock, False

    def _lock(self, result, state, lock):
        """Take the lock, then decide under it: what the lock guards is the state as it is
        now, so a run that ended just before cannot have moved it under this one's feet."""
        p = self.p
        if p["for_rollback"]:
            target = derived(state)
            if target["rollback"] is None:
                raise ActionError(target["rollback_error"], state=state)
        outcome = locks.acquire_lock(self.lock_path, p["owner"], p["run_id"], p["pid"], host=p["controller_host"],
                                     ttl=p["ttl"], force=p["force"], dry_run=self.check_mode,
                                     local_host=self.local_host)
        result["changed"] = outcome["acquired"]
        if outcome["broken"] is not None:
            result["broken_lock"] = locks.public_lock(outcome["broken"])
            self.audit_break(outcome["broken"], "broke the stale lock of")
        try:
            state = ds.load_state(self.state_path, p["app"])
            self._plan(result, state)
        except ds.DeployStateError:
            if outcome["acquired"] and not self.check_mode:
                locks.release_lock(self.lock_path, token=outcome["lock"]["token"], local_host=self.local_host)
            raise
        return state, outcome["lock"], True

    def _plan(self, result, state):
        """The decisions a run makes under the lock: the live slot agrees with the state,
        there is something to roll back to, and the slot a deploy targets."""
        p = self.p
        if p["upstream_dir"]:
            result["live_slot"] = current_slot(p["upstream_dir"])
            problem = ds.route_problem(state, result["live_slot"])
            if problem:
                raise ActionError(problem, state=state, live_slot=result["live_slot"])
        result["serving_slot"] = ds.serving_slot(state, result.get("live_slot"))
        if p["for_rollback"]:
            target = derived(state)
            if target["rollback"] is None:
                raise ActionError(target["rollback_error"], state=state)
        elif p["slot"] is not None:
            result["target_slot"] = ds.resolve_slot(state, p["slot"], force=p["force"],
                                                    live_slot=result.get("live_slot"))

    def _unlock(self, result, state, lock):
        p = self.p
        if lock is not None and not (p["force"] or p["token"] or (p["run_id"] and p["pid"])):
            raise ActionError("action=unlock needs the holder's run_id and pid, or its token, or force=true",
                              lock=locks.public_lock(lock))
        outcome = locks.release_lock(self.lock_path, run_id=p["run_id"], pid=p["pid"], token=p["token"],
                                     force=p["force"], dry_run=self.check_mode, local_host=self.local_host)
        result["changed"] = outcome["released"]
        if outcome["released"]:
            lock = None
        if outcome["forced"]:
            result["broken_lock"] = locks.public_lock(outcome["lock"])
            self.audit_break(outcome["lock"], "force-released the lock of")
        return state, lock, False

    def _require_holder(self, lock):
        p = self.p
        if lock is not None and not locks.is_holder(lock, p["run_id"], p["pid"], p["token"]) and not p["force"]:
            raise ActionError("refusing to %s while %s holds the deploy lock %s; pass this run's run_id and "
                              "pid (or token), or force=true"
                              % (p["action"], locks.describe_holder(lock), self.lock_path),
                              lock=locks.public_lock(lock))

    def _record(self, result, state, lock):
        p = self.p
        self._require_holder(lock)
        if p["slot"] == "auto":
            raise ActionError("action=record needs slot blue or green, not 'auto'; resolve it first with "
                              "action=read (target_slot)")
        new = ds.record(state, p["slot"], version=p["version"], image=p["image"], image_id=p["image_id"],
                        status=p["status"], activate=p["activate"], replaced_status=p["replaced_status"],
                        repo_digest=p["repo_digest"])
        return self._write(result, state, new, lock)

    def _reconcile(self, result, state, lock):
        """Record as live the slot the marker names, with the release its containers run
        (the caller checked that they run and passes their version and image)."""
        p = self.p
        self._require_holder(lock)
        live_slot = current_slot(p["upstream_dir"])
        if live_slot is None:
            raise ActionError("there is no live-slot marker in %s/live: nothing is live to reconcile with; "
                              "deploy instead" % p["upstream_dir"])
        if p["slot"] not in (None, live_slot):
            raise ActionError("the marker in %s names %s, not %s: reconcile records what the load balancer "
                              "serves" % (p["upstream_dir"], live_slot, p["slot"]), live_slot=live_slot)
        result["live_slot"] = live_slot
        new = ds.reconcile(state, live_slot, p["version"], image=p["image"], image_id=p["image_id"],
                           repo_digest=p["repo_digest"])
        return self._write(result, state, new, lock)

    def _write(self, result, state, new, lock):
        """Write ``new``, then append the events and release the lock if asked. A failed state
        write still leaves its audit lines, and the failure is raised after them."""
        p = self.p
        result["changed"] = new != state
        if self.diff:
            result["diff"] = {"before": ds.dump_state(state), "after": ds.dump_state(new),
                              "before_header": self.state_path, "after_header": self.state_path}
        events = self.events() if p["event"] else []
        save_error = None
        if result["changed"] and not self.check_mode:
            try:
                ds.save_state(self.state_path, new)
            except ds.StateError as exc:
                save_error = exc
        if events:
            result["audit_event"] = self.audit_events(events, not_written=save_error)
        if save_error is not None:
            raise save_error
        if p["release_lock"] and lock is not None:
            outcome = locks.release_lock(self.lock_path, run_id=p["run_id"], pid=p["pid"], token=p["token"],
                                         dry_run=self.check_mode, local_host=self.local_host)
            result["changed"] = result["changed"] or outcome["released"]
            if outcome["released"]:
                lock = None
        return new, lock, False

    def _audit(self, result, state, lock):
        result["audit_event"] = self.audit_events(self.events())
        result["changed"] = True
        return state, lock, False
