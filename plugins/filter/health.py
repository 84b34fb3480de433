# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for application/health+json documents.

The documentation of each filter is in the ``<filter>.yml`` file beside this one.
"""

from __future__ import annotations

import json

from ansible.errors import AnsibleFilterError

from ansible_collections.unitehub.platform.plugins.module_utils import health_report
from ansible_collections.unitehub.platform.plugins.module_utils.health_format import (
    HealthFormatError,
    failing_checks,
    http_status_for,
)


def health_http_status(status):
    """HTTP status code for a health status.

    ``pass`` -> 200, ``warn`` -> 206, ``fail`` -> 503; the aliases ``ok``/``up``
    and ``down``/``error`` map like pass and fail. Any other value is an error
    that names it.
    """
    try:
        return http_status_for(status)
    except HealthFormatError as exc:
        raise AnsibleFilterError("health_http_status: %s" % exc) from None


def health_failing(document, include_warn=False):
    """The failing checks of a health document.

    ``document`` is a dict or its JSON text. Returns a list of
    ``{name, status, output, observedValue, observedUnit}``; with
    ``include_warn=true`` checks that warn are listed too. A malformed document
    is an error saying what is wrong.
    """
    if isinstance(document, (str, bytes, bytearray)):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise AnsibleFilterError("health_failing: input is not JSON (%s)" % exc) from None
    if not isinstance(include_warn, bool):
        raise AnsibleFilterError("health_failing: include_warn must be true or false, got %r" % (include_warn,))
    try:
        return failing_checks(document, include_warn=include_warn)
    except HealthFormatError as exc:
        raise AnsibleFilterError("health_failing: %s" % exc) from None


def health_slot_targets(slot_info, host, ports, path="/api/health/system", app_name="unitehub"):
    """health_probe targets for the running slots that app_slot_info reported."""
    if not isinstance(ports, dict):
        raise AnsibleFilterError("health_slot_targets: ports must map each slot to its port, got %r" % (ports,))
    return health_report.slot_targets(slot_info, host, ports, path, app_name)


def health_rows(reports, hosts):
    """One row per probed component of ``hosts``, plus a failing row for each host that could not tell."""
    if not isinstance(reports, dict):
        raise AnsibleFilterError("health_rows: reports must map each host to its report, got %r" % (reports,))
    return health_report.health_rows(reports, list(hosts))


def health_table(rows):
    """The rows of health_rows as aligned text lines under a header."""
    return health_report.health_table(rows)


class FilterModule:
    """Health document and health report filters."""

    def filters(self):
        return {
            "health_http_status": health_http_status,
            "health_failing": health_failing,
            "health_slot_targets": health_slot_targets,
            "health_rows": health_rows,
            "health_table": health_table,
        }
