# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Point the load balancer at one slot, put traffic back, or leave it as it was.

The switch owns one directory (``upstream_dir``):

- ``blue.conf`` and ``green.conf``: the ``server`` lines of each slot's nginx
  upstream, the other slot listed as ``backup``. They do not depend on which slot
  is live, so they change only when the app hosts or ports change.
- ``slots.map``: which slot each upstream address belongs to. The site maps
  ``$upstream_addr`` (the server nginx actually reached, the last one after a
  retry) through it into the ``X-Upstream-Slot`` response header, so every answer
  says which slot served it, whatever the app sends.
- ``live/<slot>``: the marker. The nginx site tests ``-f live/green`` on every
  request and proxies to the green upstream when it exists, to blue otherwise. The
  marker is the truth of what is live: it is what nginx serves.

Moving traffic is a ``rename()`` of the marker. Every nginx worker sees it on its
next request, so there is no reload and no window in which old workers (old
configuration) and new workers (new configuration) route to different slots.

A switch: refuse unless nginx runs and ``nginx -t`` passes -> rewrite the files
only if the servers changed (validated, reloaded) -> rename the marker -> verify
through the load balancer that the answers come from the slot (``X-Upstream-Slot``,
so an answer from the backup never counts). Any failure, expected or not, puts the
marker (and the files) back.

A revert (``put_back``) only renames the marker. It needs neither ``nginx -t`` nor
a running nginx: traffic follows the marker as soon as nginx serves again.
"""

from __future__ import annotations

import http.client
import ipaddress
import math
import os
import re
import socket
import time

from ansible_collections.unitehub.platform.plugins.module_utils.direct_http import request
from ansible_collections.unitehub.platform.plugins.module_utils.fileio import (
    atomic_write,
    fsync_dir,
    read_text,
    restore_file,
)
from ansible_collections.unitehub.platform.plugins.module_utils.nginx import (
    CONFIG_LOCK,
    NginxConfigError,
    config_lock,
    nginx_master_pid,
    nginx_test,
    reload_nginx,
    replace_validated,
)
from ansible_collections.unitehub.platform.plugins.module_utils.slots import SLOTS, UPSTREAM_SLOT_HEADER, other_slot

# The slot nginx routes to when no marker says otherwise (see the site template).
DEFAULT_SLOT = "blue"
MARKER_DIR = "live"
MAP_FILE = "slots.map"
FILES = ("blue.conf", "green.conf", MAP_FILE)
_HEADER = "# Managed by unitehub.platform.slot_switch. Do not edit: run playbooks/deploy.yml or rollback.yml.\n"
_SERVER = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[0-9A-Za-z._-]+):(\d{1,5})")


class SwitchError(Exception):
    """The switch did not happen or was undone; ``details`` go into the module's result."""

    def __init__(self, message, details=None):
        super().__init__(message)
        self.details = details or {}


def validate_servers(servers, role="servers"):
    """Return the list of problems with ``servers`` (host:port strings)."""
    problems = []
    if not servers:
        problems.append("%s is empty: give the host:port of the slot on every app host" % role)
    for server in servers or []:
        match = _SERVER.fullmatch(server) if isinstance(server, str) else None
        if not match:
            problems.append("server %r is not host:port" % (server,))
            continue
        if not 1 <= int(match.group(2)) <= 65535:
            problems.append("server %r has port %s outside 1..65535" % (server, match.group(2)))
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


def _literal_address(server):
    """``server`` as nginx reports it in $upstream_addr when its host is an IP literal, else None."""
    host, port = server.rsplit(":", 1)
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return ("[%s]:%s" if address.version == 6 else "%s:%s") % (address.compressed, port)


def resolve_addresses(server, getaddrinfo=socket.getaddrinfo):
    """Every ``address:port`` nginx may report for ``server``: itself for an IP literal, else
    what the name resolves to here, on the load balancer, as nginx resolves it."""
    literal = _literal_address(server)
    if literal is not None:
        return [literal]
    host, port = server.rsplit(":", 1)
    try:
        infos = getaddrinfo(host, int(port), proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise SwitchError("cannot resolve the app host %r of server %s: %s" % (host, server, exc)) from None
    return sorted({_literal_address("%s:%s" % (info[4][0], port)) for info in infos})


def render_slot_map(addresses):
    """``slots.map``: one nginx map entry per upstream address, ``{slot: [address, ...]}``.

    $upstream_addr lists every server tried, comma-separated; the entry matches the
    last one, the server whose answer the client got.
    """
    lines = [_HEADER]
    for slot in SLOTS:
        for address in addresses[slot]:
            lines.append('"~(^|\\s)%s$" %s;\n' % (re.escape(address), slot))
    return "".join(lines)


def render_files(slot, servers, other_servers, resolve=lambda server: [server]):
    """{file name: text} of the directory for the servers of ``slot`` and of the other one."""
    other = other_slot(slot)
    by_slot = {slot: servers, other: other_servers}
    return {
        "%s.conf" % slot: render_slot_upstream(slot, servers, other_servers),
        "%s.conf" % other: render_slot_upstream(other, other_servers, servers),
        MAP_FILE: render_slot_map({name: [address for server in by_slot[name] for address in resolve(server)]
                                   for name in SLOTS}),
    }


def file_path(upstream_dir, name):
    return os.path.join(upstream_dir, name)


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


def _remove_markers(upstream_dir):
    for name in SLOTS:
        if os.path.exists(marker_path(upstream_dir, name)):
            os.unlink(marker_path(upstream_dir, name))


def describe(live_slot, files):
    """One text for --diff: the live slot, then each file."""
    parts = ["# live slot: %s\n" % (live_slot or "none (nginx uses %s)" % DEFAULT_SLOT)]
    for name in FILES:
        parts.append("\n# %s\n%s" % (name, files.get(name) or "(missing)\n"))
    return "".join(parts)


def wait_for_slot(fetch, expect_slot, timeout, consecutive, clock=time.monotonic, sleep=time.sleep):
    """Poll ``fetch()`` -> (slot, error) until ``consecutive`` answers in a row come
    from ``expect_slot``. Returns (seconds to the first such answer, last
    observation); raises SwitchError on the deadline."""
    start = clock()
    first_match = None
    streak = 0
    while True:
        slot, error = fetch()
        last = {"slot": slot, "error": error}
        if error is None and slot == expect_slot:
            if first_match is None:
                first_match = clock() - start
            streak += 1
            if streak >= consecutive:
                return first_match, last
        else:
            streak = 0
        if clock() - start > timeout:
            raise SwitchError("the load balancer did not answer from slot %s within %.1f s (last answer: %s)"
                              % (expect_slot, timeout, _describe(last)), {"last": last})
        sleep(0.02)


def make_fetch(url, timeout=2.0, ca_path=None, validate_certs=True):
    """One GET through the load balancer -> (slot that answered, error).

    Proxies from the environment are not used: the answer must come from the
    load balancer that ``url`` names.
    """
    def fetch():
        try:
            response = request(url, timeout=timeout, max_bytes=65536, agent="unitehub.platform.slot_switch",
                               ca_path=ca_path, validate_certs=validate_certs)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return None, "%s: %s" % (url, exc)
        slot = response.headers.get(UPSTREAM_SLOT_HEADER) or None
        return slot, None if 200 <= response.status < 300 else "HTTP %d" % response.status
    return fetch


def _describe(observation):
    if observation["error"]:
        return observation["error"]
    if observation["slot"] is None:
        return "no %s header; is the site the collection's (unitehub.platform.nginx)?" % UPSTREAM_SLOT_HEADER
    return "from slot %s" % observation["slot"]


def _check_request(slot, servers, other_servers, timeout, consecutive):
    if slot not in SLOTS:
        raise SwitchError("slot %r is not one of %s" % (slot, ", ".join(SLOTS)))
    problems = validate_servers(servers) + validate_servers(other_servers, "backup_servers")
    problems.extend("server %s is in both slots" % server for server in sorted(set(servers) & set(other_servers)))
    for name, value, low in (("timeout", timeout, 0), ("verify_consecutive", consecutive, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < low:
            problems.append("%s %r must be a finite number of at least %s" % (name, value, low))
    if problems:
        raise SwitchError("; ".join(problems))


def switch(upstream_dir, slot, servers, other_servers, fetch, timeout=10.0, consecutive=3, nginx_bin="nginx",
           pidfile="/run/nginx.pid", check_mode=False, resolve=resolve_addresses, lock_path=CONFIG_LOCK):
    """Route the load balancer to ``servers`` of ``slot`` and prove it through ``fetch``.

    ``other_servers`` are the other slot's: its own upstream, and this slot's backup.
    Returns a dict: changed, previous_slot, slot, before, after, switch_seconds, reloaded,
    verified.
    """
    _check_request(slot, servers, other_servers, timeout, consecutive)
    previous_slot = current_slot(upstream_dir)
    previous_files = {name: read_text(file_path(upstream_dir, name)) for name in FILES}
    wanted_files = render_files(slot, servers, other_servers, resolve)
    files_changed = previous_files != wanted_files
    result = _planned(previous_slot, slot, previous_files, wanted_files)
    if check_mode:
        return result

    if result["changed"]:
        _refuse_unless_nginx_is_sound(slot, nginx_bin, pidfile)
    try:
        if files_changed:
            # The marker still names the live slot, so old and new workers agree on
            # where traffic goes while this reload rolls over.
            with config_lock(lock_path):
                _install_files(upstream_dir, wanted_files, previous_files, slot, nginx_bin)
                result["reloaded"] = _reload(slot, nginx_bin, pidfile)
        if previous_slot != slot:
            set_live_marker(upstream_dir, slot)
        result["switch_seconds"], result["verified"] = wait_for_slot(fetch, slot, timeout, consecutive)
    except Exception as exc:  # whatever went wrong, traffic must not stay on an unverified slot
        if not result["changed"]:
            raise
        undo_error = _undo(upstream_dir, previous_slot, previous_files if files_changed else None, nginx_bin,
                           pidfile, lock_path)
        details = dict(getattr(exc, "details", {}))
        cause = str(exc) if isinstance(exc, SwitchError) else "%s: %s" % (type(exc).__name__, exc)
        if undo_error:
            details["undo_error"] = undo_error
            raise SwitchError("switch to %s failed (%s) and undoing it failed too (%s); check %s"
                              % (slot, cause, undo_error, upstream_dir), details) from None
        raise SwitchError("switch to %s failed and was undone: %s" % (slot, cause), details) from None
    return result


def put_back(upstream_dir, slot, fetch, timeout=10.0, consecutive=3, pidfile="/run/nginx.pid", check_mode=False):
    """Move the marker back to ``slot``: the revert, which must work whatever state nginx is in.

    Nothing is validated or reloaded, so a failing ``nginx -t`` or a stopped nginx
    cannot keep traffic on a failing slot. With nginx running, the answers are then
    verified; a failed verification is reported, but the marker stays: the slot it
    left is the one that failed.
    """
    if slot not in SLOTS:
        raise SwitchError("slot %r is not one of %s" % (slot, ", ".join(SLOTS)))
    files = {name: read_text(file_path(upstream_dir, name)) for name in FILES}
    result = _planned(current_slot(upstream_dir), slot, files, files)
    if check_mode:
        return result
    try:
        set_live_marker(upstream_dir, result["slot"])
    except OSError as exc:
        raise SwitchError("could not move the live-slot marker in %s back to %s: %s"
                          % (upstream_dir, slot, exc.strerror or exc)) from None
    if nginx_master_pid(pidfile) is None:
        result["warning"] = ("nginx is not running (no live master pid in %s); traffic goes to %s as soon as "
                             "it is started" % (pidfile, slot))
        return result
    try:
        result["switch_seconds"], result["verified"] = wait_for_slot(fetch, slot, timeout, consecutive)
    except SwitchError as exc:
        raise SwitchError("traffic was put back on %s, but the load balancer does not answer from it: %s"
                          % (slot, exc), exc.details) from None
    return result


def _planned(previous_slot, slot, previous_files, wanted_files):
    """The result of a switch or revert before anything moved (what check mode reports)."""
    return {
        "changed": previous_files != wanted_files or previous_slot != slot,
        "previous_slot": previous_slot,
        "slot": slot,
        "before": describe(previous_slot, previous_files),
        "after": describe(slot, wanted_files),
        "switch_seconds": 0.0,
        "reloaded": False,
        "verified": None,
    }


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
        for name in FILES:
            replace_validated(file_path(upstream_dir, name), wanted_files[name], nginx_bin=nginx_bin)
            written.append(name)
    except NginxConfigError as exc:
        _restore_files(upstream_dir, {name: previous_files[name] for name in written})
        raise SwitchError("switch to %s refused: %s" % (slot, exc), {"nginx_output": exc.output}) from None


def _reload(slot, nginx_bin, pidfile):
    try:
        if reload_nginx(nginx_bin, pidfile):
            return True
    except NginxConfigError as exc:
        raise SwitchError("switch to %s failed: %s" % (slot, exc), {"nginx_output": exc.output}) from None
    raise SwitchError("nginx stopped during the switch (no live master pid in %s): start it, then switch" % pidfile)


def _restore_files(upstream_dir, files):
    for name, text in files.items():
        restore_file(file_path(upstream_dir, name), text)


def _undo(upstream_dir, previous_slot, previous_files, nginx_bin, pidfile, lock_path):
    """Put the marker (and files) back; returns what went wrong, or None."""
    try:
        if previous_slot is None:
            _remove_markers(upstream_dir)
        else:
            set_live_marker(upstream_dir, previous_slot)
        if previous_files is not None:
            # Under the lock, as they were written: the reload must not load another writer's half-done change.
            with config_lock(lock_path):
                _restore_files(upstream_dir, previous_files)
                reload_nginx(nginx_bin, pidfile)
    except (OSError, NginxConfigError) as exc:
        return "%s: %s" % (type(exc).__name__, exc)
    return None
