# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pgbouncer role and the pool modules against the real PostgreSQL 15 and
PgBouncer 1.18 on this machine (127.0.0.1 only).

Needs PostgreSQL running on 127.0.0.1:5432 (playbooks/site.yml starts it) and
root, to manage the pgbouncer service and a throwaway role and database. The
PgBouncer configuration found before the tests is put back afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import subprocess
import uuid

import psycopg
import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import scram
from ansible_collections.unitehub.platform.plugins.module_utils.processes import running_pid
from ansible_collections.unitehub.platform.tests.integration.ansible_runner import (
    role_play,
    run_module,
    run_playbook,
    write_playbook,
)
from ansible_collections.unitehub.platform.tests.support.loopback import free_port, listening
from ansible_collections.unitehub.platform.tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

CONFIG_FILE = "/etc/pgbouncer/pgbouncer.ini"
USERLIST_FILE = "/etc/pgbouncer/userlist.txt"
DEFAULT_FILE = "/etc/default/pgbouncer"
PIDFILE = "/var/run/postgresql/pgbouncer.pid"
PORT = 6432

DB = "uh_pooltest_%s" % uuid.uuid4().hex[:6]
# A generated password, as the inventories make them: PostgreSQL and the userlist share its cheap verifier.
APP_PASSWORD = secrets.token_urlsafe(32)
APP_VERIFIER = scram.generated_password_verifier(APP_PASSWORD, DB, 16)
ADMIN_USER = "uh_pool_admin"
# A password a person might choose: the console user's verifier gets PostgreSQL's 4096 iterations.
ADMIN_PASSWORD = "adm-" + secrets.token_urlsafe(12)


def apply_role(tmp_path, extra_vars, check=False, diff=False):
    """Apply the pgbouncer role on localhost; returns (PlaybookResult, recap counts)."""
    path = write_playbook(tmp_path, role_play("unitehub.platform.pgbouncer"))
    result = run_playbook(path, extra_vars=extra_vars, check=check, diff=diff)
    return result, result.counts()


def module_result(tmp_path, module, args):
    """Run one module task; return what it handed back to Ansible."""
    return run_module(tmp_path, module, args)[0]


# --- the machine -------------------------------------------------------------------------

def psql_as_postgres(sql):
    proc = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-Atqc", sql],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def read_or_none(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def pgbouncer_pid():
    return running_pid(PIDFILE)


def service(action):
    return subprocess.run(["service", "pgbouncer", action], capture_output=True, text=True, timeout=60, check=False)


def client(prepare_threshold=None):
    """A client of the test database through PgBouncer."""
    return psycopg.connect(host="127.0.0.1", port=PORT, dbname=DB, user=DB, password=APP_PASSWORD,
                           prepare_threshold=prepare_threshold, connect_timeout=5)


def console():
    return psycopg.connect(host="127.0.0.1", port=PORT, dbname="pgbouncer", user=ADMIN_USER, password=ADMIN_PASSWORD,
                           autocommit=True, prepare_threshold=None, connect_timeout=5)


def running_config(key):
    with console() as conn:
        for row in conn.execute("SHOW CONFIG").fetchall():
            if row[0] == key:
                return row[1]
    return None


def role_vars(**overrides):
    variables = {
        "pgbouncer_environment": "development",
        "pgbouncer_admin_user": ADMIN_USER,
        "pgbouncer_admin_password": ADMIN_PASSWORD,
        "pgbouncer_admin_password_generated": False,  # the local inventory's is generated; this one is not
        "pgbouncer_app_user": DB,
        "pgbouncer_app_password": APP_PASSWORD,
        "pgbouncer_app_password_generated": True,
        "pgbouncer_databases": [{"name": DB, "dbname": DB}],
        # The modules run with the controller's Python, which has psycopg already.
        "pgbouncer_python_packages": [],
    }
    variables.update(overrides)
    return variables


# --- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def database():
    """A throwaway role and database on the real PostgreSQL."""
    wait_until(lambda: listening(5432), 2, interval=0.2,
               what="PostgreSQL to listen on 127.0.0.1:5432 (playbooks/site.yml starts it)")
    psql_as_postgres("CREATE ROLE %s LOGIN PASSWORD '%s'" % (DB, APP_VERIFIER))
    psql_as_postgres("CREATE DATABASE %s OWNER %s" % (DB, DB))
    yield DB
    psql_as_postgres("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
    psql_as_postgres("DROP ROLE IF EXISTS %s" % DB)


@pytest.fixture(scope="module")
def restore_pgbouncer():
    """Put back the PgBouncer files and process state found before the tests."""
    saved = {}
    for path in (CONFIG_FILE, USERLIST_FILE, DEFAULT_FILE):
        content = read_or_none(path)
        saved[path] = (content, os.stat(path) if content is not None else None)
    was_running = pgbouncer_pid() is not None
    yield
    same_listen = listen_lines(read_or_none(CONFIG_FILE)) == listen_lines(saved[CONFIG_FILE][0])
    for path, (content, info) in saved.items():
        if content is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            continue
        with open(path, "wb") as handle:
            handle.write(content)
        os.chown(path, info.st_uid, info.st_gid)
        os.chmod(path, info.st_mode & 0o7777)
    if was_running and same_listen and pgbouncer_pid() is not None:
        service("reload")  # SIGHUP: the online reload, clients of the stack keep their connections
        return
    service("stop")
    if was_running:
        service("start")
        wait_until(lambda: listening(PORT), 20, interval=0.2, what="PgBouncer to listen on %d again" % PORT)


def listen_lines(content):
    text = (content or b"").decode("utf-8", "replace")
    return sorted(re.findall(r"(?m)^\s*(listen_addr|listen_port|unix_socket_dir)\s*=\s*(\S*)", text))


@pytest.fixture(scope="module")
def applied(database, restore_pgbouncer, tmp_path_factory):
    """The role applied twice with the same variables, the first time with --diff."""
    tmp = tmp_path_factory.mktemp("pooling")
    first = apply_role(tmp, role_vars(), diff=True)
    second = apply_role(tmp, role_vars())
    return {"first": first, "second": second, "tmp": tmp}


# --- tests -------------------------------------------------------------------------------

def test_role_applies_and_a_second_run_changes_nothing(applied):
    (first, first_recap), (second, second_recap) = applied["first"], applied["second"]

    assert first_recap["failed"] == 0, first.stdout[-4000:]
    assert second_recap["failed"] == 0, second.stdout[-4000:]
    assert second_recap["changed"] == 0, second.stdout[-4000:]
    assert pgbouncer_pid() is not None


def test_files_are_owned_by_postgres_and_the_userlist_is_private(applied):
    import grp
    import pwd
    import stat

    for path, mode in ((CONFIG_FILE, 0o640), (USERLIST_FILE, 0o600)):
        info = os.stat(path)
        assert pwd.getpwuid(info.st_uid).pw_name == "postgres"
        assert grp.getgrgid(info.st_gid).gr_name == "postgres"
        assert stat.S_IMODE(info.st_mode) == mode, path
    with open(CONFIG_FILE) as handle:
        config = handle.read()
    assert "listen_addr = 127.0.0.1\n" in config and "listen_port = 6432\n" in config
    assert "%s = host=127.0.0.1 port=5432 dbname=%s\n" % (DB, DB) in config
    assert "auth_type = scram-sha-256\n" in config and "admin_users = %s\n" % ADMIN_USER in config
    assert "pool_mode = transaction\n" in config and "default_pool_size = 5\n" in config


def userlist():
    with open(USERLIST_FILE) as handle:
        return handle.read()


def scram_secrets(text):
    return re.findall(r'"(SCRAM-SHA-256\$[^"]+)"', text)


def test_no_password_reaches_the_output(applied):
    for proc, _recap in (applied["first"], applied["second"]):
        assert APP_PASSWORD not in proc.stdout + proc.stderr
        assert ADMIN_PASSWORD not in proc.stdout + proc.stderr
        for verifier in scram_secrets(userlist()):  # nor any verifier, not even in the --diff
            assert verifier.split("$", 2)[2] not in proc.stdout + proc.stderr
    assert "/etc/pgbouncer/pgbouncer.ini" in applied["first"][0].stdout  # the --diff of the ini was shown


def test_the_userlist_holds_verifiers_and_no_plain_password(applied):
    text = userlist()
    assert APP_PASSWORD not in text and ADMIN_PASSWORD not in text
    lines = [line for line in text.splitlines() if line and not line.startswith(";")]
    users = {line.split(" ", 1)[0].strip('"') for line in lines}
    # The local inventory also lists the metrics exporter's stats user (the monitoring role's).
    assert users == {DB, ADMIN_USER, "pgbouncer_exporter"}, lines
    assert all(line.split(" ", 1)[1].startswith('"SCRAM-SHA-256$') for line in lines), lines
    # The app user's line is PostgreSQL's very verifier, which SCRAM pass-through needs.
    stored = psql_as_postgres("SELECT rolpassword FROM pg_authid WHERE rolname = '%s'" % DB)
    assert '"%s" "%s"' % (DB, stored) in lines and stored.startswith("SCRAM-SHA-256$16:")
    admin_line = [line for line in lines if line.startswith('"%s" ' % ADMIN_USER)][0]
    assert admin_line.split(" ", 1)[1].startswith('"SCRAM-SHA-256$4096:')


def test_logins_through_the_verifier_userlist_reach_postgres_and_the_console(applied):
    # The app user: PgBouncer checks the client's proof against the verifier, then logs in to
    # PostgreSQL (port 5432) with that proof; the query runs there.
    with client() as conn:
        assert conn.execute("SELECT current_user, inet_server_port()").fetchone() == (DB, 5432)
    # The admin user: the console, with the verifier the role wrote.
    with console() as conn:
        assert conn.execute("SHOW VERSION").fetchone()[0].startswith("PgBouncer 1.")
    with pytest.raises(psycopg.OperationalError, match="SASL authentication failed"):
        psycopg.connect(host="127.0.0.1", port=PORT, dbname=DB, user=DB, password=APP_PASSWORD[::-1],
                        prepare_threshold=None, connect_timeout=5)


def test_clients_get_through_pgbouncer_and_pool_info_shows_the_pool(applied):
    with client() as conn:
        assert conn.execute("SELECT current_database(), current_user").fetchone() == (DB, DB)
        info = module_result(applied["tmp"], "unitehub.platform.pool_info", {
            "admin_host": "127.0.0.1", "admin_port": PORT, "admin_user": ADMIN_USER, "admin_password": ADMIN_PASSWORD})

    assert info.get("failed") is not True, info
    assert info["version_number"] == "1.18.0"
    pool = [p for p in info["pools"] if p["database"] == DB]
    assert len(pool) == 1
    assert pool[0]["user"] == DB and pool[0]["pool_mode"] == "transaction"
    assert pool[0]["cl_active"] >= 1 and isinstance(pool[0]["cl_active"], int)
    assert pool[0]["sv_active"] + pool[0]["sv_idle"] + pool[0]["sv_used"] >= 1
    assert info["totals"]["cl_waiting"] == 0
    assert info["config"]["default_pool_size"] == 5 and info["config"]["listen_port"] == PORT
    assert info["config_details"]["listen_port"]["changeable"] is False
    stats = [s for s in info["stats"] if s["database"] == DB][0]
    assert stats["total_xact_count"] >= 1 and isinstance(stats["avg_query_time"], int)
    assert [d for d in info["databases"] if d["name"] == DB][0]["pool_size"] == 5
    assert ADMIN_PASSWORD not in json.dumps(info)


def test_pool_validate_reads_the_live_servers(applied):
    result = module_result(applied["tmp"], "unitehub.platform.pool_validate", {
        "settings": {"default_pool_size": 200},
        "login_host": "127.0.0.1", "login_user": DB, "login_password": APP_PASSWORD, "login_db": DB,
        "admin_host": "127.0.0.1", "admin_port": PORT, "admin_user": ADMIN_USER, "admin_password": ADMIN_PASSWORD})

    server_max = int(psql_as_postgres("SHOW max_connections"))
    assert result["failed"] is True
    assert result["facts"]["server_max_connections"] == server_max
    assert result["facts"]["pgbouncer_version"] == "1.18.0"
    assert result["facts"]["databases"] == 1
    assert result["errors"][0].startswith("default_pool_size (200)")


def test_pool_size_change_is_reloaded_online_while_a_client_holds_its_session(applied):
    tmp = applied["tmp"]
    pid_before = pgbouncer_pid()
    with client() as conn:
        conn.execute("BEGIN")
        backend_before = conn.execute("SELECT pg_backend_pid()").fetchone()[0]

        proc, recap = apply_role(tmp, role_vars(pgbouncer_default_pool_size=7))

        # The same server connection still answers inside the same transaction.
        assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] == backend_before
        conn.execute("COMMIT")
        assert conn.execute("SELECT 41 + 1").fetchone() == (42,)

    assert recap["failed"] == 0, proc.stdout[-4000:]
    assert recap["changed"] >= 2  # the ini and the reload handler
    assert re.search(r"RUNNING HANDLER \[unitehub.platform.pgbouncer : Reload PgBouncer online\] \*+\nchanged:",
                     proc.stdout), proc.stdout[-4000:]
    assert re.search(r"Stop PgBouncer for a new listen address\] \*+\nskipping", proc.stdout)
    assert pgbouncer_pid() == pid_before  # reloaded, not restarted
    assert running_config("default_pool_size") == "7"


@pytest.mark.parametrize("overrides, words", [
    ({"pgbouncer_default_pool_size": 0}, ["default_pool_size must be at least 1, got 0"]),
    ({"pgbouncer_max_prepared_statements": 100},
     ["max_prepared_statements (100) needs PgBouncer >= 1.21", "prepare_threshold=None"]),
    ({"pgbouncer_default_pool_size": 400}, ["default_pool_size (400)", "but PostgreSQL accepts only"]),
    ({"pgbouncer_min_pool_size": 9, "pgbouncer_default_pool_size": 3, "pgbouncer_pool_mode": "sessions",
      "pgbouncer_server_lifetime": 60, "pgbouncer_server_idle_timeout": 600},
     ["3 pool setting errors", "min_pool_size (9) is larger than default_pool_size (3)",
      "pool_mode 'sessions' is not one of", "server_lifetime (60 s) is shorter than server_idle_timeout (600 s)"]),
    ({"pgbouncer_default_pool_size": "twenty"}, ["pgbouncer_default_pool_size", "twenty"]),
    ({"pgbouncer_app_password_generated": False},
     ["pgbouncer_auth_users: the password of %s is neither marked generated nor a SCRAM verifier" % DB,
      "SELECT rolpassword FROM pg_authid"]),
    ({"pgbouncer_admin_password_generated": True},
     ["pgbouncer_admin_password: the password of %s is marked generated, but it has" % ADMIN_USER]),
], ids=["size-0", "prepared-on-1.18", "larger-than-server", "three-at-once", "text", "chosen-app-password",
        "chosen-admin-password-marked-generated"])
def test_bad_settings_fail_before_anything_on_the_host_changes(applied, overrides, words):
    before = {path: sha256(path) for path in (CONFIG_FILE, USERLIST_FILE, DEFAULT_FILE)}
    pid_before = pgbouncer_pid()

    proc, recap = apply_role(applied["tmp"], role_vars(**overrides))

    assert recap["failed"] == 1 and recap["changed"] == 0, proc.stdout[-4000:]
    for word in words:
        assert word in proc.stdout, (word, proc.stdout[-4000:])
    assert {path: sha256(path) for path in before} == before
    assert pgbouncer_pid() == pid_before


def test_check_mode_shows_the_change_and_writes_nothing(applied):
    before = sha256(CONFIG_FILE)
    running = running_config("default_pool_size")

    proc, recap = apply_role(applied["tmp"], role_vars(pgbouncer_default_pool_size=9), check=True, diff=True)

    assert recap["failed"] == 0, proc.stdout[-4000:]
    assert recap["changed"] >= 1
    assert "-default_pool_size = %s" % running in proc.stdout and "+default_pool_size = 9" in proc.stdout
    assert sha256(CONFIG_FILE) == before
    assert running_config("default_pool_size") == running


def test_a_new_listen_port_restarts_pgbouncer(applied):
    tmp = applied["tmp"]
    pid_before = pgbouncer_pid()
    other_port = free_port()

    proc, recap = apply_role(tmp, role_vars(pgbouncer_listen_port=other_port))
    try:
        assert recap["failed"] == 0, proc.stdout[-4000:]
        assert re.search(r"Reload PgBouncer online\] \*+\nskipping", proc.stdout)
        assert pgbouncer_pid() not in (None, pid_before)
        wait_until(lambda: listening(other_port), 5, interval=0.2, what="PgBouncer to listen on %d" % other_port)
        with psycopg.connect(host="127.0.0.1", port=other_port, dbname=DB, user=DB, password=APP_PASSWORD,
                             prepare_threshold=None, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        proc, recap = apply_role(tmp, role_vars())
    assert recap["failed"] == 0, proc.stdout[-4000:]
    wait_until(lambda: listening(PORT), 5, interval=0.2, what="PgBouncer to listen on %d again" % PORT)
    with client() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
