# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connections to PostgreSQL and to PgBouncer's admin console, with psycopg 3.

The one place that imports psycopg. Modules, probes and the console code get
from here the import guard, the keyword arguments of ``psycopg.connect`` and a
one-line message for a psycopg error; modules also get the ``login_*`` options
and a guard that turns any failure into ``fail_json`` instead of a traceback.
"""

from __future__ import annotations

import contextlib
import math
import re
import traceback

try:
    import psycopg

    HAS_PSYCOPG = True
    PSYCOPG_IMPORT_ERROR = None
except ImportError:
    psycopg = None
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()

from ansible.module_utils.basic import missing_required_lib

ADMIN_CONSOLE_DATABASE = "pgbouncer"
# libpq counts connect_timeout in whole seconds and treats anything below 2 as 2.
LIBPQ_MIN_CONNECT_TIMEOUT = 2
DEFAULT_SOCKET_DIR = "/var/run/postgresql"

_LIBPQ_PREAMBLE = re.compile(r'^(connection failed: )?(connection to server at "[^"]*"(, port \d+)? failed: )?')


class ClientError(Exception):
    """A connection or a command failed; the message names the endpoint or the
    command, never a password."""


class ConnectError(ClientError):
    """psycopg could not connect. ``reason`` is the server's or libpq's word for it."""

    def __init__(self, host, port, user, dbname, reason):
        self.host, self.port, self.user, self.dbname, self.reason = host, port, user, dbname, reason
        super().__init__("could not connect to %s:%s/%s as %s: %s" % (host, port, dbname, user, reason))


def ensure_psycopg(module, result=None):
    """Fail the module with Ansible's standard message when psycopg is missing."""
    if not HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg"), exception=PSYCOPG_IMPORT_ERROR, **(result or {}))


def libpq_connect_timeout(seconds):
    """Seconds as libpq counts them: whole, and at least 2 (0 would mean forever)."""
    return max(LIBPQ_MIN_CONNECT_TIMEOUT, int(math.ceil(seconds)))


def connect_kwargs(host, port, user=None, password=None, dbname=None, connect_timeout=LIBPQ_MIN_CONNECT_TIMEOUT,
                   application_name=None):
    """Keyword arguments of ``psycopg.connect`` for a PostgreSQL server.

    ``host`` is a host name, an address or a Unix socket directory. Always
    autocommit: callers send SHOW and DDL, and CREATE DATABASE cannot run in a
    transaction. Unset values are left out, so libpq's own defaults apply.
    """
    kwargs = {
        "host": host,
        "port": int(port) if port not in (None, "") else None,
        "user": user,
        "password": password,
        "dbname": dbname,
        "connect_timeout": libpq_connect_timeout(connect_timeout),
        "autocommit": True,
        "application_name": application_name,
    }
    return {key: value for key, value in kwargs.items() if value not in (None, "")}


def admin_console_kwargs(host, port, user=None, password=None, dbname=ADMIN_CONSOLE_DATABASE,
                         connect_timeout=LIBPQ_MIN_CONNECT_TIMEOUT):
    """Keyword arguments of ``psycopg.connect`` for PgBouncer's admin console.

    The console speaks only the simple query protocol and has no transactions:
    autocommit, no prepared statements, and client-side binding (ClientCursor),
    so even a query with parameters goes out as one plain text command.
    """
    kwargs = connect_kwargs(host, port, user, password, dbname or ADMIN_CONSOLE_DATABASE, connect_timeout)
    kwargs["prepare_threshold"] = None
    if psycopg is not None:
        kwargs["cursor_factory"] = psycopg.ClientCursor
    return kwargs


def error_message(exc):
    """A psycopg error in one line, without libpq's "connection to server at ..."
    preamble (the caller names the endpoint already), with a hint for the two
    login failures an operator fixes in the options."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip()]
    text = _LIBPQ_PREAMBLE.sub("", lines[0]) if lines else ""
    if "no password supplied" in text:
        text += "; set password"
    elif "authentication failed" in text:
        text += "; check user and password"
    return text or type(exc).__name__


def _open(kwargs):
    try:
        return psycopg.connect(**kwargs)
    except psycopg.Error as exc:
        raise ConnectError(kwargs.get("host"), kwargs.get("port"), kwargs.get("user"), kwargs.get("dbname"),
                           error_message(exc)) from exc


def connect(host, port, user=None, password=None, dbname=None, connect_timeout=LIBPQ_MIN_CONNECT_TIMEOUT,
            application_name=None):
    """An autocommit connection to PostgreSQL; raises ConnectError."""
    return _open(connect_kwargs(host, port, user, password, dbname, connect_timeout, application_name))


def connect_admin_console(host, port, user=None, password=None, connect_timeout=LIBPQ_MIN_CONNECT_TIMEOUT):
    """A connection to PgBouncer's admin console; raises ConnectError."""
    return _open(admin_console_kwargs(host, port, user, password, connect_timeout=connect_timeout))


def login_argument_spec(host_default=DEFAULT_SOCKET_DIR, connect_timeout_default=10):
    """The PostgreSQL connection options, named as community.postgresql names them.
    ``host_default=None`` makes the connection optional (no host, no connection)."""
    return dict(
        login_host=dict(type="str", default=host_default),
        login_port=dict(type="int", default=5432),
        login_user=dict(type="str", default="postgres"),
        login_password=dict(type="str", no_log=True),
        login_db=dict(type="str", default="postgres"),
        connect_timeout=dict(type="int", default=connect_timeout_default),
    )


def connect_with_login_options(params, application_name=None):
    """Connect as the module's ``login_*`` and ``connect_timeout`` options say."""
    return connect(params["login_host"], params["login_port"], params["login_user"], params["login_password"],
                   params["login_db"], params["connect_timeout"], application_name)


@contextlib.contextmanager
def failing_module_on_error(module, context, result=None, hint=""):
    """Run the block; an exception fails the module instead of leaving a traceback.

    A ClientError fails with ``"<context>: <message><hint>"``; any other exception
    is named as unexpected, its traceback kept for -vvv. ``result`` (a dict, read
    when the failure happens) goes into the failed result.
    """
    try:
        yield
    except ClientError as exc:
        module.fail_json(msg="%s: %s%s" % (context, exc, hint), **(result or {}))
    except Exception as exc:  # anything else is a bug or an environment problem: report it, with context
        module.fail_json(msg="%s: unexpected %s: %s" % (context, type(exc).__name__, error_message(exc)),
                         exception=traceback.format_exc(), **(result or {}))
