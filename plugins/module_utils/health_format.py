# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``application/health+json`` format, as draft-inadarei-api-health-check describes it.

Pure functions: parse and normalise health documents (``status`` pass/warn/fail,
``checks`` keyed ``component:measurement``, each a list of objects), map a status
to its HTTP code (pass 200, warn 206, fail 503), aggregate statuses and list
failing checks. Every malformed body raises ``HealthFormatError`` with a message
that says what is wrong and what was expected; nothing here lets a ``KeyError``
or ``JSONDecodeError`` escape. The filter plugins and the probes use this layer.
"""

from __future__ import annotations

import json

PASS = "pass"
WARN = "warn"
FAIL = "fail"
STATUS_ALIASES = {"ok": PASS, "up": PASS, "down": FAIL, "error": FAIL}
HTTP_STATUS_CODES = {PASS: 200, WARN: 206, FAIL: 503}
_SEVERITY = {PASS: 0, WARN: 1, FAIL: 2}

EXPECT_PASS = "pass"
EXPECT_PASS_OR_WARN = "pass_or_warn"
EXPECTATIONS = (EXPECT_PASS, EXPECT_PASS_OR_WARN)

HEALTH_MEDIA_TYPE = "application/health+json"
MAX_BODY_BYTES = 1024 * 1024

# String members of a health document and of a check object (draft section 3 and 4).
_DOC_STRING_FIELDS = ("version", "releaseId", "serviceId", "description", "output")
_CHECK_STRING_FIELDS = ("output", "observedUnit", "time", "componentId", "componentType")
_OUTPUT_PREVIEW = 160


class HealthFormatError(ValueError):
    """A health document (or the body that should hold one) is malformed."""


class ProbeConfigError(ValueError):
    """A probe was asked for with options that cannot work (missing url, bad port, ...)."""


def type_name(value):
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


def preview(value, limit=_OUTPUT_PREVIEW):
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
            "%s must be a string, one of pass, warn, fail; got %s %s" % (where, type_name(value), preview(value))
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


def check_size(size, max_bytes):
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
        check_size(len(body.encode("utf-8")), max_bytes)
        text = body
    elif isinstance(body, (bytes, bytearray)):
        check_size(len(body), max_bytes)
        try:
            text = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise HealthFormatError("health body is not UTF-8 text (%s)" % exc) from None
    else:
        raise HealthFormatError("health body must be bytes or text, got %s" % type_name(body))
    if not text.strip():
        raise HealthFormatError("health body is empty; expected a JSON object with a status")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise HealthFormatError(
            "health body is not JSON (%s at line %d column %d): %s"
            % (getattr(exc, "msg", exc), getattr(exc, "lineno", 0), getattr(exc, "colno", 0), preview(text))
        ) from None
    except RecursionError:
        raise HealthFormatError("health body is JSON nested too deeply to be a health document") from None
    return normalize_health(document)


def _string_field(container, key, where):
    value = container.get(key)
    if value is not None and not isinstance(value, str):
        raise HealthFormatError("%s.%s must be a string, got %s %s" % (where, key, type_name(value), preview(value)))
    return value


def _normalize_check(name, index, item):
    where = "checks[%r][%d]" % (name, index)
    if not isinstance(item, dict):
        raise HealthFormatError("%s must be an object, got %s %s" % (where, type_name(item), preview(item)))
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
            % (type_name(document), preview(document))
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
        raise HealthFormatError("notes must be a list of strings, got %s %s" % (type_name(notes), preview(notes)))
    result["notes"] = list(notes)

    checks = document.get("checks")
    if checks is None:
        checks = {}
    if not isinstance(checks, dict):
        raise HealthFormatError(
            "checks must be an object keyed component:measurement, got %s %s" % (type_name(checks), preview(checks))
        )
    normalised = {}
    for name, items in checks.items():
        if not isinstance(name, str) or not name.strip():
            raise HealthFormatError(
                "checks has an empty key; keys are component:measurement, e.g. database:responseTime")
        if not isinstance(items, list):
            raise HealthFormatError(
                "checks[%r] must be a list of objects, got %s %s" % (name, type_name(items), preview(items))
            )
        normalised[name] = [_normalize_check(name, index, item) for index, item in enumerate(items)]
    result["checks"] = normalised
    return result


def failing_checks(document, include_warn=False):
    """The checks that fail (and, with ``include_warn``, those that warn).

    Returns a list of ``{name, status, output, observedValue, observedUnit}``, one
    entry per check object, in document order. ``document`` may be raw or
    normalised.
    """
    return failing_from_checks(normalize_health(document)["checks"], include_warn=include_warn)


def failing_from_checks(checks, include_warn=False):
    """``failing_checks`` for the ``checks`` of a normalised document (a probe result's), not validated again."""
    wanted = (FAIL, WARN) if include_warn else (FAIL,)
    return [{"name": name, "status": item["status"], "output": item.get("output"),
             "observedValue": item.get("observedValue"), "observedUnit": item.get("observedUnit")}
            for name, items in (checks or {}).items() for item in items if item.get("status") in wanted]


def describe_failing(failing, limit=5):
    """``database:responseTime fail (connection refused), ai:config warn`` for messages."""
    parts = []
    for entry in failing[:limit]:
        text = "%s %s" % (entry["name"], entry["status"])
        if entry.get("output"):
            text += " (%s)" % preview(entry["output"], 120)
        parts.append(text)
    if len(failing) > limit:
        parts.append("and %d more" % (len(failing) - limit))
    return ", ".join(parts)
