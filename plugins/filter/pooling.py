# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure filters over the PgBouncer pool rules in module_utils/pool_rules.py.

pool_settings  environment (+ facts) -> recommended settings     (docs: pool_settings.yml)
pool_errors    settings (+ facts)    -> list of problems, [] = ok (docs: pool_errors.yml)
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.unitehub.platform.plugins.module_utils import pool_rules


def pool_settings(environment, facts=None):
    """Recommended PgBouncer pool settings for ``environment``, shaped by ``facts``."""
    try:
        return pool_rules.recommended_settings(environment, facts)
    except ValueError as exc:
        raise AnsibleFilterError("pool_settings: %s: use development, staging or production, and facts as "
                                 "documented in ansible-doc -t filter unitehub.platform.pool_settings" % exc)


def pool_errors(settings, facts=None, allow_insecure_auth=False):
    """Every problem with ``settings``, each naming the setting and the fix; [] when they are good."""
    return pool_rules.pool_errors(settings, facts, allow_insecure_auth)


class FilterModule(object):
    """PgBouncer pool settings."""

    def filters(self):
        return {
            "pool_settings": pool_settings,
            "pool_errors": pool_errors,
        }
