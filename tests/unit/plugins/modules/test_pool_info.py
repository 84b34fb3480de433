# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""unitehub.platform.pool_info in-process, with a fake PgBouncer console."""

from __future__ import annotations

import json

from ansible_collections.unitehub.platform.plugins.module_utils import pgbouncer, postgres_client
from ansible_collections.unitehub.platform.plugins.modules import pool_info
from ansible_collections.unitehub.platform.tests.unit.plugins.module_utils import pgbouncer_fakes as fakes
from ansible_collections.unitehub.platform.tests.unit.plugins.modules.pool_harness import fake_servers

ARGS = {"admin_host": "127.0.0.1", "admin_user": "pgbouncer_admin", "admin_password": "admin-secret-88"}


def test_everything_is_gathered_with_numeric_types(servers, run_module):
    rc, result, _out = run_module(pool_info, ARGS)

    assert rc == 0
    assert result["changed"] is False
    assert result["version"] == "PgBouncer 1.18.0" and result["version_number"] == "1.18.0"
    app_pool = [p for p in result["pools"] if p["database"] == "unitehub"][0]
    assert (app_pool["cl_active"], app_pool["cl_waiting"], app_pool["sv_active"], app_pool["sv_idle"],
            app_pool["sv_used"], app_pool["maxwait"]) == (12, 3, 5, 2, 1, 2)
    assert result["totals"]["cl_waiting"] == 3 and result["totals"]["pools"] == 2
    app_stats = [s for s in result["stats"] if s["database"] == "unitehub"][0]
    assert app_stats["total_xact_count"] == 1520 and app_stats["avg_query_time"] == 398
    assert app_stats["avg_xact_time"] == 412
    assert result["config"]["default_pool_size"] == 20 and result["config"]["pool_mode"] == "transaction"
    assert result["config_details"]["listen_port"]["changeable"] is False
    assert [d["name"] for d in result["databases"]] == ["reports", "pgbouncer", "unitehub"]
    assert "admin-secret-88" not in json.dumps(result)


def test_connects_to_the_console_with_autocommit_and_no_prepare(servers, run_module):
    run_module(pool_info, dict(ARGS, admin_port=6432, connect_timeout=3))

    (conn,) = servers.connections
    assert conn.kwargs == {"host": "127.0.0.1", "port": 6432, "user": "pgbouncer_admin", "password": "admin-secret-88",
                           "dbname": "pgbouncer", "autocommit": True, "prepare_threshold": None, "connect_timeout": 3,
                           "cursor_factory": fakes.FakeClientCursor}
    assert conn.closed


def test_gather_limits_the_commands(servers, run_module):
    rc, result, _out = run_module(pool_info, dict(ARGS, gather=["pools"]))

    assert rc == 0
    assert servers.connections[0].executed == ["SHOW POOLS"]
    assert "config" not in result and "stats" not in result and "pools" in result and "totals" in result


def test_check_mode_reads_the_same(servers, run_module):
    rc, result, _out = run_module(pool_info, dict(ARGS, _ansible_check_mode=True, gather=["config"]))
    assert rc == 0 and result["config"]["listen_port"] == 6432


def test_unknown_gather_item_is_refused(servers, run_module):
    rc, result, _out = run_module(pool_info, dict(ARGS, gather=["clients"]))
    assert rc == 1 and "gather" in result["msg"]
    assert servers.connections == []


def test_wrong_password_fails_cleanly(monkeypatch, run_module):
    fake_servers(monkeypatch, {6432: fakes.CONSOLE}, refuse_login=("pgbouncer_admin",))

    rc, result, _out = run_module(pool_info, ARGS)

    assert rc == 1
    assert result["msg"] == ("PgBouncer admin console: could not connect to 127.0.0.1:6432/pgbouncer as "
                             "pgbouncer_admin: FATAL: password authentication failed for user \"pgbouncer_admin\"; "
                             "check user and password")
    assert "admin-secret-88" not in json.dumps(result)


def test_stats_user_refused_a_command_fails_naming_it(monkeypatch, run_module):
    fake = fake_servers(monkeypatch, {6432: fakes.CONSOLE}, fail_on=("SHOW CONFIG",))

    rc, result, _out = run_module(pool_info, ARGS)

    assert rc == 1
    assert result["msg"].startswith("PgBouncer admin console: SHOW CONFIG failed: ")
    assert fake.connections[0].closed


def test_missing_psycopg(servers, monkeypatch, run_module):
    monkeypatch.setattr(postgres_client, "HAS_PSYCOPG", False)
    monkeypatch.setattr(postgres_client, "PSYCOPG_IMPORT_ERROR", "ImportError: No module named 'psycopg'")

    rc, result, _out = run_module(pool_info, ARGS)

    assert rc == 1
    assert "Failed to import the required Python library (psycopg)" in result["msg"]


def test_an_unexpected_error_fails_with_context_and_closes_the_connection(servers, monkeypatch, run_module):
    def broken(conn, gather):
        raise RuntimeError("console answered something new")

    monkeypatch.setattr(pgbouncer, "read_console", broken)

    rc, result, _out = run_module(pool_info, ARGS)

    assert rc == 1
    assert result["msg"] == "PgBouncer admin console: unexpected RuntimeError: console answered something new"
    assert servers.connections[0].closed
