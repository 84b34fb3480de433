"""The Redis and PgBouncer probes against real servers this module starts on 127.0.0.1
(a redis-server with and without a password and ACL user, a pgbouncer admin console),
each stopped by its PID."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils.health_targets import resolve_target
from ansible_collections.unitehub.platform.plugins.module_utils.health_wait import run_target
from ansible_collections.unitehub.platform.plugins.module_utils.probes import probe_pgbouncer, probe_redis
from ansible_collections.unitehub.platform.tests.support.loopback import free_port

pytestmark = pytest.mark.integration


def start_daemon(argv, port, cwd=None):
    """Start a server in the foreground and wait (bounded) until it accepts connections."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=cwd)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("%s exited with %s before listening" % (argv[0], proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    stop_by_pid(proc)
    raise AssertionError("%s did not listen on 127.0.0.1:%d within 10 s" % (argv[0], port))


def stop_by_pid(proc):
    if proc.poll() is None:
        os.kill(proc.pid, 15)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, 9)
            proc.wait(10)


@pytest.fixture(scope="module")
def redis_port():
    port = free_port()
    proc = start_daemon(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no"], port)
    yield port
    stop_by_pid(proc)


@pytest.fixture(scope="module")
def redis_auth_port():
    port = free_port()
    proc = start_daemon(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no", "--requirepass", "s3cret",
                         "--user", "probe", "on", ">probe-pw", "+ping"], port)
    yield port
    stop_by_pid(proc)


def test_probe_redis_pings_a_real_server(redis_port):
    result = probe_redis("127.0.0.1", redis_port)
    assert (result.status, result.error) == ("pass", None)


def test_probe_redis_auth(redis_auth_port):
    assert probe_redis("127.0.0.1", redis_auth_port, password="s3cret").status == "pass"
    assert probe_redis("127.0.0.1", redis_auth_port, password="probe-pw", user="probe").status == "pass"
    for user in (None, "probe"):  # a user without its password is a missing password too
        missing = probe_redis("127.0.0.1", redis_auth_port, user=user)
        assert missing.status == "fail"
        assert missing.error == "Redis requires authentication (Authentication required.); set password"
    wrong = probe_redis("127.0.0.1", redis_auth_port, password="wrong-pw")
    assert wrong.status == "fail"
    assert wrong.error == "AUTH refused: invalid username-password pair or user is disabled."
    assert "wrong-pw" not in wrong.error


def test_probe_redis_auth_against_a_server_without_password(redis_port):
    result = probe_redis("127.0.0.1", redis_port, password="s3cret")
    assert result.status == "fail"
    assert result.error.startswith("AUTH refused: AUTH <password> called without any password configured")


def test_probe_redis_failures(health_endpoint, hanging_port):
    refused = probe_redis("127.0.0.1", free_port())
    assert (refused.status, refused.error) == ("fail", "connection refused")
    started = time.monotonic()
    hung = probe_redis("127.0.0.1", hanging_port, request_timeout=0.5)
    assert (hung.status, hung.error) == ("fail", "timed out after 0.5 s")
    assert time.monotonic() - started < 1.0
    http = probe_redis("127.0.0.1", int(health_endpoint.rsplit(":", 1)[1]))
    assert http.status == "fail"
    assert http.error.startswith("not a Redis server: ")


def test_run_target_redis_through_wait_until(redis_port):
    result = run_target(resolve_target({"type": "redis", "login_port": redis_port, "consecutive_successes": 2,
                                        "interval": 0.05}))
    assert (result["ok"], result["status"], result["attempts"]) == (True, "pass", 2)
    assert result["target"] == "redis://127.0.0.1:%d" % redis_port


# --- PgBouncer admin console and PostgreSQL ----------------------------------------


@pytest.fixture(scope="module")
def pgbouncer_port():
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="health-pgbouncer-")
    try:
        os.chmod(workdir, 0o755)
        with open(os.path.join(workdir, "users.txt"), "w", encoding="utf-8") as handle:
            handle.write('"probe" "probe-pw"\n')
        with open(os.path.join(workdir, "pgbouncer.ini"), "w", encoding="utf-8") as handle:
            handle.write(
                "[databases]\n"
                "[pgbouncer]\n"
                "listen_addr = 127.0.0.1\n"
                "listen_port = %d\n"
                "unix_socket_dir =\n"
                "auth_type = scram-sha-256\n"
                "auth_file = %s/users.txt\n"
                "admin_users = probe\n"
                "logfile =\n"
                "pidfile =\n" % (port, workdir)
            )
        argv = ["pgbouncer"]
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            argv += ["-u", "nobody"]
        proc = start_daemon(argv + [os.path.join(workdir, "pgbouncer.ini")], port, cwd=workdir)
        yield port
        stop_by_pid(proc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_probe_pgbouncer_admin_console(pgbouncer_port):
    result = probe_pgbouncer("127.0.0.1", pgbouncer_port, user="probe", password="probe-pw")
    assert (result.status, result.error) == ("pass", None)
    assert result.version.startswith("PgBouncer ")


def test_probe_pgbouncer_wrong_password_fails_with_the_server_message(pgbouncer_port):
    result = probe_pgbouncer("127.0.0.1", pgbouncer_port, user="probe", password="nope")
    assert result.status == "fail"
    assert result.error == "FATAL: SASL authentication failed; check user and password"
    assert "nope" not in result.error


def test_probe_pgbouncer_without_password_says_to_set_one(pgbouncer_port):
    result = probe_pgbouncer("127.0.0.1", pgbouncer_port, user="probe")
    assert (result.status, result.error) == ("fail", "fe_sendauth: no password supplied; set password")
