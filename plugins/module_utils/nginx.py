# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validated replacement of nginx configuration files.

Every file the collection owns under /etc/nginx goes through ``replace_validated``:
the candidate is swapped in atomically, the whole configuration is checked with
``nginx -t``, and on any failure the previous file is put back before anyone
reloads. The live configuration therefore never changes unless the candidate
passed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess

from ansible_collections.unitehub.platform.plugins.module_utils.fileio import atomic_write, flocked, read_text, restore_file
from ansible_collections.unitehub.platform.plugins.module_utils.processes import running_pid


# One writer of nginx's configuration at a time on a host: the switches of several apps, and
# the nginx role, each write a file, run nginx -t on the whole configuration and reload, and
# two of them interleaved would test (or load) each other's half-written change.
CONFIG_LOCK = "/run/unitehub/nginx-config.lock"


@contextlib.contextmanager
def config_lock(path=CONFIG_LOCK):
    """Hold the host's nginx configuration lock (an flock, released when the process dies)."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    with flocked(path, os.O_RDWR | os.O_CREAT):
        yield


class NginxConfigError(Exception):
    """The candidate configuration was refused; the previous file is in place."""

    def __init__(self, message, output=""):
        super().__init__(message)
        self.output = output


def nginx_test(nginx_bin="nginx"):
    """Run ``nginx -t`` on the whole configuration. Returns (ok, output)."""
    try:
        proc = subprocess.run([nginx_bin, "-t"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, "could not run %s -t: %s" % (nginx_bin, exc)
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


def nginx_master_pid(pidfile="/run/nginx.pid"):
    """The running master's pid, or None when nginx is not running."""
    return running_pid(pidfile)


def reload_nginx(nginx_bin="nginx", pidfile="/run/nginx.pid"):
    """Graceful reload: new workers take the new configuration, old workers
    finish their in-flight requests. A stopped nginx is left stopped so the
    service layer stays in charge of starting it."""
    if nginx_master_pid(pidfile) is None:
        return False
    try:
        proc = subprocess.run([nginx_bin, "-s", "reload"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NginxConfigError("could not run %s -s reload: %s" % (nginx_bin, exc)) from None
    if proc.returncode != 0:
        raise NginxConfigError("nginx -s reload failed", (proc.stdout + proc.stderr).strip())
    return True


def replace_validated(path, content, mode=0o644, nginx_bin="nginx", check_mode=False):
    """Install ``content`` at ``path`` only if nginx accepts the result.

    Returns a dict with ``changed``, ``before``, ``after`` and ``nginx_output``
    (what ``nginx -t`` printed; empty when it did not run). Raises
    NginxConfigError, with the previous file restored, when ``nginx -t`` fails.
    """
    previous = read_text(path)
    result = {"changed": previous != content, "before": previous or "", "after": content, "nginx_output": ""}
    if not result["changed"] or check_mode:
        return result
    atomic_write(path, content, mode)
    ok, output = nginx_test(nginx_bin)
    if not ok:
        restore_file(path, previous, mode)
        raise NginxConfigError(
            "nginx -t rejected the configuration with %s in place; the previous file was restored" % path,
            output,
        )
    result["nginx_output"] = output
    return result
