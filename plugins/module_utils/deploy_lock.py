# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy lock, ``<state_dir>/deploy.lock``: one deploy at a time.

Created with ``O_CREAT | O_EXCL`` so exactly one contender wins. It names its
holder: the *run* (``run_id`` + ``pid`` of the controller's ansible-playbook
process, both supplied by the caller, since a module process lives for one task
only), the human ``owner`` and the ``host`` where that pid lives. A lock older
than its ``ttl``, or whose pid is dead on this very host, is *stale*; stale locks
are broken only on request (``force``), and the break is reported.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import time
import uuid

from ansible_collections.unitehub.platform.plugins.module_utils.clock import format_age, format_ts, parse_ts
from ansible_collections.unitehub.platform.plugins.module_utils.deploy_state import (
    DIR_MODE,
    FILE_MODE,
    DeployStateError,
)
from ansible_collections.unitehub.platform.plugins.module_utils.fileio import flocked
from ansible_collections.unitehub.platform.plugins.module_utils.processes import pid_alive

LOCK_FILE = "deploy.lock"
DEFAULT_TTL = 1800
# Ages compare wall-clock times written by other processes (and, with several load
# balancers, other hosts): a lock is judged older than its ttl only past this margin, so a
# clock step or a skew between hosts cannot break a lock that is still held.
CLOCK_TOLERANCE = 60


class LockError(DeployStateError):
    """The lock cannot be taken or released as asked."""


class LockHeld(LockError):
    """Another run holds the deploy lock. ``holder`` describes it."""

    def __init__(self, message, holder):
        super().__init__(message)
        self.holder = holder


def lock_file(state_dir):
    return os.path.join(state_dir, LOCK_FILE)


def this_host():
    return socket.gethostname()


def _read_lock_raw(path):
    """(stat, bytes) of the lock file, or None when there is none."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LockError("cannot read the deploy lock %s: %s; it must be a regular file that this run can read "
                        "(remove whatever is there)" % (path, exc.strerror or exc)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise LockError("the deploy lock %s is not a regular file (it is a %s); remove it, it is not a lock "
                            "this collection took" % (path, "directory" if stat.S_ISDIR(st.st_mode) else "special file"))
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
    # Never negative: a lock taken "in the future" (a clock stepped back) is as young as can be.
    info["age_s"] = round(max(0.0, now - started), 1)
    info["stale"], info["stale_reason"] = False, None
    if info["age_s"] > info["ttl"] + CLOCK_TOLERANCE:
        info["stale"] = True
        info["stale_reason"] = "it is older than its ttl (age %s > ttl %ss + %ss for clock skew)" % (
            format_age(info["age_s"]), info["ttl"], CLOCK_TOLERANCE)
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


def _create_lock(path, doc):
    """Create the lock file if and only if it does not exist (atomic). A lock that could not
    be written whole (disk full) is removed again: an empty lock would block every deploy
    for its whole ttl, naming nobody."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        data = (json.dumps(doc, sort_keys=True) + "\n").encode("utf-8")
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
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
                # Breaking and releasing hold an flock on the state directory, so a breaker never
                # removes a lock that another run has just taken.
                with flocked(directory):
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
    with flocked(os.path.dirname(os.path.abspath(path))):
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
