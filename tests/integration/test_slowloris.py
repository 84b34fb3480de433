# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Slowloris against the live slot: 3,000 idle and slow sockets on its own port while a
load client goes through nginx.

The stack is used as the session left it (no deploy): the live slot is read from the
deploy state. Half the sockets never send a byte; the other half dribble one byte of a
request head that never ends every few seconds. Whichever socket the app closes (its
connection cap sheds the oldest ones that sent no request, its head deadline cuts the
rest) is opened again at once, so 3,000 stay open for the whole load. Meanwhile every
request through nginx must be answered 200 by the live slot, as nginx names it in
X-Upstream-Slot, never by the backup. Bounded: 20 s of load, a request cap, and every
socket closed at the end. Loopback only.
"""

from __future__ import annotations

import resource
import selectors
import socket
import threading
import time

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils.slots import UPSTREAM_SLOT_HEADER
from ansible_collections.unitehub.platform.tests.app.conftest import http_request
from ansible_collections.unitehub.platform.tests.integration.deploy_helpers import read_state
from ansible_collections.unitehub.platform.tests.integration.stack_helpers import LB_PORT, SLOT_PORTS
from ansible_collections.unitehub.platform.tests.integration.traffic import Traffic

pytestmark = pytest.mark.integration

SLOW_SOCKETS = 3000
DRIBBLE_INTERVAL = 3.0  # seconds between two bytes of a dribbled head
CYCLE = 0.5  # seconds between two rounds of the slow clients
LOAD_SECONDS = 20
# A request head that never ends: its header lines repeat for as long as the socket lives.
DRIBBLE = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: 1\r\n" * 1000


class SlowClients:
    """``count`` sockets against ``port``, kept open from ``start()`` to ``stop()``."""

    def __init__(self, port, count):
        self.port = port
        self.count = count
        self.selector = selectors.DefaultSelector()  # epoll: select() cannot watch fds past 1024
        self.sockets = {}  # socket -> [dribbles?, bytes sent, next send at]
        self.reopened = 0
        self.answers = {}  # first line of what the app sent before closing -> count
        self.fewest_open = count
        self.errors = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, dribbles):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.setblocking(False)
        self.sockets[sock] = [dribbles, 0, time.monotonic()]
        self.selector.register(sock, selectors.EVENT_READ)

    def _close(self, sock):
        self.selector.unregister(sock)
        self.sockets.pop(sock)
        sock.close()

    def start(self):
        for index in range(self.count):
            self._open(dribbles=bool(index % 2))
        self._thread.start()
        return self

    def _reopen(self, sock, answer):
        dribbles = self.sockets[sock][0]
        self._close(sock)
        line = answer.split(b"\r\n", 1)[0].decode("latin-1") or "(closed)"
        self.answers[line] = self.answers.get(line, 0) + 1
        self._open(dribbles)
        self.reopened += 1

    def _round(self):
        for key, _events in self.selector.select(timeout=0):
            try:
                answer = key.fileobj.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                answer = b""
            self._reopen(key.fileobj, answer)
        now = time.monotonic()
        for sock, state in list(self.sockets.items()):
            dribbles, sent, due = state
            if dribbles and now >= due:
                try:
                    sock.send(DRIBBLE[sent:sent + 1])
                    state[1], state[2] = sent + 1, now + DRIBBLE_INTERVAL
                except OSError:
                    self._reopen(sock, b"")
        self.fewest_open = min(self.fewest_open, len(self.sockets))

    def _run(self):
        while not self._stop.wait(CYCLE):
            try:
                self._round()
            except OSError as exc:  # a failed connect: reported, the test fails on it
                self.errors.append("%s: %s" % (type(exc).__name__, exc))
                return

    def stop(self):
        self._stop.set()
        self._thread.join(30)
        for sock in list(self.sockets):
            self._close(sock)
        self.selector.close()


@pytest.fixture
def open_files():
    """Room for the slow sockets in this process; the old soft limit back afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = SLOW_SOCKETS + 1024
    assert hard == resource.RLIM_INFINITY or hard >= need, "the open-files hard limit %d is below %d" % (hard, need)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_3000_slow_sockets_on_the_live_slot_do_not_fail_or_divert_load_through_nginx(open_files):
    slot = read_state()["active_slot"]
    port = SLOT_PORTS[slot]
    first = http_request(LB_PORT, "/api/version", timeout=5)
    assert first.status == 200 and first.headers[UPSTREAM_SLOT_HEADER.lower()] == slot, (first.status, first.headers)

    slow = SlowClients(port, SLOW_SOCKETS).start()
    try:
        time.sleep(2)  # past the app's grace for new connections: from now on it sheds
        load = Traffic(port=LB_PORT, path="/api/version", fresh_rps=40, keepalive_rps=40,
                       max_seconds=LOAD_SECONDS, max_requests=4000).start()
        time.sleep(LOAD_SECONDS)
        reports = load.stop()
        alive = http_request(port, "/api/health/live", timeout=5)  # the slot itself, still under the attack
    finally:
        slow.stop()

    assert slow.errors == [], slow.errors
    assert slow.fewest_open == SLOW_SOCKETS
    # The app really was under the attack: it shed slow sockets past its cap.
    assert slow.reopened >= SLOW_SOCKETS and "HTTP/1.1 503 Service Unavailable" in slow.answers, slow.answers
    assert alive.status == 200
    samples = reports["fresh"].samples + reports["keepalive"].samples
    for kind, report in reports.items():
        assert report.failures == [], "%s: %s" % (kind, report.summary())
        assert report.total >= 0.8 * 40 * LOAD_SECONDS, "%s: %s" % (kind, report.summary())
    assert {sample.status for sample in samples} == {200}
    assert {sample.slot for sample in samples} == {slot}, [s.slot for s in samples if s.slot != slot][:20]
