#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: postgresql_app_db
short_description: Ensure the application's PostgreSQL login role and its database
version_added: 0.1.0
description:
  - Makes sure a login role exists with the given password and connection limit, and that
    a database exists owned by that role. Creates what is missing and corrects what
    differs; an existing database is never dropped or recreated.
  - The current password is checked against the role's stored SCRAM-SHA-256 or MD5
    verifier, so an unchanged password reports no change, and the module never needs to
    print or log it. A SCRAM verifier with fewer than 4,096 iterations is set again, unless
    O(password_generated) asks for exactly that verifier.
  - A new password is sent to the server as a verifier computed by the module (as
    C(psql \password) does), so the clear text appears neither in the module's result
    nor in the PostgreSQL log.
  - Connects as a superuser, by default C(postgres) over the Unix socket in
    C(/var/run/postgresql) (peer authentication).
  - The logic lives in the collection's C(module_utils/postgres_app_db.py) and C(module_utils/scram.py).
author:
  - unitehub platform team (@unitehub)
requirements:
  - psycopg >= 3.1 (C(python3-psycopg) on Debian) on the managed host
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Connects and reads the current state, reports what would change, executes nothing.
  diff_mode:
    support: none
    details: Returns no diff; RV(changes) lists what changed, without the password.
  platform:
    platforms: posix
options:
  name:
    description:
      - Name of the login role the application connects as. At most 63 bytes.
    type: str
    required: true
    aliases: [user]
  password:
    description:
      - Password of the role. Must not be empty.
    type: str
    required: true
  database:
    description:
      - Name of the database owned by O(name). At most 63 bytes.
    type: str
    required: true
  conn_limit:
    description:
      - Most concurrent connections the role may open; V(-1) means no limit.
    type: int
    default: -1
  password_generated:
    description:
      - Whether O(password) is a generated random secret (at least 32 letters, digits, C(-) or C(_)), as the
        collection's inventories make them. Only then is it stored as a cheap verifier, with
        O(generated_password_iterations) and a salt derived from the password, which the
        C(unitehub.platform.pgbouncer) role derives too, so PgBouncer's SCRAM pass-through works and a client
        login costs almost no key derivation.
      - A password that does not look generated fails the module, naming the fix. V(false) stores the password
        with PostgreSQL's 4,096 iterations and a random salt, as PostgreSQL itself would.
    type: bool
    default: false
  generated_password_iterations:
    description:
      - SCRAM iterations of a generated password's verifier, with O(password_generated). libpq accepts any
        count from 1; iterations protect guessable passwords, and a generated one is not.
    type: int
    default: 16
  password_encryption:
    description:
      - How the password is stored. V(scram-sha-256) works with C(scram-sha-256) and
        C(md5) lines in C(pg_hba.conf); V(md5) only with C(md5) lines.
      - A password stored the other way is set again.
    type: str
    choices: [scram-sha-256, md5]
    default: scram-sha-256
  encoding:
    description:
      - Encoding of the database when it is created (from C(template0)). An existing
        database keeps its encoding; RV(database_encoding) reports it.
    type: str
    default: UTF8
  login_host:
    description:
      - Directory of the server's Unix socket, or a host name or address for TCP.
    type: str
    default: /var/run/postgresql
  login_port:
    description:
      - Server port (also part of the socket file name).
    type: int
    default: 5432
  login_user:
    description:
      - Superuser to connect as; reading stored password verifiers needs a superuser.
    type: str
    default: postgres
  login_password:
    description:
      - Password of O(login_user), when the server asks for one (not with peer authentication).
    type: str
  login_db:
    description:
      - Database to connect to for the maintenance queries.
    type: str
    default: postgres
  connect_timeout:
    description:
      - Seconds to wait for the connection to be established (libpq waits at least 2).
    type: int
    default: 10
notes:
  - Peer authentication as C(postgres) needs the module to run as the OS user
    C(postgres), or a C(pg_hba.conf) line mapping the OS user it runs as (for example
    root) to C(postgres) with C(pg_ident.conf); the C(unitehub.platform.postgresql)
    role sets up the latter.
seealso:
  - name: CREATE ROLE
    description: PostgreSQL documentation of role attributes.
    link: https://www.postgresql.org/docs/15/sql-createrole.html
  - name: Password authentication
    description: SCRAM-SHA-256 and MD5 in PostgreSQL.
    link: https://www.postgresql.org/docs/15/auth-password.html
"""

EXAMPLES = r"""
- name: Ensure the app's role and database (as root, peer-mapped to postgres)
  unitehub.platform.postgresql_app_db:
    name: unitehub
    password: "{{ postgresql_app_password }}"
    database: unitehub
    conn_limit: 50

- name: A generated password, stored as a cheap verifier that PgBouncer's userlist shares
  unitehub.platform.postgresql_app_db:
    name: unitehub
    password: "{{ lookup('ansible.builtin.password', '.secrets/db', chars=['ascii_letters', 'digits'], length=32) }}"
    password_generated: true
    database: unitehub

- name: Same against a server on another port, with md5 passwords
  unitehub.platform.postgresql_app_db:
    name: shop
    password: "{{ vault_shop_db_password }}"
    database: shop
    password_encryption: md5
    login_port: 5433

- name: Over TCP with a superuser password
  unitehub.platform.postgresql_app_db:
    name: unitehub
    password: "{{ postgresql_app_password }}"
    database: unitehub
    login_host: 127.0.0.1
    login_user: postgres
    login_password: "{{ vault_postgres_password }}"
"""

RETURN = r"""
changed:
  description: Whether the role or the database changed (or would in check mode).
  returned: always
  type: bool
  sample: true
role:
  description: The role name.
  returned: always
  type: str
  sample: unitehub
database:
  description: The database name.
  returned: always
  type: str
  sample: unitehub
role_changes:
  description: What changed on the role, out of C(create), C(login), C(conn_limit), C(password).
  returned: success
  type: list
  elements: str
  sample: [password]
database_changes:
  description: What changed on the database, out of C(create), C(owner).
  returned: success
  type: list
  elements: str
  sample: [create]
password_changed:
  description: Whether the password was set (new role, different password, or other storage format).
  returned: success
  type: bool
  sample: false
database_encoding:
  description: Encoding of the database after the run (the requested one in check mode when it is created).
  returned: success
  type: str
  sample: UTF8
changes:
  description: The changes in words. Never contains the password.
  returned: success
  type: list
  elements: str
  sample:
    - create role unitehub (login, connection limit -1)
    - create database unitehub owned by unitehub
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitehub.platform.plugins.module_utils import postgres_app_db, postgres_client
from ansible_collections.unitehub.platform.plugins.module_utils.scram import GENERATED_PASSWORD_ITERATIONS, PASSWORD_ENCRYPTIONS


def main():
    argument_spec = dict(
        name=dict(type="str", required=True, aliases=["user"]),
        password=dict(type="str", required=True, no_log=True),
        database=dict(type="str", required=True),
        conn_limit=dict(type="int", default=-1),
        password_encryption=dict(type="str", default="scram-sha-256", choices=list(PASSWORD_ENCRYPTIONS), no_log=False),
        password_generated=dict(type="bool", default=False, no_log=False),
        generated_password_iterations=dict(type="int", default=GENERATED_PASSWORD_ITERATIONS, no_log=False),
        encoding=dict(type="str", default="UTF8"),
    )
    argument_spec.update(postgres_client.login_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    result = dict(changed=False, role=params["name"], database=params["database"])

    postgres_client.ensure_psycopg(module, result)
    with postgres_client.failing_module_on_error(module, "postgresql_app_db", result):
        try:
            result.update(postgres_app_db.ensure_with_module_options(params, module.check_mode))
        except postgres_app_db.PostgresAppError as exc:
            module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
