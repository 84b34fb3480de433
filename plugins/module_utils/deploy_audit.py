# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy audit log: one JSON line per deploy, rollback, switch, failure,
automatic revert, broken lock, reconcile or deploy hook, appended with ``O_APPEND``
and fsynced.

No Ansible import: the callback plugin on the controller reuses the writer.
"""

from __future__ import annotations

import errno
import json
import math
import os

from ansible_collections.unitehub.platform.plugins.module_utils.clock import format_ts
from ansible_collections.unitehub.platform.plugins.module_utils.deploy_state import (
    DIR_MODE,
    FILE_MODE,
    DeployStateError,
)
from ansible_collections.unitehub.platform.plugins.module_utils.slots import SLOTS

AUDIT_ROOT = "/var/log/unitehub"
AUDIT_EVENTS = ("deploy", "rollback", "switch", "failure", "auto_revert", "lock_broken", "reconcile", "hook")
AUDIT_OUTCOMES = ("success", "failed")
# A hook event also names the hook, its exit code and its last output lines; other events leave them null.
AUDIT_FIELDS = (
    "ts", "event", "app", "slot", "from_slot", "version", "previous_version", "outcome",
    "reason", "run_id", "user", "duration_s", "phases", "source", "hook", "exit_code", "output",
)


def default_audit_log(app):
    """Each app's own audit log."""
    return os.path.join(AUDIT_ROOT, app, "deploy-audit.jsonl")


class AuditError(DeployStateError):
    """An audit event is malformed or the audit log cannot be written."""


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
    for key in ("ts", "app", "version", "previous_version", "reason", "run_id", "user", "source", "hook"):
        if not isinstance(event.get(key), (str, type(None))):
            raise AuditError("audit %s %r is not a string" % (key, event.get(key)))
    if event["event"] == "hook" and not event.get("hook"):
        raise AuditError("an audit hook event names its hook (field hook)")
    exit_code = event.get("exit_code")
    if exit_code is not None and (isinstance(exit_code, bool) or not isinstance(exit_code, int)):
        raise AuditError("audit exit_code %r is not a whole number" % (exit_code,))
    output = event.get("output")
    if output is not None and not (isinstance(output, list) and all(isinstance(line, str) for line in output)):
        raise AuditError("audit output %r is not a list of lines (strings)" % (output,))
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
