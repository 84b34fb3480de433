# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Values that would break out of a configuration file, against the converged local stack.

Each role is applied with several such values at once (as -e, which wins over the
inventory): the run fails before any change, its message names every variable,
and every configuration file of the stack stays byte-identical, with no service
restarted. Then PgBouncer's reload: pool_reload signals the running PgBouncer
only through a checked pid, and refuses a pid file that names another process.
"""

from __future__ import annotations

import glob
import hashlib
import os
import signal
import subprocess
import time

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils.fileio import read_text
from ansible_collections.unitehub.platform.plugins.module_utils.processes import running_pid
from ansible_collections.unitehub.platform.tests.integration.ansible_runner import (
    role_play,
    run_module,
    run_playbook,
    write_playbook,
)
from ansible_collections.unitehub.platform.tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

PGBOUNCER_PIDFILE = "/var/run/postgresql/pgbouncer.pid"
# Every file the roles write, and the files next to them a breakout could reach.
CONFIG_GLOBS = (
    "/etc/nginx/**",
    "/etc/pgbouncer/**",
    "/etc/default/pgbouncer",
    "/etc/redis/**",
    "/etc/postgresql/*/main/conf.d/**",
    "/etc/postgresql/*/main/pg_hba.conf",
    "/etc/postgresql/*/main/pg_ident.conf",
)
PIDFILES = {
    "nginx": "/run/nginx.pid",
    "pgbouncer": PGBOUNCER_PIDFILE,
    "redis": "/run/redis/redis-server.pid",
}
ADMIN_EXPOSED = "_; location ^~ /api/admin/ { proxy_pass http://127.0.0.1:3008; }"

# role -> (the hosts group it runs on, bad values, words each failure message must hold)
INJECTIONS = {
    "nginx": ("lb", {
        "nginx_server_name": ADMIN_EXPOSED,
        "nginx_listen_address": "127.0.0.1:8080 default_server; include /etc/passwd",
        "nginx_denied_locations": ["/api/admin/", "/health { return 200; }"],
        "nginx_site_file": "/etc/nginx/conf.d/unitehub.conf;",
    }, ["nginx_server_name=%r contains ';'" % ADMIN_EXPOSED, "nginx_listen_address=",
        "nginx_denied_locations[1]=", "nginx_site_file="]),
    "pgbouncer": ("db", {
        "pgbouncer_listen_address": "127.0.0.1\nauth_type = trust",
        "pgbouncer_databases": [{"name": "unitehub", "dbname": "unitehub host=10.255.0.9"}],
        "pgbouncer_auth_user": "postgres",
        "pgbouncer_auth_query": "SELECT usename, passwd FROM pg_shadow WHERE usename=$1\nadmin_users = postgres",
        "pgbouncer_logfile": "/var/log/postgresql/pgbouncer.log\n%include /tmp/evil.ini",
    }, ["pgbouncer_listen_address=", "pgbouncer_databases[0].dbname=", "pgbouncer_auth_query=",
        "pgbouncer_logfile="]),
    "pgbouncer-auth-type": ("db", {
        "pgbouncer_auth_type": "trust",
    }, ["auth_type trust lets anyone who reaches PgBouncer in without a password",
        "pgbouncer_allow_insecure_auth_type"]),
    "postgresql": ("db", {
        "postgresql_listen_address": "127.0.0.1'\nssl = 'off",
        "postgresql_extra_settings": {"work_mem": "4MB\nlisten_addresses = '*'", "ssl = off\nport": "5433"},
    }, ["postgresql_listen_address=", "postgresql_extra_settings['work_mem']=",
        "postgresql_extra_settings has the key 'ssl = off\\nport'"]),
    "redis": ("cache", {
        "redis_extra_settings": {"timeout": "0\nprotected-mode no", "include": "/tmp/evil.conf"},
        "redis_settings_file": "/etc/redis/unitehub.conf\ninclude /tmp/evil.conf",
    }, ["redis_extra_settings['timeout']=", "redis_extra_settings has the key 'include'", "redis_settings_file="]),
    # base_image_enabled false as well: were the check missing, the role would still not delete anything.
    "base_image": ("app", {
        "base_image_build_dir": "/",
        "base_image_enabled": False,
    }, ["base_image_build_dir='/' is / or a system or top-level directory"]),
}


def config_hashes():
    hashes = {}
    for pattern in CONFIG_GLOBS:
        for path in glob.glob(pattern, recursive=True):
            if os.path.isfile(path):
                with open(path, "rb") as handle:
                    hashes[path] = hashlib.sha256(handle.read()).hexdigest()
    return hashes


def service_pids():
    return {name: running_pid(path) for name, path in PIDFILES.items()}


@pytest.mark.parametrize("case", sorted(INJECTIONS))
def test_values_that_break_out_are_refused_naming_each_variable_with_nothing_written(case, tmp_path):
    hosts, bad_values, words = INJECTIONS[case]
    role = "unitehub.platform." + case.split("-")[0]
    before, pids_before = config_hashes(), service_pids()
    assert before, "no configuration files found: is the local stack converged (make deploy)?"

    result = run_playbook(write_playbook(tmp_path, role_play(role, hosts=hosts)), extra_vars=bad_values)

    recap = result.counts()
    assert recap["failed"] == 1 and recap["changed"] == 0, result.output[-4000:]
    for word in words:
        assert word in result.output, (word, result.output[-4000:])
    assert config_hashes() == before
    assert service_pids() == pids_before


# --- PgBouncer's reload --------------------------------------------------------------------

CONSOLE_ARGS = {
    "admin_host": "127.0.0.1",
    "admin_port": "{{ pgbouncer_listen_port }}",
    "admin_user": "{{ pgbouncer_admin_user | default('pgbouncer_admin') }}",
    "admin_password": "{{ pgbouncer_admin_password }}",
}


def test_pool_reload_signals_the_running_pgbouncer_through_its_checked_pid(tmp_path):
    pid = running_pid(PGBOUNCER_PIDFILE)
    assert pid is not None, "PgBouncer is not running: converge the stack first (make deploy)"

    result, run = run_module(tmp_path, "unitehub.platform.pool_reload", dict(CONSOLE_ARGS, pidfile=PGBOUNCER_PIDFILE))

    assert result.get("failed") is not True, run.output[-4000:]
    assert result["signalled_pid"] == pid and result["reloaded"] is True
    assert running_pid(PGBOUNCER_PIDFILE) == pid  # reloaded in place, not restarted


def test_a_pid_file_naming_another_process_is_refused_and_nothing_is_signalled(tmp_path):
    # sleep ends on SIGHUP (its default action), so a signal would show; it runs as root, the
    # process a pid file written by postgres could name.
    victim = subprocess.Popen(["sleep", "60"], preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    wait_until(lambda: read_text("/proc/%d/comm" % victim.pid) == "sleep\n", 5, what="sleep to start")
    try:
        pidfile = tmp_path / "pgbouncer.pid"
        pidfile.write_text("%d\n" % victim.pid)
        pgbouncer_pid = running_pid(PGBOUNCER_PIDFILE)

        result, run = run_module(tmp_path, "unitehub.platform.pool_reload", dict(CONSOLE_ARGS, pidfile=str(pidfile)))

        assert result.get("failed") is True, run.output[-4000:]
        assert result["msg"].startswith("not signalling PgBouncer: the pid file %s names %d, which is 'sleep'"
                                        % (pidfile, victim.pid)), result["msg"]
        assert result["reloaded"] is False
        time.sleep(0.3)
        assert victim.poll() is None, "the process named by the pid file got a signal"
        assert running_pid(PGBOUNCER_PIDFILE) == pgbouncer_pid
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
