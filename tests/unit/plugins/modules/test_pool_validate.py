# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""unitehub.platform.pool_validate in-process, with fake PostgreSQL and PgBouncer."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.common import warnings as ansible_warnings

from ansible_collections.unitehub.platform.plugins.module_utils import postgres_client
from ansible_collections.unitehub.platform.plugins.modules import pool_validate
from ansible_collections.unitehub.platform.tests.unit.plugins.modules.pool_harness import warning_texts

GOOD = {"pool_mode": "transaction", "default_pool_size": 20, "reserve_pool_size": 5, "server_idle_timeout": 600,
        "server_lifetime": 3600}
LIVE = dict(login_host="127.0.0.1", login_user="unitehub", login_password="pg-secret-77",
            login_db="unitehub", admin_host="127.0.0.1", admin_user="pgbouncer_admin",
            admin_password="admin-secret-88")
# The same connection under the option names before login_*, deprecated until 2.0.0.
OLD_NAMES = dict(postgres_host="127.0.0.1", postgres_port=5432, postgres_user="unitehub",
                 postgres_password="pg-secret-77", postgres_dbname="unitehub")


@pytest.fixture
def fresh_deprecations(monkeypatch):
    """A module process starts with no deprecation; in-process runs share Ansible's list."""
    monkeypatch.setattr(ansible_warnings, "_global_deprecations", {})


def deprecations(result):
    """(message, removal version, collection) of each deprecation the module returned
    (ansible-core 2.19 returns structured summaries, older releases plain dicts)."""
    found = []
    for item in result.get("deprecations", []):
        if "event" in item:
            found.append((item["event"]["msg"], item["version"], item["deprecator"]["resolved_name"]))
        else:
            found.append((item["msg"], item["version"], item["collection_name"]))
    return found


def test_good_settings_pass_without_any_connection(servers, run_module):
    rc, result, _out = run_module(pool_validate, {"settings": GOOD})

    assert rc == 0
    assert result["changed"] is False
    assert result["errors"] == []
    assert result["facts"] == {}
    assert result["effective"]["default_pool_size"] == 20
    assert result["recommended"]["pool_mode"] == "transaction"
    assert any("LISTEN/NOTIFY" in w for w in warning_texts(result))
    assert servers.connections == []


def test_bad_settings_fail_naming_each_one(servers, run_module):
    settings = dict(GOOD, default_pool_size=0, server_lifetime=300, pool_mode="fast")

    rc, result, _out = run_module(pool_validate, {"settings": settings})

    assert rc == 1
    assert result["failed"] is True
    assert result["msg"].startswith("3 pool setting errors: 1) ")
    for setting in ("default_pool_size", "pool_mode", "server_lifetime"):
        assert any(e.startswith(setting) for e in result["errors"])
        assert setting in result["msg"]
    assert result["effective"]["default_pool_size"] is None


def test_live_facts_are_read_and_checked(servers, run_module):
    rc, result, _out = run_module(pool_validate, dict(LIVE, settings=dict(GOOD, default_pool_size=95)))

    assert rc == 1
    assert result["facts"] == {"server_max_connections": 100, "superuser_reserved_connections": 3,
                               "pgbouncer_version": "1.18.0", "databases": 2}
    assert len(result["errors"]) == 1
    assert "2 database(s) x 1 user(s)" in result["errors"][0] and "accepts only 97" in result["errors"][0]
    postgres_conn, console_conn = servers.connections
    assert postgres_conn.kwargs["dbname"] == "unitehub" and postgres_conn.kwargs["port"] == 5432
    assert postgres_conn.executed == ["SHOW max_connections", "SHOW superuser_reserved_connections"]
    assert console_conn.kwargs["dbname"] == "pgbouncer" and console_conn.kwargs["prepare_threshold"] is None
    assert console_conn.executed == ["SHOW VERSION", "SHOW DATABASES"]
    assert postgres_conn.closed and console_conn.closed
    assert "pg-secret-77" not in json.dumps(result) and "admin-secret-88" not in json.dumps(result)


def test_prepared_statements_fail_on_the_live_pgbouncer_1_18(servers, run_module):
    rc, result, _out = run_module(pool_validate, dict(LIVE, settings=dict(GOOD, max_prepared_statements=100)))

    assert rc == 1
    assert result["errors"][0].startswith("max_prepared_statements (100) needs PgBouncer >= 1.21")
    assert "prepare_threshold=None" in result["errors"][0]


def test_given_databases_and_users_win_over_the_running_ones(servers, run_module):
    args = dict(LIVE, settings=GOOD, facts={"databases": 1, "users": 1, "server_max_connections": 1000})

    rc, result, _out = run_module(pool_validate, args)

    assert rc == 0, result
    assert result["facts"]["databases"] == 1  # the configuration being validated
    assert result["facts"]["server_max_connections"] == 100  # measured beats assumed


def test_unreachable_server_fails_naming_it_without_the_password(servers, run_module):
    args = dict(settings=GOOD, login_host="127.0.0.1", login_port=5999, login_password="pg-secret-77")

    rc, result, _out = run_module(pool_validate, args)

    assert rc == 1
    assert "leave login_host and admin_host out" in result["msg"]
    assert result["msg"].startswith("could not read facts to validate the pool settings against: could not connect "
                                    "to 127.0.0.1:5999/postgres as postgres: ")
    assert "pg-secret-77" not in json.dumps(result)


def test_check_mode_does_the_same_read_only_work(servers, run_module):
    rc, result, _out = run_module(pool_validate, dict(LIVE, settings=GOOD, _ansible_check_mode=True))

    assert rc == 0
    assert result["changed"] is False
    assert result["facts"]["server_max_connections"] == 100
    assert all(cmd.startswith("SHOW ") for conn in servers.connections for cmd in conn.executed)


def test_environment_shapes_the_recommendation(servers, run_module):
    rc, result, _out = run_module(pool_validate, {"settings": GOOD, "environment": "development"})
    assert rc == 0
    assert result["recommended"]["default_pool_size"] == 5


def test_missing_psycopg_is_reported_only_when_a_connection_is_wanted(servers, monkeypatch, run_module):
    monkeypatch.setattr(postgres_client, "HAS_PSYCOPG", False)
    monkeypatch.setattr(postgres_client, "PSYCOPG_IMPORT_ERROR", "ImportError: No module named 'psycopg'")

    rc, _result, _out = run_module(pool_validate, {"settings": GOOD})
    assert rc == 0

    rc, result, _out = run_module(pool_validate, dict(LIVE, settings=GOOD))
    assert rc == 1
    assert "psycopg" in result["msg"]


def test_old_postgres_option_names_still_connect_and_are_deprecated(servers, fresh_deprecations, run_module):
    rc, result, _out = run_module(pool_validate, dict(OLD_NAMES, settings=GOOD))

    assert rc == 0, result
    assert result["facts"] == {"server_max_connections": 100, "superuser_reserved_connections": 3}
    (conn,) = servers.connections
    assert (conn.kwargs["host"], conn.kwargs["port"], conn.kwargs["user"], conn.kwargs["password"],
            conn.kwargs["dbname"]) == ("127.0.0.1", 5432, "unitehub", "pg-secret-77", "unitehub")
    assert sorted(deprecations(result)) == [
        ("Alias '%s' is deprecated. See the module docs for more information" % old, "2.0.0", "unitehub.platform")
        for old in sorted(OLD_NAMES)]
    assert "pg-secret-77" not in json.dumps(result)


def test_new_option_names_bring_no_deprecation(servers, fresh_deprecations, run_module):
    rc, result, _out = run_module(pool_validate, dict(LIVE, settings=GOOD))
    assert rc == 0
    assert deprecations(result) == []


def test_an_unexpected_error_fails_with_context(servers, monkeypatch, run_module):
    def broken(settings, facts, environment, allow_insecure_auth):
        raise ValueError("rule fell over")

    monkeypatch.setattr(pool_validate, "validate", broken)

    rc, result, _out = run_module(pool_validate, {"settings": GOOD})

    assert rc == 1
    assert result["msg"] == "pool_validate: unexpected ValueError: rule fell over"


def test_auth_type_trust_fails_unless_allowed_and_then_warns(run_module):
    rc, result, _out = run_module(pool_validate, {"settings": dict(GOOD, auth_type="trust")})
    assert rc == 1
    assert result["errors"] == [e for e in result["errors"] if e.startswith("auth_type trust lets anyone")]
    assert len(result["errors"]) == 1

    rc, result, _out = run_module(pool_validate, {"settings": dict(GOOD, auth_type="trust"),
                                                  "allow_insecure_auth_type": True})
    assert rc == 0 and result["errors"] == []
    assert any(w.startswith("auth_type trust lets anyone") for w in warning_texts(result))
