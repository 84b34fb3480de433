# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The application's PostgreSQL role and database, for ``postgresql_app_db``.

Planning is pure (what must change, in words without the password); applying
runs the SQL the plan calls for. Passwords are compared with and sent as
verifiers (``scram``), never in clear.
"""

from __future__ import annotations

from ansible_collections.unitehub.platform.plugins.module_utils import postgres_client
from ansible_collections.unitehub.platform.plugins.module_utils.scram import (
    PASSWORD_ENCRYPTIONS,
    SCRAM_ITERATIONS,
    generated_password_problem,
    generated_password_verifier,
    make_verifier,
    password_matches,
    scram_iterations,
    verifier_encryption,
)

NAME_MAX_BYTES = 63  # NAMEDATALEN - 1: longer identifiers are silently truncated
APPLICATION_NAME = "unitehub.platform.postgresql_app_db"


class PostgresAppError(Exception):
    """A request the module cannot carry out; the message says why and what to do."""


# --------------------------------------------------------------------------
# Planning (pure)
# --------------------------------------------------------------------------

def check_name(kind, name):
    """PostgreSQL truncates identifiers longer than 63 bytes without an error;
    refuse them instead of creating a differently named object."""
    if not name:
        raise PostgresAppError("%s name is empty; give a name such as 'unitehub'" % kind)
    if len(name.encode("utf-8")) > NAME_MAX_BYTES:
        raise PostgresAppError(
            "%s name %r is longer than %d bytes and PostgreSQL would truncate it; choose a shorter name"
            % (kind, name, NAME_MAX_BYTES)
        )


def validate_request(role, password, database, conn_limit=-1, encryption="scram-sha-256", generated_iterations=None):
    """Refuse bad input before the server is asked anything. ``generated_iterations``
    (None for a password an operator chose) is the SCRAM iteration count of a generated one."""
    check_name("role", role)
    check_name("database", database)
    if not password:
        raise PostgresAppError("the password of role %r is empty; set a non-empty password" % role)
    if conn_limit < -1:
        raise PostgresAppError("conn_limit %d is invalid; use -1 (no limit) or a number of connections" % conn_limit)
    if encryption not in PASSWORD_ENCRYPTIONS:
        raise PostgresAppError(
            "password_encryption %r is not one of %s" % (encryption, ", ".join(PASSWORD_ENCRYPTIONS))
        )
    if generated_iterations is None:
        return
    if encryption != "scram-sha-256":
        raise PostgresAppError("password_generated needs password_encryption scram-sha-256, not %s" % encryption)
    if generated_iterations < 1:
        raise PostgresAppError("generated_password_iterations %d is invalid; use 1 or more" % generated_iterations)
    problem = generated_password_problem(password)
    if problem is not None:
        raise PostgresAppError(
            "password_generated is set, but the password of role %r is not a generated one: %s. Cheap verifiers are "
            "only for generated random passwords: generate one (32 or more letters and digits), or set "
            "password_generated to false to store this one with %d iterations" % (role, problem, SCRAM_ITERATIONS))


def wanted_verifier(password, name, encryption, generated_iterations=None):
    """The verifier a new password is stored as: the generated password's own (fixed by
    password, name and iterations), or a fresh one with PostgreSQL's defaults."""
    if generated_iterations is not None:
        return generated_password_verifier(password, name, generated_iterations)
    return make_verifier(password, name, encryption)


def password_is_current(stored, password, name, encryption, generated_iterations=None):
    """Whether the stored verifier may stay. A generated password's verifier must be exactly
    the derived one, which PgBouncer's userlist holds too; an operator's password must match
    with at least PostgreSQL's default iterations (not a cheap verifier left from before)."""
    if generated_iterations is not None:
        return stored == generated_password_verifier(password, name, generated_iterations)
    if verifier_encryption(stored) != encryption or not password_matches(stored, password, name):
        return False
    return encryption != "scram-sha-256" or scram_iterations(stored) >= SCRAM_ITERATIONS


def plan_role(current, name, password, conn_limit, encryption, generated_iterations=None):
    """What must change so the role ``name`` exists, can log in, has
    ``conn_limit`` and ``password`` (stored with ``encryption``, as a generated
    password's verifier when ``generated_iterations`` is given).

    ``current`` is None or a dict with can_login, conn_limit, password (the
    stored verifier). Returns a list out of: create, login, conn_limit, password.
    """
    if current is None:
        return ["create"]
    changes = []
    if not current["can_login"]:
        changes.append("login")
    if current["conn_limit"] != conn_limit:
        changes.append("conn_limit")
    if not password_is_current(current["password"], password, name, encryption, generated_iterations):
        changes.append("password")
    return changes


def plan_database(current, owner):
    """``current`` is None or a dict with owner. Returns [], ['create'] or ['owner']."""
    if current is None:
        return ["create"]
    return ["owner"] if current["owner"] != owner else []


def describe(role, role_changes, database, database_changes, conn_limit):
    """Human-readable change list; never contains a password."""
    text = {
        "create": "create role %s (login, connection limit %d)" % (role, conn_limit),
        "login": "allow role %s to log in" % role,
        "conn_limit": "set the connection limit of role %s to %d" % (role, conn_limit),
        "password": "set the password of role %s" % role,
    }
    lines = [text[change] for change in role_changes]
    if "create" in database_changes:
        lines.append("create database %s owned by %s" % (database, role))
    if "owner" in database_changes:
        lines.append("make role %s the owner of database %s" % (role, database))
    return lines


# --------------------------------------------------------------------------
# Server side
# --------------------------------------------------------------------------

def fetch_role(conn, name):
    try:
        row = conn.execute(
            "SELECT rolcanlogin, rolconnlimit, rolpassword FROM pg_catalog.pg_authid WHERE rolname = %s", (name,)
        ).fetchone()
    except postgres_client.psycopg.errors.InsufficientPrivilege as exc:
        raise PostgresAppError(
            "cannot read pg_authid (%s); connect as a superuser (login_user, postgres by default)"
            % postgres_client.error_message(exc)
        ) from exc
    if row is None:
        return None
    return {"can_login": row[0], "conn_limit": row[1], "password": row[2]}


def fetch_database(conn, name):
    row = conn.execute(
        "SELECT pg_catalog.pg_get_userbyid(datdba), pg_catalog.pg_encoding_to_char(encoding) "
        "FROM pg_catalog.pg_database WHERE datname = %s",
        (name,),
    ).fetchone()
    if row is None:
        return None
    return {"owner": row[0], "encoding": row[1]}


def apply_role(conn, name, password, conn_limit, encryption, changes, generated_iterations=None):
    sql = postgres_client.psycopg.sql
    role = sql.Identifier(name)
    limit = sql.Literal(conn_limit)
    if "create" in changes:
        verifier = sql.Literal(wanted_verifier(password, name, encryption, generated_iterations))
        conn.execute(sql.SQL("CREATE ROLE {} WITH LOGIN CONNECTION LIMIT {} PASSWORD {}").format(role, limit, verifier))
        return
    if "login" in changes:
        conn.execute(sql.SQL("ALTER ROLE {} WITH LOGIN").format(role))
    if "conn_limit" in changes:
        conn.execute(sql.SQL("ALTER ROLE {} WITH CONNECTION LIMIT {}").format(role, limit))
    if "password" in changes:
        verifier = sql.Literal(wanted_verifier(password, name, encryption, generated_iterations))
        conn.execute(sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(role, verifier))


def apply_database(conn, name, owner, encoding, changes):
    sql = postgres_client.psycopg.sql
    if "create" in changes:
        conn.execute(
            sql.SQL("CREATE DATABASE {} WITH OWNER {} ENCODING {} TEMPLATE template0").format(
                sql.Identifier(name), sql.Identifier(owner), sql.Literal(encoding)
            )
        )
    elif "owner" in changes:
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(name), sql.Identifier(owner)))


def ensure_app_database(conn, role, password, database, conn_limit=-1, encryption="scram-sha-256",
                        encoding="UTF8", check_mode=False, generated_iterations=None):
    """Make sure ``role`` can log in with ``password`` and owns ``database``.

    Returns a dict: changed, role_changes, database_changes, password_changed,
    changes (human-readable; no secret), database_encoding. In check mode nothing
    is executed.
    """
    validate_request(role, password, database, conn_limit, encryption, generated_iterations)
    role_changes = plan_role(fetch_role(conn, role), role, password, conn_limit, encryption, generated_iterations)
    current = fetch_database(conn, database)
    database_changes = plan_database(current, role)
    if not check_mode:
        apply_role(conn, role, password, conn_limit, encryption, role_changes, generated_iterations)
        apply_database(conn, database, role, encoding, database_changes)
        if "create" in database_changes:  # the server's spelling of the encoding it was created with
            current = fetch_database(conn, database)
    return {
        "changed": bool(role_changes or database_changes),
        "role_changes": role_changes,
        "database_changes": database_changes,
        "password_changed": "password" in role_changes or "create" in role_changes,
        "changes": describe(role, role_changes, database, database_changes, conn_limit),
        "database_encoding": current["encoding"] if current else encoding,
    }


def ensure_with_module_options(params, check_mode=False):
    """``ensure_app_database`` as the module's options say: the input checked
    first, then a connection with the ``login_*`` options. Every failure is a
    PostgresAppError whose message names what failed and never the password."""
    generated_iterations = params["generated_password_iterations"] if params["password_generated"] else None
    validate_request(params["name"], params["password"], params["database"], params["conn_limit"],
                     params["password_encryption"], generated_iterations)
    try:
        conn = postgres_client.connect_with_login_options(params, APPLICATION_NAME)
    except postgres_client.ConnectError as exc:
        raise PostgresAppError("cannot connect to PostgreSQL at %s port %s as %s: %s"
                               % (params["login_host"], params["login_port"], params["login_user"], exc.reason)) from exc
    try:
        with conn:
            return ensure_app_database(conn, params["name"], params["password"], params["database"],
                                       conn_limit=params["conn_limit"], encryption=params["password_encryption"],
                                       encoding=params["encoding"], check_mode=check_mode,
                                       generated_iterations=generated_iterations)
    except postgres_client.psycopg.Error as exc:
        raise PostgresAppError("PostgreSQL refused the change: %s" % postgres_client.error_message(exc)) from exc
