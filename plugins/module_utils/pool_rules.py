# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PgBouncer pool rules: validation and recommended values.

Pure functions, no I/O. The ``pool_validate`` module, the ``pool_settings`` and
``pool_errors`` filters and the ``pgbouncer`` role all go through ``validate``,
so a bad setting is refused with the same words wherever it is caught. The
settings themselves and their type checks live in ``pool_settings``.

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

* PgBouncer's defaults: the pgbouncer.ini reference shipped with PgBouncer 1.18
  (Debian bookworm), ``man 5 pgbouncer``.
* Prepared statements in transaction mode: PgBouncer 1.21.0 release notes
  ("max_prepared_statements ... 100 is probably reasonable").
* Pool sizing: the PostgreSQL wiki page "Number Of Database Connections",
  connections = (core_count * 2) + effective_spindle_count.
* The collection's own production defaults and targets: transaction pooling,
  a pool of 20 server connections, 600 s idle timeout, 3600 s server lifetime,
  3,000+ concurrent clients.
"""

from __future__ import annotations

from ansible_collections.unitehub.platform.plugins.module_utils.pool_settings import (
    PGBOUNCER_DEFAULTS,
    SETTINGS,
    format_number,
    format_version,
    normalise_facts,
    normalise_settings,
)

ENVIRONMENTS = ("development", "staging", "production")

# Protocol-level prepared statements in transaction/statement mode arrived in 1.21.0.
PREPARED_STATEMENTS_MIN_VERSION = (1, 21, 0)
# PostgreSQL's default superuser_reserved_connections, used when the fact is unknown.
POSTGRES_DEFAULT_SUPERUSER_RESERVED = 3
# Share of the server's usable connections the pools may take in recommended
# settings: the rest is headroom for direct clients (migrations, psql, backups,
# monitoring) that must not go through PgBouncer.
SERVER_HEADROOM_SHARE = 0.8
# Above this share of the usable connections, validation warns about headroom.
SERVER_HEADROOM_WARN_SHARE = 0.9

# auth_type values that let clients in without a password check worth the name; refused unless allowed.
INSECURE_AUTH_TYPES = {
    "trust": "lets anyone who reaches PgBouncer in without a password",
    "any": "lets anyone who reaches PgBouncer in without a password, as any user",
    "plain": "sends passwords in clear text",
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
                  % (format_number(lifetime), format_number(idle), format_number(idle)))
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
                 % (format_number(connect), format_number(wait)))


def _check_auth(eff, allow_insecure_auth, out):
    risk = INSECURE_AUTH_TYPES.get(eff["auth_type"])
    if risk is None:
        return
    if allow_insecure_auth:
        out.warn("auth_type %s %s: use scram-sha-256" % (eff["auth_type"], risk))
    else:
        out.error("auth_type %s %s: use scram-sha-256, or allow it explicitly (pgbouncer_allow_insecure_auth_type, "
                  "the allow_insecure_auth_type option) where that is acceptable" % (eff["auth_type"], risk))


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
    return _recommended(environment, facts)


def _recommended(environment, facts):
    """``recommended_settings`` for a known environment and facts already normalised."""
    production = environment == "production"
    staging = environment == "staging"
    if "cores" in facts:
        # PostgreSQL wiki "Number Of Database Connections": (core_count * 2) + effective_spindle_count.
        pool_size = wiki_pool_size(facts["cores"], facts.get("spindles", 1))
        if environment == "development":
            pool_size = min(pool_size, 5)
    elif production:
        # The collection's production pool (DB_POOL_SIZE=20), also PgBouncer's default_pool_size.
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
        # The collection's DB_POOLER_MODE=transaction: a server connection per transaction, not per client.
        "pool_mode": "transaction",
        "default_pool_size": pool_size,
        # House rule: keep a quarter of the pool warm in production so a burst after a quiet
        # period finds connections ready; PgBouncer's default 0 elsewhere.
        "min_pool_size": pool_size // 4 if production else 0,
        "reserve_pool_size": reserve,
        # PgBouncer default: use the reserve after a client waited 5 s.
        "reserve_pool_timeout": 5.0,
        # PgBouncer default 100 for development; the collection targets 3,000+ concurrent clients
        # in production (4000 leaves headroom); staging sits between.
        "max_client_conn": 4000 if production else (1000 if staging else 100),
        # PgBouncer defaults: no database/user-wide cap beyond the pools themselves.
        "max_db_connections": 0,
        "max_user_connections": 0,
        # The collection's DB_IDLE_TIMEOUT=600, PgBouncer's default server_idle_timeout.
        "server_idle_timeout": 600.0,
        # The collection's DB_MAX_LIFETIME=3600, PgBouncer's default server_lifetime.
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


def validate(settings, facts=None, environment="production", allow_insecure_auth=False):
    """Check pool settings, alone and against the facts.

    An auth_type of ``INSECURE_AUTH_TYPES`` is an error, or only a warning with
    ``allow_insecure_auth``.

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
        recommended = _recommended(environment, {} if fact_errors else facts_n)

    # A rule across settings runs when the settings it reads are valid on their own, so
    # every bad setting is named once, without a cascade from one bad value.
    _check_ranges_together(effective, out)
    _check_auth(effective, allow_insecure_auth, out)
    _check_mode(effective, facts_n, out)
    if not fact_errors:
        _check_capacity(effective, facts_n, out)

    return {
        "errors": out.errors,
        "warnings": out.warnings,
        "recommended": recommended,
        "effective": effective,
    }


def pool_errors(settings, facts=None, allow_insecure_auth=False):
    """Just the errors of ``validate``: an empty list means the settings are good."""
    return validate(settings, facts, allow_insecure_auth=allow_insecure_auth)["errors"]
