# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Processes on this host: whether a pid runs, the pid a pid file names, and signalling
it only when it is the process it should be."""

from __future__ import annotations

import os
import signal

from ansible_collections.unitehub.platform.plugins.module_utils.fileio import read_text


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


def running_pid(pidfile):
    """The pid ``pidfile`` names when that process runs, else None (no file, no number, dead)."""
    try:
        text = read_text(pidfile)
    except OSError:
        return None
    if not text or not text.strip().isdigit():
        return None
    pid = int(text.strip())
    return pid if pid_alive(pid) else None


class PidError(Exception):
    """A pid file does not name the process it should; the message says why."""


def _status_uids(pid, proc):
    """(real uid, effective uid) of ``pid`` from /proc/<pid>/status."""
    for line in (read_text("%s/%d/status" % (proc, pid)) or "").splitlines():
        if line.startswith("Uid:"):
            real, effective = line.split()[1:3]
            return int(real), int(effective)
    raise PidError("process %d has no Uid line in %s/%d/status" % (pid, proc, pid))


def _executable_name(pid, proc, comm):
    """The basename of the process's executable; its command name where /proc hides the
    executable (reading another user's exe link needs CAP_SYS_PTRACE, which containers drop)."""
    try:
        target = os.readlink("%s/%d/exe" % (proc, pid))
    except PermissionError:
        return comm
    if target.endswith(" (deleted)"):  # the binary was replaced by an upgrade while it runs
        target = target[:-len(" (deleted)")]
    return os.path.basename(target)


def _pid_in(pidfile):
    try:
        text = read_text(pidfile)
    except OSError as exc:
        raise PidError("cannot read the pid file %s: %s" % (pidfile, exc))
    if text is None:
        raise PidError("the pid file %s does not exist: the process is not running" % pidfile)
    if not text.strip().isdigit() or int(text.strip()) <= 1:
        raise PidError("the pid file %s holds %r, not a process id" % (pidfile, text[:40]))
    return int(text.strip())


def _check_process(pid, pidfile, name, uid, proc):
    try:
        comm = (read_text("%s/%d/comm" % (proc, pid)) or "").strip()
        executable = _executable_name(pid, proc, comm)
        uids = _status_uids(pid, proc)
    except FileNotFoundError:
        raise PidError("the pid file %s names %d, which is not running" % (pidfile, pid))
    except OSError as exc:
        raise PidError("cannot inspect process %d named by %s: %s" % (pid, pidfile, exc))
    if comm != name or executable != name:
        raise PidError("the pid file %s names %d, which is %r (%s), not %s: refusing to signal it"
                       % (pidfile, pid, comm, executable, name))
    if uids != (uid, uid):
        raise PidError("the pid file %s names %d, a %s run by uid %d (effective %d), not by uid %d: refusing to "
                       "signal it" % (pidfile, pid, name, uids[0], uids[1], uid))


def checked_pid(pidfile, name, uid, proc="/proc"):
    """The pid ``pidfile`` names, when it is a running ``name`` process run by ``uid``.

    A pid file is only as trustworthy as its directory: whoever can write it can
    point it at any process. So the pid must be a process whose command name and
    executable are ``name`` and whose real and effective uid are ``uid``;
    anything else raises PidError saying what the process is instead.
    """
    pid = _pid_in(pidfile)
    _check_process(pid, pidfile, name, uid, proc)
    return pid


def signal_checked_pid(pidfile, name, uid, signum, proc="/proc"):
    """Send ``signum`` to the process ``checked_pid`` accepts; return its pid.

    The process is pinned with a pidfd before it is checked, so a pid reused
    between the check and the signal receives nothing (the signal fails instead).
    """
    pid = _pid_in(pidfile)
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise PidError("the pid file %s names %d, which is not running" % (pidfile, pid))
    except (AttributeError, OSError):  # a kernel or Python without pidfds
        pidfd = None
    try:
        _check_process(pid, pidfile, name, uid, proc)
        if pidfd is None:
            os.kill(pid, signum)
        else:
            signal.pidfd_send_signal(pidfd, signum)
    except ProcessLookupError:
        raise PidError("process %d named by %s ended before it could be signalled" % (pid, pidfile))
    finally:
        if pidfd is not None:
            os.close(pidfd)
    return pid
