# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The application's PostgreSQL role and database, for ``postgresql_app_db``.

Passwords never travel or get stored in clear:

* the current password is compared with the role's stored verifier
  (``pg_authid.rolpassword``) by recomputing it here: SCRAM-SHA-256 with the
  stored salt and iteration count, or MD5;
* a new password is sent as a ready-made verifier, the way ``psql \\password``
  does, so it never shows up in the server log even with ``log_statement=all``.

The pure functions (SASLprep, verifiers, planning) are unit tested without a
server; the functions taking a connection run the SQL the plan calls for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stringprep
import traceback
import unicodedata

try:
    import psycopg
    from psycopg import sql

    HAS_PSYCOPG = True
    PSYCOPG_IMPORT_ERROR = None
except ImportError:
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()

SCRAM_PREFIX = "SCRAM-SHA-256$"
SCRAM_ITERATIONS = 4096  # PostgreSQL's default (scram_iterations)
SCRAM_SALT_BYTES = 16  # PostgreSQL's SCRAM_DEFAULT_SALT_LEN
PASSWORD_ENCRYPTIONS = ("scram-sha-256", "md5")
NAME_MAX_BYTES = 63  # NAMEDATALEN - 1: longer identifiers are silently truncated


class PostgresAppError(Exception):
    """A request the module cannot carry out; the message says why and what to do."""


# --------------------------------------------------------------------------
# Password verifiers
# --------------------------------------------------------------------------

def _prohibited(char):
    return (
        stringprep.in_table_c12(char)
        or stringprep.in_table_c21_c22(char)
        or stringprep.in_table_c3(char)
        or stringprep.in_table_c4(char)
        or stringprep.in_table_c5(char)
        or stringprep.in_table_c6(char)
        or stringprep.in_table_c7(char)
        or stringprep.in_table_c8(char)
        or stringprep.in_table_c9(char)
        or stringprep.in_table_a1(char)
    )


def saslprep(password):
    """SASLprep (RFC 4013) as PostgreSQL applies it to SCRAM passwords.

    Returns the prepared string, or None when the password is not a valid
    SASLprep string; PostgreSQL then uses the password unchanged. Pure ASCII is
    returned as is, as PostgreSQL does.
    """
    if password.isascii():
        return password
    mapped = []
    for char in password:
        if stringprep.in_table_c12(char):  # non-ASCII spaces map to a space
            mapped.append(" ")
        elif not stringprep.in_table_b1(char):  # "commonly mapped to nothing" are dropped
            mapped.append(char)
    prepared = unicodedata.normalize("NFKC", "".join(mapped))
    if any(_prohibited(char) for char in prepared):
        return None
    if any(stringprep.in_table_d1(char) for char in prepared):  # right-to-left text
        if any(stringprep.in_table_d2(char) for char in prepared):
            return None
        if not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1])):
            return None
    return prepared


def _scram_keys(password, salt, iterations):
    prepared = saslprep(password)
    secret = (prepared if prepared is not None else password).encode("utf-8")
    salted = hashlib.pbkdf2_hmac("sha256", secret, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return stored_key, server_key


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def scram_sha256_verifier(password, salt=None, iterations=SCRAM_ITERATIONS):
    """The ``rolpassword`` PostgreSQL stores for ``password`` with SCRAM-SHA-256:
    ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (base64)."""
    if salt is None:
        salt = os.urandom(SCRAM_SALT_BYTES)
    stored_key, server_key = _scram_keys(password, salt, iterations)
    return "%s%d:%s$%s:%s" % (SCRAM_PREFIX, iterations, _b64(salt), _b64(stored_key), _b64(server_key))


def md5_verifier(password, username):
    """The ``rolpassword`` PostgreSQL stores for ``password`` with MD5."""
    return "md5" + hashlib.md5((password + username).encode("utf-8")).hexdigest()  # nosec - PostgreSQL's format


def make_verifier(password, username, encryption):
    if encryption == "scram-sha-256":
        return scram_sha256_verifier(password)
    if encryption == "md5":
        return md5_verifier(password, username)
    raise PostgresAppError(
        "password_encryption %r is not one of %s" % (encryption, ", ".join(PASSWORD_ENCRYPTIONS))
    )


def verifier_encryption(stored):
    """'scram-sha-256', 'md5', or None (no password, or a form this code does not know)."""
    if not stored:
        return None
    if stored.startswith(SCRAM_PREFIX):
        return "scram-sha-256"
    if stored.startswith("md5") and len(stored) == 35:
        return "md5"
    return None


def password_matches(stored, password, username):
    """Whether ``password`` is the one behind the stored verifier. Unknown or
    malformed verifiers never match, so the password gets set again."""
    encryption = verifier_encryption(stored)
    if encryption == "md5":
        return hmac.compare_digest(stored, md5_verifier(password, username))
    if encryption != "scram-sha-256":
        return False
    try:
        head, keys = stored[len(SCRAM_PREFIX):].split("$", 1)
        iterations, salt = head.split(":", 1)
        stored_key, server_key = keys.split(":", 1)
        expected = _scram_keys(password, base64.b64decode(salt, validate=True), int(iterations))
        actual = (base64.b64decode(stored_key, validate=True), base64.b64decode(server_key, validate=True))
    except ValueError:  # binascii.Error is a ValueError
        return False
    return hmac.compare_digest(expected[0], actual[0]) and hmac.compare_digest(expected[1], actual[1])


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


def plan_role(current, name, password, conn_limit, encryption):
    """What must change so the role ``name`` exists, can log in, has
    ``conn_limit`` and ``password`` (stored with ``encryption``).

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
    stored = current["password"]
    if verifier_encryption(stored) != encryption or not password_matches(stored, password, name):
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

def connect(host, port, user, dbname, password=None, connect_timeout=10):
    """Autocommit connection (CREATE DATABASE cannot run in a transaction).
    ``host`` is a Unix socket directory (peer authentication) or a host name."""
    params = dict(
        host=host,
        port=port,
        user=user,
        dbname=dbname,
        connect_timeout=connect_timeout,
        autocommit=True,
        application_name="unitehub.platform.postgresql_app_db",
    )
    if password:
        params["password"] = password
    return psycopg.connect(**params)


def fetch_role(conn, name):
    try:
        row = conn.execute(
            "SELECT rolcanlogin, rolconnlimit, rolpassword FROM pg_catalog.pg_authid WHERE rolname = %s", (name,)
        ).fetchone()
    except psycopg.errors.InsufficientPrivilege as exc:
        raise PostgresAppError(
            "cannot read pg_authid (%s); connect as a superuser (login_user, postgres by default)" % exc
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


def apply_role(conn, name, password, conn_limit, encryption, changes):
    role = sql.Identifier(name)
    limit = sql.Literal(conn_limit)
    if "create" in changes:
        verifier = sql.Literal(make_verifier(password, name, encryption))
        conn.execute(sql.SQL("CREATE ROLE {} WITH LOGIN CONNECTION LIMIT {} PASSWORD {}").format(role, limit, verifier))
        return
    if "login" in changes:
        conn.execute(sql.SQL("ALTER ROLE {} WITH LOGIN").format(role))
    if "conn_limit" in changes:
        conn.execute(sql.SQL("ALTER ROLE {} WITH CONNECTION LIMIT {}").format(role, limit))
    if "password" in changes:
        verifier = sql.Literal(make_verifier(password, name, encryption))
        conn.execute(sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(role, verifier))


def apply_database(conn, name, owner, encoding, changes):
    if "create" in changes:
        conn.execute(
            sql.SQL("CREATE DATABASE {} WITH OWNER {} ENCODING {} TEMPLATE template0").format(
                sql.Identifier(name), sql.Identifier(owner), sql.Literal(encoding)
            )
        )
    elif "owner" in changes:
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(name), sql.Identifier(owner)))


def ensure_app_database(conn, role, password, database, conn_limit=-1, encryption="scram-sha-256",
                        encoding="UTF8", check_mode=False):
    """Make sure ``role`` can log in with ``password`` and owns ``database``.

    Returns a dict: changed, role_changes, database_changes, password_changed,
    changes (human-readable; no secret). In check mode nothing is executed.
    """
    validate_request(role, password, database, conn_limit, encryption)
    role_changes = plan_role(fetch_role(conn, role), role, password, conn_limit, encryption)
    database_changes = plan_database(fetch_database(conn, database), role)
    if not check_mode:
        apply_role(conn, role, password, conn_limit, encryption, role_changes)
        apply_database(conn, database, role, encoding, database_changes)
    return {
        "changed": bool(role_changes or database_changes),
        "role_changes": role_changes,
        "database_changes": database_changes,
        "password_changed": "password" in role_changes or "create" in role_changes,
        "changes": describe(role, role_changes, database, database_changes, conn_limit),
    }


def validate_request(role, password, database, conn_limit=-1, encryption="scram-sha-256"):
    """Refuse bad input before the server is asked anything."""
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
