"""The process: uvicorn serves the app, one process, its handlers on a thread pool.

One process, because the circuit breakers, the connection pools and the metrics
are the process's own: a second worker process would have breakers an admin
action never reaches and counters /metrics never shows. Requests are parsed by
uvicorn's h11 protocol on the event loop; the app's handlers are blocking code
(psycopg, redis-py) and run on ``APP_THREADS`` threads.

Limits and timeouts: a request head and then its body must each arrive within
``APP_READ_TIMEOUT`` (408 otherwise), and an idle keep-alive connection is closed
after ``APP_KEEPALIVE_TIMEOUT`` (above nginx's 60 s upstream keepalive, so nginx
closes first and never reuses a connection the app is closing). At most
``APP_MAX_CONNECTIONS`` requests run or wait at once (503 beyond), and as many
connections stay open: see :class:`ConnectionCap` for how slow clients are shed
without refusing a prompt one.

On SIGTERM or SIGINT the listening socket is closed, idle connections are closed,
in-flight requests finish (their responses carry ``Connection: close``), and the
process exits 0; 1 when handlers are still running after ``APP_SHUTDOWN_TIMEOUT``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import os
import resource
import signal
import socket
import sys
import threading

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

from . import __version__
from .app import Application, Request, Response, json_response
from .config import ConfigError, load_config
from .logs import JsonLogger

MAX_BODY = 1 << 20  # request bodies are read and discarded up to this size
MAX_LOGGED_PATH = 512  # characters of the path kept in a log line
# listen() backlog: a burst of new connections (nginx opens one per request) waits here
# instead of being dropped. The kernel caps it at net.core.somaxconn.
LISTEN_BACKLOG = 1024
EXIT_CONFIG_ERROR = 2
EXIT_FAULT_CRASH = 3
# A new connection is never shed in its first half second: a real client (nginx) sends its
# request head at once, and a burst of newer connections must not push it out before it is read.
HEAD_GRACE = 0.5
# File descriptors kept for everything but client connections (pools, logs, the OTLP export).
FD_RESERVE = 256


class ConnectionCap:
    """At most ``limit`` open connections, enforced by shedding slow clients, not prompt ones.

    A connection counts from accept to close. Past ``limit``, a new connection closes the
    oldest one still waiting for its first request head (idle or dribbling, as a slowloris
    is) once that one has had ``HEAD_GRACE`` seconds. Connections that have sent a request,
    nginx's keep-alive connections among them, are never shed for the cap, so a request
    through the load balancer is not refused while slow sockets pile up. When only young
    connections are left to shed, the newcomer is accepted all the same; only at ``ceiling``
    (what the file-descriptor limit allows) is it refused.
    """

    def __init__(self, limit: int, ceiling: int, grace: float = HEAD_GRACE):
        self.limit = limit
        self.ceiling = max(limit, ceiling)
        self.grace = grace
        self._open: set = set()
        self._waiting: dict = {}  # protocol -> accept time, oldest first

    def admit(self, protocol, now: float) -> bool:
        """Count a new connection, shedding slow ones past the limit; False: refuse it."""
        if len(self._open) >= self.ceiling:
            return False
        self._open.add(protocol)
        self._waiting[protocol] = now
        while len(self._open) > self.limit and self._waiting:
            oldest, since = next(iter(self._waiting.items()))
            if now - since < self.grace:
                break
            self.forget(oldest)
            oldest.shed()
        return True

    def started(self, protocol) -> None:
        """Its first request head arrived: never shed from now on."""
        self._waiting.pop(protocol, None)

    def forget(self, protocol) -> None:
        self._open.discard(protocol)
        self._waiting.pop(protocol, None)

    @property
    def open(self) -> int:
        return len(self._open)


def raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; the soft limit after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass  # keep the soft limit: the ceiling below is computed from it
    return soft


class AppProtocol(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline for the request head, and refusals
    (400 for a malformed request, 408 for a slow head) that carry the app's headers
    and leave in one write."""

    read_timeout = 10.0  # set from APP_READ_TIMEOUT by main()
    cap = ConnectionCap(1000, 1000)  # set from APP_MAX_CONNECTIONS by main()

    def connection_made(self, transport) -> None:
        self._head_deadline = None
        super().connection_made(transport)
        if not self.cap.admit(self, self.loop.time()):
            self._refuse(503, b"too many open connections")
            return
        self._await_head()  # a connection that never sends a byte is cut too

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            self._await_head()  # part of a head: the rest must follow in time
        else:
            self.cap.started(self)
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

    def connection_lost(self, exc) -> None:
        self.cap.forget(self)
        if self._head_deadline is not None:
            self._head_deadline.cancel()
        super().connection_lost(exc)

    def shed(self) -> None:
        """Closed to make room: it has sent no request head yet."""
        if not self.transport.is_closing():
            self._refuse(503, b"too many open connections")

    def _await_head(self) -> None:
        if self._head_deadline is None and not self.transport.is_closing():
            self._head_deadline = self.loop.call_later(self.read_timeout, self._head_too_slow)

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._refuse(408, b"the request head did not arrive in time")

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, msg.encode("ascii"))

    def _refuse(self, status: int, message: bytes) -> None:
        headers = self.server_state.default_headers + [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(message)),
            (b"connection", b"close"),
        ]
        head = b"HTTP/1.1 %d %s\r\n" % (status, STATUS_PHRASES[status])
        self.transport.write(head + b"".join(b"%s: %s\r\n" % pair for pair in headers) + b"\r\n" + message)
        self.transport.close()


class AsgiApp:
    """The ASGI side: one request in, the app's handler on the thread pool, one response out."""

    def __init__(self, app: Application, threads: int, read_timeout: float, max_requests: int):
        self.app = app
        self.read_timeout = read_timeout
        self.max_requests = max_requests  # running or waiting for a thread; 503 beyond
        self.in_progress = 0
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="handler")
        self.draining = False  # set when shutdown starts: responses from then on close their connection
        self.busy = 0  # handlers running right now
        self._busy_lock = threading.Lock()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        app = self.app
        target = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        request = Request(scope["method"], target, {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]})
        route, handler, allowed = app.resolve(request)
        timer = app.recorder.start_http(request.method, route, request.headers)
        status = 499
        self.in_progress += 1
        try:
            if self.in_progress > self.max_requests:
                response, close = json_response(503, {"error": "too many requests in progress"}), False
            else:
                response, close = await self._respond(request, receive, route, handler, allowed)
            headers = [
                (b"content-type", response.content_type.encode("latin-1")),
                (b"content-length", b"%d" % len(response.body)),
            ]
            headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
            if close or self.draining:
                headers.append((b"connection", b"close"))
            # Start and body go out in one step of the event loop, which is also where the
            # crash fault runs: a crash never leaves nginx holding a head without its body.
            await send({"type": "http.response.start", "status": response.status, "headers": headers})
            await send({"type": "http.response.body", "body": response.body})
            status = response.status
        finally:
            self.in_progress -= 1
            duration = app.recorder.finish_http(timer, status)
            app.log.info(
                "request",
                method=request.method,
                path=request.path[:MAX_LOGGED_PATH],
                route=route,
                status=status,
                duration_ms=round(duration * 1000.0, 3),
                slot=app.config.slot,
                version=app.config.version,
            )

    async def _respond(self, request: Request, receive, route, handler, allowed) -> tuple[Response, bool]:
        """``(response, close the connection afterwards)``."""
        try:
            size = await asyncio.wait_for(self._drain_body(receive), self.read_timeout)
        except TimeoutError:
            return json_response(408, {"error": "the request body did not arrive in time"}), True
        if size > MAX_BODY:
            return json_response(413, {"error": "request body too large"}), True
        if handler is None:
            if allowed:
                return self.app.method_not_allowed(request, allowed), False
            return self.app.not_found(request), False
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self._run, handler, request, route), False

    @staticmethod
    async def _drain_body(receive) -> int:
        """Read and drop the request body (so the connection can be reused); its size, or more than MAX_BODY."""
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if size > MAX_BODY or not message.get("more_body", False):
                return size

    def _run(self, handler, request: Request, route: str) -> Response:
        with self._busy_lock:
            self.busy += 1
        try:
            return handler(request)
        except Exception as exc:  # one bad request must not take the server down
            self.app.log.error("handler_error", route=route, error=type(exc).__name__)
            self.app.recorder.record_error("handler")
            return self.app.internal_error()
        finally:
            with self._busy_lock:
                self.busy -= 1


class AppServer(uvicorn.Server):
    """uvicorn's server, logging its start and stop, and running the crash fault on the event loop."""

    def __init__(self, config: uvicorn.Config, asgi: AsgiApp, logger: JsonLogger, early_stop: list):
        super().__init__(config)
        self.asgi = asgi
        self.log = logger
        self.crash_after = asgi.app.config.fault_crash_after
        self.early_stop = early_stop  # signals that came before uvicorn's handlers were in place
        self.stop_signal = ""

    def handle_exit(self, sig, frame) -> None:
        self.stop_signal = self.stop_signal or signal.Signals(sig).name
        super().handle_exit(sig, frame)

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        c = self.asgi.app.config
        self.log.info(
            "listening",
            host=c.host,
            port=c.port,
            slot=c.slot,
            version=c.version,
            release_id=c.release_id,
            app_build=__version__,
            redis_configured=bool(c.redis_url),
            database_configured=bool(c.database_url),
            apm=c.apm_provider if c.enable_apm else "off",
            threads=c.threads,
            max_connections=c.max_connections,
        )
        if self.early_stop:
            self.stop_signal = signal.Signals(self.early_stop[0]).name
            self.should_exit = True
        if self.crash_after is not None:
            asyncio.get_running_loop().call_later(self.crash_after, self._crash)

    def _crash(self) -> None:
        # The whole process ends (the container with it), as a real crash would: no drain.
        self.log.error("fault_crash", after_seconds=self.crash_after, exit_code=EXIT_FAULT_CRASH)
        os._exit(EXIT_FAULT_CRASH)

    async def shutdown(self, sockets=None) -> None:
        self.asgi.draining = True
        self.log.info("shutting_down", signal=self.stop_signal, grace_seconds=self.config.timeout_graceful_shutdown)
        await super().shutdown(sockets=sockets)


class LogBridge(logging.Handler):
    """Warnings and errors of the libraries (uvicorn, OpenTelemetry) as JSON lines."""

    def __init__(self, logger: JsonLogger):
        super().__init__(logging.WARNING)
        self._json = logger

    def emit(self, record: logging.LogRecord) -> None:
        level = "error" if record.levelno >= logging.ERROR else "warning"
        fields = {"logger": record.name, "message": record.getMessage()}
        if record.exc_info and record.exc_info[1] is not None:
            fields["error"] = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        self._json.log(level, "library_log", **fields)


def listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def main(environ=None) -> int:
    environ = os.environ if environ is None else environ
    # Until uvicorn takes the signals over, a stop request is remembered and honoured at start.
    early_stop: list = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: early_stop.append(signum))
    try:
        config = load_config(environ)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"unitehub_app: configuration error: {problem}", file=sys.stderr, flush=True)
        return EXIT_CONFIG_ERROR

    logger = JsonLogger(static={"app": config.app_name}, secrets=config.secrets())
    logging.basicConfig(level=logging.WARNING, handlers=[LogBridge(logger)], force=True)
    try:
        sock = listen(config.host, config.port)
    except OSError as exc:
        logger.error("bind_failed", host=config.host, port=config.port, error=f"{type(exc).__name__}: {exc.strerror}")
        print(f"unitehub_app: cannot listen on {config.host}:{config.port}: {exc.strerror}", file=sys.stderr, flush=True)
        return 1

    open_files = raise_open_files_limit()
    AppProtocol.cap = ConnectionCap(config.max_connections, open_files - FD_RESERVE)
    if config.max_connections > open_files - FD_RESERVE:
        logger.warning("open_files_limit", limit=open_files, max_connections=config.max_connections,
                       note="APP_MAX_CONNECTIONS leaves too few file descriptors; raise the container's nofile limit")

    app = Application(config, logger)
    asgi = AsgiApp(app, config.threads, config.read_timeout, config.max_connections)
    AppProtocol.read_timeout = config.read_timeout
    server = AppServer(
        uvicorn.Config(
            asgi,
            http=AppProtocol,
            ws="none",
            lifespan="off",
            loop="asyncio",
            interface="asgi3",
            proxy_headers=False,
            backlog=LISTEN_BACKLOG,
            limit_concurrency=None,  # AppProtocol.cap and AsgiApp.max_requests, which shed slow clients first
            timeout_keep_alive=config.keepalive_timeout,
            timeout_graceful_shutdown=config.shutdown_timeout,
            server_header=False,
            # Every response, the server's own refusals included, names the slot and version.
            headers=[
                ("Server", "unitehub-app/" + __version__),
                ("X-App-Slot", config.slot),
                ("X-App-Version", config.version),
            ],
            access_log=False,  # one JSON line per request is written by AsgiApp
            log_config=None,
        ),
        asgi,
        logger,
        early_stop,
    )
    # Everything loaded so far (the app, uvicorn, the OpenTelemetry SDK, protobuf) lives as
    # long as the process: keep it out of the cyclic collector, which would otherwise walk
    # it again on every full collection the request path triggers.
    gc.freeze()
    server.run(sockets=[sock])

    app.close()
    asgi.executor.shutdown(wait=False)
    if asgi.busy:
        logger.error("shutdown_incomplete", note=f"{asgi.busy} request(s) still running after {config.shutdown_timeout:g} s")
        os._exit(1)  # the running handler threads would keep the interpreter from exiting
    logger.info("stopped", exit_code=0)
    return 0
