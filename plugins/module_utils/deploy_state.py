# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The blue-green deploy state document, ``<state_dir>/state.json``.

Which slot serves traffic, which one served before it, and what each slot runs.
Replaced atomically (``fileio.atomic_write``): readers see the old or the new
document, never a torn one.

Pure logic (``record``, ``rollback_target``, ``idle_slot``, ``resolve_slot``,
``protected_images``) works on plain dicts and never touches a file. The lock
lives in ``deploy_lock``, the audit log in ``deploy_audit``.
"""

from __future__ import annotations

import copy
import json
import os

from ansible_collections.unitehub.platform.plugins.module_utils.clock import format_ts, parse_ts
from ansible_collections.unitehub.platform.plugins.module_utils.fileio import atomic_write, read_text
from ansible_collections.unitehub.platform.plugins.module_utils.slots import SLOTS, other_slot, tag_problem

SCHEMA = 1
# repo_digest came later: a file without it reads as null (no digest recorded).
SLOT_FIELDS = ("version", "image", "image_id", "repo_digest", "deployed_at", "status")
STATUSES = ("active", "standby", "stopped", "failed")
# warm_standby came later ({"slot", "until"} while the previous slot is kept running, see
# warm_standby.py): a file without it reads as null.
TOP_LEVEL_FIELDS = ("schema", "app", "active_slot", "previous_slot", "slots", "updated_at", "warm_standby")

# Each app's files live apart, so several apps deploy on one host without touching each other.
STATE_ROOT = "/var/lib/unitehub"
# Where every app's state lived before 0.2.0; a state found there is moved to its app's own directory.
LEGACY_STATE_DIR = "/var/lib/unitehub/deploy"
STATE_FILE = "state.json"
FILE_MODE = 0o640
DIR_MODE = 0o750

_RECOVER_HINT = (
    "The file is only ever replaced atomically by unitehub.platform.deploy_state, so it was "
    "edited by hand or the disk is damaged. Repair it, or move it aside "
    "(mv {path} {path}.broken) so the next run starts from an empty state; the deploy "
    "history is in the audit log."
)


class DeployStateError(Exception):
    """Base class of the deploy files' errors: each carries a message fit for an operator."""


class StateError(DeployStateError):
    """The state file or a state change is invalid."""


# -------------------------------------------------------------------------- state

def state_file(state_dir):
    return os.path.join(state_dir, STATE_FILE)


def default_state_dir(app):
    return os.path.join(STATE_ROOT, app)


def migrate_legacy_state(path, legacy_path, app, dry_run=False):
    """Move ``app``'s state from the shared pre-0.2.0 location to ``path``, so an upgrade never
    loses track of the live slot. Returns the legacy path when a state was (or would be) moved,
    else None: ``path`` exists already, there is no legacy state, or it belongs to another app.
    The legacy file is renamed, not deleted, so the move is visible and nothing reads it twice."""
    if os.path.abspath(path) == os.path.abspath(legacy_path) or os.path.exists(path) \
            or not os.path.isfile(legacy_path):
        return None
    try:
        state = load_state(legacy_path, app)
    except StateError:
        return None  # another app's, or broken: leave it to its owner
    if not dry_run:
        save_state(path, state)
        os.rename(legacy_path, "%s.migrated-to-%s" % (legacy_path, app))
    return legacy_path


def empty_state(app):
    """The state of a host that has never been deployed to."""
    return {
        "schema": SCHEMA,
        "app": app,
        "active_slot": None,
        "previous_slot": None,
        "slots": {slot: dict.fromkeys(SLOT_FIELDS) for slot in SLOTS},
        "updated_at": None,
        "warm_standby": None,
    }


def _state_problems(doc):
    """Every way ``doc`` breaks schema 1, as short phrases."""
    if not isinstance(doc, dict):
        return ["the top level is a %s, expected an object" % type(doc).__name__]
    problems = []
    unknown = sorted(set(doc) - set(TOP_LEVEL_FIELDS))
    if unknown:
        problems.append("unknown keys %s" % ", ".join(unknown))
    if doc.get("schema") != SCHEMA:
        problems.append("schema is %r, this collection reads schema %d" % (doc.get("schema"), SCHEMA))
    if not isinstance(doc.get("app"), str) or not doc.get("app"):
        problems.append("app is %r, expected the app name" % (doc.get("app"),))
    for key in ("active_slot", "previous_slot"):
        if doc.get(key) not in SLOTS + (None,):
            problems.append("%s is %r, expected one of blue, green or null" % (key, doc.get(key)))
    if doc.get("active_slot") is not None and doc.get("active_slot") == doc.get("previous_slot"):
        problems.append("active_slot and previous_slot are both %r" % doc.get("active_slot"))
    if not isinstance(doc.get("updated_at", None), (str, type(None))):
        problems.append("updated_at is %r, expected a timestamp or null" % (doc.get("updated_at"),))
    warm = doc.get("warm_standby")
    if warm is not None and not (isinstance(warm, dict) and sorted(warm) == ["slot", "until"]
                                 and warm["slot"] in SLOTS and parse_ts(warm["until"]) is not None):
        problems.append("warm_standby is %r, expected null or {\"slot\": blue or green, \"until\": a timestamp}"
                        % (warm,))
    slots = doc.get("slots")
    if not isinstance(slots, dict):
        problems.append("slots is %r, expected an object keyed blue/green" % (slots,))
        return problems
    for name in sorted(set(slots) - set(SLOTS)):
        problems.append("slots has an unknown slot %r" % name)
    for name in SLOTS:
        entry = slots.get(name)
        if entry is None:
            continue
        if not isinstance(entry, dict):
            problems.append("slots.%s is %r, expected an object" % (name, entry))
            continue
        for key in sorted(set(entry) - set(SLOT_FIELDS)):
            problems.append("slots.%s has an unknown key %r" % (name, key))
        for key in SLOT_FIELDS:
            if not isinstance(entry.get(key), (str, type(None))):
                problems.append("slots.%s.%s is %r, expected a string or null" % (name, key, entry.get(key)))
        if entry.get("status") not in STATUSES + (None,):
            problems.append("slots.%s.status is %r, expected one of %s"
                            % (name, entry.get("status"), ", ".join(STATUSES)))
    active = doc.get("active_slot")
    if active in SLOTS and not (slots.get(active) or {}).get("version"):
        problems.append("the active slot %s has no version" % active)
    return problems


def normalize_state(doc):
    """A copy of a valid ``doc`` with both slots present and every field set."""
    state = copy.deepcopy(doc)
    state.setdefault("updated_at", None)
    state.setdefault("warm_standby", None)
    for name in SLOTS:
        entry = state["slots"].get(name) or {}
        state["slots"][name] = {key: entry.get(key) for key in SLOT_FIELDS}
    return state


def load_state(path, app):
    """The state stored at ``path`` for ``app``; an empty state when the file
    does not exist. Raises StateError, naming the file and the fix, when it
    cannot be read, is not JSON, breaks the schema or belongs to another app."""
    try:
        text = read_text(path)
    except UnicodeDecodeError as exc:
        raise StateError("deploy state file %s is not UTF-8 text (%s). %s"
                         % (path, exc.reason, _RECOVER_HINT.format(path=path)))
    except OSError as exc:
        raise StateError("cannot read the deploy state file %s: %s. Run as a user that can read it "
                         "(become: true) or point state_dir elsewhere." % (path, exc.strerror or exc))
    if text is None:
        return empty_state(app)
    try:
        doc = json.loads(text)
    except ValueError as exc:
        where = "line %d column %d: %s" % (exc.lineno, exc.colno, exc.msg) if hasattr(exc, "lineno") else str(exc)
        raise StateError("deploy state file %s is not valid JSON (%s). %s"
                         % (path, where, _RECOVER_HINT.format(path=path)))
    problems = _state_problems(doc)
    if problems:
        raise StateError("deploy state file %s is invalid: %s. %s"
                         % (path, "; ".join(problems), _RECOVER_HINT.format(path=path)))
    if doc["app"] != app:
        raise StateError("deploy state file %s belongs to app %r, not %r. Give each app its own state_dir."
                         % (path, doc["app"], app))
    return normalize_state(doc)


def dump_state(state):
    """The canonical text of a state document (what is written and diffed)."""
    return json.dumps(state, indent=2, sort_keys=True) + "\n"


def save_state(path, state):
    """Validate ``state`` and replace ``path`` with it atomically (mode 0640)."""
    problems = _state_problems(state)
    if problems:
        raise StateError("refusing to write an invalid deploy state to %s: %s" % (path, "; ".join(problems)))
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), mode=DIR_MODE, exist_ok=True)
        atomic_write(path, dump_state(state), mode=FILE_MODE)
    except OSError as exc:
        raise StateError("cannot write the deploy state file %s: %s; the previous file is unchanged"
                         % (path, exc.strerror or exc))


# ----------------------------------------------------------------- state logic

def _check_slot(slot, allowed=SLOTS):
    if slot not in allowed:
        raise StateError("slot %r is not one of %s" % (slot, ", ".join(allowed)))
    return slot


def check_version(version):
    """``version`` when it is a valid image tag; StateError naming it otherwise."""
    problem = tag_problem(version)
    if problem:
        raise StateError(problem)
    return version


def _comparable(state):
    return {key: value for key, value in state.items() if key != "updated_at"}


def record(state, slot, version=None, image=None, image_id=None, status=None, activate=False, now=None,
           replaced_status="standby", repo_digest=None):
    """The state after recording what ``slot`` runs. Pure: ``state`` is not modified.

    - A new ``version`` (or image) stamps ``deployed_at``; the image fields are
      replaced by the given ones, so a new version never inherits an old image.
      A new ``image_id`` replaces ``repo_digest`` too (with None when none is
      given): a digest always belongs to the image id beside it.
    - ``activate`` makes ``slot`` the active slot; the slot it replaces becomes
      ``previous_slot`` and, if it was ``active``, turns ``replaced_status``:
      ``standby`` while it still runs, ``stopped`` once it was drained and stopped.
    - ``status`` defaults to ``active`` for the active slot and otherwise keeps
      the slot's status (``standby`` for a new slot).
    - ``updated_at`` moves only when something else changed, so recording the
      same facts twice is a no-op.
    """
    _check_slot(slot)
    new = copy.deepcopy(state)
    entry = new["slots"][slot]
    becomes_active = activate or new["active_slot"] == slot

    if status is None:
        if becomes_active:
            status = "active"
        else:
            status = entry["status"] if entry["status"] not in (None, "active") else "standby"
    if status not in STATUSES:
        raise StateError("status %r is not one of %s" % (status, ", ".join(STATUSES)))
    if activate and status != "active":
        raise StateError("slot %s is being activated, so its status is 'active', not %r" % (slot, status))
    if not becomes_active and status == "active":
        raise StateError("slot %s cannot be 'active' while %s is the active slot; pass activate=true to switch to it"
                         % (slot, new["active_slot"] or "no slot"))
    if becomes_active and not activate and status != "active":
        raise StateError("slot %s is the active slot, so it cannot be marked %r; activate %s first (switch or rollback)"
                         % (slot, status, other_slot(slot)))

    if version is None:
        if entry["version"] is None:
            raise StateError("slot %s has no version recorded yet; pass the version it runs" % slot)
    else:
        check_version(version)
    stamp = format_ts(now)
    if version is not None and version != entry["version"]:
        entry.update(version=version, image=image, image_id=image_id, repo_digest=repo_digest, deployed_at=stamp)
    else:
        if image_id is not None and image_id != entry["image_id"]:
            entry.update(image_id=image_id, repo_digest=repo_digest, deployed_at=stamp)
        for key, value in (("image", image), ("repo_digest", repo_digest)):
            if value is not None and value != entry[key]:
                entry[key] = value
                entry["deployed_at"] = stamp
    entry["status"] = status

    if replaced_status not in ("standby", "stopped"):
        raise StateError("replaced_status %r is not standby or stopped" % (replaced_status,))
    # Any record of the warm standby (made live, redeployed, failed) ends its warm time.
    if (new.get("warm_standby") or {}).get("slot") == slot:
        new["warm_standby"] = None
    if activate and new["active_slot"] != slot:
        previous = new["active_slot"]
        if previous is not None and new["slots"][previous]["status"] == "active":
            new["slots"][previous]["status"] = replaced_status
        new["previous_slot"] = previous
        new["active_slot"] = slot
        if replaced_status == "stopped" and (new.get("warm_standby") or {}).get("slot") == previous:
            new["warm_standby"] = None

    if _comparable(new) != _comparable(state):
        new["updated_at"] = stamp
    return new


def serving_slot(state, live_slot=None):
    """The slot that carries traffic: the state's active slot or, while the state records
    no deploy, the one the live-slot marker names (a first deploy killed after its switch
    left it serving). None when nothing has been switched to yet."""
    return state["active_slot"] or live_slot


def idle_slot(state, live_slot=None):
    """The slot not serving traffic: where ``slot=auto`` deploys. Blue first."""
    serving = serving_slot(state, live_slot)
    return "blue" if serving is None else other_slot(serving)


def resolve_slot(state, requested, force=False, live_slot=None):
    """The slot a deploy targets. ``auto`` is the idle slot; the serving slot is
    refused unless ``force``, because replacing it cuts the live traffic."""
    _check_slot(requested, SLOTS + ("auto",))
    target = idle_slot(state, live_slot) if requested == "auto" else requested
    if target == serving_slot(state, live_slot) and not force:
        serving = state["slots"][target]["version"] or "a release that no deploy recorded"
        raise StateError(
            "slot %s is the active slot (serving %s); deploying onto it would replace the live "
            "containers. Deploy to %s (or slot=auto), or pass force=true to replace the live slot"
            % (target, serving, other_slot(target))
        )
    return target


def rollback_target(state):
    """``(slot, version)`` a rollback switches to, or StateError saying why there is none."""
    active = state["active_slot"]
    if active is None:
        raise StateError("nothing to roll back to: no deploy has been recorded for app %r yet" % state["app"])
    previous = state["previous_slot"]
    current = state["slots"][active]["version"]
    if previous is None:
        raise StateError("nothing to roll back to: %s (%s) is the only deploy recorded; "
                         "deploy the version you want instead" % (active, current))
    entry = state["slots"][previous]
    if not entry["version"]:
        raise StateError("nothing to roll back to: the previous slot %s has no version recorded" % previous)
    if entry["status"] == "failed":
        raise StateError("nothing to roll back to: the previous slot %s now holds %s, whose deploy failed; "
                         "%s (%s) stays active. Deploy a known-good version instead"
                         % (previous, entry["version"], active, current))
    return previous, entry["version"]


def route_problem(state, live_slot):
    """Why ``state`` disagrees with the slot the load balancer serves, or None.

    ``live_slot`` is what the live-slot marker names (None when there is none, which
    nginx serves as blue). The marker is the truth, because it is what nginx serves;
    the state records history. Before the first deploy nothing is live, so any marker
    agrees with an empty state.
    """
    active = state["active_slot"]
    if active is None or (live_slot or "blue") == active:
        return None
    live = live_slot or "blue (no marker)"
    version = state["slots"][active]["version"]
    return ("the load balancer serves slot %s, but the deploy state says %s (%s) is live: a run was stopped "
            "between the switch and its record, or the state could not be written. Deploying now could "
            "replace the live slot or give traffic to an unverified one. Run playbooks/reconcile.yml: it "
            "checks that %s runs and records it as the live slot" % (live, active, version, live_slot or "blue"))


def reconcile(state, live_slot, version, image=None, image_id=None, now=None, repo_digest=None):
    """The state after making ``live_slot`` (what the marker names) the active slot, with
    the release its containers run. The slot it replaces stays the rollback target."""
    _check_slot(live_slot)
    if state["active_slot"] == live_slot:
        return record(state, live_slot, version=version, image=image, image_id=image_id, now=now,
                      repo_digest=repo_digest)
    return record(state, live_slot, version=version, image=image, image_id=image_id, status="active", activate=True,
                  now=now, repo_digest=repo_digest)


def protected_images(state):
    """Every image reference, image id and repo digest the state names: never prune these."""
    names = set()
    for entry in state["slots"].values():
        for key in ("image", "image_id", "repo_digest"):
            if entry.get(key):
                names.add(entry[key])
    return sorted(names)
