#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pool_validate
short_description: Validate PgBouncer pool settings, optionally against the live servers
version_added: 0.1.0
description:
  - Checks a dict of PgBouncer pool settings before it reaches C(pgbouncer.ini), with the rules of
    the collection's C(pooling) module utils, the same rules the
    P(unitehub.platform.pool_errors#filter) filter applies.
  - Type checks (text where a number belongs, booleans given as numbers), ranges, rules across
    settings (C(min_pool_size <= default_pool_size), C(server_lifetime >= server_idle_timeout),
    C(max_db_connections >= default_pool_size) when set) and, when the facts are known, whether the
    pools fit in PostgreSQL's C(max_connections) and whether this PgBouncer supports
    C(max_prepared_statements) (1.21 or later).
  - With I(postgres_host) it reads C(max_connections) and C(superuser_reserved_connections) from
    PostgreSQL; with I(admin_host) it reads C(SHOW VERSION) and C(SHOW DATABASES) from PgBouncer's
    admin console. Those facts are checked too.
  - Fails when any setting is wrong, with one message per problem, each naming the setting and the fix.
    Warnings (transaction-mode caveats, thin headroom) are returned and shown, never fatal.
  - Reads only. It changes nothing, on the host or on either server.
author:
  - unitehub platform team (@unitehub)
options:
  settings:
    description:
      - The pool settings, keyed as in C(pgbouncer.ini).
      - Known keys are C(pool_mode), C(default_pool_size), C(min_pool_size), C(reserve_pool_size),
        C(reserve_pool_timeout), C(max_client_conn), C(max_db_connections), C(max_user_connections),
        C(server_idle_timeout), C(server_lifetime), C(query_wait_timeout), C(server_connect_timeout),
        C(max_prepared_statements) and C(auth_type). An unknown key is an error.
      - A missing key or V(null) means PgBouncer's default. Numbers may be given as numeric text
        (V("20")); other text where a number belongs is an error.
    type: dict
    required: true
  environment:
    description: The environment whose recommended settings are returned in RV(recommended).
    type: str
    choices: [development, staging, production]
    default: production
  facts:
    description:
      - What is known about the servers without asking them.
      - Keys C(server_max_connections), C(superuser_reserved_connections), C(databases) (pooled databases,
        default 1), C(users) (users per database, default 1), C(pgbouncer_version), C(cores), C(spindles).
      - Facts read from the servers replace the same keys given here, except C(databases) and C(users),
        which describe the configuration being validated.
    type: dict
    default: {}
  postgres_host:
    description: PostgreSQL host (or Unix socket directory) to read C(max_connections) from. Omit to skip.
    type: str
  postgres_port:
    description: PostgreSQL port.
    type: int
    default: 5432
  postgres_user:
    description: PostgreSQL user; any user may run C(SHOW max_connections).
    type: str
    default: postgres
  postgres_password:
    description: Password of I(postgres_user).
    type: str
  postgres_dbname:
    description: Database to connect to on PostgreSQL.
    type: str
    default: postgres
  admin_host:
    description: Host of PgBouncer's admin console, to read its version and databases. Omit to skip.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - unitehub.platform.pgbouncer_admin
attributes:
  check_mode:
    support: full
    details: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - psycopg >= 3.1, only when I(postgres_host) or I(admin_host) is given
seealso:
  - module: unitehub.platform.pool_info
  - module: unitehub.platform.pool_reload
  - plugin: unitehub.platform.pool_errors
    plugin_type: filter
  - plugin: unitehub.platform.pool_settings
    plugin_type: filter
  - name: PgBouncer configuration reference
    description: Every setting, its default and range.
    link: https://www.pgbouncer.org/config.html
"""

EXAMPLES = r"""
- name: Validate pool settings on their own
  unitehub.platform.pool_validate:
    settings:
      pool_mode: transaction
      default_pool_size: 20
      server_idle_timeout: 600
      server_lifetime: 3600

- name: Validate against the live PostgreSQL and PgBouncer before changing anything
  unitehub.platform.pool_validate:
    settings: "{{ pgbouncer_settings }}"
    environment: production
    facts:
      databases: 1
      users: 1
    postgres_host: 127.0.0.1
    postgres_user: unitehub
    postgres_password: "{{ postgresql_app_password }}"
    postgres_dbname: unitehub
    admin_host: 127.0.0.1
    admin_user: pgbouncer_admin
    admin_password: "{{ pgbouncer_admin_password }}"
  register: pool_check

- name: Show what the environment would recommend
  ansible.builtin.debug:
    var: pool_check.recommended
"""

RETURN = r"""
errors:
  description: One message per problem, each naming the setting and the fix. Empty when the settings are good.
  returned: always
  type: list
  elements: str
  sample: ["default_pool_size must be at least 1, got 0: use 1 or more (PgBouncer's default is 20)"]
warnings:
  description:
    - Caveats that do not stop the settings, such as the session features transaction mode breaks.
    - Shown as task warnings; Ansible collects them under this key.
  returned: when there is a caveat
  type: list
  elements: str
recommended:
  description: The recommended settings for I(environment), shaped by the facts.
  returned: always
  type: dict
  sample: {"pool_mode": "transaction", "default_pool_size": 20, "min_pool_size": 5, "reserve_pool_size": 5}
effective:
  description:
    - The settings PgBouncer would run, the given ones over PgBouncer's defaults, numbers as numbers.
    - A setting with an error is V(null) here.
  returned: always
  type: dict
  sample: {"pool_mode": "transaction", "default_pool_size": 20, "server_lifetime": 3600.0}
facts:
  description: The facts the settings were checked against, the given ones merged with those read live.
  returned: always
  type: dict
  sample: {"server_max_connections": 100, "superuser_reserved_connections": 3, "pgbouncer_version": "1.18.0",
           "databases": 1}
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.unitehub.platform.plugins.module_utils import pgbouncer
from ansible_collections.unitehub.platform.plugins.module_utils.pooling import ENVIRONMENTS, validate

# Facts that describe the configuration being validated rather than a server.
_CONFIG_FACTS = ("databases", "users")


def gather_live_facts(module):
    """Read facts from PostgreSQL and PgBouncer when asked to. Returns a dict."""
    params = module.params
    live = {}
    if not (params["postgres_host"] or params["admin_host"]):
        return live
    if not pgbouncer.HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg"), exception=pgbouncer.PSYCOPG_IMPORT_ERROR)
    try:
        if params["postgres_host"]:
            conn = pgbouncer.connect_postgres(params["postgres_host"], params["postgres_port"], params["postgres_user"],
                                              params["postgres_password"], params["postgres_dbname"],
                                              params["connect_timeout"])
            try:
                live.update(pgbouncer.read_postgres_facts(conn))
            finally:
                conn.close()
        if params["admin_host"]:
            conn = pgbouncer.connect_admin(params["admin_host"], params["admin_port"], params["admin_user"],
                                           params["admin_password"], params["connect_timeout"])
            try:
                live.update(pgbouncer.read_pgbouncer_facts(conn))
            finally:
                conn.close()
    except pgbouncer.ConsoleError as exc:
        module.fail_json(msg="could not read facts to validate the pool settings against: %s. Fix the connection "
                             "options (host, port, user, password), or leave postgres_host and admin_host out to "
                             "validate without live facts" % exc)
    return live


def merge_facts(given, live):
    facts = dict(given or {})
    for key, value in live.items():
        if key in _CONFIG_FACTS and facts.get(key) is not None:
            continue
        facts[key] = value
    return facts


def main():
    argument_spec = pgbouncer.pgbouncer_admin_argument_spec(host_default=None)
    argument_spec.update(
        settings=dict(type="dict", required=True),
        environment=dict(type="str", choices=list(ENVIRONMENTS), default="production"),
        facts=dict(type="dict", default={}),
        postgres_host=dict(type="str"),
        postgres_port=dict(type="int", default=5432),
        postgres_user=dict(type="str", default="postgres"),
        postgres_password=dict(type="str", no_log=True),
        postgres_dbname=dict(type="str", default="postgres"),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
    )

    facts = merge_facts(module.params["facts"], gather_live_facts(module))
    report = validate(module.params["settings"], facts, module.params["environment"])
    # Ansible reserves the "warnings" key: module.warn() shows each warning and puts it there.
    result = dict(changed=False, facts=facts, errors=report["errors"], recommended=report["recommended"],
                  effective=report["effective"])
    for warning in report["warnings"]:
        module.warn(warning)
    if report["errors"]:
        count = len(report["errors"])
        numbered = "; ".join("%d) %s" % (i, msg) for i, msg in enumerate(report["errors"], 1))
        module.fail_json(msg="%d pool setting error%s: %s" % (count, "" if count == 1 else "s", numbered), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
