# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe targets: the options of one target, merged over defaults and checked, and
the probe they call for.
"""

from __future__ import annotations

import math

from ansible_collections.unitehub.platform.plugins.module_utils.direct_http import url_host
from ansible_collections.unitehub.platform.plugins.module_utils.health_format import EXPECT_PASS, ProbeConfigError, validate_expect
from ansible_collections.unitehub.platform.plugins.module_utils.probes import (
    DEFAULT_PORTS,
    PROBE_TYPES,
    probe_http,
    probe_pgbouncer,
    probe_postgres,
    probe_redis,
    probe_tcp,
)

DEFAULT_HOST = "127.0.0.1"

# Every option of a target and its built-in value; health_probe's own options default to these.
TARGET_DEFAULTS = {
    "name": None,
    "type": None,
    "url": None,
    "login_host": DEFAULT_HOST,
    "login_port": None,
    "login_user": None,
    "login_password": None,
    "login_db": None,
    "expect": EXPECT_PASS,
    "timeout": 60.0,
    "interval": 5.0,
    "request_timeout": 2.0,
    "consecutive_successes": 1,
    "max_failures": None,
    "container": None,
    "host_header": None,
    "validate_certs": True,
    "ca_path": None,
    "expect_slot": None,
}


# option, type, valid when, what the message says otherwise
_NUMERIC_OPTIONS = (
    ("login_port", int, lambda v: 0 < v < 65536, "is not between 1 and 65535"),
    ("timeout", float, lambda v: v >= 0, "must be 0 (one attempt) or more seconds"),
    ("interval", float, lambda v: v > 0, "must be more than 0 seconds"),
    ("request_timeout", float, lambda v: v > 0, "must be more than 0 seconds"),
    ("consecutive_successes", int, lambda v: v >= 1, "must be 1 or more"),
    ("max_failures", int, lambda v: v >= 1,
     "must be 1 or more (leave it unset to tolerate failures until the timeout)"),
)


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
        spec["login_host"] = spec["login_host"] or DEFAULT_HOST
        if spec["login_port"] is None:
            if probe_type not in DEFAULT_PORTS:
                raise ProbeConfigError("%s: type %s needs login_port" % (label, probe_type))
            spec["login_port"] = DEFAULT_PORTS[probe_type]
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
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise ProbeConfigError("%s: %s %r is not a number" % (label, key, value)) from None
    if not math.isfinite(number):
        raise ProbeConfigError("%s: %s %r is not a finite number" % (label, key, value))
    return number


def target_label(spec):
    """A printable name for a target; never contains a password."""
    probe_type = spec["type"]
    if probe_type == "http":
        return spec["url"]
    address = "%s:%s" % (url_host(spec["login_host"]), spec["login_port"])
    if probe_type in ("postgres", "pgbouncer"):
        user = "%s@" % spec["login_user"] if spec.get("login_user") else ""
        database = spec.get("login_db") or ("pgbouncer" if probe_type == "pgbouncer" else "")
        return "%s://%s%s/%s" % (probe_type, user, address, database)
    return "%s://%s" % (probe_type, address)


def build_probe(spec, connect=None):
    """A no-argument callable that runs one attempt of the resolved ``spec``."""
    probe_type = spec["type"]
    request_timeout = spec["request_timeout"]
    host, port, user, password = spec["login_host"], spec["login_port"], spec["login_user"], spec["login_password"]
    if probe_type == "http":
        return lambda: probe_http(spec["url"], request_timeout, spec["host_header"], spec["validate_certs"],
                                  expect_slot=spec["expect_slot"], ca_path=spec["ca_path"])
    if probe_type == "tcp":
        return lambda: probe_tcp(host, port, request_timeout)
    if probe_type == "redis":
        return lambda: probe_redis(host, port, password, user, request_timeout)
    if probe_type == "postgres":
        return lambda: probe_postgres(host, port, user, password, spec["login_db"], request_timeout, connect=connect)
    return lambda: probe_pgbouncer(host, port, user, password, spec["login_db"] or "pgbouncer", request_timeout,
                                   connect=connect)
