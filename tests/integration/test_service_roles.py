# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nginx, redis and postgresql roles against the real services of this host.

Each role runs through ansible-playbook with the local inventory: it converges,
a second run reports changed=0, the service answers on loopback, check mode
changes nothing, and bad input fails in validation, naming the variable, before
anything on the host changed. Tests that need a second instance of something
(an nginx site, a database role) use throwaway names and remove them afterwards;
the shared Redis is put back to the inventory's settings.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
import threading
import urllib.error
import urllib.request
import uuid

import pytest
import redis

from ansible_collections.unitehub.platform.plugins.module_utils.nginx import nginx_master_pid
from ansible_collections.unitehub.platform.tests.integration.ansible_runner import (
    parse_recap,
    role_play,
    run_module,
    run_playbook,
    write_playbook,
)
from ansible_collections.unitehub.platform.tests.integration.stack_helpers import local_secret
from ansible_collections.unitehub.platform.tests.support.loopback import free_port

pytestmark = pytest.mark.integration

PG_CONF_DIR = "/etc/postgresql/15/main"
# What the nginx role writes, minus the upstream directory, which the blue-green
# switch may rewrite at any time.
NGINX_ROLE_FILES = ("/etc/nginx/nginx.conf", "/etc/nginx/conf.d", "/etc/nginx/sites-enabled")


# --- helpers --------------------------------------------------------------------------------

def tree_snapshot(*roots):
    """{path: sha256 of content and mode} for every file under ``roots``: compared
    before and after a failed run to show that nothing on the host changed."""
    snapshot = {}
    for root in roots:
        if os.path.isfile(root):
            paths = [root]
        else:
            paths = [os.path.join(d, f) for d, _unused, files in os.walk(root) for f in files]
        for path in paths:
            if os.path.islink(path):
                snapshot[path] = "link:" + os.readlink(path)
                continue
            with open(path, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
            snapshot[path] = "%s %o" % (digest, stat.S_IMODE(os.stat(path).st_mode))
    return snapshot


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url, headers=None, timeout=5):
    """(status, headers, body) of a GET; HTTP errors are answers too."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with _NO_PROXY.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()


def run_role(tmp_path, role, extra_vars=None, **options):
    path = write_playbook(tmp_path, role_play("unitehub.platform." + role))
    return run_playbook(path, extra_vars=extra_vars, **options)


def assert_converged_then_idempotent(tmp_path, role, extra_vars=None):
    first = run_role(tmp_path, role, extra_vars)
    assert first.rc == 0, first.output[-6000:]
    second = run_role(tmp_path, role, extra_vars)
    assert second.rc == 0, second.output[-6000:]
    counts = second.counts()
    assert counts["changed"] == 0 and counts["failed"] == 0, second.stdout[-6000:]
    return first, second


def assert_failed_in_validation(result, fragments):
    """The run failed on the host's first failing task, changed nothing, and
    the message names the variable."""
    assert result.rc != 0
    counts = result.counts()
    assert counts["failed"] == 1 and counts["changed"] == 0, result.stdout[-4000:]
    for fragment in fragments:
        assert fragment in result.stdout, "%r not in:\n%s" % (fragment, result.stdout[-4000:])
    failed_task = re.findall(r"^TASK \[(.*?)\]", result.stdout, re.M)[-1]
    assert "Validating arguments" in failed_task or "Check the" in failed_task, failed_task


# --- nginx ----------------------------------------------------------------------------------

def test_nginx_role_converges_idempotently_and_serves_its_health_path(tmp_path):
    assert_converged_then_idempotent(tmp_path, "nginx")

    status, headers, body = http_get("http://127.0.0.1:8080/nginx-health")
    assert (status, body) == (200, "ok\n")
    # admin endpoints are for the slot ports only
    status, _unused, _unused = http_get("http://127.0.0.1:8080/api/admin/breakers")
    assert status == 404
    with open("/etc/nginx/conf.d/unitehub.conf", encoding="utf-8") as handle:
        # The local inventory has one app host: a refused request may try it, then the backup.
        assert "proxy_next_upstream_tries 2;" in handle.read()
    for name in ("blue.conf", "green.conf"):
        assert os.path.isfile("/etc/nginx/unitehub/unitehub/" + name)
    assert len(os.listdir("/etc/nginx/unitehub/unitehub/live")) == 1
    assert not os.path.exists("/etc/nginx/sites-enabled/default")


class _Backend(http.server.ThreadingHTTPServer):
    """A stand-in slot on loopback: answers with the request headers it saw, as
    JSON, and sets X-App-Slot / X-App-Version like the app."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, slot):
        self.seen = []
        self.connections = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keepalive, as nginx's upstream keepalive uses it

            def setup(self):
                super().setup()
                outer.connections.append(self.connection)

            def do_GET(self):  # noqa: N802 - http.server's naming
                outer.seen.append(self.path)
                body = json.dumps({"path": self.path, "headers": dict(self.headers)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-App-Slot", slot)
                self.send_header("X-App-Version", "v-it")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        """Stop listening and cut the keepalive connections nginx holds open."""
        self.shutdown()
        self.server_close()
        for connection in self.connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()
        self.connections.clear()
        self.thread.join(timeout=5)


@pytest.fixture
def nginx_site(tmp_path):
    """A throwaway load-balancer site on a free port, in front of stand-in blue and
    green slots; blue also lists a dead port. Its files are removed and nginx
    reloaded afterwards."""
    blue, green = _Backend("blue"), _Backend("green")
    name = "uhit" + uuid.uuid4().hex[:8]
    site = {
        "name": name,
        "port": free_port(),
        "blue": blue,
        "green": green,
        "dead_port": free_port(),  # nothing listens there
        "site_file": "/etc/nginx/conf.d/%s.conf" % name,
        "upstream_dir": "/etc/nginx/unitehub/%s" % name,
    }
    site["servers"] = {
        "blue": ["127.0.0.1:%d" % site["dead_port"], "127.0.0.1:%d" % blue.port],
        "green": ["127.0.0.1:%d" % green.port],
    }
    site["vars"] = {
        "nginx_app_name": name,
        "nginx_listen_port": site["port"],
        # A plain-HTTP scratch site: HTTPS on 8443 belongs to the stack's site.
        "nginx_tls_enabled": False,
        "nginx_upstream_initial_servers": site["servers"],
        # A request may meet a refusing green, then blue's dead port, before blue answers.
        "nginx_proxy_next_upstream_tries": 3,
    }
    yield site
    blue.stop()
    green.stop()
    if os.path.exists(site["site_file"]):
        os.unlink(site["site_file"])
    shutil.rmtree(site["upstream_dir"], ignore_errors=True)
    subprocess.run(["nginx", "-t"], check=True, capture_output=True, timeout=30)
    if nginx_master_pid() is not None:
        subprocess.run(["nginx", "-s", "reload"], check=True, capture_output=True, timeout=30)


def nginx_workers():
    """The pids of the running nginx master's workers: a reload replaces them all."""
    master = nginx_master_pid()
    children = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True, check=False)
    return sorted(children.stdout.split())


def test_nginx_site_routes_by_the_live_marker_and_keeps_it(tmp_path, nginx_site):
    base = "http://127.0.0.1:%d" % nginx_site["port"]
    assert_converged_then_idempotent(tmp_path, "nginx", nginx_site["vars"])
    # Only a switch creates a marker: a new load balancer serves blue without one.
    assert os.listdir(os.path.join(nginx_site["upstream_dir"], "live")) == []

    # Blue is live on a new load balancer. Its dead server comes first in round
    # robin: "proxy_next_upstream error" moves every request on to the live one.
    for attempt in range(6):
        status, headers, body = http_get(base + "/api/version?n=%d" % attempt, headers={"Host": "lb.example.test"})
        assert status == 200, body
        assert headers["X-App-Slot"] == "blue" and headers["X-App-Version"] == "v-it"
        assert headers["X-Upstream-Slot"] == "blue", "nginx names the slot of the server it reached"
    seen = json.loads(body)["headers"]
    assert seen["Host"] == "lb.example.test"
    assert seen["X-Forwarded-For"] == "127.0.0.1"
    assert seen["X-Forwarded-Proto"] == "http"
    assert seen["X-Forwarded-Host"] == "lb.example.test"
    assert re.fullmatch(r"[0-9a-f]{32}", seen["X-Request-Id"]), seen  # minted by nginx
    _unused, _unused, body = http_get(base + "/", headers={"X-Request-Id": "trace-42"})
    assert json.loads(body)["headers"]["X-Request-Id"] == "trace-42"  # the caller's is kept

    # Admin endpoints stop at the load balancer; the slot never sees them.
    requests_before = len(nginx_site["blue"].seen)
    for path in ("/api/admin/breakers", "/api/admin", "/api/%61dmin/breakers", "//api//admin/breakers"):
        status, _unused, _unused = http_get(base + path)
        assert status == 404, path
    assert len(nginx_site["blue"].seen) == requests_before

    # The switch moves traffic by renaming the marker: the same workers serve before
    # and after, so nothing was reloaded, and the next request already goes to green.
    workers = nginx_workers()
    switched, run = run_module(tmp_path, "unitehub.platform.slot_switch", {
        "slot": "green", "servers": nginx_site["servers"]["green"], "backup_servers": nginx_site["servers"]["blue"],
        "upstream_dir": nginx_site["upstream_dir"], "verify_url": base + "/api/version",
    })
    assert switched.get("changed") and not switched.get("failed"), run.output[-4000:]
    assert (switched["previous_slot"], switched["reloaded"]) == (None, False)
    assert switched["verified"] == {"slot": "green", "error": None}
    assert nginx_workers() == workers
    assert http_get(base + "/api/version")[1]["X-Upstream-Slot"] == "green"

    # The directory belongs to the switch: a later run of the role keeps green live.
    routing = tree_snapshot(nginx_site["upstream_dir"])
    again = run_role(tmp_path, "nginx", nginx_site["vars"])
    assert again.rc == 0 and again.counts()["changed"] == 0, again.stdout[-4000:]
    assert tree_snapshot(nginx_site["upstream_dir"]) == routing
    assert http_get(base + "/api/version")[1]["X-App-Slot"] == "green"

    # A green slot that refuses connections falls back to blue, its backup, and the answer
    # says so: the header comes from the server nginx reached, not from the marker.
    nginx_site["green"].stop()
    fallback = http_get(base + "/api/version")[1]
    assert fallback["X-App-Slot"] == "blue" and fallback["X-Upstream-Slot"] == "blue"

    # /nginx-health is nginx's own answer, with no slot behind it.
    nginx_site["blue"].stop()
    status, _unused, body = http_get(base + "/nginx-health")
    assert (status, body) == (200, "ok\n")
    status, _unused, _unused = http_get(base + "/")
    assert status == 502


def test_nginx_config_rejected_by_nginx_t_is_rolled_back(tmp_path, nginx_site):
    # Valid values one by one, but nginx refuses the same location twice ("duplicate location").
    bad = dict(nginx_site["vars"], nginx_denied_locations=["/api/admin/", "/api/admin/"])
    before = tree_snapshot("/etc/nginx/conf.d")

    result = run_role(tmp_path, "nginx", bad)

    assert result.rc != 0
    assert "the previous file was restored" in result.stdout
    assert "nginx said:" in result.stdout and "emerg" in result.stdout
    assert not os.path.exists(nginx_site["site_file"])
    assert tree_snapshot("/etc/nginx/conf.d") == before
    status, _unused, _unused = http_get("http://127.0.0.1:8080/nginx-health")
    assert status == 200  # the running load balancer never noticed


def test_nginx_check_mode_changes_nothing(tmp_path, nginx_site):
    before = tree_snapshot(*NGINX_ROLE_FILES)

    result = run_role(tmp_path, "nginx", nginx_site["vars"], check=True, diff=True)

    assert result.rc == 0, result.output[-4000:]
    assert result.counts()["changed"] > 0
    assert "listen 127.0.0.1:%d;" % nginx_site["port"] in result.stdout  # the diff of the new site
    assert tree_snapshot(*NGINX_ROLE_FILES) == before
    assert not os.path.exists(nginx_site["upstream_dir"])


@pytest.mark.parametrize(
    "bad, fragments",
    [
        ({"nginx_listen_port": 70000}, ["nginx_listen_port=70000 is not a TCP port", "between 1 and 65535"]),
        ({"nginx_listen_port": "eighty"}, ["nginx_listen_port", "int"]),
        ({"nginx_client_max_body_size": "10 MB"}, ["nginx_client_max_body_size='10 MB' is not an nginx size"]),
        ({"nginx_upstream_initial_servers": {"blue": ["127.0.0.1"], "green": ["127.0.0.1:3009"]}},
         ["nginx_upstream_initial_servers", "'host:port'"]),
        ({"nginx_upstream_initial_servers": ["127.0.0.1:3008"]}, ["nginx_upstream_initial_servers", "dict"]),
    ],
)
def test_nginx_bad_input_fails_before_any_change(tmp_path, nginx_site, bad, fragments):
    before = tree_snapshot(*NGINX_ROLE_FILES)
    result = run_role(tmp_path, "nginx", dict(nginx_site["vars"], **bad))
    assert_failed_in_validation(result, fragments)
    assert tree_snapshot(*NGINX_ROLE_FILES) == before
    assert not os.path.exists(nginx_site["upstream_dir"])


# --- redis ----------------------------------------------------------------------------------

REDIS_APP_USER = "unitehub"  # app_name of the local inventory
REDIS_OPS_USER = "unitehub-ops"
REDIS_AUTH_FILE = "/etc/redis/unitehub-auth.conf"


def redis_client(user, password):
    return redis.Redis(host="127.0.0.1", port=6379, username=user, password=password, socket_timeout=5,
                       decode_responses=True)


def redis_app(password=None):
    """Redis as the app's ACL user, with the inventory's password unless told otherwise."""
    return redis_client(REDIS_APP_USER, password or local_secret("redis_app_password"))


def redis_ops():
    """Redis as the operator's ACL user (settings, no key), with the inventory's password."""
    return redis_client(REDIS_OPS_USER, local_secret("redis_ops_password"))


def redis_cli(*args, user=None, password=None):
    """redis-cli on the shared Redis; the password goes through stdin (--askpass)."""
    login = ["--user", user, "--askpass"] if user else []
    proc = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379"] + login + list(args), input=password or "",
                          capture_output=True, text=True, timeout=10, check=False)
    return proc.stdout.strip()


def test_redis_role_converges_idempotently_and_answers_ping(tmp_path):
    assert_converged_then_idempotent(tmp_path, "redis")

    assert redis_app().ping() is True
    client = redis_ops()
    assert client.ping() is True
    assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
    assert client.config_get("maxmemory") == {"maxmemory": str(256 * 1024 * 1024)}
    assert client.config_get("appendonly") == {"appendonly": "no"}
    assert client.config_get("save") == {"save": "3600 1 300 100 60 10000"}
    with open("/etc/redis/redis.conf") as handle:
        tail = handle.read().splitlines()[-2:]
    assert tail == ["include /etc/redis/unitehub.conf", "include " + REDIS_AUTH_FILE]


def test_redis_refuses_anonymous_clients_and_the_app_user_cannot_configure(tmp_path):
    """The converged Redis: no client gets in without credentials, the app's user runs
    its own commands on its own keys only, the ops user reads settings and no key, and
    the health probe passes as the ops user."""
    app_password, ops_password = local_secret("redis_app_password"), local_secret("redis_ops_password")

    assert redis_cli("PING") == "NOAUTH Authentication required."
    assert redis_cli("PING", user="default").startswith("NOAUTH")  # AUTH default "" failed
    assert redis_cli("PING", user=REDIS_APP_USER, password="wrong").startswith("NOAUTH")
    assert redis_cli("PING", user=REDIS_APP_USER, password=app_password) == "PONG"
    assert redis_cli("CONFIG", "GET", "maxmemory", user=REDIS_APP_USER, password=app_password).startswith(
        "NOPERM this user has no permissions to run the 'config|get' command")
    assert redis_cli("FLUSHALL", user=REDIS_APP_USER, password=app_password).startswith("NOPERM")
    key = "unitehub:uhit:%s" % uuid.uuid4().hex
    assert redis_cli("SET", key, "v", "EX", "60", user=REDIS_APP_USER, password=app_password) == "OK"
    assert redis_cli("GET", "uhit:%s" % uuid.uuid4().hex, user=REDIS_APP_USER, password=app_password).startswith(
        "NOPERM this user has no permissions to access one of the keys")
    assert redis_cli("CONFIG", "GET", "maxmemory", user=REDIS_OPS_USER, password=ops_password) == "maxmemory\n268435456"
    assert redis_cli("GET", key, user=REDIS_OPS_USER, password=ops_password).startswith("NOPERM")

    # Only password hashes are on disk.
    with open(REDIS_AUTH_FILE, encoding="utf-8") as handle:
        acl = handle.read()
    assert app_password not in acl and ops_password not in acl
    assert "#" + hashlib.sha256(app_password.encode()).hexdigest() in acl

    probe = {"type": "redis", "login_port": 6379, "login_user": "{{ redis_ops_user | default('unitehub-ops') }}",
             "login_password": "{{ redis_ops_password }}"}
    result, run = run_module(tmp_path, "unitehub.platform.health_probe", probe)
    assert result["status"] == "pass", run.output[-4000:]
    assert ops_password not in run.output
    anonymous, _run = run_module(tmp_path, "unitehub.platform.health_probe", {"type": "redis", "login_port": 6379})
    assert anonymous["status"] == "fail" and "Redis requires authentication" in anonymous["msg"], anonymous


@pytest.fixture
def redis_restored(tmp_path):
    """Puts the shared Redis back to the inventory's settings after the test."""
    yield
    result = run_role(tmp_path, "redis")
    assert result.rc == 0, result.output[-4000:]
    assert redis_app().ping() is True


def test_redis_password_change_is_applied_and_never_shown(tmp_path, redis_restored):
    assert run_role(tmp_path, "redis").rc == 0
    key = "unitehub:uhit:%s" % uuid.uuid4().hex
    redis_app().set(key, "kept", ex=600)
    password = 'uh"%s\\x/@:' % secrets.token_urlsafe(16)  # characters that need care in a config file or a URL
    settings = {"redis_app_password": password, "redis_persistence": "aof"}

    first = run_role(tmp_path, "redis", settings, diff=True, verbosity=3)
    second = run_role(tmp_path, "redis", settings, diff=True, verbosity=3)

    assert first.rc == 0, first.output[-6000:].replace(password, "<password>")
    assert second.rc == 0 and second.counts()["changed"] == 0, second.stdout[-4000:].replace(password, "<password>")
    for run in (first, second):
        assert password not in run.output and local_secret("redis_ops_password") not in run.output
    auth = os.stat(REDIS_AUTH_FILE)
    assert stat.S_IMODE(auth.st_mode) == 0o600
    assert pwd.getpwuid(auth.st_uid).pw_name == "redis"
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis_app().ping()  # the inventory's password is no longer the app's
    client = redis_app(password)
    assert client.ping() is True
    assert redis_ops().config_get("appendonly") == {"appendonly": "yes"}
    # switching persistence to AOF on a running Redis kept the dataset
    assert client.get(key) == "kept"


def test_redis_back_from_aof_keeps_data_written_meanwhile(tmp_path):
    key = "unitehub:uhit:%s" % uuid.uuid4().hex
    try:
        assert run_role(tmp_path, "redis", {"redis_persistence": "aof"}).rc == 0
        redis_app().set(key, "written-under-aof", ex=600)
    finally:
        # The inventory's settings: rdb. What the test checks, and what puts the shared
        # Redis back (redis_restored would only run it again).
        result = run_role(tmp_path, "redis")

    assert result.rc == 0, result.output[-4000:]
    assert redis_app().get(key) == "written-under-aof"


def test_redis_check_mode_changes_nothing(tmp_path):
    assert run_role(tmp_path, "redis").rc == 0
    before = tree_snapshot("/etc/redis")

    result = run_role(tmp_path, "redis", {"redis_maxmemory": "64mb", "redis_app_password": "check-only"},
                      check=True, diff=True)

    assert result.rc == 0, result.output[-4000:]
    assert result.counts()["changed"] > 0
    assert "+maxmemory 64mb" in result.stdout
    assert "check-only" not in result.output
    assert tree_snapshot("/etc/redis") == before
    assert redis_ops().config_get("maxmemory") == {"maxmemory": str(256 * 1024 * 1024)}
    assert redis_app().ping() is True


@pytest.mark.parametrize(
    "bad, fragments",
    [
        ({"redis_maxmemory_policy": "bogus"}, ["redis_maxmemory_policy", "bogus", "allkeys-lru"]),
        ({"redis_persistence": "sometimes"}, ["redis_persistence", "sometimes"]),
        ({"redis_maxmemory": "lots"}, ["redis_maxmemory='lots' is not a Redis memory size"]),
        ({"redis_port": 0}, ["redis_port=0 is not a TCP port"]),
        ({"redis_rdb_save_points": ["300"]}, ["redis_rdb_save_points=['300'] must list '<seconds> <changes>' pairs"]),
        ({"redis_extra_settings": {"daemonize": "no"}}, ["redis_extra_settings sets daemonize"]),
        ({"redis_extra_settings": {"user": "default on nopass +@all"}}, ["redis_extra_settings sets user"]),
        ({"redis_password": "old-style"}, ["redis_password (requirepass) is gone", "redis_app_password"]),
        ({"redis_app_password": "two\nlines"}, ["redis_app_password is empty or contains a control character"]),
        ({"redis_ops_password": ""}, ["redis_ops_password is empty"]),
        ({"redis_app_user": "default"}, ["redis_app_user='default' must be"]),
        ({"redis_ops_user": "ops +@all"}, ["redis_ops_user='ops +@all' must be"]),
        ({"redis_app_commands": ["get +@all"]}, ["redis_app_commands=['get +@all'] must list command names"]),
        ({"redis_app_key_patterns": ["* ~other"]}, ["redis_app_key_patterns=['* ~other'] must list glob patterns"]),
    ],
)
def test_redis_bad_input_fails_before_any_change(tmp_path, bad, fragments):
    before = tree_snapshot("/etc/redis")
    result = run_role(tmp_path, "redis", bad)
    assert_failed_in_validation(result, fragments)
    assert tree_snapshot("/etc/redis") == before


# --- postgresql -----------------------------------------------------------------------------

def psql_as_postgres(query):
    proc = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-Atqc", query],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def psql_as(user, password, database, query="SELECT 1"):
    """psql over TCP on loopback with a password, as the app would connect."""
    env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="5")
    env.pop("PGSERVICE", None)
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", "5432", "-U", user, "-d", database, "-w", "-Atc", query],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )


def remove_hba_block(user, database):
    path = os.path.join(PG_CONF_DIR, "pg_hba.conf")
    marker = "unitehub.platform: app role %s on database %s" % (user, database)
    with open(path) as handle:
        text = handle.read()
    kept = re.sub(r"# BEGIN %s\n.*?# END %s\n" % (re.escape(marker), re.escape(marker)), "", text, flags=re.S)
    if kept != text:
        with open(path, "w") as handle:
            handle.write(kept)
        psql_as_postgres("SELECT pg_reload_conf()")


@pytest.fixture
def pg_app(tmp_path):
    """A throwaway app identity, so the real app's role is never touched."""
    name = "uhit_" + uuid.uuid4().hex[:8]
    app = {
        "user": name,
        "database": name,
        "password": "pw-" + secrets.token_urlsafe(18),
    }
    app["vars"] = {
        "postgresql_app_user": name,
        "postgresql_app_database": name,
        "postgresql_app_password": app["password"],
        "postgresql_app_password_generated": False,  # chosen-looking; the local inventory's is generated
    }
    yield app
    psql_as_postgres("DROP DATABASE IF EXISTS %s" % name)
    psql_as_postgres("DROP ROLE IF EXISTS %s" % name)
    remove_hba_block(name, name)


def test_postgresql_role_converges_idempotently_and_the_app_can_log_in(tmp_path, pg_app):
    first, second = assert_converged_then_idempotent(tmp_path, "postgresql", pg_app["vars"])

    for run in (first, second):
        assert pg_app["password"] not in run.output
    login = psql_as(pg_app["user"], pg_app["password"], pg_app["database"])
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip() == "1"
    owner = psql_as_postgres(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '%s'" % pg_app["database"]
    )
    assert owner == pg_app["user"]
    stored = psql_as_postgres("SELECT rolpassword FROM pg_authid WHERE rolname = '%s'" % pg_app["user"])
    assert stored.startswith("SCRAM-SHA-256$4096:")
    assert psql_as_postgres("SHOW listen_addresses") == "127.0.0.1"
    assert psql_as_postgres("SHOW max_connections") == "100"
    wrong = psql_as(pg_app["user"], "not-the-password", pg_app["database"])
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr


def test_postgresql_password_change_is_detected_and_applied(tmp_path, pg_app):
    assert run_role(tmp_path, "postgresql", pg_app["vars"]).rc == 0
    new_password = "pw2-" + secrets.token_urlsafe(18)

    result = run_role(tmp_path, "postgresql", dict(pg_app["vars"], postgresql_app_password=new_password),
                      diff=True, verbosity=2)

    assert result.rc == 0, result.output[-4000:]
    assert result.counts()["changed"] == 1  # the role/database task, nothing else
    assert new_password not in result.output and pg_app["password"] not in result.output
    assert "set the password of role %s" % pg_app["user"] in result.stdout
    assert psql_as(pg_app["user"], new_password, pg_app["database"]).returncode == 0
    assert psql_as(pg_app["user"], pg_app["password"], pg_app["database"]).returncode != 0


def test_postgresql_check_mode_changes_nothing(tmp_path, pg_app):
    before = tree_snapshot(PG_CONF_DIR)

    result = run_role(tmp_path, "postgresql", pg_app["vars"], check=True, diff=True)

    assert result.rc == 0, result.output[-4000:]
    assert result.counts()["changed"] > 0
    assert pg_app["password"] not in result.output
    assert tree_snapshot(PG_CONF_DIR) == before
    assert psql_as_postgres("SELECT count(*) FROM pg_roles WHERE rolname = '%s'" % pg_app["user"]) == "0"


@pytest.mark.parametrize(
    "bad, fragments",
    [
        ({"postgresql_app_password": ""}, ["postgresql_app_password is empty"]),
        ({"postgresql_port": 70000}, ["postgresql_port=70000 is not a TCP port"]),
        ({"postgresql_auth_method": "trust"}, ["postgresql_auth_method", "trust"]),
        ({"postgresql_shared_buffers": "1 gig"}, ["postgresql_shared_buffers='1 gig' is not a PostgreSQL memory size"]),
        ({"postgresql_max_connections": 0}, ["postgresql_max_connections=0 is out of range"]),
        ({"postgresql_app_password_generated": True},
         ["postgresql_app_password_generated is true, but postgresql_app_password is not a generated password",
          "set postgresql_app_password_generated to false"]),
    ],
)
def test_postgresql_bad_input_fails_before_any_change(tmp_path, pg_app, bad, fragments):
    before = tree_snapshot(PG_CONF_DIR)
    result = run_role(tmp_path, "postgresql", dict(pg_app["vars"], **bad))
    assert_failed_in_validation(result, fragments)
    assert tree_snapshot(PG_CONF_DIR) == before
    assert psql_as_postgres("SELECT count(*) FROM pg_roles WHERE rolname = '%s'" % pg_app["user"]) == "0"


def test_postgresql_role_does_nothing_when_not_embedded(tmp_path):
    before = tree_snapshot(PG_CONF_DIR)
    result = run_role(tmp_path, "postgresql", {"postgresql_embedded": False})
    assert result.rc == 0, result.output[-4000:]
    assert result.counts()["changed"] == 0
    assert tree_snapshot(PG_CONF_DIR) == before


def test_recap_parser_reads_every_host_and_count():
    output = (
        "PLAY [x] ***\n\nPLAY RECAP *********\n"
        "localhost                  : ok=13   changed=6    unreachable=0    failed=0    skipped=2    rescued=0    ignored=1   \n"
        "db1.example.com            : ok=2    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0\n"
    )
    recap = parse_recap(output)
    assert recap["localhost"] == {
        "ok": 13, "changed": 6, "unreachable": 0, "failed": 0, "skipped": 2, "rescued": 0, "ignored": 1,
    }
    assert recap["db1.example.com"]["unreachable"] == 1
    assert parse_recap("ERROR! the playbook could not be parsed") == {}
