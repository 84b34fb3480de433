# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Password verifiers and change planning of module_utils/postgres.py.

The reference verifiers below were produced by PostgreSQL 15 itself
(CREATE ROLE ... PASSWORD '...' then SELECT rolpassword FROM pg_authid).
"""

from __future__ import annotations

import base64

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import postgres

# password 'correct horse battery staple', password_encryption = scram-sha-256
PG_SCRAM_ASCII = (
    "SCRAM-SHA-256$4096:SFN3YnCcZqFkoAg3xarB3A==$TtmSHwWOoAHHfiB9SGl8Ad9TD80SCCRSawHSB/Gh1UM="
    ":cmoQrLNouuw88V/VwUSilgHMIy66fYYtHID24k95Nq4="
)
# password '\u2168-p\u00e4ssw\u00f6rd' (ROMAN NUMERAL NINE, NFKC -> 'IX'), scram-sha-256
PG_SCRAM_UNICODE = (
    "SCRAM-SHA-256$4096:fMW5KcH6OdgEiVx5gzCTKA==$V2lTzlWbjEBF/jfZejTvdqT9dbjjfPRHgd4q5G8eKEU="
    ":AWu9AjdTjhkU6U7gnDSQIcuFMc+fptN7I03HUcYe14g="
)
# role 'uh_vec_c', password 'correct horse battery staple', password_encryption = md5
PG_MD5 = "md5d4de109c856ab6e65ef7cb1e08c23668"


class TestVerifiers:
    def test_postgres_scram_verifier_matches_its_password(self):
        assert postgres.password_matches(PG_SCRAM_ASCII, "correct horse battery staple", "anyone")

    def test_postgres_scram_verifier_rejects_other_passwords(self):
        assert not postgres.password_matches(PG_SCRAM_ASCII, "correct horse battery stapler", "anyone")
        assert not postgres.password_matches(PG_SCRAM_ASCII, "", "anyone")

    def test_saslprep_normalisation_matches_postgres(self):
        password = "\u2168-p\u00e4ssw\u00f6rd"
        assert postgres.saslprep(password) == "IX-p\u00e4ssw\u00f6rd"
        assert postgres.password_matches(PG_SCRAM_UNICODE, password, "anyone")
        # the NFKC form is the same password to PostgreSQL
        assert postgres.password_matches(PG_SCRAM_UNICODE, "IX-p\u00e4ssw\u00f6rd", "anyone")

    def test_generated_scram_verifier_is_what_postgres_would_store(self):
        salt = base64.b64decode("SFN3YnCcZqFkoAg3xarB3A==")
        assert postgres.scram_sha256_verifier("correct horse battery staple", salt=salt) == PG_SCRAM_ASCII

    def test_generated_scram_verifier_uses_a_fresh_salt(self):
        first = postgres.scram_sha256_verifier("pw")
        second = postgres.scram_sha256_verifier("pw")
        assert first != second
        assert first.startswith("SCRAM-SHA-256$4096:")
        assert postgres.password_matches(first, "pw", "x") and postgres.password_matches(second, "pw", "x")

    def test_md5_verifier_is_what_postgres_stores(self):
        assert postgres.md5_verifier("correct horse battery staple", "uh_vec_c") == PG_MD5
        assert postgres.password_matches(PG_MD5, "correct horse battery staple", "uh_vec_c")
        # md5 salts with the role name: the same password under another name differs
        assert not postgres.password_matches(PG_MD5, "correct horse battery staple", "other_role")

    @pytest.mark.parametrize("stored", [None, "", "plaintext", "SCRAM-SHA-256$broken", "SCRAM-SHA-256$4096:%%%$a:b"])
    def test_missing_or_malformed_verifiers_never_match(self, stored):
        assert not postgres.password_matches(stored, "plaintext", "role")

    def test_verifier_encryption(self):
        assert postgres.verifier_encryption(PG_SCRAM_ASCII) == "scram-sha-256"
        assert postgres.verifier_encryption(PG_MD5) == "md5"
        assert postgres.verifier_encryption(None) is None
        assert postgres.verifier_encryption("md5short") is None


class TestSaslprep:
    def test_ascii_is_left_alone(self):
        # PostgreSQL skips SASLprep for pure ASCII, control characters included
        assert postgres.saslprep("a b\tc") == "a b\tc"

    def test_non_ascii_space_maps_to_space_and_soft_hyphen_vanishes(self):
        assert postgres.saslprep("a\u00a0b\u00adc\u00e9") == "a bc\u00e9"

    def test_prohibited_characters_leave_the_password_raw(self):
        assert postgres.saslprep("\u00e9\u0007") is None  # BEL with non-ASCII text
        password = "\u00e9\ue000"  # private use area
        assert postgres.saslprep(password) is None
        # raw bytes are then used, and the verifier still round-trips
        assert postgres.password_matches(postgres.scram_sha256_verifier(password), password, "r")

    def test_mixed_direction_text_is_refused(self):
        assert postgres.saslprep("\u05d0a\u05d1") is None  # Hebrew with a Latin letter
        assert postgres.saslprep("\u05d0\u05d1") == "\u05d0\u05d1"


class TestPlanning:
    current = {"can_login": True, "conn_limit": -1, "password": PG_SCRAM_ASCII}

    def test_missing_role_is_created(self):
        assert postgres.plan_role(None, "app", "pw", -1, "scram-sha-256") == ["create"]

    def test_matching_role_needs_nothing(self):
        assert postgres.plan_role(self.current, "app", "correct horse battery staple", -1, "scram-sha-256") == []

    def test_each_difference_is_planned(self):
        current = {"can_login": False, "conn_limit": 5, "password": PG_SCRAM_ASCII}
        assert postgres.plan_role(current, "app", "new password", 20, "scram-sha-256") == [
            "login",
            "conn_limit",
            "password",
        ]

    def test_password_stored_the_other_way_is_set_again(self):
        current = dict(self.current, password=PG_MD5)
        # right password, but md5 while scram-sha-256 is wanted
        assert postgres.plan_role(current, "uh_vec_c", "correct horse battery staple", -1, "scram-sha-256") == [
            "password"
        ]
        assert postgres.plan_role(current, "uh_vec_c", "correct horse battery staple", -1, "md5") == []

    def test_role_without_password_gets_one(self):
        current = dict(self.current, password=None)
        assert postgres.plan_role(current, "app", "pw", -1, "scram-sha-256") == ["password"]

    def test_database_plan(self):
        assert postgres.plan_database(None, "app") == ["create"]
        assert postgres.plan_database({"owner": "app", "encoding": "UTF8"}, "app") == []
        assert postgres.plan_database({"owner": "postgres", "encoding": "UTF8"}, "app") == ["owner"]

    def test_descriptions_never_contain_the_password(self):
        lines = postgres.describe("app", ["create"], "appdb", ["create"], 20)
        assert lines == ["create role app (login, connection limit 20)", "create database appdb owned by app"]
        lines = postgres.describe("app", ["password", "conn_limit"], "appdb", ["owner"], 3)
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
        with pytest.raises(postgres.PostgresAppError, match=fragment):
            postgres.check_name("role", name)

    def test_63_byte_name_is_fine(self):
        postgres.check_name("database", "x" * 63)


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
    with pytest.raises(postgres.PostgresAppError, match=fragment):
        postgres.ensure_app_database(_RefusingConnection(), **args)
