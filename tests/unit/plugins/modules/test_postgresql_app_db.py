# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""unitehub.platform.postgresql_app_db up to the server: argument handling,
input validation before connecting, missing library and connection errors.
Its work against a real PostgreSQL is covered by
tests/integration/test_postgresql_app_db.py."""

from __future__ import annotations

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import postgres_app_db, postgres_client
from ansible_collections.unitehub.platform.plugins.modules import postgresql_app_db

SECRET = "s3cret-Value-42"


@pytest.fixture
def no_server(tmp_path):
    """A socket directory nobody listens in: any connection attempt fails."""
    return dict(login_host=str(tmp_path), login_port=5999, connect_timeout=2)


def test_empty_password_fails_before_connecting(no_server, run_module):
    rc, result, _out = run_module(postgresql_app_db, dict(name="app", password="", database="appdb", **no_server))

    assert rc == 1
    assert result["msg"] == "the password of role 'app' is empty; set a non-empty password"
    assert result["changed"] is False


def test_name_postgres_would_truncate_fails_before_connecting(no_server, run_module):
    rc, result, _out = run_module(postgresql_app_db, dict(name="a" * 64, password=SECRET, database="appdb", **no_server))

    assert rc == 1
    assert "longer than 63 bytes" in result["msg"]


def test_unknown_password_encryption_is_refused_by_the_argument_spec(no_server, run_module):
    rc, result, out = run_module(
        postgresql_app_db, dict(name="app", password=SECRET, database="appdb", password_encryption="crypt", **no_server)
    )

    assert rc == 1
    assert "password_encryption" in result["msg"] and "crypt" in result["msg"]
    assert SECRET not in out


def test_connection_failure_names_the_target_and_hides_the_password(no_server, run_module):
    rc, result, out = run_module(postgresql_app_db, dict(name="app", password=SECRET, database="appdb", **no_server))

    assert rc == 1
    assert result["msg"].startswith("cannot connect to PostgreSQL at %s port 5999 as postgres: " % no_server["login_host"])
    assert SECRET not in out
    assert result["role"] == "app" and result["database"] == "appdb"


def test_missing_psycopg_is_reported(no_server, run_module, monkeypatch):
    monkeypatch.setattr(postgres_client, "HAS_PSYCOPG", False)
    monkeypatch.setattr(postgres_client, "PSYCOPG_IMPORT_ERROR", "ImportError: No module named 'psycopg'")

    rc, result, _out = run_module(postgresql_app_db, dict(name="app", password=SECRET, database="appdb", **no_server))

    assert rc == 1
    assert "Failed to import the required Python library (psycopg)" in result["msg"]


def test_connection_failure_is_one_line(no_server, run_module):
    rc, result, _out = run_module(postgresql_app_db, dict(name="app", password=SECRET, database="appdb", **no_server))

    assert rc == 1
    assert "\n" not in result["msg"]


def test_an_unexpected_error_fails_with_context_and_the_result(no_server, run_module, monkeypatch):
    def broken(params, check_mode=False):
        raise KeyError("rolpassword")

    monkeypatch.setattr(postgres_app_db, "ensure_with_module_options", broken)

    rc, result, out = run_module(postgresql_app_db, dict(name="app", password=SECRET, database="appdb", **no_server))

    assert rc == 1
    assert result["msg"] == "postgresql_app_db: unexpected KeyError: 'rolpassword'"
    assert result["role"] == "app" and result["changed"] is False
    assert SECRET not in out
