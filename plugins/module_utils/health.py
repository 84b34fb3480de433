# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health probing: the ``application/health+json`` format and the probes that read it.

Two layers live here.

The **format** layer is pure: it parses and normalises health documents as
draft-inadarei-api-health-check describes them (``status`` pass/warn/fail,
``checks`` keyed ``component:measurement``, each a list of objects), maps a
status to its HTTP code (pass 200, warn 206, fail 503), aggregates statuses and
lists failing checks. Every malformed body raises ``HealthFormatError`` with a
message that says what is wrong and what was expected; nothing here lets a
``KeyError`` or ``JSONDecodeError`` escape. The filter plugins use this layer.

The **probe** layer talks to targets: one function per probe type (``http``,
``tcp``, ``redis``, ``postgres``, ``pgbouncer``) returns a ``ProbeResult`` and
never raises for a target that is down: refusals, timeouts and protocol errors
become a ``fail`` result with a one-line ``error``. ``wait_until`` polls a probe
until enough consecutive results meet the expectation, watching a container
at a short sub-interval meanwhile so that a crash ends the wait within a
fraction of a second. Clock and sleep are injectable for unit tests.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import socket
import ssl
import time
import traceback

from ansible_collections.unitehub.platform.plugins.module_utils.direct_http import request

try:
    import psycopg

    HAS_PSYCOPG = True
    PSYCOPG_IMPORT_ERROR = None
except ImportError:
    psycopg = None
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()


PASS = "pass"
WARN = "warn"
FAIL = "fail"
STATUSES = (PASS, WARN, FAIL)
STATUS_ALIASES = {"ok": PASS, "up": PASS, "down": FAIL, "error": FAIL}
HTTP_STATUS_CODES = {PASS: 200, WARN: 206, FAIL: 503}
_SEVERITY = {PASS: 0, WARN: 1, FAIL: 2}

EXPECT_PASS = "pass"
EXPECT_PASS_OR_WARN = "pass_or_warn"
EXPECTATIONS = (EXPECT_PASS, EXPECT_PASS_OR_WARN)

HEALTH_MEDIA_TYPE = "application/health+json"
MAX_BODY_BYTES = 1024 * 1024

PROBE_TYPES = ("http", "tcp", "redis", "postgres", "pgbouncer")
DEFAULT_PORTS = {"redis": 6379, "postgres": 5432, "pgbouncer": 6432}
DEFAULT_HOST = "127.0.0.1"

# How often the container is inspected while waiting between two probes.
CONTAINER_POLL_INTERVAL = 0.25

# String members of a health document and of a check object (draft section 3 and 4).
_DOC_STRING_FIELDS = ("version", "releaseId", "serviceId", "description", "output")
_CHECK_STRING_FIELDS = ("output", "observedUnit", "time", "componentId", "componentType")
_OUTPUT_PREVIEW = 160
_REDIS_LINE_LIMIT = 64 * 1024


class HealthFormatError(ValueError):
    """A health document (or the body that should hold one) is malformed."""


class ProbeConfigError(ValueError):
    """A probe was asked for with options that cannot work (missing url, bad port, ...)."""


# ---------------------------------------------------------------------------
# Format layer: statuses
# ---------------------------------------------------------------------------


def _type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _preview(value, limit=_OUTPUT_PREVIEW):
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def normalize_status(value, where="status"):
    """Return ``pass``, ``warn`` or ``fail`` for a status or one of its aliases.

    Matching ignores case and surrounding blanks. ``ok`` and ``up`` mean pass,
    ``down`` and ``error`` mean fail (spellings seen in drafts and frameworks).
    """
    if not isinstance(value, str):
        raise HealthFormatError(
            "%s must be a string, one of pass, warn, fail; got %s %s" % (where, _type_name(value), _preview(value))
        )
    key = value.strip().lower()
    if key in _SEVERITY:
        return key
    if key in STATUS_ALIASES:
        return STATUS_ALIASES[key]
    raise HealthFormatError(
        "%s %r is not a health status; use one of pass, warn, fail (aliases ok, up, down, error)" % (where, value)
    )


def http_status_for(status):
    """HTTP code for a health status: pass 200, warn 206, fail 503."""
    return HTTP_STATUS_CODES[normalize_status(status)]


def worst_status(statuses):
    """The most severe of ``statuses`` (fail > warn > pass); pass when empty.

    ``None`` entries (a check that reports no status) are ignored.
    """
    worst = PASS
    for status in statuses:
        if status is None:
            continue
        status = normalize_status(status)
        if _SEVERITY[status] > _SEVERITY[worst]:
            worst = status
    return worst


def validate_expect(expect):
    if expect not in EXPECTATIONS:
        raise ProbeConfigError("expect %r is not one of %s" % (expect, ", ".join(EXPECTATIONS)))
    return expect


def meets_expectation(status, expect=EXPECT_PASS):
    """True when ``status`` satisfies ``expect`` (``pass`` or ``pass_or_warn``)."""
    validate_expect(expect)
    status = normalize_status(status)
    if expect == EXPECT_PASS:
        return status == PASS
    return status in (PASS, WARN)


# ---------------------------------------------------------------------------
# Format layer: documents
# ---------------------------------------------------------------------------


def _check_size(size, max_bytes):
    if size > max_bytes:
        raise HealthFormatError(
            "health body is larger than the %d-byte cap; a health document is small, so this is "
            "not the health endpoint (check the URL) or the endpoint is broken" % max_bytes
        )


def parse_health(body, max_bytes=MAX_BODY_BYTES):
    """Parse a health+json body (bytes or str) into a normalised document.

    See ``normalize_health`` for the result. Raises HealthFormatError for a body
    over ``max_bytes``, one that is not UTF-8 JSON, or one that is not a valid
    health document.
    """
    if isinstance(body, str):
        _check_size(len(body.encode("utf-8")), max_bytes)
        text = body
    elif isinstance(body, (bytes, bytearray)):
        _check_size(len(body), max_bytes)
        try:
            text = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise HealthFormatError("health body is not UTF-8 text (%s)" % exc) from None
    else:
        raise HealthFormatError("health body must be bytes or text, got %s" % _type_name(body))
    if not text.strip():
        raise HealthFormatError("health body is empty; expected a JSON object with a status")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise HealthFormatError(
            "health body is not JSON (%s at line %d column %d): %s"
            % (getattr(exc, "msg", exc), getattr(exc, "lineno", 0), getattr(exc, "colno", 0), _preview(text))
        ) from None
    except RecursionError:
        raise HealthFormatError("health body is JSON nested too deeply to be a health document") from None
    return normalize_health(document)


def _string_field(container, key, where):
    value = container.get(key)
    if value is not None and not isinstance(value, str):
        raise HealthFormatError("%s.%s must be a string, got %s %s" % (where, key, _type_name(value), _preview(value)))
    return value


def _normalize_check(name, index, item):
    where = "checks[%r][%d]" % (name, index)
    if not isinstance(item, dict):
        raise HealthFormatError("%s must be an object, got %s %s" % (where, _type_name(item), _preview(item)))
    check = dict(item)
    status = item.get("status")
    # The draft makes a check's status optional; a check without one counts for nothing.
    check["status"] = None if status is None else normalize_status(status, "%s.status" % where)
    for key in _CHECK_STRING_FIELDS:
        _string_field(item, key, where)
    return check


def normalize_health(document):
    """Validate a decoded health document and return a normalised copy.

    The copy has ``status`` as ``pass``/``warn``/``fail``, the string members
    ``version``, ``releaseId``, ``serviceId``, ``description``, ``output`` (or
    None), ``notes`` (a list) and ``checks``: a dict keyed ``component:measurement``
    whose values are lists of check objects with their ``status`` normalised
    (None when the check reports none). Normalising a normalised document returns
    an equal document.
    """
    if not isinstance(document, dict):
        raise HealthFormatError(
            "health document must be a JSON object with a status, got %s %s"
            % (_type_name(document), _preview(document))
        )
    if "status" not in document:
        keys = ", ".join(sorted(str(key) for key in document)) or "none"
        raise HealthFormatError(
            "health document has no 'status' (one of pass, warn, fail); keys present: %s" % keys
        )
    result = {"status": normalize_status(document["status"], "status")}
    for key in _DOC_STRING_FIELDS:
        result[key] = _string_field(document, key, "document")
    notes = document.get("notes")
    if notes is None:
        notes = []
    elif not isinstance(notes, list):
        raise HealthFormatError("notes must be a list of strings, got %s %s" % (_type_name(notes), _preview(notes)))
    result["notes"] = list(notes)

    checks = document.get("checks")
    if checks is None:
        checks = {}
    if not isinstance(checks, dict):
        raise HealthFormatError(
            "checks must be an object keyed component:measurement, got %s %s" % (_type_name(checks), _preview(checks))
        )
    normalised = {}
    for name, items in checks.items():
        if not isinstance(name, str) or not name.strip():
            raise HealthFormatError(
                "checks has an empty key; keys are component:measurement, e.g. database:responseTime")
        if not isinstance(items, list):
            raise HealthFormatError(
                "checks[%r] must be a list of objects, got %s %s" % (name, _type_name(items), _preview(items))
            )
        normalised[name] = [_normalize_check(name, index, item) for index, item in enumerate(items)]
    result["checks"] = normalised
    return result


def check_statuses(document):
    """Every reported check status of a document, in document order."""
    document = normalize_health(document)
    return [item["status"] for items in document["checks"].values() for item in items if item["status"] is not None]


def worst_check_status(document):
    """The worst status any check reports (pass when there are none)."""
    return worst_status(check_statuses(document))


def failing_checks(document, include_warn=False):
    """The checks that fail (and, with ``include_warn``, those that warn).

    Returns a list of ``{name, status, output, observedValue, observedUnit}``, one
    entry per check object, in document order. ``document`` may be raw or
    normalised.
    """
    document = normalize_health(document)
    wanted = (FAIL, WARN) if include_warn else (FAIL,)
    failing = []
    for name, items in document["checks"].items():
        for item in items:
            if item["status"] in wanted:
                failing.append({
                    "name": name,
                    "status": item["status"],
                    "output": item.get("output"),
                    "observedValue": item.get("observedValue"),
                    "observedUnit": item.get("observedUnit"),
                })
    return failing


def describe_failing(failing, limit=5):
    """``database:responseTime fail (connection refused), ai:config warn`` for messages."""
    parts = []
    for entry in failing[:limit]:
        text = "%s %s" % (entry["name"], entry["status"])
        if entry.get("output"):
            text += " (%s)" % _preview(entry["output"], 120)
        parts.append(text)
    if len(failing) > limit:
        parts.append("and %d more" % (len(failing) - limit))
    return ", ".join(parts)


# ---------------------------------------------------------------------------
# Probe layer
# ---------------------------------------------------------------------------


class ProbeResult:
    """The outcome of one probe attempt. ``status`` is always pass, warn or fail."""

    __slots__ = ("status", "error", "latency_ms", "http_status", "checks", "output", "slot", "version")

    def __init__(self, status, error=None, latency_ms=None, http_status=None, checks=None, output=None,
                 slot=None, version=None):
        self.status = normalize_status(status)
        self.error = error
        self.latency_ms = latency_ms
        self.http_status = http_status
        self.checks = checks if checks is not None else {}
        self.output = output
        self.slot = slot
        self.version = version

    def __repr__(self):
        return "ProbeResult(%r, error=%r)" % (self.status, self.error)


def _elapsed_ms(timer, start):
    return round((timer() - start) * 1000.0, 1)


def describe_error(exc, timeout=None):
    """One line for a connection-level failure, with no traceback and no secret."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ("TLS certificate verification failed (%s); fix the certificate or, for a self-signed test "
                "certificate only, set validate_certs=false" % (exc.verify_message or exc))
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
        return "invalid HTTP response (%s)" % (_preview(str(exc)) or type(exc).__name__)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return _preview(str(exc)) or type(exc).__name__


def _media_type(headers):
    value = headers.get("Content-Type") if headers is not None else None
    return (value or "").split(";", 1)[0].strip().lower()


def probe_http(url, request_timeout=2.0, host_header=None, validate_certs=True, max_bytes=MAX_BODY_BYTES,
               timer=time.monotonic):
    """GET ``url`` once and judge the answer.

    An ``application/health+json`` body is parsed strictly: a malformed one is a
    fail. Another JSON body is read as a health document when it has a ``status``
    member, otherwise the HTTP code decides, as it does for every non-JSON body:
    2xx is pass, anything else fail. A non-2xx code is always fail, whatever the
    body says. Proxies from the environment are not used and redirects are not
    followed: a probe must reach the instance it names.
    """
    headers = {"Accept": "%s, application/json;q=0.9, */*;q=0.1" % HEALTH_MEDIA_TYPE}
    if host_header:
        headers["Host"] = host_header
    start = timer()
    try:
        response = request(url, headers=headers, timeout=request_timeout, validate_certs=validate_certs,
                           max_bytes=max_bytes, agent="unitehub.platform.health_probe")
        _check_size(len(response.body), max_bytes)
    except HealthFormatError as exc:
        return ProbeResult(FAIL, error=str(exc), latency_ms=_elapsed_ms(timer, start))
    except (OSError, http.client.HTTPException) as exc:
        return ProbeResult(FAIL, error=describe_error(exc, request_timeout), latency_ms=_elapsed_ms(timer, start))
    except ValueError as exc:
        return ProbeResult(FAIL, error="invalid URL %r (%s)" % (url, exc), latency_ms=_elapsed_ms(timer, start))
    latency_ms = _elapsed_ms(timer, start)
    return judge_http_response(response.status, response.headers, response.body, latency_ms, max_bytes)


def judge_http_response(code, headers, body, latency_ms=None, max_bytes=MAX_BODY_BYTES):
    """Turn an HTTP status, its headers and body into a ProbeResult (pure)."""
    slot = headers.get("X-App-Slot") if headers is not None else None
    version = headers.get("X-App-Version") if headers is not None else None
    media_type = _media_type(headers)
    ok_code = 200 <= code < 300
    result = dict(latency_ms=latency_ms, http_status=code, slot=slot, version=version)

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
    location = headers.get("Location") if headers is not None else None
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


def _resp_command(*args):
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode("utf-8") if isinstance(arg, str) else bytes(arg)
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _resp_line(reader, command):
    line = reader.readline(_REDIS_LINE_LIMIT)
    if not line:
        raise ConnectionResetError("connection closed by the server")
    if not line.endswith(b"\r\n"):
        raise _RedisReplyError("not a Redis server: %s answered %r"
                               % (command, _preview(line.decode("utf-8", "replace"), 60)))
    return line[:-2].decode("utf-8", "replace")


class _RedisReplyError(Exception):
    pass


def probe_redis(host, port, password=None, user=None, request_timeout=2.0, timer=time.monotonic):
    """AUTH (when a password is given) and PING over a raw socket, speaking RESP.

    Needs no Redis client library. ``user`` selects an ACL user (Redis 6+).
    """
    start = timer()
    try:
        with socket.create_connection((host, port), timeout=request_timeout) as sock:
            reader = sock.makefile("rb")
            try:
                if password:
                    args = ("AUTH", user, password) if user else ("AUTH", password)
                    sock.sendall(_resp_command(*args))
                    reply = _resp_line(reader, "AUTH")
                    if reply.startswith("-"):
                        raise _RedisReplyError("AUTH refused: %s" % reply[1:])
                sock.sendall(_resp_command("PING"))
                reply = _resp_line(reader, "PING")
            finally:
                reader.close()
    except _RedisReplyError as exc:
        return ProbeResult(FAIL, error=str(exc), latency_ms=_elapsed_ms(timer, start))
    except OSError as exc:
        return ProbeResult(FAIL, error=describe_error(exc, request_timeout), latency_ms=_elapsed_ms(timer, start))
    latency_ms = _elapsed_ms(timer, start)
    if reply == "+PONG":
        return ProbeResult(PASS, latency_ms=latency_ms)
    if reply.startswith("-NOAUTH"):
        return ProbeResult(FAIL, error="Redis requires authentication (%s); set password" % reply[1:],
                           latency_ms=latency_ms)
    if reply.startswith("-"):
        return ProbeResult(FAIL, error="PING refused: %s" % reply[1:], latency_ms=latency_ms)
    return ProbeResult(FAIL, error="not a Redis server: PING answered %r" % _preview(reply, 60), latency_ms=latency_ms)


_LIBPQ_PREFIX = re.compile(r'^(connection failed: )?(connection to server at "[^"]*"(, port \d+)? failed: )?')


def _psycopg_error(exc):
    """The first line of a psycopg error without libpq's "connection to server at ..."
    preamble (the message names the target already)."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip()]
    text = _LIBPQ_PREFIX.sub("", lines[0]) if lines else ""
    if "no password supplied" in text:
        text += "; set password"
    elif "authentication failed" in text:
        text += "; check user and password"
    return text or type(exc).__name__


def _pg_kwargs(host, port, user, password, database, request_timeout):
    kwargs = {
        "host": host,
        "port": port,
        "dbname": database,
        "user": user,
        "password": password,
        # libpq counts whole seconds and treats anything below 2 as 2.
        "connect_timeout": max(2, int(math.ceil(request_timeout))),
        "autocommit": True,
    }
    return {key: value for key, value in kwargs.items() if value not in (None, "")}


def probe_postgres(host, port, user=None, password=None, database=None, request_timeout=2.0,
                   connect=None, timer=time.monotonic):
    """Connect with psycopg and run ``SELECT 1``."""
    connect = connect or (psycopg.connect if HAS_PSYCOPG else None)
    if connect is None:
        return ProbeResult(FAIL, error="the psycopg (3) Python library is not installed on the target")
    start = timer()
    try:
        with connect(**_pg_kwargs(host, port, user, password, database, request_timeout)) as conn:
            row = conn.execute("SELECT 1").fetchone()
            version = conn.info.parameter_status("server_version")
    except Exception as exc:  # psycopg.Error and OSError: any failure is a failed probe
        return ProbeResult(FAIL, error=_psycopg_error(exc), latency_ms=_elapsed_ms(timer, start))
    latency_ms = _elapsed_ms(timer, start)
    if not row or row[0] != 1:
        return ProbeResult(FAIL, error="SELECT 1 returned %r" % (row,), latency_ms=latency_ms)
    return ProbeResult(PASS, latency_ms=latency_ms, version=version)


def probe_pgbouncer(host, port, user=None, password=None, database="pgbouncer", request_timeout=2.0,
                    connect=None, timer=time.monotonic):
    """Run ``SHOW VERSION`` on PgBouncer's admin console.

    The console speaks only the simple query protocol and has no transactions:
    autocommit, no prepared statements and client-side binding.
    """
    connect = connect or (psycopg.connect if HAS_PSYCOPG else None)
    if connect is None:
        return ProbeResult(FAIL, error="the psycopg (3) Python library is not installed on the target")
    kwargs = _pg_kwargs(host, port, user, password, database or "pgbouncer", request_timeout)
    kwargs["prepare_threshold"] = None
    if HAS_PSYCOPG:
        kwargs["cursor_factory"] = psycopg.ClientCursor
    start = timer()
    try:
        with connect(**kwargs) as conn:
            row = conn.execute("SHOW VERSION").fetchone()
    except Exception as exc:  # psycopg.Error and OSError: any failure is a failed probe
        return ProbeResult(FAIL, error=_psycopg_error(exc), latency_ms=_elapsed_ms(timer, start))
    latency_ms = _elapsed_ms(timer, start)
    if not row or not isinstance(row[0], str) or "pgbouncer" not in row[0].lower():
        return ProbeResult(FAIL, error="SHOW VERSION answered %r: not a PgBouncer admin console" % (row,),
                           latency_ms=latency_ms)
    return ProbeResult(PASS, latency_ms=latency_ms, version=row[0])


# ---------------------------------------------------------------------------
# Targets: options -> a probe
# ---------------------------------------------------------------------------


TARGET_DEFAULTS = {
    "name": None,
    "type": None,
    "url": None,
    "host": None,
    "port": None,
    "user": None,
    "password": None,
    "database": None,
    "expect": EXPECT_PASS,
    "timeout": 60.0,
    "interval": 5.0,
    "request_timeout": 2.0,
    "consecutive_successes": 1,
    "max_failures": None,
    "container": None,
    "host_header": None,
    "validate_certs": True,
}


# option, type, valid when, what the message says otherwise
_NUMERIC_OPTIONS = (
    ("port", int, lambda v: 0 < v < 65536, "is not between 1 and 65535"),
    ("timeout", float, lambda v: v >= 0, "must be 0 (one attempt) or more seconds"),
    ("interval", float, lambda v: v > 0, "must be more than 0 seconds"),
    ("request_timeout", float, lambda v: v > 0, "must be more than 0 seconds"),
    ("consecutive_successes", int, lambda v: v >= 1, "must be 1 or more"),
    ("max_failures", int, lambda v: v >= 1,
     "must be 1 or more (leave it unset to tolerate failures until the timeout)"),
)


def _format_host(host):
    return "[%s]" % host if ":" in host and not host.startswith("[") else host


def resolve_target(target, defaults=None):
    """Merge a target's options over ``defaults`` (None means "inherit"), fill
    in the built-in defaults and validate. Raises ProbeConfigError naming the bad
    value and the fix."""
    spec = dict(TARGET_DEFAULTS)
    for source in (defaults or {}, target or {}):
        for key, value in source.items():
            if key in spec and value is not None:
                spec[key] = value
    label = spec["name"] or spec["url"] or spec["type"] or "target"
    probe_type = spec["type"]
    if probe_type not in PROBE_TYPES:
        raise ProbeConfigError("%s: type %r is not one of %s" % (label, probe_type, ", ".join(PROBE_TYPES)))
    validate_expect(spec["expect"])
    if probe_type == "http":
        url = spec["url"]
        if not url:
            raise ProbeConfigError("%s: type http needs url, e.g. http://127.0.0.1:3008/api/health/system" % label)
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in ("http", "https") or not url.split("://", 1)[1].split("/", 1)[0]:
            raise ProbeConfigError("%s: url %r must be an absolute http:// or https:// URL" % (label, url))
    else:
        spec["host"] = spec["host"] or DEFAULT_HOST
        if spec["port"] is None:
            if probe_type not in DEFAULT_PORTS:
                raise ProbeConfigError("%s: type %s needs port" % (label, probe_type))
            spec["port"] = DEFAULT_PORTS[probe_type]
    for key, kind, valid, rule in _NUMERIC_OPTIONS:
        value = spec[key] = _number(spec, key, kind, label)
        if value is not None and not valid(value):
            raise ProbeConfigError("%s: %s %s %s" % (label, key, _show(value), rule))
    spec["target"] = target_label(spec)
    spec["name"] = spec["name"] or spec["target"]
    return spec


def _show(value):
    return "%g" % value if isinstance(value, float) else repr(value)


def _number(spec, key, kind, label):
    value = spec[key]
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError):
        raise ProbeConfigError("%s: %s %r is not a number" % (label, key, value)) from None


def target_label(spec):
    """A printable name for a target; never contains a password."""
    probe_type = spec["type"]
    if probe_type == "http":
        return spec["url"]
    address = "%s:%s" % (_format_host(spec["host"]), spec["port"])
    if probe_type in ("postgres", "pgbouncer"):
        user = "%s@" % spec["user"] if spec.get("user") else ""
        database = spec.get("database") or ("pgbouncer" if probe_type == "pgbouncer" else "")
        return "%s://%s%s/%s" % (probe_type, user, address, database)
    return "%s://%s" % (probe_type, address)


def build_probe(spec, connect=None):
    """A no-argument callable that runs one attempt of the resolved ``spec``."""
    probe_type = spec["type"]
    request_timeout = spec["request_timeout"]
    if probe_type == "http":
        return lambda: probe_http(spec["url"], request_timeout, spec["host_header"], spec["validate_certs"])
    if probe_type == "tcp":
        return lambda: probe_tcp(spec["host"], spec["port"], request_timeout)
    if probe_type == "redis":
        return lambda: probe_redis(spec["host"], spec["port"], spec["password"], spec["user"], request_timeout)
    if probe_type == "postgres":
        return lambda: probe_postgres(spec["host"], spec["port"], spec["user"], spec["password"], spec["database"],
                                      request_timeout, connect=connect)
    return lambda: probe_pgbouncer(spec["host"], spec["port"], spec["user"], spec["password"],
                                   spec["database"] or "pgbouncer", request_timeout, connect=connect)


# ---------------------------------------------------------------------------
# Waiting
# ---------------------------------------------------------------------------


_CONTAINER_STATES = {"exited": "has exited", "created": "has not started", "dead": "is dead",
                     "removing": "is being removed"}


class ContainerWatch:
    """Callable container check for ``wait_until``.

    ``inspect`` returns the container's inspect document (docker's ``attrs``) or
    None when the container does not exist. The RestartCount and StartedAt seen
    at construction are the baseline: any later change means the container
    restarted (a restart policy can hide a crash between two probes).
    """

    def __init__(self, name, inspect):
        self.name = name
        self._inspect = inspect
        attrs = inspect()
        if attrs is None:
            raise ProbeConfigError("container %r does not exist; check the name with docker ps -a" % name)
        self.restart_count = attrs.get("RestartCount")
        self.started_at = (attrs.get("State") or {}).get("StartedAt")

    def __call__(self):
        """None while the container keeps running, else why it does not."""
        try:
            attrs = self._inspect()
        except Exception as exc:  # the daemon went away: the gate cannot vouch for the container
            return "cannot inspect container %s (%s)" % (self.name, _preview(str(exc)) or type(exc).__name__)
        if attrs is None:
            return "container %s was removed" % self.name
        state = attrs.get("State") or {}
        if state.get("Restarting"):
            return "container %s is restarting (exit code %s)" % (self.name, state.get("ExitCode"))
        if not state.get("Running"):
            status = state.get("Status") or "stopped"
            message = "container %s %s (exit code %s" % (
                self.name, _CONTAINER_STATES.get(status, "is " + status), state.get("ExitCode"))
            if state.get("OOMKilled"):
                message += ", killed by the OOM killer"
            if state.get("Error"):
                message += ", %s" % state["Error"]
            return message + ")"
        if state.get("Paused"):
            return "container %s is paused" % self.name
        restart_count = attrs.get("RestartCount")
        started_at = state.get("StartedAt")
        if restart_count != self.restart_count or started_at != self.started_at:
            return "container %s restarted (RestartCount %s -> %s, started at %s)" % (
                self.name, self.restart_count, restart_count, started_at)
        return None


class WaitOutcome:
    """What ``wait_until`` saw. ``reason`` is ``passed``, ``timeout``,
    ``max_failures`` or ``container``."""

    __slots__ = ("ok", "reason", "attempts", "elapsed", "last", "streak", "failures", "container_error")

    def __init__(self):
        self.ok = False
        self.reason = None
        self.attempts = 0
        self.elapsed = 0.0
        self.last = None
        self.streak = 0
        self.failures = 0
        self.container_error = None

    def __repr__(self):
        return "WaitOutcome(ok=%r, reason=%r, attempts=%r, elapsed=%r)" % (
            self.ok, self.reason, self.attempts, self.elapsed)


def wait_until(probe, expect=EXPECT_PASS, timeout=60.0, interval=5.0, consecutive_successes=1,
               container_check=None, clock=time.monotonic, sleep=time.sleep, max_failures=None,
               poll_interval=CONTAINER_POLL_INTERVAL):
    """Run ``probe`` until ``consecutive_successes`` results in a row meet ``expect``.

    Attempts start every ``interval`` seconds (measured from the start of the
    previous attempt, so a failing target is seen at most one interval after it
    starts failing); a result that misses the expectation resets the streak. The
    last attempt starts at the deadline, ``timeout`` seconds after the first;
    ``timeout=0`` makes exactly one attempt. With ``max_failures`` the wait ends
    as soon as that many attempts have missed the expectation.

    ``container_check`` (optional) returns None while the container is fine or a
    message once it exited or restarted. It is called before the first attempt,
    after every attempt, and every ``poll_interval`` seconds while waiting, so a
    crash ends the wait within ``poll_interval`` of waiting time.
    """
    validate_expect(expect)
    outcome = WaitOutcome()
    start = clock()
    deadline = start + timeout

    def finish(reason, ok=False, container_error=None):
        outcome.ok = ok
        outcome.reason = reason
        outcome.container_error = container_error
        outcome.elapsed = clock() - start
        return outcome

    problem = container_check() if container_check is not None else None
    if problem:
        return finish("container", container_error=problem)
    while True:
        attempt_start = clock()
        result = probe()
        outcome.attempts += 1
        outcome.last = result
        if container_check is not None:
            problem = container_check()
            if problem:
                return finish("container", container_error=problem)
        if meets_expectation(result.status, expect):
            outcome.streak += 1
            if outcome.streak >= consecutive_successes:
                return finish("passed", ok=True)
        else:
            outcome.streak = 0
            outcome.failures += 1
            if max_failures is not None and outcome.failures >= max_failures:
                return finish("max_failures")
        if clock() >= deadline:
            return finish("timeout")
        next_attempt = min(attempt_start + interval, deadline)
        while True:
            remaining = next_attempt - clock()
            if remaining <= 0:
                break
            if container_check is None:
                sleep(remaining)
                continue
            sleep(min(poll_interval, remaining))
            problem = container_check()
            if problem:
                return finish("container", container_error=problem)


def describe_outcome(spec, outcome):
    """The one-line message for a finished wait, naming what failed."""
    last = outcome.last
    target = spec["target"]
    attempts = "%d attempt%s" % (outcome.attempts, "" if outcome.attempts == 1 else "s")
    took = "%s in %.1f s" % (attempts, outcome.elapsed)
    if outcome.reason == "container":
        message = "%s while waiting for %s (%s" % (outcome.container_error, target, took)
        if last is not None:
            message += "; last probe %s" % last.status
            detail = _result_detail(last, spec["expect"])
            if detail:
                message += ": %s" % detail
        return message + ")"
    status = last.status if last is not None else FAIL
    message = "%s is %s" % (target, status)
    if outcome.ok:
        return "%s after %s" % (message, took)
    if meets_expectation(status, spec["expect"]):
        # The last attempt was good but the streak was too short.
        return "%s after %s but only %d consecutive of the %d required before the %g s timeout" % (
            message, took, outcome.streak, spec["consecutive_successes"], spec["timeout"])
    if status == WARN:
        message += " (expected pass)"
    message += " after %s" % took
    if outcome.reason == "max_failures":
        message += " (stopped at max_failures=%s)" % spec["max_failures"]
    detail = _result_detail(last, spec["expect"]) if last is not None else None
    return "%s: %s" % (message, detail) if detail else message


def _result_detail(result, expect):
    # Name the checks that caused the status: those that fail, else (expecting pass) those that warn.
    failing = failing_from_checks(result.checks)
    if not failing and expect == EXPECT_PASS:
        failing = failing_from_checks(result.checks, include_warn=True)
    parts = []
    if failing:
        parts.append(describe_failing(failing))
    if result.error:
        parts.append(result.error)
    if not parts and result.status != PASS:
        parts.append(result.output or "the health document reports %s with no failing check" % result.status)
    return "; ".join(parts)


def failing_from_checks(checks, include_warn=False):
    """``failing_checks`` for an already normalised ``checks`` dict."""
    return failing_checks({"status": PASS, "checks": checks or {}}, include_warn=include_warn)


def run_target(spec, container_check=None, clock=time.monotonic, sleep=time.sleep, connect=None):
    """Probe a resolved target until it is healthy or the wait ends; a result dict."""
    outcome = wait_until(
        build_probe(spec, connect=connect),
        expect=spec["expect"],
        timeout=spec["timeout"],
        interval=spec["interval"],
        consecutive_successes=spec["consecutive_successes"],
        container_check=container_check,
        clock=clock,
        sleep=sleep,
        max_failures=spec["max_failures"],
    )
    last = outcome.last or ProbeResult(FAIL, error=outcome.container_error)
    return {
        "name": spec["name"],
        "type": spec["type"],
        "target": spec["target"],
        "ok": outcome.ok,
        "status": FAIL if outcome.reason == "container" else last.status,
        "reason": outcome.reason,
        "http_status": last.http_status,
        "latency_ms": last.latency_ms,
        "attempts": outcome.attempts,
        "elapsed": round(outcome.elapsed, 3),
        "checks": last.checks,
        "failing": failing_from_checks(last.checks, include_warn=(spec["expect"] == EXPECT_PASS)),
        "slot": last.slot,
        "version": last.version,
        "error": outcome.container_error or last.error,
        "msg": describe_outcome(spec, outcome),
    }
