"""Bounded steady HTTP load for zero-downtime tests and benchmarks.

Two kinds of client, each paced to a fixed rate and stopped by a deadline and a
request cap:

- fresh: a new TCP connection per request (what a crowd of browsers looks like);
- keepalive: one persistent HTTP/1.1 connection per thread. Like a browser, it
  retries once when the server closed an idle connection before sending any
  byte of the response; every other failure counts.

Only loopback targets are accepted.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Sample:
    started: float
    finished: float
    status: int | None
    slot: str | None
    version: str | None
    error: str | None = None
    retried: bool = False


@dataclass
class TrafficReport:
    samples: list = field(default_factory=list)

    @property
    def total(self):
        return len(self.samples)

    @property
    def failures(self):
        return [s for s in self.samples if s.error is not None or s.status is None or s.status >= 500]

    @property
    def rate(self):
        if len(self.samples) < 2:
            return 0.0
        span = max(s.finished for s in self.samples) - min(s.started for s in self.samples)
        return len(self.samples) / span if span > 0 else 0.0

    def versions_after_first(self, new_version):
        """Requests that started after the first answer from ``new_version`` had
        completed, yet were answered by another version: a flap back."""
        firsts = [s.finished for s in self.samples if s.version == new_version]
        if not firsts:
            return None
        t_new = min(firsts)
        return [s for s in self.samples if s.started > t_new and s.error is None and s.version != new_version]

    def slots_after_first(self, new_slot):
        """Requests that started after the first answer from ``new_slot`` had completed, yet
        were answered by another slot (as nginx names it): a flap back."""
        firsts = [s.finished for s in self.samples if s.slot == new_slot]
        if not firsts:
            return None
        t_new = min(firsts)
        return [s for s in self.samples if s.started > t_new and s.error is None and s.slot != new_slot]

    def summary(self):
        by_version = {}
        for s in self.samples:
            by_version[s.version] = by_version.get(s.version, 0) + 1
        errors = {}
        for s in self.failures:
            key = s.error or "HTTP %s" % s.status
            errors[key] = errors.get(key, 0) + 1
        return {"total": self.total, "rate": round(self.rate, 1), "failures": len(self.failures),
                "errors": errors, "by_version": by_version,
                "retries": sum(1 for s in self.samples if s.retried)}


def _check_loopback(host):
    address = ipaddress.ip_address(socket.gethostbyname(host))
    if not address.is_loopback:
        raise ValueError("traffic only goes to loopback, not %s" % host)


class _Idle(Exception):
    """The server closed the connection before sending any response byte."""


def _request(conn, path):
    conn.request("GET", path, headers={"User-Agent": "unitehub-traffic"})
    try:
        response = conn.getresponse()
    except http.client.RemoteDisconnected as exc:
        raise _Idle(str(exc)) from exc
    except ConnectionResetError as exc:
        raise _Idle(str(exc)) from exc
    body = response.read()
    # The slot that answered is the one nginx reached (X-Upstream-Slot), never what an app says.
    slot = response.getheader("X-Upstream-Slot") or None
    version = response.getheader("X-App-Version") or _body_version(body, response.getheader("Content-Type") or "")
    return response.status, slot, version, response


def _body_version(body, content_type):
    """The version an app without X-App-* headers answers with: the ``version`` of a JSON
    body, or a short text/plain body such as a static version.txt; else None."""
    if content_type.startswith("text/plain") and len(body) <= 128:
        return body.decode("utf-8", "replace").strip() or None
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    return decoded.get("version") if isinstance(decoded, dict) else None


def _worker(kind, host, port, path, interval, deadline, cap, samples, lock, timeout, stop_event):
    conn = None
    next_at = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= deadline or stop_event.is_set():
            break
        with lock:
            if len(samples) >= cap:
                break
        if now < next_at:
            stop_event.wait(min(next_at - now, deadline - now))
            continue
        next_at += interval
        started = time.monotonic()
        retried = False
        try:
            if kind == "fresh" or conn is None:
                if conn is not None:
                    conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
            try:
                status, slot, version, response = _request(conn, path)
            except (_Idle, BrokenPipeError):
                if kind != "keepalive":
                    raise
                # Only a connection that was reused may be retried, and only once.
                retried = True
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
                status, slot, version, response = _request(conn, path)
            if kind == "fresh" or response.will_close:
                conn.close()
                conn = None
            sample = Sample(started, time.monotonic(), status, slot, version, retried=retried)
        except Exception as exc:  # every failure is data for the report
            if conn is not None:
                conn.close()
            conn = None
            sample = Sample(started, time.monotonic(), None, None, None, "%s: %s" % (type(exc).__name__, exc), retried)
        with lock:
            samples.append(sample)
    if conn is not None:
        conn.close()


class Traffic:
    """Start with ``start()``, stop with ``stop()`` (or let the deadline stop it)."""

    def __init__(self, url_host="127.0.0.1", port=8080, path="/api/version", fresh_rps=80, keepalive_rps=40,
                 threads_per_kind=4, max_seconds=120, max_requests=40000, timeout=5.0):
        _check_loopback(url_host)
        self._args = (url_host, port, path)
        self._plan = [("fresh", fresh_rps), ("keepalive", keepalive_rps)]
        self._threads_per_kind = threads_per_kind
        self._deadline = time.monotonic() + max_seconds
        self._cap = max_requests
        self._timeout = timeout
        self._samples = {"fresh": [], "keepalive": []}
        self._lock = threading.Lock()
        self._threads = []
        self._stop_event = threading.Event()

    def start(self):
        host, port, path = self._args
        for kind, rps in self._plan:
            if rps <= 0:
                continue
            interval = self._threads_per_kind / float(rps)
            for _unused in range(self._threads_per_kind):
                thread = threading.Thread(
                    target=_worker,
                    args=(kind, host, port, path, interval, self._deadline, self._cap, self._samples[kind],
                          self._lock, self._timeout, self._stop_event),
                    daemon=True)
                thread.start()
                self._threads.append(thread)
        return self

    def stop(self):
        self._stop_event.set()
        for thread in self._threads:
            thread.join(timeout=self._timeout + 5)
        return {kind: TrafficReport(list(samples)) for kind, samples in self._samples.items()}

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
