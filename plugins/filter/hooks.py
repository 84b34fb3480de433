# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The check of a deploy's hook settings, over the rules in module_utils/hook_settings.py.

hook_errors  hooks -> list of problems, [] = ok  (docs: hook_errors.yml)
"""

from __future__ import annotations

from ansible_collections.unitehub.platform.plugins.module_utils import hook_settings


def hook_errors(hooks, prefix="blue_green_hooks"):
    """Every problem with the hook settings, each naming the setting and the fix; [] when they are good."""
    return hook_settings.hook_errors(hooks, prefix)


class FilterModule(object):
    """Deploy hook settings."""

    def filters(self):
        return {"hook_errors": hook_errors}
