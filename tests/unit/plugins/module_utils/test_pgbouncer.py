# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Admin console parsing and commands of module_utils/pgbouncer.py, on fake connections.
How the console is connected to is tested in test_postgres_client.py."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import pgbouncer, postgres_client
from ansible_collections.unitehub.platform.tests.unit.plugins.module_utils import pgbouncer_fakes as fakes


def console(fail_on=()):
    """A connection to the fake PgBouncer 1.18 console."""
    return fakes.FakeConnection(fakes.CONSOLE, {}, fail_on)


def rows(table):
    names, values = table
    return [dict(zip(names, row)) for row in values]


def test_pools_are_typed_with_maxwait_in_seconds():
    pools = pgbouncer.parse_pools(rows(fakes.POOLS))

    app = pools[1]
    assert app["database"] == "unitehub" and app["pool_mode"] == "transaction"
    assert app["cl_active"] == 12 and app["cl_waiting"] == 3 and app["sv_idle"] == 2 and app["sv_used"] == 1
    assert app["maxwait_seconds"] == pytest.approx(2.25)
    assert all(isinstance(app[k], int) for k in ("cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used", "maxwait"))


def test_text_counts_are_converted_too():
    pools = pgbouncer.parse_pools([{"database": "db", "user": "u", "cl_active": "4", "maxwait": "0", "maxwait_us": "5"}])
    assert pools[0]["cl_active"] == 4
    assert pools[0]["maxwait_seconds"] == pytest.approx(0.000005)


def test_totals_leave_out_the_console_pool():
    totals = pgbouncer.pool_totals(pgbouncer.parse_pools(rows(fakes.POOLS)))

    assert totals["pools"] == 2
    assert totals["cl_active"] == 13  # 12 + 1, not the console's own client
    assert totals["cl_waiting"] == 3
    assert totals["sv_idle"] == 3
    assert totals["maxwait_seconds"] == pytest.approx(2.25)


def test_totals_of_no_pool():
    assert pgbouncer.pool_totals([]) == {"maxwait_seconds": 0.0, "pools": 0}


def test_stats_decimals_become_ints():
    stats = pgbouncer.parse_stats(rows(fakes.STATS))

    app = stats[1]
    assert app["database"] == "unitehub"
    assert app["total_xact_count"] == 1520 and isinstance(app["total_xact_count"], int)
    assert app["avg_query_time"] == 398 and isinstance(app["avg_query_time"], int)
    assert not any(isinstance(value, Decimal) for row in stats for value in row.values())
    assert app["avg_xact_time"] == 412


def test_config_values_are_typed_and_details_kept():
    values, details = pgbouncer.parse_config(rows(fakes.CONFIG))

    assert values["default_pool_size"] == 20
    assert values["listen_port"] == 6432
    assert values["server_login_retry"] == 0.5
    assert values["pool_mode"] == "transaction"
    assert values["listen_addr"] == "127.0.0.1"
    assert values["unix_socket_mode"] == "0777"  # octal stays text
    assert values["server_reset_query"] == "DISCARD ALL"
    assert values["admin_users"] == "pgbouncer_admin"
    assert details["listen_port"] == {"value": 6432, "default": 6432, "changeable": False}
    assert details["max_client_conn"] == {"value": 4000, "default": 100, "changeable": True}
    assert details["auth_file"]["default"] is None


@pytest.mark.parametrize("text, typed", [
    ("20", 20), ("0", 0), ("-1", -1), ("0.5", 0.5), ("3600", 3600), ("0777", "0777"), ("1.2.3", "1.2.3"),
    ("", ""), ("12abc", "12abc"), (None, None),
])
def test_config_value(text, typed):
    value = pgbouncer.config_value(text)
    assert value == typed
    assert isinstance(value, type(typed))
    assert not isinstance(value, float) or isinstance(typed, float)  # 20 stays an int


def test_databases_have_boolean_flags():
    databases = pgbouncer.parse_databases(rows(fakes.DATABASES))

    app = databases[2]
    assert app["paused"] is True and app["disabled"] is False
    assert app["pool_size"] == 20 and app["reserve_pool"] == 5 and app["current_connections"] == 8
    assert app["force_user"] is None and app["pool_mode"] is None


def test_read_console_runs_only_what_is_asked():
    conn = console()

    info = pgbouncer.read_console(conn, ["pools", "version"])

    assert conn.executed == ["SHOW VERSION", "SHOW POOLS"]
    assert set(info) == {"version", "version_number", "pools", "totals"}
    assert info["version"] == "PgBouncer 1.18.0" and info["version_number"] == "1.18.0"


def test_read_console_everything():
    conn = console()

    info = pgbouncer.read_console(conn)

    assert conn.executed == ["SHOW VERSION", "SHOW POOLS", "SHOW STATS", "SHOW CONFIG", "SHOW DATABASES"]
    assert set(info) == {"version", "version_number", "pools", "totals", "stats", "config", "config_details",
                         "databases"}


def test_a_refused_command_raises_naming_it():
    conn = console(fail_on=("SHOW STATS",))

    with pytest.raises(pgbouncer.ConsoleError, match="^SHOW STATS failed: invalid command"):
        pgbouncer.read_console(conn, ["stats"])


def test_postgres_facts_are_ints():
    conn = fakes.FakeConnection(fakes.POSTGRES, {})

    assert pgbouncer.read_postgres_facts(conn) == {"server_max_connections": 100, "superuser_reserved_connections": 3}


def test_pgbouncer_facts_count_databases_without_the_console():
    conn = console()

    assert pgbouncer.read_pgbouncer_facts(conn) == {"pgbouncer_version": "1.18.0", "databases": 2}


def test_reload_sends_reload():
    conn = console()
    pgbouncer.reload(conn)
    assert conn.executed == ["RELOAD"]


def test_reload_and_compare_reports_as_it_goes():
    conn = console()
    result = {"changed": False, "reloaded": False}

    pgbouncer.reload_and_compare(conn, {"default_pool_size": 20, "listen_port": 6433}, result)

    assert conn.executed == ["RELOAD", "SHOW CONFIG"]
    assert result == {"changed": True, "reloaded": True, "config": {"default_pool_size": 20, "listen_port": 6432},
                      "mismatched": [{"setting": "listen_port", "expected": 6433, "running": 6432}]}


def test_reload_and_compare_a_failure_after_the_reload_keeps_it_reported():
    conn = console(fail_on=("SHOW CONFIG",))
    result = {"changed": False, "reloaded": False}

    with pytest.raises(pgbouncer.ConsoleError, match="^SHOW CONFIG failed: "):
        pgbouncer.reload_and_compare(conn, {"default_pool_size": 20}, result)
    assert result == {"changed": True, "reloaded": True}


def test_reload_and_compare_without_expectations_only_reloads():
    conn = console()
    assert pgbouncer.reload_and_compare(conn, {}, {}) == {"changed": True, "reloaded": True}
    assert conn.executed == ["RELOAD"]


def test_compare_config_by_value():
    running, _details = pgbouncer.parse_config(rows(fakes.CONFIG))

    same = {"default_pool_size": 20, "reserve_pool_timeout": 5.0, "pool_mode": "Transaction", "listen_port": "6432",
            "server_lifetime": 3600.0, "min_pool_size": None}
    assert pgbouncer.compare_config(same, running) == []

    different = {"default_pool_size": 25, "listen_port": 6433, "no_such_setting": 1}
    assert pgbouncer.compare_config(different, running) == [
        {"setting": "default_pool_size", "expected": 25, "running": 20},
        {"setting": "listen_port", "expected": 6433, "running": 6432},
        {"setting": "no_such_setting", "expected": 1, "running": None},
    ]


LIVE_OPTIONS = dict(login_host="127.0.0.1", login_port=5432, login_user="unitehub", login_password="pw",
                    login_db="unitehub", admin_host="127.0.0.1", admin_port=6432, admin_user="pgbouncer_admin",
                    admin_password="pw", connect_timeout=5)


def test_live_facts_come_from_both_servers_over_closed_connections(monkeypatch):
    fake = fakes.FakePsycopg({6432: fakes.CONSOLE, 5432: fakes.POSTGRES})
    monkeypatch.setattr(postgres_client, "psycopg", fake)

    live = pgbouncer.read_live_facts(LIVE_OPTIONS)

    assert live == {"server_max_connections": 100, "superuser_reserved_connections": 3,
                    "pgbouncer_version": "1.18.0", "databases": 2}
    postgres_conn, console_conn = fake.connections
    assert postgres_conn.kwargs["dbname"] == "unitehub" and "prepare_threshold" not in postgres_conn.kwargs
    assert console_conn.kwargs["dbname"] == "pgbouncer" and console_conn.kwargs["prepare_threshold"] is None
    assert postgres_conn.closed and console_conn.closed


def test_live_facts_skip_a_server_without_a_host(monkeypatch):
    fake = fakes.FakePsycopg({6432: fakes.CONSOLE, 5432: fakes.POSTGRES})
    monkeypatch.setattr(postgres_client, "psycopg", fake)

    facts = pgbouncer.read_live_facts(dict(LIVE_OPTIONS, login_host=None))
    assert facts == {"pgbouncer_version": "1.18.0", "databases": 2}
    assert [conn.kwargs["port"] for conn in fake.connections] == [6432]
    assert pgbouncer.read_live_facts(dict(LIVE_OPTIONS, login_host=None, admin_host=None)) == {}
