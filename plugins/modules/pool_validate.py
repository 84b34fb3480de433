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
    the collection's C(pool_rules) module utils, the same rules the
    P(unitehub.platform.pool_errors#filter) filter applies.
  - Type checks (text where a number belongs, booleans given as numbers), ranges, rules across
    settings (C(min_pool_size <= default_pool_size), C(server_lifetime >= server_idle_timeout),
    C(max_db_connections >= default_pool_size) when set) and, when the facts are known, whether the
    pools fit in PostgreSQL's C(max_connections) and whether this PgBouncer supports
    C(max_prepared_statements) (1.21 or later).
  - With O(login_host) it reads C(max_connections) and C(superuser_reserved_connections) from
    PostgreSQL; with O(admin_host) it reads C(SHOW VERSION) and C(SHOW DATABASES) from PgBouncer's
    admin console. Those facts are checked too.
  - The PostgreSQL connection options are named C(login_*), as in C(community.postgresql) and
    M(unitehub.platform.postgresql_app_db). Their old names C(postgres_host), C(postgres_port),
    C(postgres_user), C(postgres_password) and C(postgres_dbname) still work as deprecated aliases
    and will be removed in version 2.0.0 of this collection.
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
  allow_insecure_auth_type:
    description:
      - Accept C(auth_type) V(trust), V(any) or V(plain), with a warning. Without it they are errors, as
        the first two let anyone who reaches PgBouncer in without a password and the last sends passwords in
        clear text.
    type: bool
    default: false
  login_host:
    description:
      - PostgreSQL host (or Unix socket directory) to read C(max_connections) from. Omit to skip.
      - The alias C(postgres_host) is deprecated and will be removed in version 2.0.0.
    type: str
    aliases: [postgres_host]
  login_port:
    description:
      - PostgreSQL port.
      - The alias C(postgres_port) is deprecated and will be removed in version 2.0.0.
    type: int
    default: 5432
    aliases: [postgres_port]
  login_user:
    description:
      - PostgreSQL user; any user may run C(SHOW max_connections).
      - The alias C(postgres_user) is deprecated and will be removed in version 2.0.0.
    type: str
    default: postgres
    aliases: [postgres_user]
  login_password:
    description:
      - Password of O(login_user).
      - The alias C(postgres_password) is deprecated and will be removed in version 2.0.0.
    type: str
    aliases: [postgres_password]
  login_db:
    description:
      - Database to connect to on PostgreSQL.
      - The alias C(postgres_dbname) is deprecated and will be removed in version 2.0.0.
    type: str
    default: postgres
    aliases: [postgres_dbname]
  admin_host:
    description: Host of PgBouncer's admin console, to read its version and databases. Omit to skip.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - unitehub.platform.pgbouncer_admin
  - unitehub.platform.pgbouncer_admin.read_only
requirements:
  - psycopg >= 3.1, only when O(login_host) or O(admin_host) is given
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
    login_host: 127.0.0.1
    login_user: unitehub
    login_password: "{{ postgresql_app_password }}"
    login_db: unitehub
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
  description: The recommended settings for O(environment), shaped by the facts.
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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitehub.platform.plugins.module_utils import pgbouncer, postgres_client
from ansible_collections.unitehub.platform.plugins.module_utils.pool_rules import ENVIRONMENTS, validate
from ansible_collections.unitehub.platform.plugins.module_utils.pool_settings import merge_facts

# login_* option -> its old name, a deprecated alias until 2.0.0.
RENAMED_OPTIONS = {
    "login_host": "postgres_host",
    "login_port": "postgres_port",
    "login_user": "postgres_user",
    "login_password": "postgres_password",
    "login_db": "postgres_dbname",
}
LIVE_FACTS_HINT = (". Fix the connection options (host, port, user, password), or leave login_host and admin_host "
                   "out to validate without live facts")


def argument_spec():
    # One connect_timeout for both connections, with the console's default.
    spec = postgres_client.login_argument_spec(host_default=None)
    spec.update(pgbouncer.pgbouncer_admin_argument_spec(host_default=None))
    for option, old_name in RENAMED_OPTIONS.items():
        spec[option].update(aliases=[old_name], deprecated_aliases=[
            dict(name=old_name, version="2.0.0", collection_name="unitehub.platform")])
    spec.update(
        settings=dict(type="dict", required=True),
        environment=dict(type="str", choices=list(ENVIRONMENTS), default="production"),
        facts=dict(type="dict", default={}),
        allow_insecure_auth_type=dict(type="bool", default=False),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    live = {}
    if params["login_host"] or params["admin_host"]:
        postgres_client.ensure_psycopg(module)
        with postgres_client.failing_module_on_error(
                module, "could not read facts to validate the pool settings against", hint=LIVE_FACTS_HINT):
            live = pgbouncer.read_live_facts(params)

    with postgres_client.failing_module_on_error(module, "pool_validate"):
        facts = merge_facts(params["facts"], live)
        report = validate(params["settings"], facts, params["environment"], params["allow_insecure_auth_type"])
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
