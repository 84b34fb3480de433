# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PgBouncer pool settings and server facts: what each one is, and its type check.

Pure functions, no I/O. ``SETTINGS`` holds every setting the collection knows
with its kind, bounds and PgBouncer's default; ``normalise_settings`` and
``normalise_facts`` turn what a playbook passes into typed values plus one
error message per bad value, each naming the setting and how to fix it. The
rules that read the typed values live in ``pool_rules``.

PgBouncer's defaults and ranges are those of the pgbouncer.ini reference
shipped with PgBouncer 1.18 (Debian bookworm), ``man 5 pgbouncer``.
"""

from __future__ import annotations

import difflib
import math
import re

POOL_MODES = ("session", "transaction", "statement")
# auth_type values PgBouncer 1.18 accepts.
AUTH_TYPES = ("scram-sha-256", "md5", "plain", "cert", "hba", "pam", "trust", "any")
# PostgreSQL's compiled-in ceiling for max_connections (MAX_BACKENDS, 2^18 - 1).
POSTGRES_MAX_BACKENDS = 262143

INTEGER = "integer"
SECONDS = "seconds"
CHOICE = "choice"


class _Spec(object):
    """One PgBouncer setting: its kind, bounds and PgBouncer's own default."""

    def __init__(self, kind, default, minimum=None, maximum=None, choices=None, zero_means=None, example=None):
        self.kind = kind
        self.default = default
        self.minimum = minimum
        self.maximum = maximum
        self.choices = choices
        self.zero_means = zero_means
        self.example = example if example is not None else default


# Defaults are PgBouncer 1.18's (man 5 pgbouncer).
SETTINGS = {
    "pool_mode": _Spec(CHOICE, "session", choices=POOL_MODES),
    "default_pool_size": _Spec(INTEGER, 20, minimum=1, maximum=POSTGRES_MAX_BACKENDS),
    "min_pool_size": _Spec(INTEGER, 0, minimum=0, maximum=POSTGRES_MAX_BACKENDS, zero_means="disabled"),
    "reserve_pool_size": _Spec(INTEGER, 0, minimum=0, maximum=POSTGRES_MAX_BACKENDS, zero_means="disabled"),
    "reserve_pool_timeout": _Spec(SECONDS, 5.0, minimum=0, zero_means="disabled"),
    "max_client_conn": _Spec(INTEGER, 100, minimum=1),
    "max_db_connections": _Spec(INTEGER, 0, minimum=0, maximum=POSTGRES_MAX_BACKENDS, zero_means="unlimited"),
    "max_user_connections": _Spec(INTEGER, 0, minimum=0, maximum=POSTGRES_MAX_BACKENDS, zero_means="unlimited"),
    "server_idle_timeout": _Spec(SECONDS, 600.0, minimum=0, zero_means="disabled"),
    "server_lifetime": _Spec(SECONDS, 3600.0, minimum=0, zero_means="use each server connection once"),
    "query_wait_timeout": _Spec(SECONDS, 120.0, minimum=0, zero_means="wait forever"),
    "server_connect_timeout": _Spec(SECONDS, 15.0, minimum=0),
    "max_prepared_statements": _Spec(INTEGER, 0, minimum=0, zero_means="disabled"),
    "auth_type": _Spec(CHOICE, "md5", choices=AUTH_TYPES),
}

PGBOUNCER_DEFAULTS = dict((name, spec.default) for name, spec in SETTINGS.items())

# Facts about the servers, each with its smallest sensible value; ``pgbouncer_version``
# is a fact too, parsed by parse_version.
FACTS = {
    "server_max_connections": 1,
    "superuser_reserved_connections": 0,
    "databases": 1,
    "users": 1,
    "cores": 1,
    "spindles": 0,
}
# Facts that describe the configuration being validated rather than a server: a value
# given for them wins over one read from the running PgBouncer.
CONFIG_FACTS = ("databases", "users")


def parse_version(value):
    """Return PgBouncer's version as a tuple of three ints.

    Accepts what ``pgbouncer --version`` and the console's ``SHOW VERSION`` print
    ("PgBouncer 1.18.0", "PgBouncer 1.18.0\\nlibevent ...") or a bare "1.21".
    Raises ValueError for anything else.
    """
    if isinstance(value, (list, tuple)) and value and all(isinstance(p, int) for p in value):
        parts = list(value)[:3]
    else:
        match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", str(value or ""))
        if not match:
            raise ValueError("no version number in %r" % (value,))
        parts = [int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)]
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts)


def format_version(version):
    return ".".join(str(p) for p in version)


def format_number(value):
    """20.0 -> '20', 2.5 -> '2.5': seconds as an operator writes them."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _is_number_text(value, integral):
    pattern = r"[+-]?\d+" if integral else r"[+-]?(\d+(\.\d*)?|\.\d+)"
    return re.fullmatch(pattern, value.strip()) is not None


def _coerce(name, value, spec):
    """Return (normalised value, error message or None)."""
    if spec.kind == CHOICE:
        if isinstance(value, str) and value.strip().lower() in spec.choices:
            return value.strip().lower(), None
        return None, "%s %r is not one of %s: pick one of those" % (name, value, ", ".join(spec.choices))

    integral = spec.kind == INTEGER
    what = "a whole number" if integral else "a number of seconds"
    example = "%s: %s" % (name, spec.example if integral else format_number(spec.example))
    if isinstance(value, bool):
        return None, "%s must be %s, got the boolean %r: booleans are not numbers; write e.g. %s" % (name, what, value, example)
    if isinstance(value, str):
        if not _is_number_text(value, integral):
            return None, "%s must be %s, got the text %r: write e.g. %s" % (name, what, value, example)
        value = int(value.strip()) if integral else float(value.strip())
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None, "%s must be a finite number, got %r: write e.g. %s" % (name, value, example)
        if integral:
            if not value.is_integer():
                return None, "%s must be a whole number, got %r: write e.g. %s" % (name, value, example)
            value = int(value)
    elif isinstance(value, int):
        value = value if integral else float(value)
    else:
        return None, "%s must be %s, got %r (%s): write e.g. %s" % (name, what, value, type(value).__name__, example)

    if spec.minimum is not None and value < spec.minimum:
        meaning = " (0 means %s)" % spec.zero_means if spec.zero_means and spec.minimum == 0 else ""
        return None, "%s must be at least %s%s, got %s: use %s or more (PgBouncer's default is %s)" % (
            name, spec.minimum, meaning, format_number(value), spec.minimum, format_number(spec.default))
    if spec.maximum is not None and value > spec.maximum:
        return None, "%s must be at most %s (PostgreSQL's largest possible max_connections), got %s: use a smaller value" % (
            name, spec.maximum, format_number(value))
    return value, None


def normalise_settings(settings):
    """Type-check every setting. Returns (normalised dict, list of errors).

    Numbers may come as text when they are numeric ("20", as ``-e`` passes them);
    anything else where a number belongs is an error. ``None`` means "not set":
    PgBouncer's default applies.
    """
    errors = []
    normalised = {}
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        return {}, ["pool settings must be a mapping of setting names to values, got %s" % type(settings).__name__]
    for name in sorted(settings, key=str):
        value = settings[name]
        spec = SETTINGS.get(name)
        if spec is None:
            close = difflib.get_close_matches(str(name), list(SETTINGS), n=1)
            hint = "did you mean %r? " % close[0] if close else ""
            errors.append("%s is not a pool setting this collection knows: %sknown settings are %s" % (
                name, hint, ", ".join(SETTINGS)))
            continue
        if value is None:
            continue
        coerced, error = _coerce(name, value, spec)
        if error:
            errors.append(error)
        else:
            normalised[name] = coerced
    return normalised, errors


def normalise_facts(facts):
    """Type-check the facts. Returns (normalised dict, list of errors)."""
    errors = []
    normalised = {}
    if not facts:
        return normalised, errors
    if not isinstance(facts, dict):
        return {}, ["facts must be a mapping, got %s" % type(facts).__name__]
    for name in sorted(facts, key=str):
        value = facts[name]
        if value is None:
            continue
        if name == "pgbouncer_version":
            try:
                normalised[name] = parse_version(value)
            except ValueError:
                errors.append("facts.pgbouncer_version %r is not a version: give it as PgBouncer prints it, e.g. '1.18.0'" % (value,))
            continue
        if name not in FACTS:
            errors.append("facts.%s is not a fact the pool rules use: known facts are %s" % (
                name, ", ".join(list(FACTS) + ["pgbouncer_version"])))
            continue
        spec = _Spec(INTEGER, FACTS[name], minimum=FACTS[name], example=max(FACTS[name], 1))
        coerced, error = _coerce("facts." + name, value, spec)
        if error:
            errors.append(error)
        else:
            normalised[name] = coerced
    return normalised, errors


def merge_facts(given, live):
    """The facts a playbook gave, overlaid with those read from the servers;
    only the configuration facts (CONFIG_FACTS) keep a given value."""
    facts = dict(given or {})
    for key, value in live.items():
        if key in CONFIG_FACTS and facts.get(key) is not None:
            continue
        facts[key] = value
    return facts
