# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""unitehub.platform.pool_reload in-process, with a fake PgBouncer console."""

from __future__ import annotations

import json
import signal
import time

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import processes
from ansible_collections.unitehub.platform.plugins.modules import pool_reload
from ansible_collections.unitehub.platform.tests.unit.plugins.module_utils import pgbouncer_fakes as fakes
from ansible_collections.unitehub.platform.tests.unit.plugins.module_utils.test_processes import started_sleep
from ansible_collections.unitehub.platform.tests.unit.plugins.modules.pool_harness import fake_servers

ARGS = {"admin_host": "127.0.0.1", "admin_user": "pgbouncer_admin", "admin_password": "admin-secret-88"}


def test_reload_is_sent_on_the_console(servers, run_module):
    rc, result, _out = run_module(pool_reload, ARGS)

    assert rc == 0
    assert result["changed"] is True and result["reloaded"] is True
    (conn,) = servers.connections
    assert conn.executed == ["RELOAD"]
    assert conn.kwargs["dbname"] == "pgbouncer" and conn.kwargs["autocommit"] is True
    assert conn.closed
    assert "admin-secret-88" not in json.dumps(result)


def test_expected_settings_are_checked_after_the_reload(servers, run_module):
    expect = {"default_pool_size": 20, "pool_mode": "transaction", "server_lifetime": 3600.0}
    rc, result, _out = run_module(pool_reload, dict(ARGS, expect=expect))

    assert rc == 0
    assert servers.connections[0].executed == ["RELOAD", "SHOW CONFIG"]
    assert result["config"] == {"default_pool_size": 20, "pool_mode": "transaction", "server_lifetime": 3600}
    assert result["mismatched"] == []


def test_a_setting_that_needs_a_restart_fails_and_says_so(servers, run_module):
    rc, result, _out = run_module(pool_reload, dict(ARGS, expect={"listen_port": 6433, "default_pool_size": 20}))

    assert rc == 1
    assert result["reloaded"] is True and result["changed"] is True
    assert result["mismatched"] == [{"setting": "listen_port", "expected": 6433, "running": 6432}]
    assert result["msg"].startswith("after RELOAD listen_port runs 6432, expected 6433: ")
    assert "restart PgBouncer" in result["msg"]


def test_check_mode_sends_nothing(servers, run_module):
    rc, result, _out = run_module(pool_reload, dict(ARGS, _ansible_check_mode=True))

    assert rc == 0
    assert result["changed"] is True and result["reloaded"] is False
    assert servers.connections == []


def test_refused_reload_is_a_failure_with_nothing_changed(monkeypatch, run_module):
    fake_servers(monkeypatch, {6432: fakes.CONSOLE}, fail_on=("RELOAD",))

    rc, result, _out = run_module(pool_reload, ARGS)

    assert rc == 1
    assert result["changed"] is False and result["reloaded"] is False
    assert result["msg"].startswith("PgBouncer admin console: RELOAD failed: ")


def test_pgbouncer_down_fails_naming_where(servers, run_module):
    rc, result, _out = run_module(pool_reload, dict(ARGS, admin_port=6999))

    assert rc == 1
    assert result["changed"] is False
    assert "could not connect to 127.0.0.1:6999/pgbouncer as pgbouncer_admin" in result["msg"]


# --- SIGHUP first, only to a checked pid -------------------------------------------------------

def test_a_pid_file_naming_another_process_fails_with_nothing_signalled_or_sent(servers, run_module, tmp_path):
    proc = started_sleep()  # SIGHUP would end it
    try:
        pidfile = tmp_path / "pgbouncer.pid"
        pidfile.write_text("%d\n" % proc.pid)

        rc, result, _out = run_module(pool_reload, dict(ARGS, pidfile=str(pidfile), process_user="root"))

        assert rc == 1
        assert result["msg"].startswith("not signalling PgBouncer: the pid file %s names %d, which is 'sleep'"
                                        % (pidfile, proc.pid))
        assert result["changed"] is False and result["reloaded"] is False
        assert servers.connections == []
        time.sleep(0.2)
        assert proc.poll() is None, "the process got a signal"
    finally:
        proc.kill()
        proc.wait()


def test_an_unknown_process_user_fails_before_anything_is_signalled(servers, run_module, tmp_path):
    rc, result, _out = run_module(pool_reload, dict(ARGS, pidfile=str(tmp_path / "x.pid"), process_user="no-such-user-h4"))

    assert rc == 1
    assert result["msg"] == "process_user 'no-such-user-h4' is not a user on this host: give the user PgBouncer runs as"
    assert servers.connections == []


def test_the_checked_pid_gets_sighup_before_the_console_reload(servers, run_module, monkeypatch):
    calls = []

    def signal_checked_pid(pidfile, name, uid, signum):
        calls.append((pidfile, name, uid, signum, len(servers.connections)))
        return 4242

    monkeypatch.setattr(processes, "signal_checked_pid", signal_checked_pid)

    rc, result, _out = run_module(pool_reload, dict(ARGS, pidfile="/run/postgresql/pgbouncer.pid", process_user="root"))

    assert rc == 0
    assert calls == [("/run/postgresql/pgbouncer.pid", "pgbouncer", 0, signal.SIGHUP, 0)]  # before any login
    assert result["signalled_pid"] == 4242 and result["reloaded"] is True
    assert servers.connections[0].executed == ["RELOAD"]


def test_check_mode_signals_nothing(servers, run_module, monkeypatch):
    monkeypatch.setattr(processes, "signal_checked_pid", lambda *args: pytest.fail("signalled in check mode"))

    rc, result, _out = run_module(pool_reload, dict(ARGS, pidfile="/run/postgresql/pgbouncer.pid"), check_mode=True)

    assert rc == 0 and result["reloaded"] is False and "signalled_pid" not in result
