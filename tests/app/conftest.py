"""Fixtures for the reference app: the app as a subprocess, and real or hostile dependencies.

Everything listens on 127.0.0.1 and every process started here is stopped by
its PID. Redis and PostgreSQL are private instances on free ports, so the
tests never depend on (or disturb) services the machine may already run.
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

# Shared with the integration tests and the benches; the app tests import these names from here.
from ansible_collections.unitehub.platform.tests.support.loopback import free_port
from ansible_collections.unitehub.platform.tests.support.otlp import OtlpReceiver
from ansible_collections.unitehub.platform.tests.support.waiting import wait_until

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP_DIR = os.path.join(REPO_ROOT, "examples", "app")
if APP_DIR not in sys.path:
    sys.path.insert(0, APP_DIR)

# The interpreter that runs the app under test. Point it at a Debian python3
# with python3-psycopg / python3-redis to test the container's library versions.
APP_PYTHON = os.environ.get("UNITEHUB_APP_PYTHON", sys.executable)
ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
Collector = OtlpReceiver  # the app tests' name for the shared OTLP receiver


def stop_pid(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
    """Signal one process by its PID and reap it; SIGKILL it if it ignores the signal."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return proc.returncode


class HttpResult:
    def __init__(self, status: int, headers: dict, body: bytes, elapsed: float):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def http_request(port: int, path: str, method: str = "GET", headers: dict | None = None, timeout: float = 10.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    start = time.monotonic()
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return HttpResult(
            response.status, {k.lower(): v for k, v in response.getheaders()}, body, time.monotonic() - start
        )
    finally:
        conn.close()


class AppProcess:
    def __init__(self, proc: subprocess.Popen, port: int, stdout_path: str, stderr_path: str):
        self.proc = proc
        self.port = port
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def get(self, path: str, **kwargs) -> HttpResult:
        return http_request(self.port, path, **kwargs)

    def post(self, path: str, **kwargs) -> HttpResult:
        return http_request(self.port, path, method="POST", **kwargs)

    def stdout(self) -> str:
        with open(self.stdout_path, encoding="utf-8") as handle:
            return handle.read()

    def stderr(self) -> str:
        with open(self.stderr_path, encoding="utf-8") as handle:
            return handle.read()

    def log_records(self) -> list[dict]:
        """Every stdout line, parsed; fails the test if a line is not JSON."""
        return [json.loads(line) for line in self.stdout().splitlines() if line.strip()]

    def events(self, name: str) -> list[dict]:
        return [r for r in self.log_records() if r.get("event") == name]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        return stop_pid(self.proc, sig, timeout)


@pytest.fixture
def start_app(tmp_path):
    """Factory: start the app with extra environment; wait until it serves (unless ``wait=False``)."""
    started: list[AppProcess] = []

    def start(env: dict | None = None, wait: bool = True, port: int | None = None) -> AppProcess:
        port = port or free_port()
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": APP_DIR,
            "PYTHONDONTWRITEBYTECODE": "1",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "APP_SLOT": "blue",
            "APP_VERSION": "v1.2.3-test",
            "TMPDIR": str(tmp_path),
        }
        for key, value in (env or {}).items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = str(value)
        index = len(started)
        stdout_path = str(tmp_path / f"app{index}.out")
        stderr_path = str(tmp_path / f"app{index}.err")
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            proc = subprocess.Popen(
                [APP_PYTHON, "-m", "unitehub_app"], cwd=APP_DIR, env=environment, stdout=out, stderr=err
            )
        app = AppProcess(proc, port, stdout_path, stderr_path)
        started.append(app)
        if wait:

            def ready():
                if proc.poll() is not None:
                    raise AssertionError(f"app exited with {proc.returncode}: {app.stderr()}{app.stdout()}")
                try:
                    return http_request(port, "/api/health/live", timeout=1).status == 200
                except OSError:
                    return False

            wait_until(ready, 15, what="the app to serve /api/health/live")
        return app

    yield start
    for app in started:
        app.stop()


class HangingServer:
    """Accepts TCP connections and never sends a byte: a dependency that hangs."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _unused = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted.append(conn)

    def close(self):
        self._stop.set()
        self._thread.join(2)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.fixture
def hanging_server():
    server = HangingServer()
    yield server
    server.close()


class RedisServer:
    """A private redis-server on a free loopback port, stopped by PID. ``args`` are
    further configuration directives, e.g. ``["--user", "default", "off"]``."""

    def __init__(self, workdir: str, port: int | None = None, args: list[str] | None = None):
        self.workdir = workdir
        self.port = port or free_port()
        self.args = list(args or [])
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                # A Redis with the default user off answers too, refusing the anonymous PING.
                return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (apt-get install redis-server)"
        with open(os.path.join(self.workdir, f"redis-{self.port}.log"), "ab") as log:
            self.proc = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--daemonize", "no", "--dir", self.workdir] + self.args,
                stdout=log, stderr=subprocess.STDOUT,
            )
        wait_until(self.ping, 10, what=f"redis-server on port {self.port}")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_pid(self.proc)
            self.proc = None


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(str(tmp_path)).start()
    yield server
    server.stop()


def _postgres_bindir() -> str:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    assert candidates, "PostgreSQL server binaries are not installed (apt-get install postgresql)"
    return os.path.dirname(candidates[-1])


class PostgresServer:
    def __init__(self, port: int):
        self.port = port

    def url(self, password: str = "") -> str:
        auth = f"postgres:{password}" if password else "postgres"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/postgres"


@pytest.fixture(scope="session")
def postgres_server():
    """A private PostgreSQL cluster (initdb in a temp dir, trust auth, loopback only)."""
    bindir = _postgres_bindir()
    base = tempfile.mkdtemp(prefix="unitehub-app-pg-")
    run_as: dict = {}
    if os.geteuid() == 0:  # postgres refuses to run as root
        run_as = {"user": "postgres", "group": "postgres", "extra_groups": []}
        shutil.chown(base, "postgres", "postgres")
    data = os.path.join(base, "data")
    subprocess.run(
        [os.path.join(bindir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120, **run_as,
    )
    port = free_port()
    with open(os.path.join(base, "postgres.log"), "ab") as log:
        proc = subprocess.Popen(
            [os.path.join(bindir, "postgres"), "-D", data, "-p", str(port), "-c", "listen_addresses=127.0.0.1",
             "-c", f"unix_socket_directories={base}", "-c", "fsync=off", "-c", "max_connections=50"],
            stdout=log, stderr=subprocess.STDOUT, **run_as,
        )
    try:
        def ready():
            if proc.poll() is not None:
                raise AssertionError(f"postgres exited with {proc.returncode}")
            return subprocess.run(
                [os.path.join(bindir, "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-q"], timeout=5,
                check=False,
            ).returncode == 0

        wait_until(ready, 30, interval=0.1, what="the private PostgreSQL server")
        yield PostgresServer(port)
    finally:
        stop_pid(proc, signal.SIGINT, timeout=20)  # SIGINT: fast shutdown
        shutil.rmtree(base, ignore_errors=True)
