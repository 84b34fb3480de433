# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health report of a whole inventory, as ``playbooks/health.yml`` shows it.

Pure functions over what each host reported: the results of its health_probe
run and, on app hosts, what app_slot_info found. A host that could not tell
(unreachable, failed before probing, Docker not answering, no slot running)
becomes a failing row of its own, so silence never reads as health.
"""

from __future__ import annotations

from ansible_collections.unitehub.platform.plugins.module_utils.health_format import (
    FAIL,
    PASS,
    WARN,
    failing_from_checks,
)

ROW_FIELDS = ("component", "host", "status", "latency", "target", "failing", "msg")
TABLE_FORMAT = "%-12s %-16s %-7s %10s  %-48s %s"
TABLE_HEADER = ("COMPONENT", "HOST", "STATUS", "LATENCY", "TARGET", "FAILING")
SERVICE_GROUPS = ("lb", "cache", "db")


def slot_targets(slot_info, host, ports, path, app_name):
    """One http target per running slot container of ``slot_info`` (app_slot_info's result),
    probed on ``host`` at its port, watching its container."""
    targets = []
    for container in (slot_info or {}).get("containers") or []:
        slot = container.get("slot")
        if not container.get("running") or slot not in (ports or {}):
            continue
        targets.append({
            "name": "app-%s" % slot,
            "type": "http",
            "url": "http://%s:%s%s" % (host, ports[slot], path),
            "container": "%s-%s" % (app_name, slot),
            "expect": "pass_or_warn",
        })
    return targets


def _row(component, host, status, target="-", latency="-", failing="", msg=""):
    return dict(zip(ROW_FIELDS, (component, host, status, latency, target, failing, msg)))


def _probe_rows(host, results):
    rows = []
    for result in results:
        status = result.get("status") or FAIL
        not_passing = failing_from_checks(result.get("checks"), include_warn=(status == WARN))
        why = ", ".join(dict.fromkeys(entry["name"] for entry in not_passing))  # each check once, in document order
        latency = result.get("latency_ms")
        rows.append(_row(result.get("name"), host, status, result.get("target"),
                         "-" if latency is None else "%.1f ms" % latency,
                         "" if status == PASS else (why or result.get("error") or ""), result.get("msg") or ""))
    return rows


def host_rows(host, report):
    """The rows of one host. ``report`` holds ``groups`` (its group names), ``probe`` (the
    health_probe result, if it ran), ``slots`` (app_slot_info's result on an app host, if
    it ran) and ``app_name``."""
    groups = report.get("groups") or []
    probe = report.get("probe") or {}
    results = probe.get("target_results")
    rows = _probe_rows(host, results or [])
    if "app" in groups:
        slots = report.get("slots") or {}
        if not slots or slots.get("failed") or "containers" not in slots:
            why = (slots.get("msg") or "").strip().split("\n")[0] or "the host did not answer"
            rows.append(_row("app", host, FAIL, "app_slot_info", failing=why,
                             msg="cannot list the app containers on %s: %s" % (host, why)))
        elif not any(row["component"].startswith("app-") for row in rows):
            rows.append(_row("app", host, FAIL, failing="no slot running",
                             msg="no %s slot is running on %s" % (report.get("app_name") or "unitehub", host)))
    if results is None and any(group in groups for group in SERVICE_GROUPS):
        why = (probe.get("msg") or "").strip().split("\n")[0] or "no result"
        rows.append(_row("-", host, FAIL, failing=why, msg="%s did not report: %s" % (host, why)))
    return rows


def health_rows(reports, hosts):
    """Every row of the inventory, host by host in ``hosts`` order. ``reports`` maps a host
    to its report; a host missing from it reported nothing at all (it was unreachable)."""
    rows = []
    for host in hosts:
        report = reports.get(host) or {}
        rows.extend(host_rows(host, report) if report else
                    [_row("-", host, FAIL, failing="no result", msg="%s did not report: no result" % host)])
    return rows


def health_table(rows):
    """The rows as aligned text lines under a header."""
    lines = [TABLE_FORMAT % TABLE_HEADER]
    lines.extend((TABLE_FORMAT % tuple(row[key] for key in ROW_FIELDS[:6])).rstrip() for row in rows)
    return lines
