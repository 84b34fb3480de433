# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One probe per target type: ``http``, ``tcp``, ``redis``, ``postgres``, ``pgbouncer``.

Each returns a ``ProbeResult`` and never raises for a target that is down:
refusals, timeouts and protocol errors become a ``fail`` result with a one-line
``error`` that names no secret. Redis is asked through redis-py, PostgreSQL and
PgBouncer through psycopg (``postgres_client``).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
import traceback

from ansible_collections.unitehub.platform.plugins.module_utils.direct_http import request
from ansible_collections.unitehub.platform.plugins.module_utils.slots import UPSTREAM_SLOT_HEADER
from ansible_collections.unitehub.platform.plugins.module_utils.health_format import (
    FAIL,
    HEALTH_MEDIA_TYPE,
    MAX_BODY_BYTES,
    PASS,
    HealthFormatError,
    check_size,
    normalize_health,
    normalize_status,
    parse_health,
    preview,
)


PROBE_TYPES = ("http", "tcp", "redis", "postgres", "pgbouncer")
DEFAULT_PORTS = {"redis": 6379, "postgres": 5432, "pgbouncer": 6432}


# The database and Redis client libraries are imported on a probe's first use: an HTTP or TCP
# probe (a deploy's health gate) does not pay a tenth of a second for them.
def _postgres_client():
    from ansible_collections.unitehub.platform.plugins.module_utils import postgres_client
    return postgres_client


def _redis():
    """The redis module, or the traceback of its failed import."""
    try:
        import redis
        import redis.backoff
        import redis.retry
    except ImportError:
        return None, traceback.format_exc()
    return redis, None


def missing_library(probe_type):
    """``(library, import traceback)`` when the client library a probe of ``probe_type`` needs is
    missing on this host, else None."""
    if probe_type in ("postgres", "pgbouncer"):
        client = _postgres_client()
        return None if client.HAS_PSYCOPG else ("psycopg", client.PSYCOPG_IMPORT_ERROR)
    if probe_type == "redis":
        module, error = _redis()
        return None if module else ("redis", error)
    return None


class ProbeResult:
    """The outcome of one probe attempt. ``status`` is always pass, warn or fail."""

    __slots__ = ("status", "error", "latency_ms", "http_status", "checks", "output", "slot", "version",
                 "upstream_slot")

    def __init__(self, status, error=None, latency_ms=None, http_status=None, checks=None, output=None,
                 slot=None, version=None, upstream_slot=None):
        self.status = normalize_status(status)
        self.error = error
        self.latency_ms = latency_ms
        self.http_status = http_status
        self.checks = checks if checks is not None else {}
        self.output = output
        self.slot = slot
        self.version = version
        # The slot the load balancer reached (its X-Upstream-Slot header), never what the app says.
        self.upstream_slot = upstream_slot

    def __repr__(self):
        return "ProbeResult(%r, error=%r)" % (self.status, self.error)


def _elapsed_ms(timer, start):
    return round((timer() - start) * 1000.0, 1)


def describe_error(exc, timeout=None):
    """One line for a connection-level failure, with no traceback and no secret."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ("TLS certificate verification failed (%s); fix the certificate, or set ca_path to the "
                "certificate of the CA that signed it" % (exc.verify_message or exc))
    if isinstance(exc, ssl.SSLError):
        return "TLS error (%s)" % (exc.reason or exc)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out after %g s" % timeout if timeout is not None else "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by peer"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "connection closed without a response"
    if isinstance(exc, socket.gaierror):
        return "cannot resolve host (%s)" % (exc.strerror or exc)
    if isinstance(exc, http.client.HTTPException):
        return "invalid HTTP response (%s)" % (preview(str(exc)) or type(exc).__name__)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return preview(str(exc)) or type(exc).__name__


def _media_type(headers):
    value = headers.get("Content-Type") if headers is not None else None
    return (value or "").split(";", 1)[0].strip().lower()


def probe_http(url, request_timeout=2.0, host_header=None, validate_certs=True, max_bytes=MAX_BODY_BYTES,
               timer=time.monotonic, expect_slot=None, ca_path=None):
    """GET ``url`` once and judge the answer.

    An ``application/health+json`` body is parsed strictly: a malformed one is a
    fail. Another JSON body is read as a health document when it has a ``status``
    member, otherwise the HTTP code decides, as it does for every non-JSON body:
    2xx is pass, anything else fail. A non-2xx code is always fail, whatever the
    body says. Proxies from the environment are not used and redirects are not
    followed: a probe must reach the instance it names. An https certificate is
    checked against ``ca_path`` (a PEM file) when given, the system's CAs otherwise.
    """
    headers = {"Accept": "%s, application/json;q=0.9, */*;q=0.1" % HEALTH_MEDIA_TYPE}
    if host_header:
        headers["Host"] = host_header
    start = timer()
    try:
        response = request(url, headers=headers, timeout=request_timeout, validate_certs=validate_certs,
                           max_bytes=max_bytes, agent="unitehub.platform.health_probe", ca_path=ca_path)
        check_size(len(response.body), max_bytes)
    except HealthFormatError as exc:
        return ProbeResult(FAIL, error=str(exc), latency_ms=_elapsed_ms(timer, start))
    except (OSError, http.client.HTTPException) as exc:
        return ProbeResult(FAIL, error=describe_error(exc, request_timeout), latency_ms=_elapsed_ms(timer, start))
    except ValueError as exc:
        return ProbeResult(FAIL, error="invalid URL %r (%s)" % (url, exc), latency_ms=_elapsed_ms(timer, start))
    latency_ms = _elapsed_ms(timer, start)
    return judge_http_response(response.status, response.headers, response.body, latency_ms, max_bytes,
                               expect_slot=expect_slot)


def judge_http_response(code, headers, body, latency_ms=None, max_bytes=MAX_BODY_BYTES, expect_slot=None):
    """Turn an HTTP status, its headers and body into a ProbeResult (pure).

    With ``expect_slot`` (a probe through the load balancer), an answer that the load
    balancer did not get from that slot fails, whatever it says: a new slot that
    refuses connections must not pass on its backup's answers.
    """
    headers = headers if headers is not None else {}
    upstream_slot = headers.get(UPSTREAM_SLOT_HEADER) or None
    slot = upstream_slot or headers.get("X-App-Slot")
    version = headers.get("X-App-Version")
    media_type = _media_type(headers)
    ok_code = 200 <= code < 300
    result = dict(latency_ms=latency_ms, http_status=code, slot=slot, version=version, upstream_slot=upstream_slot)
    if expect_slot is not None and upstream_slot != expect_slot:
        answered = ("slot %s" % upstream_slot) if upstream_slot else (
            "no slot the load balancer names (no %s header)" % UPSTREAM_SLOT_HEADER)
        return ProbeResult(FAIL, error="HTTP %d from %s, not from slot %s" % (code, answered, expect_slot), **result)

    document = None
    if media_type == HEALTH_MEDIA_TYPE:
        try:
            document = parse_health(body, max_bytes)
        except HealthFormatError as exc:
            return ProbeResult(FAIL, error="HTTP %d with a malformed health body: %s" % (code, exc), **result)
    elif media_type == "application/json" or media_type.endswith("+json"):
        try:
            decoded = json.loads(body)
        except (ValueError, RecursionError):
            decoded = None
        if isinstance(decoded, dict) and "status" in decoded:
            try:
                document = normalize_health(decoded)
            except HealthFormatError as exc:
                return ProbeResult(FAIL, error="HTTP %d with a malformed health body: %s" % (code, exc), **result)

    if document is not None:
        result.update(checks=document["checks"], output=document["output"])
        if not result["version"]:
            result["version"] = document["version"]
        if ok_code:
            return ProbeResult(document["status"], **result)
        if document["status"] == FAIL:
            return ProbeResult(FAIL, **result)
        return ProbeResult(FAIL, error="HTTP %d although the body says %s" % (code, document["status"]), **result)

    if ok_code:
        return ProbeResult(PASS, **result)
    error = "HTTP %d" % code
    location = headers.get("Location")
    if 300 <= code < 400 and location:
        error += " redirect to %s; probe that URL instead (redirects are not followed)" % location
    return ProbeResult(FAIL, error=error, **result)


def probe_tcp(host, port, request_timeout=2.0, timer=time.monotonic):
    """Open a TCP connection and close it again."""
    start = timer()
    try:
        with socket.create_connection((host, port), timeout=request_timeout):
            pass
    except OSError as exc:
        return ProbeResult(FAIL, error=describe_error(exc, request_timeout), latency_ms=_elapsed_ms(timer, start))
    return ProbeResult(PASS, latency_ms=_elapsed_ms(timer, start))


def _redis_failure(exc, request_timeout, password):
    """One line for what redis-py raised; the password never appears in it."""
    redis = _redis()[0]
    if isinstance(exc, redis.TimeoutError):
        return "timed out after %g s" % request_timeout
    if isinstance(exc, redis.AuthenticationError):
        if not password:
            return "Redis requires authentication (%s); set password" % exc
        return "AUTH refused: %s" % exc
    if isinstance(exc, redis.exceptions.InvalidResponse):
        return "not a Redis server: %s" % preview(str(exc), 80)
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError):
        return describe_error(cause, request_timeout)
    if isinstance(exc, redis.ResponseError):
        return "PING refused: %s" % exc
    if isinstance(exc, redis.ConnectionError):
        # Connected, then dropped without a Redis answer: something else listens there.
        return "not a Redis server: %s" % (preview(str(exc), 80) or "the connection closed before PING was answered")
    return preview(str(exc)) or type(exc).__name__


def probe_redis(host, port, password=None, user=None, request_timeout=2.0, timer=time.monotonic):
    """PING with redis-py, authenticating first when a password is given.

    ``user`` selects an ACL user (Redis 6+), sent only with a password: a user
    alone would be refused as a wrong password rather than a missing one. One
    connection, no retry: a probe reports what it saw.
    """
    redis, _error = _redis()
    if redis is None:
        return ProbeResult(FAIL, error="the redis Python library is not installed on the target")
    start = timer()
    client = redis.Redis(host=host, port=port, username=(user or None) if password else None, password=password or None,
                         socket_timeout=request_timeout, socket_connect_timeout=request_timeout,
                         retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0))
    try:
        reply = client.ping()
    except redis.RedisError as exc:
        return ProbeResult(FAIL, error=_redis_failure(exc, request_timeout, password),
                           latency_ms=_elapsed_ms(timer, start))
    finally:
        client.close()
    latency_ms = _elapsed_ms(timer, start)
    if reply is True:
        return ProbeResult(PASS, latency_ms=latency_ms)
    return ProbeResult(FAIL, error="not a Redis server: PING answered %r" % preview(repr(reply), 60),
                       latency_ms=latency_ms)


def _connect_failure(exc):
    postgres_client = _postgres_client()
    if isinstance(exc, postgres_client.ConnectError):
        return exc.reason
    return postgres_client.error_message(exc)


def _sql_probe(kwargs, query, judge, connect, timer):
    """Connect, run one query and judge its first row -> ProbeResult."""
    postgres_client = _postgres_client()
    connect = connect or (postgres_client.psycopg.connect if postgres_client.HAS_PSYCOPG else None)
    if connect is None:
        return ProbeResult(FAIL, error="the psycopg (3) Python library is not installed on the target")
    start = timer()
    try:
        with connect(**kwargs) as conn:
            row = conn.execute(query).fetchone()
            server_version = conn.info.parameter_status("server_version")
    except Exception as exc:  # psycopg.Error and OSError: any failure is a failed probe
        return ProbeResult(FAIL, error=_connect_failure(exc), latency_ms=_elapsed_ms(timer, start))
    latency_ms = _elapsed_ms(timer, start)
    error, version = judge(row, server_version)
    if error:
        return ProbeResult(FAIL, error=error, latency_ms=latency_ms)
    return ProbeResult(PASS, latency_ms=latency_ms, version=version)


def probe_postgres(host, port, user=None, password=None, database=None, request_timeout=2.0,
                   connect=None, timer=time.monotonic):
    """Connect with psycopg and run ``SELECT 1``."""
    def judge(row, server_version):
        if not row or row[0] != 1:
            return "SELECT 1 returned %r" % (row,), None
        return None, server_version
    return _sql_probe(_postgres_client().connect_kwargs(host, port, user, password, database, request_timeout),
                      "SELECT 1", judge, connect, timer)


def probe_pgbouncer(host, port, user=None, password=None, database="pgbouncer", request_timeout=2.0,
                    connect=None, timer=time.monotonic):
    """Run ``SHOW VERSION`` on PgBouncer's admin console."""
    def judge(row, _server_version):
        if not row or not isinstance(row[0], str) or "pgbouncer" not in row[0].lower():
            return "SHOW VERSION answered %r: not a PgBouncer admin console" % (row,), None
        return None, row[0]
    return _sql_probe(_postgres_client().admin_console_kwargs(host, port, user, password, database, request_timeout),
                      "SHOW VERSION", judge, connect, timer)
