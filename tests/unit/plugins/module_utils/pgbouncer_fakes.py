# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stand-in for psycopg talking to PgBouncer 1.18's admin console and PostgreSQL 15.

The column names and their Python types are what psycopg 3 got from the real
PgBouncer 1.18.0 on Debian bookworm: SHOW POOLS / SHOW DATABASES give ints,
SHOW STATS gives Decimals (numeric columns), SHOW CONFIG gives text only. The
values are made up for the tests.
"""

from __future__ import annotations

from decimal import Decimal


class FakeError(Exception):
    """Plays psycopg.Error."""


class Column(object):
    def __init__(self, name):
        self.name = name


class Cursor(object):
    def __init__(self, names, rows):
        self.description = [Column(n) for n in names] if names is not None else None
        self._rows = rows

    def fetchall(self):
        return list(self._rows)


POOLS = (
    ["database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req", "cl_waiting_cancel_req", "sv_active",
     "sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used", "sv_tested", "sv_login", "maxwait", "maxwait_us",
     "pool_mode"],
    [
        ("pgbouncer", "pgbouncer", 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "statement"),
        ("unitehub", "unitehub", 12, 3, 0, 0, 5, 0, 0, 2, 1, 0, 0, 2, 250000, "transaction"),
        ("reports", "unitehub", 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, "transaction"),
    ],
)

STATS = (
    ["database", "total_xact_count", "total_query_count", "total_received", "total_sent", "total_xact_time",
     "total_query_time", "total_wait_time", "avg_xact_count", "avg_query_count", "avg_recv", "avg_sent",
     "avg_xact_time", "avg_query_time", "avg_wait_time"],
    [
        ("pgbouncer", Decimal(1), Decimal(1), Decimal(0), Decimal(0), Decimal(0), Decimal(0), Decimal(0), Decimal(0),
         Decimal(0), Decimal(0), Decimal(0), Decimal(0), Decimal(0), Decimal(0)),
        ("unitehub", Decimal(1520), Decimal(3040), Decimal(91200), Decimal(182400), Decimal(626240),
         Decimal(604960), Decimal(1200), Decimal(25), Decimal(50), Decimal(1500), Decimal(3000), Decimal(412),
         Decimal(398), Decimal(0)),
    ],
)

CONFIG = (
    ["key", "value", "default", "changeable"],
    [
        ("admin_users", "pgbouncer_admin", "", "yes"),
        ("auth_type", "scram-sha-256", "md5", "yes"),
        ("default_pool_size", "20", "20", "yes"),
        ("listen_addr", "127.0.0.1", "", "no"),
        ("listen_port", "6432", "6432", "no"),
        ("max_client_conn", "4000", "100", "yes"),
        ("pool_mode", "transaction", "session", "yes"),
        ("reserve_pool_timeout", "5", "5", "yes"),
        ("server_check_delay", "30", "30", "yes"),
        ("server_lifetime", "3600", "3600", "yes"),
        ("server_reset_query", "DISCARD ALL", "DISCARD ALL", "yes"),
        ("stats_period", "60", "60", "yes"),
        ("suspend_timeout", "10", "10", "yes"),
        ("tcp_keepidle", "0", "0", "yes"),
        ("unix_socket_dir", "/var/run/postgresql", "/tmp", "no"),
        ("unix_socket_mode", "0777", "0777", "no"),
        ("auth_file", "/etc/pgbouncer/userlist.txt", None, "yes"),
        ("dns_max_ttl", "15", "15", "yes"),
        ("client_tls_protocols", "secure", "secure", "yes"),
        ("reserve_pool_size", "5", "0", "yes"),
        ("server_idle_timeout", "600", "600", "yes"),
        ("query_wait_timeout", "120", "120", "yes"),
        ("server_connect_timeout", "15", "15", "yes"),
        ("server_login_retry", "0.5", "15", "yes"),
    ],
)

DATABASES = (
    ["name", "host", "port", "database", "force_user", "pool_size", "min_pool_size", "reserve_pool", "pool_mode",
     "max_connections", "current_connections", "paused", "disabled"],
    [
        ("reports", "127.0.0.1", 5432, "reports", None, 20, 0, 5, None, 0, 1, 0, 0),
        ("pgbouncer", None, 6432, "pgbouncer", "pgbouncer", 2, 0, 0, "statement", 0, 0, 0, 0),
        ("unitehub", "127.0.0.1", 5432, "unitehub", None, 20, 5, 5, None, 0, 8, 1, 0),
    ],
)

VERSION = (["version"], [("PgBouncer 1.18.0",)])

CONSOLE = {
    "SHOW VERSION": VERSION,
    "SHOW POOLS": POOLS,
    "SHOW STATS": STATS,
    "SHOW CONFIG": CONFIG,
    "SHOW DATABASES": DATABASES,
    "RELOAD": (None, []),
}

POSTGRES = {
    "SHOW max_connections": (["max_connections"], [("100",)]),
    "SHOW superuser_reserved_connections": (["superuser_reserved_connections"], [("3",)]),
}


class FakeConnection(object):
    """Answers the commands in ``responses``; anything else raises like the console would."""

    def __init__(self, responses, kwargs, fail_on=()):
        self.responses = responses
        self.kwargs = kwargs
        self.fail_on = fail_on
        self.executed = []
        self.closed = False

    def execute(self, query, params=None):
        assert params is None, "the console speaks only the simple query protocol: no parameters"
        self.executed.append(query)
        if query in self.fail_on or query not in self.responses:
            raise FakeError("invalid command '%s', use SHOW HELP;" % query)
        names, rows = self.responses[query]
        return Cursor(names, rows)

    def close(self):
        self.closed = True


class FakeClientCursor(object):
    """Plays psycopg.ClientCursor: only compared, never instantiated."""


class FakePsycopg(object):
    """Replaces the ``psycopg`` module inside module_utils/postgres_client.py.

    ``servers`` maps a port to the responses of whatever listens there; a port
    not in it refuses the connection. Every connection made is kept in
    ``connections`` for the assertions.
    """

    Error = FakeError
    ClientCursor = FakeClientCursor

    def __init__(self, servers, fail_on=(), refuse_login=()):
        self.servers = servers
        self.fail_on = fail_on
        self.refuse_login = refuse_login
        self.connections = []

    def connect(self, **kwargs):
        port = kwargs["port"]
        if port not in self.servers:
            raise FakeError('connection failed: connection to server at "%s", port %s failed: Connection refused\n'
                            'Is the server running on that host?' % (kwargs["host"], port))
        if kwargs.get("user") in self.refuse_login:
            raise FakeError('connection failed: FATAL:  password authentication failed for user "%s"'
                            % kwargs["user"])
        conn = FakeConnection(self.servers[port], kwargs, self.fail_on)
        self.connections.append(conn)
        return conn
