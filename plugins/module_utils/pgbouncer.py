# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PgBouncer's admin console, read and driven with psycopg 3.

The console is the virtual database ``pgbouncer``; ``postgres_client`` opens it
(simple query protocol only: autocommit, no prepared statements, client-side
binding) and every command here is sent without parameters.

The parsers turn the console's rows into plain dicts with proper types: counts
are ints (SHOW STATS sends numerics, which psycopg reads as Decimal), SHOW
CONFIG's text values become ints, floats or strings, flags become booleans.
They are pure and tested without a server; the functions taking a connection
send the commands, and ``with_admin_console`` runs them for a module.
"""

from __future__ import annotations

import contextlib
import decimal
import re

from ansible_collections.unitehub.platform.plugins.module_utils import postgres_client
from ansible_collections.unitehub.platform.plugins.module_utils.pool_settings import format_version, parse_version

ADMIN_DATABASE = postgres_client.ADMIN_CONSOLE_DATABASE
SHOW_COMMANDS = ("version", "pools", "stats", "config", "databases")

# Columns of SHOW POOLS / SHOW DATABASES that are text; every other column is a count.
_POOL_TEXT_COLUMNS = ("database", "user", "pool_mode")
_DATABASE_TEXT_COLUMNS = ("name", "host", "database", "force_user", "pool_mode")
_DATABASE_FLAG_COLUMNS = ("paused", "disabled")
_STATS_TEXT_COLUMNS = ("database",)


def pgbouncer_admin_argument_spec(host_default="127.0.0.1"):
    """The options that reach PgBouncer's admin console, to merge into a module's
    argument_spec. ``host_default=None`` makes the console optional (no host, no
    connection). Documented by the doc fragment ``unitehub.platform.pgbouncer_admin``
    (and its ``host`` part where the host has the default)."""
    return dict(
        admin_host=dict(type="str", default=host_default),
        admin_port=dict(type="int", default=6432),
        admin_user=dict(type="str", default="pgbouncer"),
        admin_password=dict(type="str", no_log=True),
        connect_timeout=dict(type="int", default=5),
    )


class ConsoleError(postgres_client.ClientError):
    """A console command failed; the message names the command, never a password."""


def connect_with_admin_options(params):
    """Open the admin console as the module's ``admin_*`` and ``connect_timeout`` options say."""
    return postgres_client.connect_admin_console(params["admin_host"], params["admin_port"], params["admin_user"],
                                                 params["admin_password"], connect_timeout=params["connect_timeout"])


def with_admin_console(module, action, result=None, connect=connect_with_admin_options):
    """``action(conn)`` on the console the module's options name, the connection closed after.

    ``connect(params)`` opens it (a caller may retry the login there).

    Checks psycopg first. A connection or command failure fails the module with
    "PgBouncer admin console: <what failed>", ``result`` (read when it happens)
    going along, so a module can report what it did before the failure.
    """
    postgres_client.ensure_psycopg(module)
    with postgres_client.failing_module_on_error(module, "PgBouncer admin console", result):
        with contextlib.closing(connect(module.params)) as conn:
            return action(conn)


def run_command(conn, command):
    """Send one console command; return its rows as a list of dicts (raw values)."""
    try:
        cursor = conn.execute(command)
    except Exception as exc:  # psycopg.Error, or anything a broken socket raises
        raise ConsoleError("%s failed: %s" % (command, postgres_client.error_message(exc)))
    if cursor.description is None:
        return []
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def to_int(value):
    """Counts arrive as int, Decimal (SHOW STATS) or text; None stays None."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, (decimal.Decimal, float)):
        return int(value)
    return int(str(value).strip())


def config_value(text):
    """Type one SHOW CONFIG value: '20' -> 20, '0.5' -> 0.5, anything else stays text.

    Octal-looking values such as unix_socket_mode '0777' stay text.
    """
    if text is None:
        return None
    if not isinstance(text, str):
        return text
    stripped = text.strip()
    if re.fullmatch(r"-?(0|[1-9]\d*)", stripped):
        return int(stripped)
    if re.fullmatch(r"-?(0|[1-9]\d*)\.\d+", stripped):
        return float(stripped)
    return text


def _typed_rows(rows, text_columns, flag_columns=()):
    typed = []
    for row in rows:
        item = {}
        for key, value in row.items():
            if key in text_columns:
                item[key] = value
            elif key in flag_columns:
                item[key] = bool(to_int(value))
            else:
                item[key] = to_int(value)
        typed.append(item)
    return typed


def parse_pools(rows):
    """SHOW POOLS rows with int counts, plus maxwait_seconds (maxwait + maxwait_us)."""
    pools = _typed_rows(rows, _POOL_TEXT_COLUMNS)
    for pool in pools:
        pool["maxwait_seconds"] = (pool.get("maxwait") or 0) + (pool.get("maxwait_us") or 0) / 1000000.0
    return pools


def parse_stats(rows):
    """SHOW STATS rows with int totals and averages (microseconds, bytes, counts)."""
    return _typed_rows(rows, _STATS_TEXT_COLUMNS)


def parse_databases(rows):
    """SHOW DATABASES rows with int sizes and boolean paused/disabled."""
    return _typed_rows(rows, _DATABASE_TEXT_COLUMNS, _DATABASE_FLAG_COLUMNS)


def parse_config(rows):
    """SHOW CONFIG rows as (values, details).

    ``values`` maps each key to its typed value; ``details`` maps each key to
    ``{"value", "default", "changeable"}`` where changeable is a boolean.
    """
    values = {}
    details = {}
    for row in rows:
        key = row["key"]
        value = config_value(row.get("value"))
        values[key] = value
        details[key] = {
            "value": value,
            "default": config_value(row.get("default")),
            "changeable": str(row.get("changeable", "")).strip().lower() == "yes",
        }
    return values, details


def parse_version_rows(rows):
    """SHOW VERSION -> ("PgBouncer 1.18.0", "1.18.0")."""
    if not rows:
        raise ConsoleError("SHOW VERSION returned no row")
    text = str(list(rows[0].values())[0]).strip()
    return text, format_version(parse_version(text))


def pool_totals(pools):
    """Sum the counts of every pool except the console's own."""
    user_pools = [pool for pool in pools if pool.get("database") != ADMIN_DATABASE]
    totals = {}
    for pool in user_pools:
        for key, value in pool.items():
            if key in _POOL_TEXT_COLUMNS or key in ("maxwait", "maxwait_us", "maxwait_seconds"):
                continue
            totals[key] = totals.get(key, 0) + (value or 0)
    totals["maxwait_seconds"] = max([pool["maxwait_seconds"] for pool in user_pools] or [0.0])
    totals["pools"] = len(user_pools)
    return totals


def read_console(conn, gather=SHOW_COMMANDS):
    """Run the requested SHOW commands; return their typed results."""
    result = {}
    if "version" in gather:
        result["version"], result["version_number"] = parse_version_rows(run_command(conn, "SHOW VERSION"))
    if "pools" in gather:
        result["pools"] = parse_pools(run_command(conn, "SHOW POOLS"))
        result["totals"] = pool_totals(result["pools"])
    if "stats" in gather:
        result["stats"] = parse_stats(run_command(conn, "SHOW STATS"))
    if "config" in gather:
        result["config"], result["config_details"] = parse_config(run_command(conn, "SHOW CONFIG"))
    if "databases" in gather:
        result["databases"] = parse_databases(run_command(conn, "SHOW DATABASES"))
    return result


def read_postgres_facts(conn):
    """max_connections and superuser_reserved_connections of the server."""
    facts = {}
    for setting, fact in (("max_connections", "server_max_connections"),
                          ("superuser_reserved_connections", "superuser_reserved_connections")):
        rows = run_command(conn, "SHOW %s" % setting)
        facts[fact] = to_int(list(rows[0].values())[0])
    return facts


def read_pgbouncer_facts(conn):
    """PgBouncer's version and how many databases it pools (the console excluded)."""
    _text, number = parse_version_rows(run_command(conn, "SHOW VERSION"))
    databases = parse_databases(run_command(conn, "SHOW DATABASES"))
    return {
        "pgbouncer_version": number,
        "databases": max(1, len([db for db in databases if db.get("name") != ADMIN_DATABASE])),
    }


def reload(conn):
    """RELOAD: PgBouncer re-reads pgbouncer.ini and auth_file in place; clients stay connected."""
    run_command(conn, "RELOAD")


def compare_config(expected, config_values):
    """Settings whose running value differs from the expected one.

    Numbers compare by value (PgBouncer prints 5.0 s as '5'), text case-insensitively.
    Returns a list of ``{"setting", "expected", "running"}``.
    """
    mismatched = []
    for key in sorted(expected):
        want = expected[key]
        have = config_values.get(key)
        if want is None:
            continue
        if isinstance(want, bool):
            want = int(want)
        same = False
        if isinstance(want, (int, float)) and isinstance(have, (int, float)) and not isinstance(have, bool):
            same = float(want) == float(have)
        elif have is not None:
            same = str(want).strip().lower() == str(have).strip().lower()
        if not same:
            mismatched.append({"setting": key, "expected": want, "running": have})
    return mismatched


def reload_and_compare(conn, expect, result):
    """RELOAD, then read which ``expect`` settings run with another value.

    Fills ``result`` as it goes (changed, reloaded, then config and mismatched when
    ``expect`` is set), so a failure after the RELOAD still reports that it happened.
    """
    reload(conn)
    result.update(changed=True, reloaded=True)
    if expect:
        running = parse_config(run_command(conn, "SHOW CONFIG"))[0]
        result["config"] = dict((key, running.get(key)) for key in expect)
        result["mismatched"] = compare_config(expect, running)
    return result


def read_live_facts(params):
    """Facts for the pool rules, read from PostgreSQL (``login_*`` options) and from
    PgBouncer's console (``admin_*`` options), each only when its host is set."""
    live = {}
    if params["login_host"]:
        with contextlib.closing(postgres_client.connect_with_login_options(params)) as conn:
            live.update(read_postgres_facts(conn))
    if params["admin_host"]:
        with contextlib.closing(connect_with_admin_options(params)) as conn:
            live.update(read_pgbouncer_facts(conn))
    return live
