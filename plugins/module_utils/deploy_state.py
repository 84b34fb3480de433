# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Blue-green deploy state, the deploy lock and the deploy audit log.

Three files on each load-balancer host, all owned by this module:

``<state_dir>/state.json``
    Which slot serves traffic, which one served before it, and what each slot
    runs. Replaced atomically (``fileio.atomic_write``): readers see the old or
    the new document, never a torn one.

``<state_dir>/deploy.lock``
    One deploy at a time. Created with ``O_CREAT | O_EXCL`` so exactly one
    contender wins. It names its holder: the *run* (``run_id`` + ``pid`` of the
    controller's ansible-playbook process, both supplied by the caller, since a
    module process lives for one task only), the human ``owner`` and the
    ``host`` where that pid lives. A lock older than its ``ttl``, or whose pid is
    dead on this very host, is *stale*; stale locks are broken only on request
    (``force``), and the break is reported.

``/var/log/unitehub/deploy-audit.jsonl``
    One JSON line per deploy, rollback, switch, failure, automatic revert or
    broken lock, appended with ``O_APPEND`` and fsynced.

Pure logic (``record``, ``rollback_target``, ``idle_slot``, ``resolve_slot``,
``protected_images``) works on plain dicts and never touches a file. No Ansible
import: the callback plugin on the controller reuses the audit writer.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import fcntl
import json
import math
import os
import re
import socket
import time
import uuid
from datetime import datetime, timezone

from ansible_collections.unitehub.platform.plugins.module_utils.fileio import atomic_write, read_text

SCHEMA = 1
SLOTS = ("blue", "green")
SLOT_FIELDS = ("version", "image", "image_id", "deployed_at", "status")
STATUSES = ("active", "standby", "stopped", "failed")
TOP_LEVEL_FIELDS = ("schema", "app", "active_slot", "previous_slot", "slots", "updated_at")

DEFAULT_STATE_DIR = "/var/lib/unitehub/deploy"
DEFAULT_AUDIT_LOG = "/var/log/unitehub/deploy-audit.jsonl"
STATE_FILE = "state.json"
LOCK_FILE = "deploy.lock"
DEFAULT_TTL = 1800
FILE_MODE = 0o640
DIR_MODE = 0o750

AUDIT_EVENTS = ("deploy", "rollback", "switch", "failure", "auto_revert", "lock_broken")
AUDIT_OUTCOMES = ("success", "failed")
AUDIT_FIELDS = (
    "ts", "event", "app", "slot", "from_slot", "version", "previous_version", "outcome",
    "reason", "run_id", "user", "duration_s", "phases", "source",
)

# A Docker tag: what `unitehub/app:<version>` accepts.
_VERSION_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")

_RECOVER_HINT = (
    "The file is only ever replaced atomically by unitehub.platform.deploy_state, so it was "
    "edited by hand or the disk is damaged. Repair it, or move it aside "
    "(mv {path} {path}.broken) so the next run starts from an empty state; the deploy "
    "history is in the audit log."
)


class DeployStateError(Exception):
    """Base class: every error here carries a message fit for an operator."""


class StateError(DeployStateError):
    """The state file or a state change is invalid."""


class LockError(DeployStateError):
    """The lock cannot be taken or released as asked."""


class LockHeld(LockError):
    """Another run holds the deploy lock. ``holder`` describes it."""

    def __init__(self, message, holder):
        super().__init__(message)
        self.holder = holder


class AuditError(DeployStateError):
    """An audit event is malformed or the audit log cannot be written."""


# --------------------------------------------------------------------------- time

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


# -------------------------------------------------------------------------- state

def state_file(state_dir):
    return os.path.join(state_dir, STATE_FILE)


def lock_file(state_dir):
    return os.path.join(state_dir, LOCK_FILE)


def empty_state(app):
    """The state of a host that has never been deployed to."""
    return {
        "schema": SCHEMA,
        "app": app,
        "active_slot": None,
        "previous_slot": None,
        "slots": {slot: dict.fromkeys(SLOT_FIELDS) for slot in SLOTS},
        "updated_at": None,
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
    if not isinstance(version, str) or not _VERSION_RE.fullmatch(version):
        raise StateError("version %r is not a valid image tag: use 1-128 characters from "
                         "letters, digits, '_', '.' and '-', not starting with '.' or '-'" % (version,))
    return version


def _other(slot):
    return "green" if slot == "blue" else "blue"


def _comparable(state):
    return {key: value for key, value in state.items() if key != "updated_at"}


def record(state, slot, version=None, image=None, image_id=None, status=None, activate=False, now=None,
           replaced_status="standby"):
    """The state after recording what ``slot`` runs. Pure: ``state`` is not modified.

    - A new ``version`` (or image) stamps ``deployed_at``; the image fields are
      replaced by the given ones, so a new version never inherits an old image.
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
                         % (slot, status, _other(slot)))

    if version is None:
        if entry["version"] is None:
            raise StateError("slot %s has no version recorded yet; pass the version it runs" % slot)
    else:
        check_version(version)
    stamp = format_ts(now)
    if version is not None and version != entry["version"]:
        entry.update(version=version, image=image, image_id=image_id, deployed_at=stamp)
    else:
        for key, value in (("image", image), ("image_id", image_id)):
            if value is not None and value != entry[key]:
                entry[key] = value
                entry["deployed_at"] = stamp
    entry["status"] = status

    if replaced_status not in ("standby", "stopped"):
        raise StateError("replaced_status %r is not standby or stopped" % (replaced_status,))
    if activate and new["active_slot"] != slot:
        previous = new["active_slot"]
        if previous is not None and new["slots"][previous]["status"] == "active":
            new["slots"][previous]["status"] = replaced_status
        new["previous_slot"] = previous
        new["active_slot"] = slot

    if _comparable(new) != _comparable(state):
        new["updated_at"] = stamp
    return new


def idle_slot(state):
    """The slot not serving traffic: where ``slot=auto`` deploys. Blue first."""
    return "blue" if state["active_slot"] is None else _other(state["active_slot"])


def resolve_slot(state, requested, force=False):
    """The slot a deploy targets. ``auto`` is the idle slot; the active slot is
    refused unless ``force``, because replacing it cuts the live traffic."""
    _check_slot(requested, SLOTS + ("auto",))
    target = idle_slot(state) if requested == "auto" else requested
    if target == state["active_slot"] and not force:
        raise StateError(
            "slot %s is the active slot (serving %s); deploying onto it would replace the live "
            "containers. Deploy to %s (or slot=auto), or pass force=true to replace the live slot"
            % (target, state["slots"][target]["version"], _other(target))
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


def protected_images(state):
    """Every image reference and image id the state names: never prune these."""
    names = set()
    for entry in state["slots"].values():
        for key in ("image", "image_id"):
            if entry.get(key):
                names.add(entry[key])
    return sorted(names)


# --------------------------------------------------------------------------- lock

def pid_alive(pid):
    """Whether ``pid`` is a running process on this host (zombies count)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def this_host():
    return socket.gethostname()


def _read_lock_raw(path):
    """(stat, bytes) of the lock file, or None when there is none."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return st, b"".join(chunks)


def _describe_lock(path, st, raw, now, local_host, default_ttl):
    info = {
        "path": path, "owner": None, "run_id": None, "pid": None, "host": None,
        "started_at": None, "ttl": default_ttl, "token": None, "readable": False,
    }
    try:
        doc = json.loads(raw.decode("utf-8"))
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        info["readable"] = True
        for key in ("owner", "run_id", "host", "started_at", "token"):
            if isinstance(doc.get(key), str):
                info[key] = doc[key]
        if isinstance(doc.get("pid"), int) and not isinstance(doc.get("pid"), bool):
            info["pid"] = doc["pid"]
        if isinstance(doc.get("ttl"), int) and not isinstance(doc.get("ttl"), bool) and doc["ttl"] > 0:
            info["ttl"] = doc["ttl"]
    started = parse_ts(info["started_at"])
    if started is None:
        started = st.st_mtime
    info["age_s"] = round(max(0.0, now - started), 1)
    info["stale"], info["stale_reason"] = False, None
    if info["age_s"] > info["ttl"]:
        info["stale"] = True
        info["stale_reason"] = "it is older than its ttl (age %s > ttl %ss)" % (format_age(info["age_s"]), info["ttl"])
    elif info["readable"] and info["host"] == local_host and info["pid"] and not pid_alive(info["pid"]):
        info["stale"] = True
        info["stale_reason"] = "pid %s is no longer running on %s" % (info["pid"], local_host)
    info["_identity"] = (st.st_ino, st.st_mtime_ns, raw)
    return info


def public_lock(info, with_token=False):
    """``info`` without internals; the token only for its holder."""
    if info is None:
        return None
    shown = {key: value for key, value in info.items() if not key.startswith("_")}
    if not with_token:
        shown.pop("token", None)
    return shown


def read_lock(path, now=None, local_host=None, default_ttl=DEFAULT_TTL):
    """The lock's holder, age and staleness, or None when nobody holds it."""
    found = _read_lock_raw(path)
    if found is None:
        return None
    return _describe_lock(path, found[0], found[1], time.time() if now is None else now,
                          local_host or this_host(), default_ttl)


def describe_holder(info):
    if not info["readable"]:
        return "an unreadable lock file (empty or corrupt)"
    return "%s (run %s, pid %s on %s)" % (
        info["owner"] or "an unknown owner", info["run_id"], info["pid"], info["host"])


def _held_message(info, forced):
    text = "deploy lock %s is held by %s, taken %s ago, ttl %ss. " % (
        info["path"], describe_holder(info), format_age(info["age_s"]), info["ttl"])
    if not info["stale"]:
        return text + ("Wait for that run to finish or stop it; force=true breaks only a stale lock "
                       "(older than its ttl, or whose pid is dead on this host).")
    if not forced:
        return text + "The lock is stale: %s. Rerun with force=true to break it." % info["stale_reason"]
    return text + "The lock is stale (%s) but changed while it was being broken; try again." % info["stale_reason"]


def is_holder(info, run_id=None, pid=None, token=None):
    """Whether the caller identified by (run_id, pid) or token holds ``info``."""
    if info is None or not info["readable"]:
        return False
    if token and info["token"] == token:
        return True
    return bool(run_id) and pid is not None and info["run_id"] == run_id and info["pid"] == pid


@contextlib.contextmanager
def _dir_guard(directory):
    """Serialise lock breaking and releasing with an flock on the state directory,
    so a breaker never removes a lock that another run has just taken."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _create_lock(path, doc):
    """Create the lock file if and only if it does not exist (atomic)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        data = (json.dumps(doc, sort_keys=True) + "\n").encode("utf-8")
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_identity(run_id, pid, ttl):
    if not isinstance(run_id, str) or not run_id.strip():
        raise LockError("run_id %r is empty: pass an id that names this controller run" % (run_id,))
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        raise LockError("pid %r is not a process id: pass the controller's ansible-playbook pid" % (pid,))
    if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0:
        raise LockError("ttl %r is not a positive number of seconds" % (ttl,))


def acquire_lock(path, owner, run_id, pid, host=None, ttl=DEFAULT_TTL, force=False,
                 dry_run=False, now=None, local_host=None):
    """Take the deploy lock for the run (``run_id``, ``pid`` on ``host``).

    Returns ``{"acquired": bool, "lock": info, "broken": info or None}``;
    ``acquired`` is False when this run already held it. Raises LockHeld when
    another run holds it, when it is stale and ``force`` is not set, or when
    it is live (``force`` never breaks a live lock). With ``dry_run`` nothing
    is written and the result says what would happen.
    """
    _check_identity(run_id, pid, ttl)
    local_host = local_host or this_host()
    host = host or local_host
    directory = os.path.dirname(os.path.abspath(path))
    broken = None
    for _attempt in range(5):
        current = read_lock(path, now=now, local_host=local_host, default_ttl=ttl)
        if current is not None:
            if is_holder(current, run_id, pid):
                return {"acquired": False, "lock": current, "broken": None}
            if not current["stale"] or not force:
                raise LockHeld(_held_message(current, False), public_lock(current))
        started = time.time() if now is None else now
        doc = {"owner": owner, "run_id": run_id, "pid": pid, "host": host,
               "started_at": format_ts(started), "ttl": ttl, "token": uuid.uuid4().hex}
        if dry_run:
            planned = dict(doc, path=path, readable=True, age_s=0.0, stale=False, stale_reason=None)
            return {"acquired": True, "lock": planned, "broken": current}
        try:
            os.makedirs(directory, mode=DIR_MODE, exist_ok=True)
            if current is None:
                _create_lock(path, doc)
            else:
                with _dir_guard(directory):
                    again = read_lock(path, now=now, local_host=local_host, default_ttl=ttl)
                    if again is not None:
                        if again["_identity"] != current["_identity"]:
                            continue  # someone else moved first: judge the new holder
                        os.unlink(path)
                        broken = current
                    _create_lock(path, doc)
        except FileExistsError:
            continue
        except OSError as exc:
            raise LockError("cannot create the deploy lock %s: %s" % (path, exc.strerror or exc))
        return {"acquired": True, "lock": read_lock(path, now=now, local_host=local_host, default_ttl=ttl),
                "broken": broken}
    current = read_lock(path, now=now, local_host=local_host, default_ttl=ttl)
    if current is None:
        raise LockError("the deploy lock %s kept changing while it was being taken; try again" % path)
    raise LockHeld(_held_message(current, force), public_lock(current))


def release_lock(path, run_id=None, pid=None, token=None, force=False, dry_run=False, now=None, local_host=None):
    """Release the deploy lock. Only its holder (``run_id`` and ``pid``, or the
    ``token`` returned by acquire_lock) may, unless ``force``.

    Returns ``{"released": bool, "lock": info or None, "forced": bool}``;
    ``forced`` is True when a lock held by someone else was removed.
    """
    current = read_lock(path, now=now, local_host=local_host)
    if current is None:
        return {"released": False, "lock": None, "forced": False}
    holder = is_holder(current, run_id, pid, token)
    if not holder and not force:
        raise LockError(
            "deploy lock %s is held by %s, not by this run (run %s, pid %s); only its holder "
            "releases it. Pass force=true to remove it anyway." % (path, describe_holder(current), run_id, pid)
        )
    if dry_run:
        return {"released": True, "lock": current, "forced": not holder}
    with _dir_guard(os.path.dirname(os.path.abspath(path))):
        again = read_lock(path, now=now, local_host=local_host)
        if again is None:
            return {"released": False, "lock": None, "forced": False}
        if again["_identity"] != current["_identity"] and not force:
            raise LockError("deploy lock %s changed hands while it was being released; it is now held by %s"
                            % (path, describe_holder(again)))
        try:
            os.unlink(path)
        except FileNotFoundError:
            return {"released": False, "lock": None, "forced": False}
    return {"released": True, "lock": again, "forced": not is_holder(again, run_id, pid, token)}


# -------------------------------------------------------------------------- audit

def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def normalize_event(event, now=None):
    """``event`` checked and laid out in the audit schema's field order, with
    ``ts`` filled in. Raises AuditError naming the bad field."""
    if not isinstance(event, dict):
        raise AuditError("an audit event is an object, not %r" % (event,))
    event = {key: (None if value == "" else value) for key, value in event.items()}
    unknown = sorted(set(event) - set(AUDIT_FIELDS))
    if unknown:
        raise AuditError("unknown audit field(s) %s; the fields are %s" % (", ".join(unknown), ", ".join(AUDIT_FIELDS)))
    if event.get("event") not in AUDIT_EVENTS:
        raise AuditError("audit event %r is not one of %s" % (event.get("event"), ", ".join(AUDIT_EVENTS)))
    if event.get("outcome") not in AUDIT_OUTCOMES + (None,):
        raise AuditError("audit outcome %r is not one of %s" % (event.get("outcome"), ", ".join(AUDIT_OUTCOMES)))
    for key in ("slot", "from_slot"):
        if event.get(key) not in SLOTS + (None,):
            raise AuditError("audit %s %r is not one of blue, green" % (key, event.get(key)))
    for key in ("ts", "app", "version", "previous_version", "reason", "run_id", "user", "source"):
        if not isinstance(event.get(key), (str, type(None))):
            raise AuditError("audit %s %r is not a string" % (key, event.get(key)))
    if event.get("duration_s") is not None and not _number(event["duration_s"]):
        raise AuditError("audit duration_s %r is not a number of seconds" % (event["duration_s"],))
    phases = event.get("phases")
    if phases is not None:
        if not isinstance(phases, dict) or not all(isinstance(k, str) and _number(v) for k, v in phases.items()):
            raise AuditError("audit phases %r is not an object of phase name -> seconds" % (phases,))
    normalized = {key: event.get(key) for key in AUDIT_FIELDS}
    if normalized["ts"] is None:
        normalized["ts"] = format_ts(now, precision="milliseconds")
    return normalized


def append_audit(path, event, now=None):
    """Append one event as one JSON line (``O_APPEND``, fsync) and return it.

    A line left torn by a crash is closed with a newline first, so it never
    swallows the new event.
    """
    entry = normalize_event(event, now=now)
    data = (json.dumps(entry, sort_keys=False, separators=(",", ":")) + "\n").encode("utf-8")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), mode=DIR_MODE, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, FILE_MODE)
    except OSError as exc:
        raise AuditError("cannot open the audit log %s: %s" % (path, exc.strerror or exc))
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    except OSError as exc:
        raise AuditError("cannot append to the audit log %s: %s" % (path, exc.strerror or exc))
    finally:
        os.close(fd)
    return entry


def _lines_from_end(handle, block=65536):
    handle.seek(0, os.SEEK_END)
    position = handle.tell()
    pending = b""
    while position > 0:
        step = min(block, position)
        position -= step
        handle.seek(position)
        pending = handle.read(step) + pending
        lines = pending.split(b"\n")
        pending = lines.pop(0)
        yield from reversed(lines)
    yield pending


def read_audit(path, last_n=None):
    """The last ``last_n`` events (all when None), oldest first. Lines that are
    not JSON objects, such as one torn by a crash mid-write, are skipped."""
    if last_n is not None and last_n <= 0:
        return []
    events = []
    try:
        with open(path, "rb") as handle:
            for line in _lines_from_end(handle):
                if not line.strip():
                    continue
                try:
                    event = json.loads(line.decode("utf-8"))
                except ValueError:
                    continue
                if isinstance(event, dict):
                    events.append(event)
                    if last_n is not None and len(events) >= last_n:
                        break
    except FileNotFoundError:
        return []
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise AuditError("cannot read the audit log %s: %s; run with become: true" % (path, exc.strerror))
        raise AuditError("cannot read the audit log %s: %s" % (path, exc.strerror or exc))
    events.reverse()
    return events
