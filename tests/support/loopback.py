# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Loopback networking for tests and benches; everything binds 127.0.0.1.

    port = free_port()                      # nothing listens there now
    listening(port)                         # True once something accepts on it
    with serve_http(Handler) as base_url:   # http://127.0.0.1:<free port>
        ...
    server = HttpServer(Handler, port)      # the same, for a server a test stops and starts itself
    server.close()

``Handler`` is a ``BaseHTTPRequestHandler`` class. A server answers from a daemon
thread and is shut down, closed and joined when the block ends or on ``close()``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import ThreadingHTTPServer

HOST = "127.0.0.1"


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on: the kernel picks it, the socket is closed again."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def listening(port, timeout=1.0):
    """Whether something accepts TCP connections on 127.0.0.1:``port`` within ``timeout`` seconds."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


class HttpServer:
    """A ``ThreadingHTTPServer`` on 127.0.0.1:``port`` (0: a free one), already serving."""

    def __init__(self, handler, port=0):
        self.server = ThreadingHTTPServer((HOST, port), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://%s:%d" % (HOST, self.port)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@contextlib.contextmanager
def serve_http(handler):
    """Serve ``handler`` on a free port for the block; yields the base URL."""
    server = HttpServer(handler)
    try:
        yield server.url
    finally:
        server.close()
