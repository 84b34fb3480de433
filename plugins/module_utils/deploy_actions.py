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

ACTIONS = ("read", "lock", "unlock", "record", "audit")


class ActionError(ds.DeployStateError):
    """An action refused; ``details`` go into the module's result."""

    def __init__(self, message, **details):
        super().__init__(message)
        self.details = details


def argument_spec():
    return dict(
        action=dict(type="str", required=True, choices=list(ACTIONS)),
        state_dir=dict(type="path", default=ds.DEFAULT_STATE_DIR),
        audit_log=dict(type="path", default=audit.DEFAULT_AUDIT_LOG),
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
        status=dict(type="str", choices=list(ds.STATUSES)),
        activate=dict(type="bool", default=False),
        replaced_status=dict(type="str", choices=["standby", "stopped"], default="standby"),
        for_rollback=dict(type="bool", default=False),
        release_lock=dict(type="bool", default=False),
        event=dict(type="dict"),
        last_n=dict(type="int", default=10),
    )


REQUIRED_IF = [
    ("action", "lock", ("run_id", "pid")),
    ("action", "record", ("slot",)),
    ("action", "audit", ("event",)),
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
                                    "image_id": entry["image_id"]}, None
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

    def audit_event(self):
        p = self.p
        event = dict(p["event"])
        for key, value in (("app", p["app"]), ("run_id", p["run_id"]), ("user", p["owner"]), ("source", "module")):
            if event.get(key) is None:
                event[key] = value
        if self.check_mode:
            return audit.normalize_event(event)
        return audit.append_audit(p["audit_log"], event)

    # -- the actions --------------------------------------------------------

    def run(self):
        p = self.p
        result = {"changed": False, "broken_lock": None, "audit": []}
        try:
            state = ds.load_state(self.state_path, p["app"])
        except ds.StateError as exc:
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
        if p["slot"] is not None:
            result["target_slot"] = ds.resolve_slot(state, p["slot"], force=p["force"])
        result["audit"] = audit.read_audit(p["audit_log"], p["last_n"])
        return state, lock, False

    def _lock(self, result, state, lock):
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
        if p["for_rollback"]:
            # What the lock now guards: a run that ended just before may have moved it.
            state = ds.load_state(self.state_path, p["app"])
        return state, outcome["lock"], True

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

    def _record(self, result, state, lock):
        p = self.p
        if lock is not None and not locks.is_holder(lock, p["run_id"], p["pid"], p["token"]) and not p["force"]:
            raise ActionError("refusing to record while %s holds the deploy lock %s; pass this run's run_id and "
                              "pid (or token), or force=true" % (locks.describe_holder(lock), self.lock_path),
                              lock=locks.public_lock(lock))
        if p["slot"] == "auto":
            raise ActionError("action=record needs slot blue or green, not 'auto'; resolve it first with "
                              "action=read (target_slot)")
        new = ds.record(state, p["slot"], version=p["version"], image=p["image"], image_id=p["image_id"],
                        status=p["status"], activate=p["activate"], replaced_status=p["replaced_status"])
        result["changed"] = new != state
        if self.diff:
            result["diff"] = {"before": ds.dump_state(state), "after": ds.dump_state(new),
                              "before_header": self.state_path, "after_header": self.state_path}
        if result["changed"] and not self.check_mode:
            ds.save_state(self.state_path, new)
        if p["event"]:
            result["audit_event"] = self.audit_event()
        if p["release_lock"] and lock is not None:
            outcome = locks.release_lock(self.lock_path, run_id=p["run_id"], pid=p["pid"], token=p["token"],
                                         dry_run=self.check_mode, local_host=self.local_host)
            result["changed"] = result["changed"] or outcome["released"]
            if outcome["released"]:
                lock = None
        return new, lock, False

    def _audit(self, result, state, lock):
        result["audit_event"] = self.audit_event()
        result["changed"] = True
        return state, lock, False
