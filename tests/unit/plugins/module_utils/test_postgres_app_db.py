# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Change planning and input checks of module_utils/postgres_app_db.py. Applying the
plan against a real PostgreSQL is tests/integration/test_postgresql_app_db.py."""

from __future__ import annotations

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import postgres_app_db, scram

# Stored verifiers of 'correct horse battery staple' (test_scram.py checks them against PostgreSQL's own).
PG_SCRAM_ASCII = scram.scram_sha256_verifier("correct horse battery staple")
PG_MD5 = scram.md5_verifier("correct horse battery staple", "uh_vec_c")


class TestPlanning:
    current = {"can_login": True, "conn_limit": -1, "password": PG_SCRAM_ASCII}

    def test_missing_role_is_created(self):
        assert postgres_app_db.plan_role(None, "app", "pw", -1, "scram-sha-256") == ["create"]

    def test_matching_role_needs_nothing(self):
        assert postgres_app_db.plan_role(self.current, "app", "correct horse battery staple", -1, "scram-sha-256") == []

    def test_each_difference_is_planned(self):
        current = {"can_login": False, "conn_limit": 5, "password": PG_SCRAM_ASCII}
        assert postgres_app_db.plan_role(current, "app", "new password", 20, "scram-sha-256") == [
            "login",
            "conn_limit",
            "password",
        ]

    def test_password_stored_the_other_way_is_set_again(self):
        current = dict(self.current, password=PG_MD5)
        # right password, but md5 while scram-sha-256 is wanted
        assert postgres_app_db.plan_role(current, "uh_vec_c", "correct horse battery staple", -1, "scram-sha-256") == [
            "password"
        ]
        assert postgres_app_db.plan_role(current, "uh_vec_c", "correct horse battery staple", -1, "md5") == []

    def test_role_without_password_gets_one(self):
        current = dict(self.current, password=None)
        assert postgres_app_db.plan_role(current, "app", "pw", -1, "scram-sha-256") == ["password"]

    def test_database_plan(self):
        assert postgres_app_db.plan_database(None, "app") == ["create"]
        assert postgres_app_db.plan_database({"owner": "app", "encoding": "UTF8"}, "app") == []
        assert postgres_app_db.plan_database({"owner": "postgres", "encoding": "UTF8"}, "app") == ["owner"]

    def test_descriptions_never_contain_the_password(self):
        lines = postgres_app_db.describe("app", ["create"], "appdb", ["create"], 20)
        assert lines == ["create role app (login, connection limit 20)", "create database appdb owned by app"]
        lines = postgres_app_db.describe("app", ["password", "conn_limit"], "appdb", ["owner"], 3)
        assert lines == [
            "set the password of role app",
            "set the connection limit of role app to 3",
            "make role app the owner of database appdb",
        ]

    @pytest.mark.parametrize(
        "name, fragment",
        [("", "is empty"), ("x" * 64, "longer than 63 bytes"), ("\u00e9" * 32, "longer than 63 bytes")],
    )
    def test_names_postgres_would_truncate_are_refused(self, name, fragment):
        with pytest.raises(postgres_app_db.PostgresAppError, match=fragment):
            postgres_app_db.check_name("role", name)

    def test_63_byte_name_is_fine(self):
        postgres_app_db.check_name("database", "x" * 63)


class _RefusingConnection:
    """Any query is a test failure: validation must happen before the server is asked."""

    def execute(self, *args, **kwargs):
        raise AssertionError("queried the server before validating the input")


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(password=""), "password of role 'app' is empty"),
        (dict(conn_limit=-2), "conn_limit -2 is invalid"),
        (dict(encryption="crypt"), "'crypt' is not one of scram-sha-256, md5"),
        (dict(role="r" * 64), "longer than 63 bytes"),
    ],
)
def test_bad_input_fails_before_any_query(kwargs, fragment):
    args = dict(role="app", password="pw", database="appdb")
    args.update(kwargs)
    with pytest.raises(postgres_app_db.PostgresAppError, match=fragment):
        postgres_app_db.ensure_app_database(_RefusingConnection(), **args)


# --- generated passwords ------------------------------------------------------------------------

GENERATED = "Zq3vX9kLm2Pw7RtY8sUa1BcD4eFgH5jK"


class TestGeneratedPasswords:
    derived = scram.generated_password_verifier(GENERATED, "app", 16)

    def test_the_derived_verifier_is_kept(self):
        current = {"can_login": True, "conn_limit": -1, "password": self.derived}
        assert postgres_app_db.plan_role(current, "app", GENERATED, -1, "scram-sha-256", 16) == []

    @pytest.mark.parametrize("stored", [
        scram.scram_sha256_verifier(GENERATED),  # right password, PostgreSQL's own salt and 4096 iterations
        scram.generated_password_verifier(GENERATED, "app", 4096),  # other iteration count
        scram.generated_password_verifier(GENERATED[::-1], "app", 16),  # other password
    ])
    def test_any_other_verifier_is_replaced_so_pgbouncer_and_postgres_agree(self, stored):
        current = {"can_login": True, "conn_limit": -1, "password": stored}
        assert postgres_app_db.plan_role(current, "app", GENERATED, -1, "scram-sha-256", 16) == ["password"]

    def test_a_cheap_verifier_left_behind_is_replaced_once_the_password_counts_as_chosen(self):
        current = {"can_login": True, "conn_limit": -1, "password": self.derived}
        assert postgres_app_db.plan_role(current, "app", GENERATED, -1, "scram-sha-256") == ["password"]
        current["password"] = scram.scram_sha256_verifier(GENERATED)
        assert postgres_app_db.plan_role(current, "app", GENERATED, -1, "scram-sha-256") == []

    def test_the_verifier_sent_is_the_derived_one_or_a_fresh_default_one(self):
        assert postgres_app_db.wanted_verifier(GENERATED, "app", "scram-sha-256", 16) == self.derived
        fresh = postgres_app_db.wanted_verifier(GENERATED, "app", "scram-sha-256")
        assert scram.scram_iterations(fresh) == 4096 and fresh != postgres_app_db.wanted_verifier(
            GENERATED, "app", "scram-sha-256")

    @pytest.mark.parametrize("kwargs, fragment", [
        (dict(password="correct horse battery staple"), "not a generated one: it has 28 characters.*password_generated to false"),
        (dict(encryption="md5"), "needs password_encryption scram-sha-256"),
        (dict(generated_iterations=0), "generated_password_iterations 0 is invalid"),
    ])
    def test_bad_generated_requests_fail_before_any_query(self, kwargs, fragment):
        args = dict(role="app", password=GENERATED, database="appdb", generated_iterations=16)
        args.update(kwargs)
        with pytest.raises(postgres_app_db.PostgresAppError, match=fragment):
            postgres_app_db.ensure_app_database(_RefusingConnection(), **args)
