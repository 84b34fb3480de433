# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PgBouncer pool rules of module_utils/pool_rules.py: validate, capacity, recommended settings."""

from __future__ import annotations

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import pool_rules
from ansible_collections.unitehub.platform.plugins.module_utils.pool_settings import SETTINGS

# PostgreSQL 15 as Debian configures it, PgBouncer as bookworm ships it.
BOOKWORM = {"server_max_connections": 100, "superuser_reserved_connections": 3, "pgbouncer_version": "PgBouncer 1.18.0"}

GOOD = {
    "pool_mode": "transaction",
    "default_pool_size": 20,
    "min_pool_size": 5,
    "reserve_pool_size": 5,
    "reserve_pool_timeout": 5,
    "max_client_conn": 4000,
    "max_db_connections": 0,
    "max_user_connections": 0,
    "server_idle_timeout": 600,
    "server_lifetime": 3600,
    "query_wait_timeout": 120,
    "server_connect_timeout": 15,
    "max_prepared_statements": 0,
    "auth_type": "scram-sha-256",
}


def with_(**changes):
    return dict(GOOD, **changes)


# (settings, facts, the setting the error must start with, words the message must carry)
BAD_SETTINGS = [
    pytest.param(with_(default_pool_size=0), None, "default_pool_size", ["at least 1", "got 0"], id="pool-size-0"),
    pytest.param(with_(default_pool_size=-3), None, "default_pool_size", ["at least 1", "got -3"], id="pool-size-negative"),
    pytest.param(with_(server_idle_timeout=-5), None, "server_idle_timeout", ["at least 0", "got -5"],
                 id="negative-idle-timeout"),
    pytest.param(with_(query_wait_timeout=-1.5), None, "query_wait_timeout", ["at least 0", "-1.5"],
                 id="negative-query-wait-timeout"),
    pytest.param(with_(reserve_pool_timeout=-1), None, "reserve_pool_timeout", ["at least 0"],
                 id="negative-reserve-timeout"),
    pytest.param(with_(server_lifetime=300, server_idle_timeout=600), None, "server_lifetime",
                 ["shorter than server_idle_timeout", "600 or more"], id="lifetime-shorter-than-idle"),
    pytest.param(with_(pool_mode="sessions"), None, "pool_mode", ["'sessions'", "session, transaction, statement"],
                 id="unknown-mode"),
    pytest.param(with_(default_pool_size=90, reserve_pool_size=10), BOOKWORM, "default_pool_size",
                 ["needs up to 100", "accepts only 97", "lower default_pool_size to 87 or less"],
                 id="pool-larger-than-server"),
    pytest.param(with_(default_pool_size=20, reserve_pool_size=5), dict(BOOKWORM, databases=2, users=2),
                 "default_pool_size", ["2 database(s) x 2 user(s)", "needs up to 100", "lower default_pool_size to 19"],
                 id="pools-times-databases-times-users"),
    pytest.param(with_(default_pool_size="twenty"), None, "default_pool_size", ["whole number", "'twenty'"],
                 id="text-for-a-count"),
    pytest.param(with_(server_lifetime="1h"), None, "server_lifetime", ["number of seconds", "'1h'"],
                 id="text-for-seconds"),
    pytest.param(with_(max_client_conn=True), None, "max_client_conn", ["boolean", "not numbers"], id="bool-for-int"),
    pytest.param(with_(server_idle_timeout=False), None, "server_idle_timeout", ["boolean"], id="bool-for-seconds"),
    pytest.param(with_(default_pool_size=20.5), None, "default_pool_size", ["whole number", "20.5"],
                 id="fraction-for-count"),
    pytest.param(with_(min_pool_size=30, default_pool_size=20), None, "min_pool_size",
                 ["larger than default_pool_size", "20 or less"], id="min-above-default"),
    pytest.param(with_(max_db_connections=10), None, "max_db_connections",
                 ["lower than default_pool_size", "at least 20", "0 (unlimited)"], id="db-cap-below-pool"),
    pytest.param(with_(max_user_connections=5), None, "max_user_connections", ["lower than default_pool_size"],
                 id="user-cap-below-pool"),
    pytest.param(with_(max_prepared_statements=100), BOOKWORM, "max_prepared_statements",
                 ["PgBouncer >= 1.21", "1.18.0", "set max_prepared_statements to 0", "prepare_threshold=None"],
                 id="prepared-statements-on-1.18"),
    pytest.param(with_(server_connect_timeout=0), None, "server_connect_timeout", ["more than 0"],
                 id="connect-timeout-zero"),
    pytest.param(with_(auth_type="password"), None, "auth_type", ["'password'", "scram-sha-256"], id="unknown-auth"),
    pytest.param(with_(max_client_conn=0), None, "max_client_conn", ["at least 1"], id="no-clients"),
    pytest.param(with_(default_pool_size=300000), None, "default_pool_size", ["at most 262143"], id="above-postgres-max"),
    pytest.param(with_(server_lifetime=float("nan")), None, "server_lifetime", ["finite"], id="nan"),
    pytest.param(with_(default_pool_size=[20]), None, "default_pool_size", ["whole number", "list"], id="list-for-int"),
    pytest.param(dict(GOOD, default_pool_sise=20), None, "default_pool_sise",
                 ["not a pool setting", "did you mean 'default_pool_size'"], id="typo-key"),
]


@pytest.mark.parametrize("settings, facts, setting, words", BAD_SETTINGS)
def test_bad_setting_is_one_clear_error_naming_it(settings, facts, setting, words):
    result = pool_rules.validate(settings, facts)

    assert len(result["errors"]) == 1, result["errors"]
    message = result["errors"][0]
    assert message.startswith(setting + " "), message
    for word in words:
        assert word in message, (word, message)
    assert ": " in message  # the problem, then the fix


def test_good_settings_on_bookworm_have_no_error():
    result = pool_rules.validate(GOOD, BOOKWORM)

    assert result["errors"] == []
    assert result["effective"]["default_pool_size"] == 20
    assert result["effective"]["server_lifetime"] == 3600.0


def test_every_bad_setting_is_reported_at_once():
    settings = with_(default_pool_size=0, pool_mode="bogus", server_lifetime=60, max_prepared_statements=50)

    errors = pool_rules.validate(settings, BOOKWORM)["errors"]

    assert sorted(e.split(" ")[0] for e in errors) == [
        "default_pool_size", "max_prepared_statements", "pool_mode", "server_lifetime"]


def test_a_bad_value_does_not_cascade_into_rules_that_read_it():
    # min_pool_size 5 cannot be compared with a pool size that is not a number.
    errors = pool_rules.validate(with_(default_pool_size="lots"), BOOKWORM)["errors"]

    assert len(errors) == 1 and errors[0].startswith("default_pool_size")


def test_numeric_text_as_extra_vars_pass_it_counts_as_a_number():
    result = pool_rules.validate(with_(default_pool_size="25", server_idle_timeout=" 300 ", reserve_pool_timeout="2.5"))

    assert result["errors"] == []
    assert result["effective"]["default_pool_size"] == 25
    assert result["effective"]["server_idle_timeout"] == 300.0
    assert result["effective"]["reserve_pool_timeout"] == 2.5


def test_effective_fills_pgbouncer_defaults_and_nulls_the_bad():
    result = pool_rules.validate({"default_pool_size": 0, "pool_mode": "Transaction", "server_lifetime": None})

    effective = result["effective"]
    assert effective["default_pool_size"] is None
    assert effective["pool_mode"] == "transaction"
    assert effective["server_lifetime"] == 3600.0  # None means PgBouncer's default
    assert effective["max_client_conn"] == 100
    assert effective["auth_type"] == "md5"  # PgBouncer 1.18's default
    assert set(effective) == set(SETTINGS)


def test_settings_that_are_not_a_mapping():
    assert pool_rules.validate(["default_pool_size", 20])["errors"] == [
        "pool settings must be a mapping of setting names to values, got list"]


def test_pool_that_exactly_fits_the_server_passes_and_warns_about_headroom():
    # 92 + 5 = 97 = 100 - 3: fits, but leaves nothing for direct clients.
    result = pool_rules.validate(with_(default_pool_size=92, reserve_pool_size=5), BOOKWORM)

    assert result["errors"] == []
    assert any(w.startswith("the pools can take 97 of PostgreSQL's 97") for w in result["warnings"])


def test_one_connection_too_many_is_an_error():
    result = pool_rules.validate(with_(default_pool_size=93, reserve_pool_size=5), BOOKWORM)

    assert len(result["errors"]) == 1
    assert "needs up to 98" in result["errors"][0]


def test_max_db_connections_caps_what_the_pools_need():
    facts = dict(BOOKWORM, users=10)  # 10 users x 25 would be 250
    capped = with_(max_db_connections=60)

    assert pool_rules.validate(capped, facts)["errors"] == []
    assert len(pool_rules.validate(GOOD, facts)["errors"]) == 1


def test_superuser_reserved_defaults_to_postgres_default_3():
    assert pool_rules.usable_server_connections({"server_max_connections": 100}) == 97
    errors = pool_rules.validate(with_(default_pool_size=95, reserve_pool_size=3), {"server_max_connections": 100})["errors"]
    assert "superuser_reserved_connections 3" in errors[0]


def test_server_without_usable_connections():
    errors = pool_rules.validate(GOOD, {"server_max_connections": 3, "superuser_reserved_connections": 3})["errors"]
    assert errors == ["facts: PostgreSQL max_connections (3) leaves no connection after superuser_reserved_connections "
                      "(3): raise max_connections"]


def test_transaction_mode_warns_about_session_features_and_prepared_statements():
    warnings = pool_rules.validate(GOOD, BOOKWORM)["warnings"]

    session = [w for w in warnings if "breaks session-only features" in w]
    assert len(session) == 1
    for feature in ("SET/RESET", "LISTEN/NOTIFY", "advisory locks", "WITH HOLD cursors", "protocol-level prepared"):
        assert feature in session[0]
    advice = [w for w in warnings if "with prepared statements" in w]
    assert len(advice) == 1
    assert "psycopg prepare_threshold=None" in advice[0]
    assert "1.18.0 predates prepared statement support" in advice[0]


def test_prepared_statements_on_1_21_in_transaction_mode_need_no_client_advice():
    facts = dict(BOOKWORM, pgbouncer_version="1.21.0")
    result = pool_rules.validate(with_(max_prepared_statements=100), facts)

    assert result["errors"] == []
    assert not any("prepare_threshold" in w for w in result["warnings"])
    assert not any("protocol-level prepared" in w for w in result["warnings"])
    assert any("LISTEN/NOTIFY" in w for w in result["warnings"])  # still transaction mode


def test_transaction_mode_on_1_21_without_the_setting_suggests_it():
    warnings = pool_rules.validate(GOOD, dict(BOOKWORM, pgbouncer_version="1.22.1"))["warnings"]
    advice = [w for w in warnings if "with prepared statements" in w][0]
    assert "max_prepared_statements is 0" in advice
    assert "set max_prepared_statements to e.g. 100" in advice
    assert "prepare_threshold=None" in advice


def test_prepared_statements_with_unknown_version_is_a_warning():
    result = pool_rules.validate(with_(max_prepared_statements=100))
    assert result["errors"] == []
    assert any(w.startswith("max_prepared_statements (100) needs PgBouncer >= 1.21") for w in result["warnings"])


def test_session_mode_has_no_transaction_caveats():
    warnings = pool_rules.validate(with_(pool_mode="session"), BOOKWORM)["warnings"]
    assert not any("session-only" in w or "prepare_threshold" in w for w in warnings)


def test_statement_mode_warns_about_multi_statement_transactions():
    warnings = pool_rules.validate(with_(pool_mode="statement"), BOOKWORM)["warnings"]
    assert any("refuses multi-statement transactions" in w for w in warnings)


@pytest.mark.parametrize("settings, start", [
    (with_(server_lifetime=0), "server_lifetime is 0"),
    (with_(query_wait_timeout=0), "query_wait_timeout is 0"),
    (with_(reserve_pool_timeout=0), "reserve_pool_timeout is 0"),
    (with_(max_client_conn=10), "max_client_conn (10) is lower than default_pool_size (20)"),
    (with_(server_connect_timeout=200), "server_connect_timeout (200 s) is longer than query_wait_timeout (120 s)"),
])
def test_doubtful_but_legal_settings_warn(settings, start):
    result = pool_rules.validate(settings)
    assert result["errors"] == []
    assert any(w.startswith(start) for w in result["warnings"]), result["warnings"]


@pytest.mark.parametrize("auth_type, risk", [
    ("trust", "lets anyone who reaches PgBouncer in without a password"),
    ("any", "without a password, as any user"),
    ("plain", "sends passwords in clear text"),
])
def test_an_insecure_auth_type_is_refused_unless_allowed(auth_type, risk):
    refused = pool_rules.validate(with_(auth_type=auth_type))
    allowed = pool_rules.validate(with_(auth_type=auth_type), allow_insecure_auth=True)

    (error,) = refused["errors"]
    assert error.startswith("auth_type %s " % auth_type) and risk in error
    assert error.endswith("use scram-sha-256, or allow it explicitly (pgbouncer_allow_insecure_auth_type, "
                          "the allow_insecure_auth_type option) where that is acceptable")
    assert allowed["errors"] == []
    assert any(w.startswith("auth_type %s " % auth_type) and risk in w for w in allowed["warnings"])
    assert pool_rules.pool_errors(with_(auth_type=auth_type)) == refused["errors"]
    assert pool_rules.pool_errors(with_(auth_type=auth_type), allow_insecure_auth=True) == []


def test_secure_auth_types_pass_without_the_allowance():
    for auth_type in ("scram-sha-256", "md5", "hba", "cert"):
        assert pool_rules.validate(with_(auth_type=auth_type))["errors"] == []


def test_lifetime_or_idle_zero_skip_the_order_rule():
    assert pool_rules.validate(with_(server_lifetime=0, server_idle_timeout=600))["errors"] == []
    assert pool_rules.validate(with_(server_lifetime=60, server_idle_timeout=0))["errors"] == []


def test_oversized_pool_for_the_cores_warns_with_the_wiki_rule():
    warnings = pool_rules.validate(with_(default_pool_size=50), {"cores": 2, "spindles": 1})["warnings"]
    assert any("wiki rule suggests" in w and "the 5 " in w for w in warnings)


@pytest.mark.parametrize("facts, start", [
    ({"server_max_connections": "many"}, "facts.server_max_connections"),
    ({"cores": 0}, "facts.cores"),
    ({"pgbouncer_version": "latest"}, "facts.pgbouncer_version"),
    ({"ram_gb": 16}, "facts.ram_gb"),
    ({"databases": True}, "facts.databases"),
])
def test_bad_facts_are_errors_naming_the_fact(facts, start):
    errors = pool_rules.validate(GOOD, facts)["errors"]
    assert len(errors) == 1 and errors[0].startswith(start), errors


def test_unknown_environment_is_an_error():
    result = pool_rules.validate(GOOD, None, environment="prod")
    assert result["errors"] == ["environment 'prod' is not one of development, staging, production: pick the one these "
                                "settings are for"]
    assert result["recommended"] == {}


# --- recommended settings ------------------------------------------------------

FACT_SETS = [
    None,
    BOOKWORM,
    {"server_max_connections": 100, "databases": 3, "users": 2, "cores": 8, "spindles": 2},
    {"server_max_connections": 20, "superuser_reserved_connections": 3, "databases": 4},
    {"cores": 64, "spindles": 8, "pgbouncer_version": "1.22.0"},
    {"server_max_connections": 500, "pgbouncer_version": "1.21.0", "cores": 4},
]


@pytest.mark.parametrize("environment", pool_rules.ENVIRONMENTS)
@pytest.mark.parametrize("facts", FACT_SETS)
def test_recommended_settings_pass_validation_with_the_same_facts(environment, facts):
    recommended = pool_rules.recommended_settings(environment, facts)

    result = pool_rules.validate(recommended, facts, environment)

    assert result["errors"] == []
    assert not any(w.startswith("the pools can take") for w in result["warnings"])  # headroom kept
    assert set(recommended) == set(SETTINGS)
    assert result["recommended"] == recommended


def test_recommended_production_without_facts_follows_the_collection_defaults_and_pgbouncer():
    rec = pool_rules.recommended_settings("production")
    assert rec["pool_mode"] == "transaction"          # DB_POOLER_MODE
    assert rec["default_pool_size"] == 20             # DB_POOL_SIZE, PgBouncer default
    assert rec["server_idle_timeout"] == 600.0        # DB_IDLE_TIMEOUT
    assert rec["server_lifetime"] == 3600.0           # DB_MAX_LIFETIME
    assert rec["max_client_conn"] >= 3000             # target: 3,000+ concurrent clients
    assert rec["max_prepared_statements"] == 0        # unknown PgBouncer: 1.18 refuses it


def test_recommended_pool_uses_the_wiki_rule_with_cores():
    assert pool_rules.recommended_settings("production", {"cores": 8, "spindles": 2})["default_pool_size"] == 18
    assert pool_rules.recommended_settings("development", {"cores": 8})["default_pool_size"] == 5


def test_recommended_pools_keep_20_percent_of_the_server_free():
    facts = {"server_max_connections": 100, "superuser_reserved_connections": 3, "databases": 3}
    rec = pool_rules.recommended_settings("production", facts)
    needed = pool_rules.server_connections_needed(rec, databases=3)
    assert needed <= 97 * 0.8


def test_recommended_turns_prepared_statements_on_for_1_21():
    assert pool_rules.recommended_settings("staging", {"pgbouncer_version": "1.21.0"})["max_prepared_statements"] == 100
    assert pool_rules.recommended_settings("staging", {"pgbouncer_version": "1.18.0"})["max_prepared_statements"] == 0


def test_recommended_settings_differ_by_environment():
    dev, staging, prod = (pool_rules.recommended_settings(env) for env in ("development", "staging", "production"))
    assert dev["default_pool_size"] < staging["default_pool_size"] < prod["default_pool_size"]
    assert dev["max_client_conn"] < staging["max_client_conn"] < prod["max_client_conn"]
    assert dev["reserve_pool_size"] == 0 and prod["reserve_pool_size"] > 0


def test_recommended_refuses_unknown_environment_and_bad_facts():
    with pytest.raises(ValueError, match="environment 'qa'"):
        pool_rules.recommended_settings("qa")
    with pytest.raises(ValueError, match="facts.cores"):
        pool_rules.recommended_settings("production", {"cores": "eight"})


def test_pool_errors_is_the_error_list():
    assert pool_rules.pool_errors(GOOD, BOOKWORM) == []
    assert pool_rules.pool_errors(with_(default_pool_size=0)) == [
        "default_pool_size must be at least 1, got 0: use 1 or more (PgBouncer's default is 20)"]
