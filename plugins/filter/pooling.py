# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure filters over the PgBouncer pool rules in module_utils/pool_rules.py.

pool_settings  environment (+ facts) -> recommended settings     (docs: pool_settings.yml)
pool_errors    settings (+ facts)    -> list of problems, [] = ok (docs: pool_errors.yml)

and over the userlist's verifiers in module_utils/pgbouncer.py and scram.py:

generated_password_problem  password             -> why it is not a generated one, or None
pgbouncer_userlist_errors   users, iterations    -> users whose password cannot become a verifier
pgbouncer_userlist          users, current text  -> [name, verifier] lines of the auth_file
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.unitehub.platform.plugins.module_utils import pool_rules, scram


def _pgbouncer():
    """module_utils/pgbouncer.py, imported on use: it brings psycopg with the admin console's client,
    and Ansible imports every filter file of the collection whenever a task uses any of its
    filters (a deploy's preflight would pay a tenth of a second for psycopg)."""
    from ansible_collections.unitehub.platform.plugins.module_utils import pgbouncer
    return pgbouncer


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


def generated_password_problem(password):
    """Why ``password`` is not a generated random one (32+ letters, digits, - or _), or None."""
    return scram.generated_password_problem(password)


def _users(users):
    if not isinstance(users, list) or not all(isinstance(user, dict) and "name" in user for user in users):
        raise AnsibleFilterError("pgbouncer_userlist: the users must be a list of dicts with name and password")
    return [dict(user, generated=boolean(user.get("generated", False), strict=False),
                 console=boolean(user.get("console", False), strict=False), variable=user.get("variable", "users"))
            for user in users]


def pgbouncer_userlist_errors(users, iterations=scram.GENERATED_PASSWORD_ITERATIONS):
    """Every user whose password cannot go to PgBouncer's userlist as a verifier; [] when all can."""
    return _pgbouncer().userlist_errors(_users(users), iterations)


def pgbouncer_userlist(users, current_text="", iterations=scram.GENERATED_PASSWORD_ITERATIONS):
    """[name, secret] per user for PgBouncer's userlist: SCRAM verifiers, never a plain password."""
    errors = _pgbouncer().userlist_errors(_users(users), iterations)
    if errors:
        raise AnsibleFilterError("pgbouncer_userlist: %s" % "; ".join(errors))
    return _pgbouncer().userlist_secrets(_users(users), current_text, iterations)


class FilterModule(object):
    """PgBouncer pool settings and its userlist."""

    def filters(self):
        return {
            "pool_settings": pool_settings,
            "pool_errors": pool_errors,
            "generated_password_problem": generated_password_problem,
            "pgbouncer_userlist_errors": pgbouncer_userlist_errors,
            "pgbouncer_userlist": pgbouncer_userlist,
        }
