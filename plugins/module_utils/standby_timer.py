# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The standby timer: a detached process on the load-balancer host that sleeps until a warm
standby's deadline, then runs the expiry (warm_standby.expire).

It is forked from the module that keeps the standby warm, so it needs nothing on disk (the
module's code is already loaded) and no init system. Its pid, start time and deadline are
recorded in ``<state_dir>/standby-timer.json``; a new timer of the same app ends the previous
one while it sleeps, and signals it only when the recorded pid still is that very process
(same start time). Where systemd runs, the process is also moved into a transient scope unit of its own
(``unitehub-<app>-standby-<pid>.scope``), so it outlives the session or service that ran
Ansible, and ``systemctl list-units 'unitehub-*'`` shows it.

Whatever happens to the timer (a reboot, a kill), the expiry is also the job of the next
deploy or rollback: the state's deadline, not the timer, decides whether a slot is warm.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

from ansible_collections.unitehub.platform.plugins.module_utils.clock import format_ts
from ansible_collections.unitehub.platform.plugins.module_utils.fileio import atomic_write, read_text

TIMER_FILE = "standby-timer.json"
# Long sleeps are cut so that a clock step moves the wake-up by at most this much.
MAX_NAP = 30.0


def timer_file(state_dir):
    return os.path.join(state_dir, TIMER_FILE)


def process_start(pid, proc="/proc"):
    """The start time of ``pid`` in clock ticks since boot (field 22 of /proc/<pid>/stat), or
    None when it does not run: with the pid, it names one process for good."""
    try:
        stat = read_text("%s/%d/stat" % (proc, pid))
    except OSError:
        return None
    if not stat:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def read_timer(state_dir):
    """The recorded timer, or None when there is none or the record is unreadable."""
    try:
        doc = json.loads(read_text(timer_file(state_dir)) or "null")
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def timer_running(record, proc="/proc"):
    """Whether the process a timer record names still runs (the same process, not a reused pid)."""
    return bool(record) and isinstance(record.get("pid"), int) and record.get("start") is not None \
        and process_start(record["pid"], proc) == record["start"]


def cancel(state_dir, proc="/proc"):
    """End the recorded timer if it still runs; returns its pid, else None. A timer that
    already fired, or a pid now used by another process, is left alone."""
    record = read_timer(state_dir)
    if not timer_running(record, proc):
        return None
    try:
        os.kill(record["pid"], signal.SIGTERM)
    except ProcessLookupError:
        return None
    return record["pid"]


def sleep_until(deadline, now=time.time, sleep=time.sleep):
    """Sleep until the wall-clock ``deadline`` (epoch s), in naps of at most MAX_NAP."""
    while True:
        left = deadline - now()
        if left <= 0:
            return
        sleep(min(left, MAX_NAP))


def systemd_running():
    return os.path.isdir("/run/systemd/system") and shutil.which("busctl") is not None


def scope_command(app, pid):
    """The busctl call that moves ``pid`` into a transient scope unit of its own."""
    return ["busctl", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager", "StartTransientUnit", "ssa(sv)a(sa(sv))",
            "unitehub-%s-standby-%d.scope" % (app, pid), "fail", "2",
            "Description", "s", "unitehub %s: stops the warm standby at its deadline" % app,
            "PIDs", "au", "1", str(pid), "0"]


def _detach():
    """In the child: a session of its own, and no descriptor of the module's (Ansible waits for
    the module's stdout to close)."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, 1024)


def start(state_dir, app, slot, until, work, run=subprocess.run):
    """Start the timer for the standby ``slot`` of ``app`` warm until ``until`` (epoch s): a
    detached process that sleeps to the deadline, then calls ``work()`` (which returns a
    sentence, recorded as the timer's ``outcome``). The previous timer of the app is ended.

    Returns the timer record: pid, start, slot, until, started_at, and ``systemd_unit`` (or
    the reason it has none)."""
    cancel(state_dir)
    reader, writer = os.pipe()  # the timer's pid, to the module
    go_reader, go_writer = os.pipe()  # closed by the module once the record names that pid
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked process, which never returns
        code = 1
        try:
            os.close(reader)
            os.close(go_writer)
            if os.fork():
                os._exit(0)
            os.write(writer, b"%d" % os.getpid())
            os.close(writer)
            os.read(go_reader, 1)
            _detach()
            sleep_until(until)
            # From here a new timer's SIGTERM waits: killed while it holds the deploy lock, this
            # process would leave a stale lock behind. The work judges the state afresh anyway.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            outcome = work()
            code = 0
        except BaseException as exc:  # the timer must end quietly, and say why
            outcome = "failed: %s: %s" % (type(exc).__name__, exc)
        try:
            record = read_timer(state_dir)
            if record and record.get("pid") == os.getpid():
                record.update(outcome=outcome, ended_at=format_ts())
                atomic_write(timer_file(state_dir), json.dumps(record, sort_keys=True) + "\n", mode=0o640)
        finally:
            os._exit(code)
    os.close(writer)
    os.close(go_reader)
    try:
        with os.fdopen(reader, "rb") as stream:
            pid = int(stream.read() or 0)
        os.waitpid(child, 0)
        if not pid:
            raise OSError("the standby timer could not be started")
        record = {"pid": pid, "start": process_start(pid), "app": app, "slot": slot, "until": format_ts(until),
                  "started_at": format_ts(), "systemd_unit": None, "outcome": None}
        if systemd_running():
            done = run(scope_command(app, pid), capture_output=True, text=True, timeout=10, check=False)
            record["systemd_unit"] = ("unitehub-%s-standby-%d.scope" % (app, pid) if done.returncode == 0
                                      else "none: %s" % (done.stderr.strip() or "busctl failed"))
        atomic_write(timer_file(state_dir), json.dumps(record, sort_keys=True) + "\n", mode=0o640)
    finally:
        os.close(go_writer)
    return record
