# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Point the load balancer at one slot, or leave it as it was.

The switch owns one directory (``upstream_dir``):

- ``blue.conf`` and ``green.conf``: the ``server`` lines of each slot's nginx
  upstream, the other slot listed as ``backup``. They do not depend on which slot
  is live, so they change only when the app hosts or ports change.
- ``live/<slot>``: the marker. The nginx site tests ``-f live/green`` on every
  request and proxies to the green upstream when it exists, to blue otherwise.

Moving traffic is a ``rename()`` of the marker. Every nginx worker sees it on its
next request, so there is no reload and no window in which old workers (old
configuration) and new workers (new configuration) route to different slots: the
version served moves once and never flaps back.

A switch is: refuse unless ``nginx -t`` passes -> rewrite the slot files only if
the servers changed (validated, reloaded) -> rename the marker -> verify through
the load balancer that the expected slot and version answer. Any failure puts the
marker (and files) back, so traffic never stays on an unverified slot.
"""

from __future__ import annotations

import os
import re
import time

from ansible_collections.unitehub.platform.plugins.module_utils.fileio import (
    atomic_write,
    fsync_dir,
    read_text,
    restore_file,
)
from ansible_collections.unitehub.platform.plugins.module_utils.nginx import (
    NginxConfigError,
    nginx_master_pid,
    nginx_test,
    reload_nginx,
    replace_validated,
)

SLOTS = ("blue", "green")
# The slot nginx routes to when no marker says otherwise (see the site template).
DEFAULT_SLOT = "blue"
MARKER_DIR = "live"
_HEADER = "# Managed by unitehub.platform.slot_switch. Do not edit: run playbooks/deploy.yml or rollback.yml.\n"
_SERVER = re.compile(r"^\[?[0-9A-Za-z.:_-]+\]?:\d{1,5}$")


class SwitchError(Exception):
    """The switch did not happen or was undone; the previous slot is live."""

    def __init__(self, message, details=None):
        super().__init__(message)
        self.details = details or {}


def other_slot(slot):
    return "green" if slot == "blue" else "blue"


def validate_servers(servers, role="servers"):
    """Return the list of problems with ``servers`` (host:port strings)."""
    problems = []
    if not servers:
        problems.append("%s is empty: give the host:port of the slot on every app host" % role)
    for server in servers or []:
        if not isinstance(server, str) or not _SERVER.match(server):
            problems.append("server %r is not host:port" % (server,))
            continue
        port = int(server.rsplit(":", 1)[1])
        if not 1 <= port <= 65535:
            problems.append("server %r has port %d outside 1..65535" % (server, port))
    return problems


def render_slot_upstream(slot, servers, backup_servers=()):
    """The ``server`` lines of ``slot``'s upstream.

    max_fails=0 keeps nginx from ever marking a server down, which would turn a
    brief blip into 502s for fail_timeout seconds. The other slot is a ``backup``:
    nginx sends a request there only when the live slot refused or dropped it, so a
    crash of the new slot inside the stability window costs no request while the
    revert is on its way.
    """
    lines = [_HEADER, "# slot: %s\n" % slot]
    lines.extend("server %s max_fails=0;\n" % server for server in servers)
    lines.extend("server %s backup max_fails=0;\n" % server for server in backup_servers)
    return "".join(lines)


def render_upstreams(slot, servers, other_servers):
    """{slot: text} for both slots, given the servers of ``slot`` and of the other one."""
    other = other_slot(slot)
    return {slot: render_slot_upstream(slot, servers, other_servers),
            other: render_slot_upstream(other, other_servers, servers)}


def upstream_path(upstream_dir, slot):
    return os.path.join(upstream_dir, "%s.conf" % slot)


def marker_path(upstream_dir, slot):
    return os.path.join(upstream_dir, MARKER_DIR, slot)


def current_slot(upstream_dir):
    """The slot nginx routes to, read the way the site template reads it; None
    when no marker exists yet (nginx then uses DEFAULT_SLOT)."""
    if os.path.exists(marker_path(upstream_dir, "green")):
        return "green"
    if os.path.exists(marker_path(upstream_dir, "blue")):
        return "blue"
    return None


def set_live_marker(upstream_dir, slot):
    """Make ``slot`` the live one with a single atomic step.

    An existing marker is renamed, so at every instant exactly one of them exists
    and each request sees the old slot or the new one. The directory is synced
    so the choice survives a power cut.
    """
    target = marker_path(upstream_dir, slot)
    other = marker_path(upstream_dir, other_slot(slot))
    if os.path.exists(other):
        os.rename(other, target)
        fsync_dir(os.path.dirname(target))
    elif not os.path.exists(target):
        atomic_write(target, "Traffic goes to the %s slot. Renamed by unitehub.platform.slot_switch.\n" % slot)


def describe(live_slot, files):
    """One text for --diff: the live slot, then each slot's upstream file."""
    parts = ["# live slot: %s\n" % (live_slot or "none (nginx uses %s)" % DEFAULT_SLOT)]
    for slot in SLOTS:
        parts.append("\n# %s.conf\n%s" % (slot, files.get(slot) or "(missing)\n"))
    return "".join(parts)


def wait_for_slot(fetch, expect_slot, expect_version, timeout, consecutive, clock=time.monotonic, sleep=time.sleep):
    """Poll ``fetch()`` -> (slot, version, error) until ``consecutive`` answers in a
    row come from the expected slot and version. Returns (seconds to the first
    matching answer, last observation); raises SwitchError on the deadline."""
    start = clock()
    first_match = None
    streak = 0
    last = None
    while True:
        slot, version, error = fetch()
        last = {"slot": slot, "version": version, "error": error}
        matched = error is None and slot == expect_slot and (expect_version is None or version == expect_version)
        if matched:
            if first_match is None:
                first_match = clock() - start
            streak += 1
            if streak >= consecutive:
                return first_match, last
        else:
            streak = 0
        if clock() - start > timeout:
            raise SwitchError(
                "the load balancer did not answer from slot %s%s within %.1f s (last answer: %s)"
                % (expect_slot, " version %s" % expect_version if expect_version else "", timeout, _describe(last)),
                {"last": last},
            )
        sleep(0.02)


def _describe(observation):
    if observation["error"]:
        return observation["error"]
    return "slot %s, version %s" % (observation["slot"], observation["version"])


def switch(upstream_dir, slot, servers, other_servers, fetch, expect_version=None, verify_timeout=10.0,
           consecutive=3, nginx_bin="nginx", pidfile="/run/nginx.pid", check_mode=False):
    """Route the load balancer to ``servers`` of ``slot`` and prove it through ``fetch``.

    ``other_servers`` are the other slot's: its own upstream, and this slot's backup.
    Returns a dict: changed, previous_slot, slot, before, after, switch_seconds, reloaded.
    """
    if slot not in SLOTS:
        raise SwitchError("slot %r is not one of %s" % (slot, ", ".join(SLOTS)))
    problems = validate_servers(servers) + validate_servers(other_servers, "backup_servers")
    problems.extend("server %s is in both slots" % server for server in sorted(set(servers) & set(other_servers)))
    if problems:
        raise SwitchError("; ".join(problems))

    previous_slot = current_slot(upstream_dir)
    previous_files = {name: read_text(upstream_path(upstream_dir, name)) for name in SLOTS}
    wanted_files = render_upstreams(slot, servers, other_servers)
    files_changed = previous_files != wanted_files
    result = {
        "changed": files_changed or previous_slot != slot,
        "previous_slot": previous_slot,
        "slot": slot,
        "before": describe(previous_slot, previous_files),
        "after": describe(slot, wanted_files),
        "switch_seconds": 0.0,
        "reloaded": False,
    }
    if check_mode:
        return result

    if result["changed"]:
        _refuse_unless_nginx_is_sound(slot, nginx_bin, pidfile)
    if files_changed:
        # The marker still names the live slot, so old and new workers agree on
        # where traffic goes while this reload rolls over.
        _install_files(upstream_dir, wanted_files, previous_files, slot, nginx_bin)
        result["reloaded"] = _reload_or_restore(upstream_dir, previous_files, slot, nginx_bin, pidfile)
    if previous_slot != slot:
        set_live_marker(upstream_dir, slot)
    try:
        result["switch_seconds"], result["verified"] = wait_for_slot(
            fetch, slot, expect_version, verify_timeout, consecutive)
    except SwitchError as exc:
        if result["changed"]:
            _undo(upstream_dir, previous_slot, previous_files if files_changed else None, nginx_bin, pidfile)
            raise SwitchError("switch to %s failed and was undone: %s" % (slot, exc), exc.details)
        raise
    return result


def _refuse_unless_nginx_is_sound(slot, nginx_bin, pidfile):
    """A marker only routes traffic through a running nginx whose configuration
    holds; a broken one on disk would also fail the next reload or restart."""
    if nginx_master_pid(pidfile) is None:
        raise SwitchError("nginx is not running (no live master pid in %s): start it, then switch" % pidfile)
    ok, output = nginx_test(nginx_bin)
    if not ok:
        raise SwitchError("switch to %s refused: nginx -t fails on the current configuration; fix it first" % slot,
                          {"nginx_output": output})


def _install_files(upstream_dir, wanted_files, previous_files, slot, nginx_bin):
    written = []
    try:
        for name in SLOTS:
            replace_validated(upstream_path(upstream_dir, name), wanted_files[name], nginx_bin=nginx_bin)
            written.append(name)
    except NginxConfigError as exc:
        _restore_files(upstream_dir, {name: previous_files[name] for name in written})
        raise SwitchError("switch to %s refused: %s" % (slot, exc), {"nginx_output": exc.output})


def _reload_or_restore(upstream_dir, previous_files, slot, nginx_bin, pidfile):
    try:
        if reload_nginx(nginx_bin, pidfile):
            return True
        error = SwitchError("nginx stopped during the switch (no live master pid in %s): start it, then switch" % pidfile)
    except NginxConfigError as exc:
        error = SwitchError("switch to %s failed: %s" % (slot, exc), {"nginx_output": exc.output})
    _restore_files(upstream_dir, previous_files)
    raise error


def _restore_files(upstream_dir, files):
    for name, text in files.items():
        restore_file(upstream_path(upstream_dir, name), text)


def _undo(upstream_dir, previous_slot, previous_files, nginx_bin, pidfile):
    if previous_slot is None:
        for name in SLOTS:
            if os.path.exists(marker_path(upstream_dir, name)):
                os.unlink(marker_path(upstream_dir, name))
    else:
        set_live_marker(upstream_dir, previous_slot)
    if previous_files is not None:
        _restore_files(upstream_dir, previous_files)
        reload_nginx(nginx_bin, pidfile)
