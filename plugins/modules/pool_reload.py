#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pool_reload
short_description: Apply PgBouncer's configuration online with the admin console's RELOAD
version_added: 0.1.0
description:
  - Sends C(RELOAD) on PgBouncer's admin console. PgBouncer re-reads C(pgbouncer.ini) and its
    C(auth_file) in place; connected clients stay connected and their transactions go on.
  - With I(expect), reads C(SHOW CONFIG) afterwards and fails when a setting still runs with another
    value. That happens for settings PgBouncer only takes at start (C(listen_addr), C(listen_port),
    C(unix_socket_dir) and others), which need a restart; the message says so.
  - With I(pidfile), first sends C(SIGHUP) to the PgBouncer process the pid file names, so that
    PgBouncer re-reads its C(auth_file) before the console login, and a new O(admin_password) written there
    works at once. The pid is signalled only when it is a running C(pgbouncer) (command name and
    executable) run by O(process_user); a pid file that names any other process fails the module and
    nothing is signalled.
  - Meant as a handler after C(pgbouncer.ini) or the C(auth_file) changed; the C(pgbouncer) role uses it
    that way, and reloads PgBouncer in no other way.
author:
  - unitehub platform team (@unitehub)
options:
  expect:
    description:
      - Settings that must run with these values after the reload, keyed as in C(pgbouncer.ini).
      - Numbers compare by value (V(5) matches PgBouncer's C(5.0)); text compares case-insensitively.
    type: dict
    default: {}
  pidfile:
    description:
      - PgBouncer's pid file. When set, PgBouncer gets C(SIGHUP) (after the pid is checked) before the
        console login; needed when the C(auth_file) changed the admin password.
      - Unset, nothing is signalled and the reload goes through the console alone.
    type: path
  process_user:
    description: The user PgBouncer runs as; a process run by anyone else is never signalled.
    type: str
    default: postgres
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - unitehub.platform.pgbouncer_admin
  - unitehub.platform.pgbouncer_admin.host
attributes:
  check_mode:
    support: full
    details: Reports that a reload would happen and sends nothing.
requirements:
  - psycopg >= 3.1
notes:
  - O(admin_user) must be in PgBouncer's C(admin_users); a C(stats_users) user may not send C(RELOAD).
seealso:
  - module: unitehub.platform.pool_info
  - module: unitehub.platform.pool_validate
  - name: PgBouncer RELOAD
    description: What RELOAD re-reads and what needs a restart.
    link: https://www.pgbouncer.org/usage.html#process-controlling-commands
"""

EXAMPLES = r"""
- name: Reload PgBouncer online and check the new pool size runs
  unitehub.platform.pool_reload:
    admin_host: 127.0.0.1
    admin_user: pgbouncer_admin
    admin_password: "{{ pgbouncer_admin_password }}"
    expect:
      default_pool_size: 25
      pool_mode: transaction

- name: Reload PgBouncer after a new admin password was written to its auth_file
  unitehub.platform.pool_reload:
    admin_user: pgbouncer_admin
    admin_password: "{{ pgbouncer_admin_password }}"
    pidfile: /var/run/postgresql/pgbouncer.pid
"""

RETURN = r"""
reloaded:
  description: Whether C(RELOAD) was sent (V(false) in check mode).
  returned: always
  type: bool
  sample: true
signalled_pid:
  description: The PgBouncer process that got C(SIGHUP), after its pid was checked.
  returned: when I(pidfile) is given and not in check mode
  type: int
  sample: 4242
config:
  description: The running values of the I(expect) keys after the reload.
  returned: when I(expect) is given and not in check mode
  type: dict
  sample: {"default_pool_size": 25, "pool_mode": "transaction"}
mismatched:
  description: Expected settings that still run with another value after the reload.
  returned: when I(expect) is given and not in check mode
  type: list
  elements: dict
  sample: [{"setting": "listen_port", "expected": 6433, "running": 6432}]
"""

import pwd
import signal
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitehub.platform.plugins.module_utils import pgbouncer, postgres_client, processes

# Seconds the console login is retried after SIGHUP: PgBouncer re-reads its auth_file asynchronously.
LOGIN_AFTER_SIGNAL_SECONDS = 5


def signal_pgbouncer(module, result):
    """SIGHUP to the checked PgBouncer pid; fails the module, signalling nothing, on any other process."""
    user = module.params["process_user"]
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        module.fail_json(msg="process_user %r is not a user on this host: give the user PgBouncer runs as" % user,
                         **result)
    try:
        result["signalled_pid"] = processes.signal_checked_pid(module.params["pidfile"], "pgbouncer", uid,
                                                               signal.SIGHUP)
    except processes.PidError as exc:
        module.fail_json(msg="not signalling PgBouncer: %s" % exc, **result)
    result["changed"] = True


def connect_after_signal(params):
    """The console, logging in again for a moment while PgBouncer takes up a new auth_file."""
    deadline = time.monotonic() + LOGIN_AFTER_SIGNAL_SECONDS
    while True:
        try:
            return pgbouncer.connect_with_admin_options(params)
        except postgres_client.ConnectError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def main():
    argument_spec = pgbouncer.pgbouncer_admin_argument_spec()
    argument_spec.update(expect=dict(type="dict", default={}), pidfile=dict(type="path"),
                         process_user=dict(type="str", default="postgres"))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if module.check_mode:
        module.exit_json(changed=True, reloaded=False)

    result = dict(changed=False, reloaded=False)
    connect = pgbouncer.connect_with_admin_options
    if module.params["pidfile"]:
        signal_pgbouncer(module, result)
        connect = connect_after_signal
    pgbouncer.with_admin_console(
        module, lambda conn: pgbouncer.reload_and_compare(conn, module.params["expect"], result), result, connect)
    if result.get("mismatched"):
        described = ", ".join("%s runs %r, expected %r" % (m["setting"], m["running"], m["expected"])
                              for m in result["mismatched"])
        module.fail_json(msg="after RELOAD %s: PgBouncer takes these settings only when it starts, or the file "
                             "PgBouncer reads is not the one changed; restart PgBouncer" % described, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
