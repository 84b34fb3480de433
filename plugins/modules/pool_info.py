#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pool_info
short_description: Read PgBouncer's pools, statistics and configuration from its admin console
version_added: 0.1.0
description:
  - Connects to PgBouncer's admin console (the virtual database C(pgbouncer)) and returns
    C(SHOW VERSION), C(SHOW POOLS), C(SHOW STATS), C(SHOW CONFIG) and C(SHOW DATABASES) as
    structured data with proper types; counts and times are integers, not text.
  - Adds RV(totals), the pool counters summed over every pool except the console's own, for quick
    checks such as "no client is waiting".
  - Reads only. Any user in PgBouncer's C(admin_users) or C(stats_users) may run it.
author:
  - unitehub platform team (@unitehub)
options:
  gather:
    description: Which C(SHOW) commands to run.
    type: list
    elements: str
    choices: [version, pools, stats, config, databases]
    default: [version, pools, stats, config, databases]
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - unitehub.platform.pgbouncer_admin
  - unitehub.platform.pgbouncer_admin.host
  - unitehub.platform.pgbouncer_admin.read_only
requirements:
  - psycopg >= 3.1
notes:
  - The console speaks only the simple query protocol; the module connects with C(autocommit=True)
    and C(prepare_threshold=None) and sends no parameters.
seealso:
  - module: unitehub.platform.pool_validate
  - module: unitehub.platform.pool_reload
  - name: PgBouncer admin console
    description: Every SHOW command and its columns.
    link: https://www.pgbouncer.org/usage.html#admin-console
"""

EXAMPLES = r"""
- name: Read PgBouncer's state
  unitehub.platform.pool_info:
    admin_host: 127.0.0.1
    admin_port: 6432
    admin_user: pgbouncer_admin
    admin_password: "{{ pgbouncer_admin_password }}"
  register: pool

- name: No client may be waiting for a server connection
  ansible.builtin.assert:
    that:
      - pool.totals.cl_waiting == 0
      - pool.config.pool_mode == 'transaction'
    fail_msg: "{{ pool.totals.cl_waiting }} client(s) waiting; max wait {{ pool.totals.maxwait_seconds }} s"

- name: Only the pools, through the Unix socket
  unitehub.platform.pool_info:
    admin_host: /var/run/postgresql
    admin_user: pgbouncer_stats
    admin_password: "{{ pgbouncer_stats_password }}"
    gather: [pools]
"""

RETURN = r"""
version:
  description: PgBouncer's version string.
  returned: when C(version) is gathered
  type: str
  sample: PgBouncer 1.18.0
version_number:
  description: The version number alone.
  returned: when C(version) is gathered
  type: str
  sample: 1.18.0
pools:
  description:
    - One entry per (database, user) pool, as C(SHOW POOLS) lists them, the console's own pool included.
    - Besides C(database), C(user) and C(pool_mode), every column is an integer, among them C(cl_active),
      C(cl_waiting), C(sv_active), C(sv_idle), C(sv_used), C(sv_tested), C(sv_login), C(maxwait),
      C(maxwait_us). C(maxwait_seconds) adds the two maxwait columns as a float.
  returned: when C(pools) is gathered
  type: list
  elements: dict
  sample: [{"database": "unitehub", "user": "unitehub", "cl_active": 3, "cl_waiting": 0, "sv_active": 1,
            "sv_idle": 2, "sv_used": 0, "sv_tested": 0, "sv_login": 0, "maxwait": 0, "maxwait_us": 0,
            "maxwait_seconds": 0.0, "pool_mode": "transaction"}]
totals:
  description:
    - The integer columns of RV(pools) summed over every pool except the console's (database C(pgbouncer)),
      C(maxwait_seconds) as the largest wait, and C(pools), the number of pools counted.
  returned: when C(pools) is gathered
  type: dict
  sample: {"pools": 1, "cl_active": 3, "cl_waiting": 0, "sv_active": 1, "sv_idle": 2, "maxwait_seconds": 0.0}
stats:
  description:
    - One entry per database, as C(SHOW STATS) lists them; every column but C(database) is an integer,
      among them C(total_xact_count), C(total_query_count), C(total_wait_time), C(avg_xact_time),
      C(avg_query_time) and C(avg_wait_time) (times in microseconds).
  returned: when C(stats) is gathered
  type: list
  elements: dict
  sample: [{"database": "unitehub", "total_xact_count": 1520, "total_query_count": 1520,
            "avg_xact_time": 412, "avg_query_time": 398, "avg_wait_time": 0}]
config:
  description: Every C(SHOW CONFIG) key and its running value; numbers are numbers.
  returned: when C(config) is gathered
  type: dict
  sample: {"pool_mode": "transaction", "default_pool_size": 20, "listen_port": 6432, "server_lifetime": 3600}
config_details:
  description: Every C(SHOW CONFIG) key with C(value), C(default) and C(changeable) (a boolean; V(false)
    means the setting only changes with a restart).
  returned: when C(config) is gathered
  type: dict
  sample: {"listen_port": {"value": 6432, "default": 6432, "changeable": false}}
databases:
  description:
    - One entry per database, as C(SHOW DATABASES) lists them. C(name), C(host), C(database),
      C(force_user) and C(pool_mode) are text, C(paused) and C(disabled) booleans, the rest integers.
  returned: when C(databases) is gathered
  type: list
  elements: dict
  sample: [{"name": "unitehub", "host": "127.0.0.1", "port": 5432, "database": "unitehub", "pool_size": 20,
            "reserve_pool": 5, "max_connections": 0, "current_connections": 3, "paused": false, "disabled": false}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitehub.platform.plugins.module_utils import pgbouncer


def main():
    argument_spec = pgbouncer.pgbouncer_admin_argument_spec()
    argument_spec.update(
        gather=dict(type="list", elements="str", choices=list(pgbouncer.SHOW_COMMANDS),
                    default=list(pgbouncer.SHOW_COMMANDS)),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    info = pgbouncer.with_admin_console(module, lambda conn: pgbouncer.read_console(conn, module.params["gather"]))
    module.exit_json(changed=False, **info)


if __name__ == "__main__":
    main()
