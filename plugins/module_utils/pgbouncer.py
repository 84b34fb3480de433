# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PgBouncer's admin console, read and driven with psycopg 3.

The console is the virtual database ``pgbouncer``; ``postgres_client`` opens it
(simple query protocol only: autocommit, no prepared statements, client-side
binding) and every command here is sent without parameters.

The userlist part (pure) turns the users the role is given into the secrets its
``auth_file`` holds: SCRAM verifiers, never a plain password (``userlist_errors``,
``userlist_secrets``).

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

from ansible_collections.unitehub.platform.plugins.module_utils import postgres_client, scram
from ansible_collections.unitehub.platform.plugins.module_utils.pool_settings import format_version, parse_version

ADMIN_DATABASE = postgres_client.ADMIN_CONSOLE_DATABASE
SHOW_COMMANDS = ("version", "pools", "stats", "config", "databases")

# Columns of SHOW POOLS / SHOW DATABASES that are text; every other column is a count.
_POOL_TEXT_COLUMNS = ("database", "user", "pool_mode")
_DATABASE_TEXT_COLUMNS = ("name", "host", "database", "force_user", "pool_mode")
_DATABASE_FLAG_COLUMNS = ("paused", "disabled")
_STATS_TEXT_COLUMNS = ("database",)


# --------------------------------------------------------------------------
# The userlist (auth_file): verifiers only
# --------------------------------------------------------------------------

_USERLIST_LINE = re.compile(r'^"((?:[^"]|"")*)"\s+"((?:[^"]|"")*)"')


def parse_userlist(text):
    """{user: secret} of an auth_file: ``"user" "secret"`` lines, a quote written twice."""
    entries = {}
    for line in (text or "").splitlines():
        found = _USERLIST_LINE.match(line.strip())
        if found:
            entries[found.group(1).replace('""', '"')] = found.group(2).replace('""', '"')
    return entries


def _is_secret(password):
    return scram.verifier_encryption(password) is not None


def userlist_errors(users, iterations):
    """Every user whose password cannot go to the userlist as a verifier; [] when all can.

    ``users``: dicts with name, password, generated (a generated random password),
    console (an admin-console user, with no PostgreSQL role behind it) and variable
    (where it was set, for the message). A SCRAM or md5 secret is taken as given. A
    generated password must meet the contract. A password an operator chose is fine
    for a console user (a verifier with 4096 iterations), but not for a pool user:
    PgBouncer passes a client's SCRAM proof on only with PostgreSQL's own verifier,
    which the role can derive for a generated password only."""
    errors = []
    if int(iterations) < 1:
        errors.append("pgbouncer_generated_password_iterations (%s) must be at least 1" % iterations)
    for user in users:
        name, password, variable = user["name"], user["password"] or "", user["variable"]
        if _is_secret(password):
            continue
        if user.get("generated"):
            problem = scram.generated_password_problem(password)
            if problem is not None:
                errors.append(
                    "%s: the password of %s is marked generated, but %s. Cheap verifiers are only for generated random "
                    "passwords: generate it (32 or more letters and digits, e.g. lookup('ansible.builtin.password', ..., "
                    "chars=['ascii_letters', 'digits'], length=32)) or stop marking it generated" % (variable, name, problem))
        elif not user.get("console"):
            errors.append(
                "%s: the password of %s is neither marked generated nor a SCRAM verifier. PgBouncer's files hold no "
                "plain password, and its SCRAM pass-through needs PostgreSQL's very verifier: give that verifier "
                "(SELECT rolpassword FROM pg_authid WHERE rolname = '%s') as the password, or use a generated password "
                "and mark it generated (pgbouncer_app_password_generated, or generated: true in the entry)"
                % (variable, name, name))
    return errors


def userlist_secrets(users, current_text, iterations):
    """[name, secret] for each user, as the userlist holds them: a secret given as is; a
    generated password's derived verifier (the same one PostgreSQL holds); for a console
    user's chosen password, the verifier already in ``current_text`` when it still matches
    (so a second run changes nothing), else a fresh one with PostgreSQL's defaults."""
    current = parse_userlist(current_text)
    lines = []
    for user in users:
        name, password = user["name"], user["password"]
        if _is_secret(password):
            secret = password
        elif user.get("generated"):
            secret = scram.generated_password_verifier(password, name, int(iterations))
        else:
            kept = current.get(name)
            fresh_enough = (scram.scram_iterations(kept) or 0) >= scram.SCRAM_ITERATIONS
            secret = kept if fresh_enough and scram.password_matches(kept, password, name) else \
                scram.scram_sha256_verifier(password)
        lines.append([name, secret])
    return lines


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
