"""HTTP/1.1 server with graceful shutdown, and the process entry point.

On SIGTERM or SIGINT the server stops accepting (the listening socket is
closed), lets in-flight requests finish -- their responses carry
``Connection: close`` -- closes idle keep-alive connections, and exits 0. When
requests are still running after ``SHUTDOWN_GRACE`` seconds it exits 1.
"""

from __future__ import annotations

import http.server
import os
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

from . import __version__
from .app import Application, Request, Response
from .config import ConfigError, load_config
from .logs import JsonLogger

KEEPALIVE_IDLE_TIMEOUT = 75.0  # seconds; above nginx's default upstream keepalive_timeout (60 s)
SHUTDOWN_GRACE = 30.0  # seconds in-flight requests get after SIGTERM
MAX_BODY = 1 << 20  # request bodies are read and discarded up to this size
MAX_LOGGED_PATH = 512  # characters of the path kept in a log line
EXIT_CONFIG_ERROR = 2
EXIT_FAULT_CRASH = 3


class AppHTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Tracks every connection so shutdown can drain busy ones and close idle ones."""

    daemon_threads = False
    block_on_close = False  # drain() waits instead, with a bound
    allow_reuse_address = True
    # listen() backlog. socketserver's default of 5 overflows under a burst of new
    # connections (50 concurrent clients, or nginx opening one per request): the
    # kernel drops the SYNs and clients wait out 1 s, 3 s... retransmits. The kernel
    # caps it at net.core.somaxconn.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], app: Application, logger: JsonLogger):
        self.app = app
        self.log = logger
        self.draining = False
        self._conn_lock = threading.Lock()
        self._connections: dict = {}  # handler -> busy?
        self._active = 0  # accepted connections whose thread has not finished
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn); not needed.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = self.server_address[1]

    def process_request(self, request, client_address) -> None:
        with self._conn_lock:
            self._active += 1
        try:
            super().process_request(request, client_address)
        except BaseException:
            with self._conn_lock:
                self._active -= 1
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._active -= 1

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        self.log.error("connection_error", error=type(exc).__name__)

    # -- connection states -------------------------------------------------

    def register(self, handler: RequestHandler) -> None:
        with self._conn_lock:
            self._connections[handler] = False

    def unregister(self, handler: RequestHandler) -> None:
        with self._conn_lock:
            self._connections.pop(handler, None)

    def mark_busy(self, handler: RequestHandler) -> None:
        with self._conn_lock:
            self._connections[handler] = True

    def mark_idle(self, handler: RequestHandler) -> bool:
        """Back to waiting for the next request; False when draining (close the connection)."""
        with self._conn_lock:
            if self.draining:
                return False
            self._connections[handler] = False
            return True

    def stop_accepting(self) -> None:
        """Stop the accept loop and close the listening socket."""
        self.shutdown()
        self.socket.close()

    def drain(self, timeout: float) -> bool:
        """Wait for in-flight requests, closing idle connections; True when all are done."""
        deadline = time.monotonic() + timeout
        with self._conn_lock:
            self.draining = True
        while True:
            with self._conn_lock:
                idle = [h for h, busy in self._connections.items() if not busy]
                active = self._active
            if active == 0:
                return True
            for handler in idle:
                handler.interrupt_idle()
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


class RequestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "unitehub-app/" + __version__
    sys_version = ""
    timeout = KEEPALIVE_IDLE_TIMEOUT
    server: AppHTTPServer

    # -- connection lifecycle ----------------------------------------------

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes: without TCP_NODELAY the body
        # waits for the peer's delayed ACK (~40 ms) on every kept-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.register(self)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.unregister(self)

    def interrupt_idle(self) -> None:
        """Wake a handler blocked reading the next request; it sees EOF and closes."""
        try:
            self.connection.shutdown(socket.SHUT_RD)
        except OSError:
            pass

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        self.server.mark_busy(self)
        app = self.server.app
        span = app.recorder.start_http("")
        self._status = 0
        self._route = "unmatched"
        self.command = ""
        self.path = ""
        try:
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = ""
                self.send_error(414)
            elif self.parse_request():
                span.method = self.command
                self._dispatch(app)
            self.wfile.flush()
        except (TimeoutError, ConnectionError, OSError):
            self.close_connection = True  # the client went away or stalled
        finally:
            duration = app.recorder.finish_http(span, self._route, self._status or 499)
            app.log.info(
                "request",
                method=self.command or "-",
                path=urllib.parse.urlsplit(self.path).path[:MAX_LOGGED_PATH] if self.path else "-",
                route=self._route,
                status=self._status or 499,
                duration_ms=round(duration * 1000.0, 3),
                slot=app.config.slot,
                version=app.config.version,
            )
            if not self.server.mark_idle(self):
                self.close_connection = True

    # -- request handling --------------------------------------------------

    def _discard_body(self) -> Response | None:
        """Read and drop a request body so the connection can be reused; a 411/413 when it cannot be."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return Response(411, b'{"error":"send a Content-Length, not a chunked body"}\n')
        try:
            length = int(self.headers.get("Content-Length", "0") or "0")
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            return Response(413, b'{"error":"request body too large or its length is invalid"}\n')
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:
                raise ConnectionError("the client closed the connection inside the request body")
            length -= len(chunk)
        return None

    def _dispatch(self, app: Application) -> None:
        request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
        route, handler, allowed = app.resolve(request)
        self._route = route
        refused = self._discard_body()
        if refused is not None:
            self.close_connection = True
            response = refused
        elif handler is None:
            response = app.method_not_allowed(request, allowed) if allowed else app.not_found(request)
        else:
            try:
                response = handler(request)
            except Exception as exc:  # one bad request must not end the connection thread
                app.log.error("handler_error", route=route, error=type(exc).__name__)
                app.recorder.record_error("handler")
                response = app.internal_error()
        self._write(response, head_only=self.command == "HEAD")

    def _write(self, response: Response, head_only: bool) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.server.draining or self.close_connection:
            self.send_header("Connection", "close")
        # Head and body leave in one write: a process that dies never sends the head
        # alone, which nginx would pass on and could no longer retry on the backup slot.
        self._headers_buffer.append(b"\r\n")
        if not head_only:
            self._headers_buffer.append(response.body)
        self.flush_headers()

    def send_response(self, code: int, message: str | None = None) -> None:
        # Every response, errors from parse_request included, names the slot and version.
        super().send_response(code, message)
        self._status = code
        config = self.server.app.config
        self.send_header("X-App-Slot", config.slot)
        self.send_header("X-App-Version", config.version)

    def version_string(self) -> str:
        return self.server_version

    def log_request(self, code="-", size="-") -> None:
        pass  # one JSON line per request is written by handle_one_request

    def log_message(self, format: str, *args) -> None:
        pass  # stdlib messages can echo the request line; the JSON request log covers errors


def _install_signal_handlers(stop: threading.Event, received: list) -> None:
    def handler(signum, frame):
        received.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _schedule_crash(seconds: float, logger: JsonLogger) -> None:
    def crash() -> None:
        logger.error("fault_crash", after_seconds=seconds, exit_code=EXIT_FAULT_CRASH)
        os._exit(EXIT_FAULT_CRASH)

    timer = threading.Timer(seconds, crash)
    timer.daemon = True
    timer.start()


def main(environ=None) -> int:
    environ = os.environ if environ is None else environ
    try:
        config = load_config(environ)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"unitehub_app: configuration error: {problem}", file=sys.stderr, flush=True)
        return EXIT_CONFIG_ERROR

    logger = JsonLogger(static={"app": config.app_name}, secrets=config.secrets())
    app = Application(config, logger)
    try:
        server = AppHTTPServer((config.host, config.port), app, logger)
    except OSError as exc:
        logger.error("bind_failed", host=config.host, port=config.port, error=f"{type(exc).__name__}: {exc.strerror}")
        where = f"{config.host}:{config.port}"
        print(f"unitehub_app: cannot listen on {where}: {exc.strerror}", file=sys.stderr, flush=True)
        app.close()
        return 1

    stop = threading.Event()
    received: list = []
    _install_signal_handlers(stop, received)
    app.start()
    acceptor = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="http-acceptor")
    acceptor.start()
    logger.info(
        "listening",
        host=config.host,
        port=server.server_port,
        slot=config.slot,
        version=config.version,
        release_id=config.release_id,
        app_build=__version__,
        redis_configured=bool(config.redis_url),
        database_configured=bool(config.database_url),
        apm=config.apm_provider if config.enable_apm else "off",
    )
    if config.fault_crash_after is not None:
        _schedule_crash(config.fault_crash_after, logger)

    while not stop.wait(0.5):
        pass
    logger.info("shutting_down", signal=received[0] if received else "", grace_seconds=SHUTDOWN_GRACE)
    server.stop_accepting()
    acceptor.join()
    drained = server.drain(SHUTDOWN_GRACE)
    app.close()
    if not drained:
        logger.error("shutdown_incomplete", note=f"requests still running after {SHUTDOWN_GRACE:g} s")
        os._exit(1)
    logger.info("stopped", exit_code=0)
    return 0
