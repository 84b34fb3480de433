# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PgBouncer pool settings: validation rules and recommended values.

Pure functions, no I/O. The ``pool_validate`` module, the ``pool_settings`` and
``pool_errors`` filters and the ``pgbouncer`` role all go through ``validate``,
so a bad setting is refused with the same words wherever it is caught.

``validate(settings, facts=None, environment="production")`` returns::

    {"errors": [...], "warnings": [...], "recommended": {...}, "effective": {...}}

Every message starts with the name of the setting it is about and says how to
fix it. ``facts`` describes the server side when it is known::

    server_max_connections          PostgreSQL max_connections
    superuser_reserved_connections  PostgreSQL superuser_reserved_connections
    databases                       databases PgBouncer pools (default 1)
    users                           users per database that get a pool (default 1)
    pgbouncer_version               "1.18.0" or "PgBouncer 1.18.0"
    cores, spindles                 for the PostgreSQL wiki sizing rule

Sources for the numbers used here:

* PgBouncer's defaults and ranges: the pgbouncer.ini reference shipped with
  PgBouncer 1.18 (Debian bookworm), ``man 5 pgbouncer``.
* Prepared statements in transaction mode: PgBouncer 1.21.0 release notes
  ("max_prepared_statements ... 100 is probably reasonable").
* Pool sizing: the PostgreSQL wiki page "Number Of Database Connections",
  connections = (core_count * 2) + effective_spindle_count.
* The seed requirements (Stage 4 summary): DB_POOLER_MODE=transaction,
  DB_POOL_SIZE=20, DB_IDLE_TIMEOUT=600, DB_MAX_LIFETIME=3600, 3,000+ clients.
"""

from __future__ import annotations

import difflib
import math
import re

POOL_MODES = ("session", "transaction", "statement")
# auth_type values PgBouncer 1.18 accepts.
AUTH_TYPES = ("scram-sha-256", "md5", "plain", "cert", "hba", "pam", "trust", "any")
ENVIRONMENTS = ("development", "staging", "production")

# Protocol-level prepared statements in transaction/statement mode arrived in 1.21.0.
PREPARED_STATEMENTS_MIN_VERSION = (1, 21, 0)
# PostgreSQL's compiled-in ceiling for max_connections (MAX_BACKENDS, 2^18 - 1).
POSTGRES_MAX_BACKENDS = 262143
# PostgreSQL's default superuser_reserved_connections, used when the fact is unknown.
POSTGRES_DEFAULT_SUPERUSER_RESERVED = 3
# Share of the server's usable connections the pools may take in recommended
# settings: the rest is headroom for direct clients (migrations, psql, backups,
# monitoring) that must not go through PgBouncer.
SERVER_HEADROOM_SHARE = 0.8
# Above this share of the usable connections, validation warns about headroom.
SERVER_HEADROOM_WARN_SHARE = 0.9

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
    "server_connect_timeout": _Spec(SECONDS, 15.0, minimum=0, example=15),
    "max_prepared_statements": _Spec(INTEGER, 0, minimum=0, zero_means="disabled"),
    "auth_type": _Spec(CHOICE, "md5", choices=AUTH_TYPES),
}

PGBOUNCER_DEFAULTS = dict((name, spec.default) for name, spec in SETTINGS.items())

FACTS = {
    "server_max_connections": 1,
    "superuser_reserved_connections": 0,
    "databases": 1,
    "users": 1,
    "cores": 1,
    "spindles": 0,
}

SESSION_ONLY_FEATURES = (
    "SET/RESET of session parameters (use SET LOCAL inside a transaction)",
    "LISTEN/NOTIFY",
    "session-level advisory locks (pg_advisory_lock; use pg_advisory_xact_lock)",
    "WITH HOLD cursors",
    "SQL PREPARE/DEALLOCATE",
    "temporary tables that outlive a transaction",
    "LOAD",
)
PREPARED_STATEMENT_ADVICE = (
    "disable client-side prepared statements: psycopg prepare_threshold=None "
    "(asyncpg statement_cache_size=0, JDBC prepareThreshold=0)"
)


class _Result(object):
    def __init__(self):
        self.errors = []
        self.warnings = []

    def error(self, message):
        self.errors.append(message)

    def warn(self, message):
        self.warnings.append(message)


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
    example = "%s: %s" % (name, spec.example if integral else _fmt_number(spec.example))
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
            name, spec.minimum, meaning, _fmt_number(value), spec.minimum, _fmt_number(spec.default))
    if spec.maximum is not None and value > spec.maximum:
        return None, "%s must be at most %s (PostgreSQL's largest possible max_connections), got %s: use a smaller value" % (
            name, spec.maximum, _fmt_number(value))
    return value, None


def _fmt_number(value):
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


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


def wiki_pool_size(cores, spindles=1):
    """The PostgreSQL wiki rule: connections = (core_count * 2) + effective_spindle_count."""
    return cores * 2 + spindles


def usable_server_connections(facts):
    """Connections PostgreSQL gives to non-superusers, or None when unknown."""
    if "server_max_connections" not in facts:
        return None
    reserved = facts.get("superuser_reserved_connections", POSTGRES_DEFAULT_SUPERUSER_RESERVED)
    return facts["server_max_connections"] - reserved


def server_connections_needed(effective, databases=1, users=1):
    """The most server connections the pools can open at once.

    Each (database, user) pair gets default_pool_size connections plus
    reserve_pool_size under pressure; max_db_connections and
    max_user_connections cap the totals when set.
    """
    per_pool = effective["default_pool_size"] + effective["reserve_pool_size"]
    per_database = per_pool * users
    if effective["max_db_connections"]:
        per_database = min(per_database, effective["max_db_connections"])
    total = per_database * databases
    if effective["max_user_connections"]:
        total = min(total, effective["max_user_connections"] * users)
    return total


def _known(eff, *names):
    """True when every named setting is valid (a setting with an error is None)."""
    return all(eff.get(name) is not None for name in names)


def _check_ranges_together(eff, out):
    if _known(eff, "min_pool_size", "default_pool_size") and eff["min_pool_size"] > eff["default_pool_size"]:
        out.error("min_pool_size (%d) is larger than default_pool_size (%d): PgBouncer caps it at the pool size; "
                  "set min_pool_size to %d or less" % (eff["min_pool_size"], eff["default_pool_size"], eff["default_pool_size"]))
    for cap in ("max_db_connections", "max_user_connections"):
        if _known(eff, cap, "default_pool_size") and eff[cap] and eff[cap] < eff["default_pool_size"]:
            out.error("%s (%d) is lower than default_pool_size (%d): the pool can never fill; raise %s to at least %d "
                      "or set it to 0 (unlimited)" % (cap, eff[cap], eff["default_pool_size"], cap, eff["default_pool_size"]))
    lifetime, idle = eff["server_lifetime"], eff["server_idle_timeout"]
    if _known(eff, "server_lifetime", "server_idle_timeout") and lifetime and idle and lifetime < idle:
        out.error("server_lifetime (%s s) is shorter than server_idle_timeout (%s s): connections are recycled before "
                  "they could ever idle out; set server_lifetime to %s or more, or lower server_idle_timeout"
                  % (_fmt_number(lifetime), _fmt_number(idle), _fmt_number(idle)))
    if lifetime == 0:
        out.warn("server_lifetime is 0: PgBouncer closes every server connection after one use, so nothing is pooled; "
                 "use e.g. 3600")
    if _known(eff, "max_client_conn", "default_pool_size") and eff["max_client_conn"] < eff["default_pool_size"]:
        out.warn("max_client_conn (%d) is lower than default_pool_size (%d): the pool can never be fully used; raise "
                 "max_client_conn" % (eff["max_client_conn"], eff["default_pool_size"]))
    if _known(eff, "reserve_pool_size", "reserve_pool_timeout") and eff["reserve_pool_size"] and not eff["reserve_pool_timeout"]:
        out.warn("reserve_pool_timeout is 0, which disables the reserve pool: reserve_pool_size (%d) is never used; "
                 "set reserve_pool_timeout to e.g. 5" % eff["reserve_pool_size"])
    if eff["query_wait_timeout"] == 0:
        out.warn("query_wait_timeout is 0: clients wait for a server connection forever when the pool is exhausted; "
                 "use e.g. 120")
    connect, wait = eff["server_connect_timeout"], eff["query_wait_timeout"]
    if connect == 0:
        out.error("server_connect_timeout must be more than 0 seconds: a server connection attempt needs time; use e.g. 15")
    elif _known(eff, "server_connect_timeout", "query_wait_timeout") and wait and connect > wait:
        out.warn("server_connect_timeout (%s s) is longer than query_wait_timeout (%s s): queued clients are dropped "
                 "before a slow server connection can finish; lower server_connect_timeout"
                 % (_fmt_number(connect), _fmt_number(wait)))
    if eff["auth_type"] in ("trust", "any"):
        out.warn("auth_type %s lets anyone who reaches PgBouncer in without a password: use scram-sha-256" % eff["auth_type"])
    elif eff["auth_type"] == "plain":
        out.warn("auth_type plain sends passwords in clear text: use scram-sha-256")


def _check_mode(eff, facts, out):
    mode = eff["pool_mode"]
    version = facts.get("pgbouncer_version")
    prepared = eff["max_prepared_statements"]
    if prepared and version is not None and version < PREPARED_STATEMENTS_MIN_VERSION:
        out.error("max_prepared_statements (%d) needs PgBouncer >= %s, but this PgBouncer is %s (Debian bookworm ships "
                  "1.18): set max_prepared_statements to 0 and %s"
                  % (prepared, format_version(PREPARED_STATEMENTS_MIN_VERSION), format_version(version), PREPARED_STATEMENT_ADVICE))
    elif prepared and version is None:
        out.warn("max_prepared_statements (%d) needs PgBouncer >= %s; PgBouncer's version is unknown here, and an older "
                 "one refuses the setting" % (prepared, format_version(PREPARED_STATEMENTS_MIN_VERSION)))
    if mode is None:
        return
    if mode == "session":
        if prepared:
            out.warn("max_prepared_statements only matters in transaction and statement mode; in session mode it has "
                     "no effect")
        return
    supports_prepared = bool(prepared) and (version is None or version >= PREPARED_STATEMENTS_MIN_VERSION)
    features = list(SESSION_ONLY_FEATURES)
    if not supports_prepared:
        features.append("protocol-level prepared statements")
    out.warn("pool_mode %s hands a server connection to another client after each %s, which breaks session-only "
             "features: %s; use pool_mode session for clients that need them"
             % (mode, "transaction" if mode == "transaction" else "statement", ", ".join(features)))
    if not supports_prepared:
        if version is None or version >= PREPARED_STATEMENTS_MIN_VERSION:
            why = "max_prepared_statements is 0"
            fix = "set max_prepared_statements to e.g. 100 (PgBouncer >= 1.21), or " + PREPARED_STATEMENT_ADVICE
        else:
            why = "PgBouncer %s predates prepared statement support (1.21)" % format_version(version)
            fix = PREPARED_STATEMENT_ADVICE
        out.warn("pool_mode %s with prepared statements: %s, so a statement prepared on one server connection is "
                 "missing on the next; %s" % (mode, why, fix))
    if mode == "statement":
        out.warn("pool_mode statement refuses multi-statement transactions: only autocommit clients work")


def _check_capacity(eff, facts, out):
    if not _known(eff, "default_pool_size", "reserve_pool_size", "max_db_connections", "max_user_connections"):
        return
    usable = usable_server_connections(facts)
    databases = facts.get("databases", 1)
    users = facts.get("users", 1)
    if usable is not None:
        max_connections = facts["server_max_connections"]
        reserved = facts.get("superuser_reserved_connections", POSTGRES_DEFAULT_SUPERUSER_RESERVED)
        if usable < 1:
            out.error("facts: PostgreSQL max_connections (%d) leaves no connection after superuser_reserved_connections "
                      "(%d): raise max_connections" % (max_connections, reserved))
            return
        needed = server_connections_needed(eff, databases, users)
        if needed > usable:
            pairs = databases * users
            fit = usable // pairs - eff["reserve_pool_size"]
            if fit >= 1:
                fix = "lower default_pool_size to %d or less" % min(fit, eff["default_pool_size"] - 1)
            else:
                fix = "lower reserve_pool_size and default_pool_size (%d pools share %d connections)" % (pairs, usable)
            out.error("default_pool_size (%d) plus reserve_pool_size (%d) for %d database(s) x %d user(s) needs up to %d "
                      "server connections, but PostgreSQL accepts only %d (max_connections %d - "
                      "superuser_reserved_connections %d): %s, set max_db_connections, or raise max_connections"
                      % (eff["default_pool_size"], eff["reserve_pool_size"], databases, users, needed, usable,
                         max_connections, reserved, fix))
        elif needed > usable * SERVER_HEADROOM_WARN_SHARE:
            out.warn("the pools can take %d of PostgreSQL's %d usable connections, leaving %d for direct clients "
                     "(migrations, psql, monitoring): keep some headroom by lowering default_pool_size or "
                     "reserve_pool_size" % (needed, usable, usable - needed))
    if "cores" in facts:
        ideal = wiki_pool_size(facts["cores"], facts.get("spindles", 1))
        active = eff["default_pool_size"] * databases * users
        if active > ideal * 4:
            out.warn("default_pool_size (%d) gives %d active server connections, over four times the %d the PostgreSQL "
                     "wiki rule suggests for %d core(s) ((cores x 2) + spindles): more connections than the server can "
                     "run at once add contention, not throughput" % (eff["default_pool_size"], active, ideal, facts["cores"]))


def recommended_settings(environment="production", facts=None):
    """Recommended pool settings for an environment, shaped by the facts when known.

    Every number carries its source in a comment. The result passes ``validate``
    with the same facts (apart from the warnings transaction mode always brings)
    whenever the server has at least one usable connection per pool.
    """
    if environment not in ENVIRONMENTS:
        raise ValueError("environment %r is not one of %s" % (environment, ", ".join(ENVIRONMENTS)))
    facts, fact_errors = normalise_facts(facts)
    if fact_errors:
        raise ValueError("; ".join(fact_errors))

    production = environment == "production"
    staging = environment == "staging"
    if "cores" in facts:
        # PostgreSQL wiki "Number Of Database Connections": (core_count * 2) + effective_spindle_count.
        pool_size = wiki_pool_size(facts["cores"], facts.get("spindles", 1))
        if environment == "development":
            pool_size = min(pool_size, 5)
    elif production:
        # Seed DB_POOL_SIZE=20, which is also PgBouncer's default_pool_size.
        pool_size = 20
    elif staging:
        # Half of production: the wiki rule for a 4-core host with 2 spindles ((4 x 2) + 2).
        pool_size = 10
    else:
        # The wiki rule for a 2-core laptop with one disk ((2 x 2) + 1).
        pool_size = 5

    # House rule: a quarter of the pool as burst headroom in staging/production
    # (PgBouncer's default is 0, no reserve).
    reserve = max(1, pool_size // 4) if (production or staging) else 0

    databases = facts.get("databases", 1)
    users = facts.get("users", 1)
    usable = usable_server_connections(facts)
    if usable is not None and usable >= 1:
        # Server max_connections headroom: pools take at most 80% of what PostgreSQL
        # gives non-superusers, the rest stays for direct clients.
        budget = max(1, int(usable * SERVER_HEADROOM_SHARE) // (databases * users))
        if pool_size + reserve > budget:
            reserve = min(reserve, budget // 5)
            pool_size = max(1, budget - reserve)

    version = facts.get("pgbouncer_version")
    prepared_ok = version is not None and version >= PREPARED_STATEMENTS_MIN_VERSION
    recommended = {
        # Seed DB_POOLER_MODE=transaction: a server connection per transaction, not per client.
        "pool_mode": "transaction",
        "default_pool_size": pool_size,
        # House rule: keep a quarter of the pool warm in production so a burst after a quiet
        # period finds connections ready; PgBouncer's default 0 elsewhere.
        "min_pool_size": pool_size // 4 if production else 0,
        "reserve_pool_size": reserve,
        # PgBouncer default: use the reserve after a client waited 5 s.
        "reserve_pool_timeout": 5.0,
        # PgBouncer default 100 for development; seed promises 3,000+ concurrent clients in
        # production (4000 leaves headroom); staging sits between.
        "max_client_conn": 4000 if production else (1000 if staging else 100),
        # PgBouncer defaults: no database/user-wide cap beyond the pools themselves.
        "max_db_connections": 0,
        "max_user_connections": 0,
        # Seed DB_IDLE_TIMEOUT=600, PgBouncer's default server_idle_timeout.
        "server_idle_timeout": 600.0,
        # Seed DB_MAX_LIFETIME=3600, PgBouncer's default server_lifetime.
        "server_lifetime": 3600.0,
        # PgBouncer default: drop a client that waited 120 s for a server connection.
        "query_wait_timeout": 120.0,
        # PgBouncer default: give a server connection attempt 15 s.
        "server_connect_timeout": 15.0,
        # PgBouncer 1.21 release notes: "100 is probably reasonable"; 0 on older
        # PgBouncer (Debian bookworm ships 1.18), which refuses the setting.
        "max_prepared_statements": 100 if prepared_ok else 0,
        # PostgreSQL 14+ default password_encryption; md5 is PgBouncer's legacy default.
        "auth_type": "scram-sha-256",
    }
    return recommended


def validate(settings, facts=None, environment="production"):
    """Check pool settings, alone and against the facts.

    Returns ``{"errors", "warnings", "recommended", "effective"}``. ``effective``
    is what PgBouncer would run: the given settings, normalised, over PgBouncer's
    defaults; a setting with an error shows as None there.
    """
    out = _Result()
    given, setting_errors = normalise_settings(settings)
    for message in setting_errors:
        out.error(message)
    facts_n, fact_errors = normalise_facts(facts)
    for message in fact_errors:
        out.error(message)

    effective = dict(PGBOUNCER_DEFAULTS)
    effective.update(given)
    bad = set()
    if isinstance(settings, dict):
        bad = set(name for name in settings if name in SETTINGS and settings[name] is not None and name not in given)
    for name in bad:
        effective[name] = None

    if environment not in ENVIRONMENTS:
        out.error("environment %r is not one of %s: pick the one these settings are for"
                  % (environment, ", ".join(ENVIRONMENTS)))
        recommended = {}
    else:
        recommended = recommended_settings(environment, facts) if not fact_errors else recommended_settings(environment)

    # A rule across settings runs when the settings it reads are valid on their own, so
    # every bad setting is named once, without a cascade from one bad value.
    _check_ranges_together(effective, out)
    _check_mode(effective, facts_n, out)
    if not fact_errors:
        _check_capacity(effective, facts_n, out)

    return {
        "errors": out.errors,
        "warnings": out.warnings,
        "recommended": recommended,
        "effective": effective,
    }


def pool_errors(settings, facts=None):
    """Just the errors of ``validate``: an empty list means the settings are good."""
    return validate(settings, facts)["errors"]
