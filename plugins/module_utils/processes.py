# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Processes on this host: whether a pid runs, and the pid a pid file names."""

from __future__ import annotations

import os

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
