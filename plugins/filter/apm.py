# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure filters over the APM rules in module_utils/apm.py.

apm_errors  settings -> list of problems, [] = ok          (docs: apm_errors.yml)
apm_env     settings -> {"env": {...}, "secret_env": {...}} (docs: apm_env.yml)
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.unitehub.platform.plugins.module_utils import apm


def apm_errors(settings, prefix=""):
    """Every problem with the APM ``settings``, each naming the setting and the fix; [] when they are good."""
    return apm.validate(settings, prefix)


def apm_env(settings, prefix=""):
    """The app container's environment for the APM ``settings``; a filter error listing every problem if bad."""
    try:
        return apm.apm_env(settings, prefix)
    except apm.ApmSettingsError as exc:
        raise AnsibleFilterError("apm_env: the APM settings have %d problem(s): %s"
                                 % (len(exc.errors), "; ".join(exc.errors)))


class FilterModule(object):
    """APM settings of the app."""

    def filters(self):
        return {
            "apm_errors": apm_errors,
            "apm_env": apm_env,
        }
