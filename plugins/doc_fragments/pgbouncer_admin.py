# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How to log in to PgBouncer's admin console: the options of
    # module_utils.pgbouncer.pgbouncer_admin_argument_spec() besides admin_host,
    # and the attributes every module on the console shares.
    DOCUMENTATION = r"""
options:
  admin_port:
    description: PgBouncer's port.
    type: int
    default: 6432
  admin_user:
    description: A user in PgBouncer's C(admin_users) or C(stats_users).
    type: str
    default: pgbouncer
  admin_password:
    description: Password of O(admin_user), as in PgBouncer's C(auth_file).
    type: str
  connect_timeout:
    description: Seconds to wait for each connection to be established (libpq waits at least 2).
    type: int
    default: 5
attributes:
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

    # Where the console listens, for the modules that always talk to it
    # (unitehub.platform.pgbouncer_admin.host).
    HOST = r"""
options:
  admin_host:
    description: Host or Unix socket directory where PgBouncer listens.
    type: str
    default: 127.0.0.1
"""

    # Check mode of the modules that only read (unitehub.platform.pgbouncer_admin.read_only).
    READ_ONLY = r"""
attributes:
  check_mode:
    support: full
    details: The module only reads; it runs the same in check mode.
"""
