# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""unitehub.platform.postgresql_app_db against the real PostgreSQL 15 of this host.

The module runs as root and connects as postgres over the Unix socket, through the
pg_ident map the postgresql role installs. Every test uses throwaway role and
database names and drops them afterwards.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import uuid

import psycopg
import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import scram

from ansible_collections.unitehub.platform.tests.integration.ansible_runner import (
    role_play,
    run_module,
    run_playbook,
    write_playbook,
)

pytestmark = pytest.mark.integration

MODULE = "unitehub.platform.postgresql_app_db"


def superuser():
    return psycopg.connect(host="/var/run/postgresql", port=5432, user="postgres", dbname="postgres",
                           autocommit=True, connect_timeout=5)


def query(sql, params=None):
    """First column of the first row of ``sql``, as the superuser."""
    with superuser() as conn:
        row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def execute(sql):
    """Run a statement without result rows (DDL, ALTER SYSTEM) as the superuser."""
    with superuser() as conn:
        conn.execute(sql)


def can_log_in(user, password, database):
    """A real password login over TCP on loopback, as the app does it."""
    try:
        with psycopg.connect(host="127.0.0.1", port=5432, user=user, password=password, dbname=database,
                             connect_timeout=5) as conn:
            return conn.execute("SELECT 1").fetchone()[0] == 1
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="module", autouse=True)
def superuser_access(tmp_path_factory):
    """The module needs the role's pg_hba/pg_ident lines; site.yml has normally put
    them there. If not, apply the postgresql role once with a throwaway app."""
    try:
        superuser().close()
        return
    except psycopg.OperationalError:
        pass
    name = "uhit_" + uuid.uuid4().hex[:8]
    directory = tmp_path_factory.mktemp("pgsetup")
    result = run_playbook(
        write_playbook(directory, role_play("unitehub.platform.postgresql")),
        extra_vars={"postgresql_app_user": name, "postgresql_app_database": name,
                    "postgresql_app_password": secrets.token_urlsafe(16), "postgresql_app_password_generated": False},
    )
    assert result.rc == 0, result.output[-4000:]
    execute("DROP DATABASE IF EXISTS %s" % name)
    execute("DROP ROLE IF EXISTS %s" % name)


@pytest.fixture
def names():
    suffix = uuid.uuid4().hex[:8]
    created = {"role": "uhit_r_" + suffix, "database": "uhit_d_" + suffix}
    yield created
    execute("DROP DATABASE IF EXISTS %s" % created["database"])
    execute("DROP ROLE IF EXISTS %s" % created["role"])


def args(names, password, **extra):
    base = {"name": names["role"], "database": names["database"], "password": password}
    base.update(extra)
    return base


def test_creates_role_and_database_then_is_idempotent(tmp_path, names):
    password = "pw-" + secrets.token_urlsafe(16)

    result, run = run_module(tmp_path, MODULE, args(names, password, conn_limit=7))

    assert result["changed"] is True, result
    assert result["role_changes"] == ["create"]
    assert result["database_changes"] == ["create"]
    assert result["password_changed"] is True
    assert result["database_encoding"] == "UTF8"
    assert result["changes"] == [
        "create role %s (login, connection limit 7)" % names["role"],
        "create database %s owned by %s" % (names["database"], names["role"]),
    ]
    assert password not in run.output and password not in str(result)
    # the verifier the module computed is one PostgreSQL accepts for a real login
    assert can_log_in(names["role"], password, names["database"])
    assert query("SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", (names["role"],)) == 7
    assert query("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (names["database"],)) == names["role"]

    again, _unused = run_module(tmp_path, MODULE, args(names, password, conn_limit=7))
    assert again["changed"] is False
    assert again["role_changes"] == [] and again["database_changes"] == []
    assert again["password_changed"] is False


def test_a_generated_password_is_stored_as_its_derived_cheap_verifier_and_kept(tmp_path, names):
    password = secrets.token_urlsafe(32)
    chosen = args(names, password)  # first stored as a chosen one: PostgreSQL's 4096 iterations
    assert run_module(tmp_path, MODULE, chosen)[0]["changed"] is True

    result, run = run_module(tmp_path, MODULE, dict(chosen, password_generated=True, generated_password_iterations=16))

    assert result["role_changes"] == ["password"], result
    stored = query("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (names["role"],))
    assert stored == scram.generated_password_verifier(password, names["role"], 16)  # what PgBouncer's userlist gets
    assert stored.split("$", 2)[2] not in run.output and password not in run.output
    assert can_log_in(names["role"], password, names["database"])  # libpq takes 16 iterations
    again = run_module(tmp_path, MODULE, dict(chosen, password_generated=True, generated_password_iterations=16))[0]
    assert again["changed"] is False


def test_a_chosen_password_is_refused_as_generated_before_any_change(tmp_path, names):
    result, run = run_module(tmp_path, MODULE, args(names, "correct horse battery staple", password_generated=True))

    assert result["failed"] is True
    assert "not a generated one: it has 28 characters" in result["msg"] and "password_generated to false" in result["msg"]
    assert "correct horse" not in run.output
    assert query("SELECT count(*) FROM pg_roles WHERE rolname = %s", (names["role"],)) == 0


def test_check_mode_reports_a_password_change_without_making_it(tmp_path, names):
    old = "old-" + secrets.token_urlsafe(16)
    new = "new-" + secrets.token_urlsafe(16)
    run_module(tmp_path, MODULE, args(names, old))
    stored_before = query("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (names["role"],))

    planned, run = run_module(tmp_path, MODULE, args(names, new), check=True)

    assert planned["changed"] is True and planned["role_changes"] == ["password"]
    assert new not in run.output and old not in run.output
    assert query("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (names["role"],)) == stored_before
    assert can_log_in(names["role"], old, names["database"])

    applied, _unused = run_module(tmp_path, MODULE, args(names, new))
    assert applied["role_changes"] == ["password"]
    assert can_log_in(names["role"], new, names["database"])
    assert not can_log_in(names["role"], old, names["database"])


def test_corrects_login_connection_limit_owner_and_storage(tmp_path, names):
    password = "pw-" + secrets.token_urlsafe(16)
    execute("CREATE ROLE %s NOLOGIN CONNECTION LIMIT 2" % names["role"])
    execute("CREATE DATABASE %s OWNER postgres" % names["database"])

    result, _unused = run_module(tmp_path, MODULE, args(names, password, conn_limit=-1, password_encryption="md5"))

    assert result["role_changes"] == ["login", "conn_limit", "password"]
    assert result["database_changes"] == ["owner"]
    assert query("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (names["role"],)).startswith("md5")
    assert query("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (names["role"],)) is True
    assert query("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (names["database"],)) == names["role"]
    # same password, now wanted as SCRAM: set again in the new format
    upgraded, _unused = run_module(tmp_path, MODULE, args(names, password))
    assert upgraded["role_changes"] == ["password"]
    assert query("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (names["role"],)).startswith("SCRAM-SHA-256$")
    assert can_log_in(names["role"], password, names["database"])


def test_password_never_reaches_the_server_log(tmp_path, names):
    password = "pw-" + secrets.token_urlsafe(16)
    log = "/var/log/postgresql/postgresql-15-main.log"
    size = os.path.getsize(log)
    execute("ALTER SYSTEM SET log_statement = 'all'")
    query("SELECT pg_reload_conf()")
    try:
        result, _unused = run_module(tmp_path, MODULE, args(names, password))
    finally:
        execute("ALTER SYSTEM RESET log_statement")
        query("SELECT pg_reload_conf()")
    assert result["changed"] is True
    with open(log, encoding="utf-8", errors="replace") as handle:
        handle.seek(size)
        logged = handle.read()
    assert "CREATE ROLE" in logged  # the statement was logged ...
    assert password not in logged  # ... with a verifier, not the password


def test_unreachable_server_fails_naming_it(tmp_path, names):
    result, _unused = run_module(tmp_path, MODULE, args(names, "pw", login_port=5999, connect_timeout=2))

    assert result["failed"] is True
    assert "cannot connect to PostgreSQL at /var/run/postgresql port 5999 as postgres" in result["msg"]
    assert query("SELECT count(*) FROM pg_roles WHERE rolname = %s", (names["role"],)) == 0


def test_psql_sees_the_same_result(names, tmp_path):
    """Cross-check with the psql client the brief asks for."""
    password = "pw-" + secrets.token_urlsafe(16)
    run_module(tmp_path, MODULE, args(names, password))
    env = dict(os.environ, PGPASSWORD=password)
    proc = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", names["role"], "-d", names["database"], "-w", "-Atc", "SELECT current_user"],
        capture_output=True, text=True, timeout=30, check=False, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == names["role"]
