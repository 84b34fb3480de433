# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Point the load balancer's upstream at one slot, or leave it as it was.

The upstream include file is the only thing the switch owns. A switch is:
render -> replace_validated (nginx -t, restore on failure) -> graceful reload ->
verify through the load balancer that the expected slot and version answer.
Any failure after the file changed puts the previous file back and reloads, so
traffic never stays on an unverified slot.
"""

from __future__ import annotations

import re
import time

from ansible_collections.unitehub.platform.plugins.module_utils.fileio import read_text
from ansible_collections.unitehub.platform.plugins.module_utils.nginx import (
    NginxConfigError,
    reload_nginx,
    replace_validated,
)

SLOTS = ("blue", "green")
_HEADER = "# Managed by unitehub.platform.slot_switch. Do not edit: run playbooks/deploy.yml or rollback.yml.\n"
_SLOT_LINE = re.compile(r"^# slot: (\S+)$", re.MULTILINE)
_SERVER = re.compile(r"^\[?[0-9A-Za-z.:_-]+\]?:\d{1,5}$")


class SwitchError(Exception):
    """The switch did not happen or was undone; the previous upstream is live."""

    def __init__(self, message, details=None):
        super().__init__(message)
        self.details = details or {}


def validate_servers(servers):
    """Return the list of problems with ``servers`` (host:port strings)."""
    problems = []
    if not servers:
        problems.append("servers is empty: give at least one host:port of the target slot")
    for server in servers or []:
        if not isinstance(server, str) or not _SERVER.match(server):
            problems.append("server %r is not host:port" % (server,))
            continue
        port = int(server.rsplit(":", 1)[1])
        if not 1 <= port <= 65535:
            problems.append("server %r has port %d outside 1..65535" % (server, port))
    return problems


def render_upstream(slot, servers, backup_servers=()):
    """The include file's text: one ``server`` line per app host of the slot.

    max_fails=0 keeps nginx from ever marking a server of the live slot down,
    which would turn a brief blip into 502s for fail_timeout seconds. The other
    slot, when given, is a ``backup``: nginx sends a request there only when the
    live slot refused or dropped it, so a crash of the new slot inside the
    stability window costs no request while the revert is on its way.
    """
    lines = [_HEADER, "# slot: %s\n" % slot]
    lines.extend("server %s max_fails=0;\n" % server for server in servers)
    lines.extend("server %s backup max_fails=0;\n" % server for server in backup_servers)
    return "".join(lines)


def current_slot(path):
    """The slot the include file points at, or None when unknown."""
    text = read_text(path)
    if text is None:
        return None
    match = _SLOT_LINE.search(text)
    return match.group(1) if match else None


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
        sleep(0.05)


def _describe(observation):
    if observation["error"]:
        return observation["error"]
    return "slot %s, version %s" % (observation["slot"], observation["version"])


def switch(path, slot, servers, fetch, expect_version=None, verify_timeout=10.0, consecutive=3,
           nginx_bin="nginx", pidfile="/run/nginx.pid", check_mode=False, backup_servers=()):
    """Make ``path`` route to ``servers`` of ``slot`` and prove it through ``fetch``.

    Returns a dict: changed, previous_slot, slot, before, after, switch_seconds.
    """
    if slot not in SLOTS:
        raise SwitchError("slot %r is not one of %s" % (slot, ", ".join(SLOTS)))
    problems = validate_servers(servers)
    if backup_servers:
        problems.extend(validate_servers(backup_servers))
        problems.extend("server %s is both live and backup" % server for server in set(servers) & set(backup_servers))
    if problems:
        raise SwitchError("; ".join(problems))

    previous_text = read_text(path)
    previous_slot = current_slot(path)
    content = render_upstream(slot, servers, backup_servers)
    result = {
        "changed": previous_text != content,
        "previous_slot": previous_slot,
        "slot": slot,
        "before": previous_text or "",
        "after": content,
        "switch_seconds": 0.0,
        "reloaded": False,
    }
    if check_mode:
        return result

    if result["changed"]:
        try:
            replace_validated(path, content, nginx_bin=nginx_bin)
        except NginxConfigError as exc:
            raise SwitchError("switch to %s refused: %s" % (slot, exc), {"nginx_output": exc.output})
        try:
            result["reloaded"] = reload_nginx(nginx_bin, pidfile)
            if not result["reloaded"]:
                raise SwitchError("nginx is not running (no live master pid in %s): start it, then switch" % pidfile)
            result["switch_seconds"], result["verified"] = wait_for_slot(
                fetch, slot, expect_version, verify_timeout, consecutive)
        except (SwitchError, NginxConfigError) as exc:
            _restore_previous(path, previous_text, nginx_bin, pidfile)
            details = getattr(exc, "details", {}) or {"nginx_output": getattr(exc, "output", "")}
            raise SwitchError("switch to %s failed and was undone: %s" % (slot, exc), details)
    else:
        # Already routed there: still prove it, so a re-run reports the truth.
        result["switch_seconds"], result["verified"] = wait_for_slot(
            fetch, slot, expect_version, verify_timeout, consecutive)
    return result


def _restore_previous(path, previous_text, nginx_bin, pidfile):
    if previous_text is None:
        return
    replace_validated(path, previous_text, nginx_bin=nginx_bin)
    reload_nginx(nginx_bin, pidfile)
