# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Password verifiers of module_utils/scram.py.

The reference verifiers below were produced by PostgreSQL 15 itself
(CREATE ROLE ... PASSWORD '...' then SELECT rolpassword FROM pg_authid).
"""

from __future__ import annotations

import base64

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import scram

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
        assert scram.password_matches(PG_SCRAM_ASCII, "correct horse battery staple", "anyone")

    def test_postgres_scram_verifier_rejects_other_passwords(self):
        assert not scram.password_matches(PG_SCRAM_ASCII, "correct horse battery stapler", "anyone")
        assert not scram.password_matches(PG_SCRAM_ASCII, "", "anyone")

    def test_saslprep_normalisation_matches_postgres(self):
        password = "\u2168-p\u00e4ssw\u00f6rd"
        assert scram.saslprep(password) == "IX-p\u00e4ssw\u00f6rd"
        assert scram.password_matches(PG_SCRAM_UNICODE, password, "anyone")
        # the NFKC form is the same password to PostgreSQL
        assert scram.password_matches(PG_SCRAM_UNICODE, "IX-p\u00e4ssw\u00f6rd", "anyone")

    def test_generated_scram_verifier_is_what_postgres_would_store(self):
        salt = base64.b64decode("SFN3YnCcZqFkoAg3xarB3A==")
        assert scram.scram_sha256_verifier("correct horse battery staple", salt=salt) == PG_SCRAM_ASCII

    def test_generated_scram_verifier_uses_a_fresh_salt(self):
        first = scram.scram_sha256_verifier("pw")
        second = scram.scram_sha256_verifier("pw")
        assert first != second
        assert first.startswith("SCRAM-SHA-256$4096:")
        assert scram.password_matches(first, "pw", "x") and scram.password_matches(second, "pw", "x")

    def test_md5_verifier_is_what_postgres_stores(self):
        assert scram.md5_verifier("correct horse battery staple", "uh_vec_c") == PG_MD5
        assert scram.password_matches(PG_MD5, "correct horse battery staple", "uh_vec_c")
        # md5 salts with the role name: the same password under another name differs
        assert not scram.password_matches(PG_MD5, "correct horse battery staple", "other_role")

    @pytest.mark.parametrize("stored", [None, "", "plaintext", "SCRAM-SHA-256$broken", "SCRAM-SHA-256$4096:%%%$a:b"])
    def test_missing_or_malformed_verifiers_never_match(self, stored):
        assert not scram.password_matches(stored, "plaintext", "role")

    def test_verifier_encryption(self):
        assert scram.verifier_encryption(PG_SCRAM_ASCII) == "scram-sha-256"
        assert scram.verifier_encryption(PG_MD5) == "md5"
        assert scram.verifier_encryption(None) is None
        assert scram.verifier_encryption("md5short") is None


class TestSaslprep:
    def test_ascii_is_left_alone(self):
        # PostgreSQL skips SASLprep for pure ASCII, control characters included
        assert scram.saslprep("a b\tc") == "a b\tc"

    def test_non_ascii_space_maps_to_space_and_soft_hyphen_vanishes(self):
        assert scram.saslprep("a\u00a0b\u00adc\u00e9") == "a bc\u00e9"

    def test_prohibited_characters_leave_the_password_raw(self):
        assert scram.saslprep("\u00e9\u0007") is None  # BEL with non-ASCII text
        password = "\u00e9\ue000"  # private use area
        assert scram.saslprep(password) is None
        # raw bytes are then used, and the verifier still round-trips
        assert scram.password_matches(scram.scram_sha256_verifier(password), password, "r")

    def test_mixed_direction_text_is_refused(self):
        assert scram.saslprep("\u05d0a\u05d1") is None  # Hebrew with a Latin letter
        assert scram.saslprep("\u05d0\u05d1") == "\u05d0\u05d1"


def test_make_verifier_per_encryption():
    assert scram.make_verifier("pw", "app", "md5") == scram.md5_verifier("pw", "app")
    assert scram.password_matches(scram.make_verifier("pw", "app", "scram-sha-256"), "pw", "app")
    with pytest.raises(ValueError, match="'crypt' is not one of scram-sha-256, md5"):
        scram.make_verifier("pw", "app", "crypt")


# --- generated passwords: the contract and their shared, cheap verifier ------------------------

GENERATED = "Zq3vX9kLm2Pw7RtY8sUa1BcD4eFgH5jK"  # 32 letters and digits, as the inventories generate


class TestGeneratedPasswords:
    @pytest.mark.parametrize("password", [GENERATED, "a-b_c" * 7 + "xyz0", "A" * 64])
    def test_long_random_looking_passwords_meet_the_contract(self, password):
        assert scram.generated_password_problem(password) is None

    @pytest.mark.parametrize("password, words", [
        ("correct horse battery staple", "fewer than the 32"),
        (GENERATED[:31], "31 characters"),
        (GENERATED[:-1] + "!", "other than letters, digits"),
        (GENERATED[:-1] + " ", "other than letters, digits"),
        (GENERATED[:-1] + "\u00e9", "other than letters, digits"),
        (None, "not a string"),
    ])
    def test_chosen_looking_passwords_are_refused_with_the_reason(self, password, words):
        assert words in scram.generated_password_problem(password)

    def test_the_verifier_is_the_same_wherever_it_is_derived(self):
        first = scram.generated_password_verifier(GENERATED, "unitehub", 16)
        assert first == scram.generated_password_verifier(GENERATED, "unitehub", 16)
        assert first.startswith("SCRAM-SHA-256$16:")
        assert scram.scram_iterations(first) == 16

    def test_the_verifier_checks_the_password_as_postgres_would(self):
        verifier = scram.generated_password_verifier(GENERATED, "unitehub", 1)
        assert scram.password_matches(verifier, GENERATED, "unitehub")
        assert not scram.password_matches(verifier, GENERATED[::-1], "unitehub")

    def test_the_salt_differs_per_user_password_and_is_not_the_password(self):
        salts = {scram.generated_password_verifier(password, user).split("$")[1].split(":")[1]
                 for password in (GENERATED, GENERATED[::-1]) for user in ("unitehub", "pgbouncer_admin")}
        assert len(salts) == 4
        assert all(len(base64.b64decode(salt)) == scram.SCRAM_SALT_BYTES for salt in salts)
        assert not any(GENERATED in base64.b64decode(salt).decode("latin-1") for salt in salts)

    def test_an_operator_password_never_gets_a_cheap_verifier(self):
        with pytest.raises(ValueError, match="not a generated one: it has 28 characters"):
            scram.generated_password_verifier("correct horse battery staple", "unitehub")

    def test_iterations_below_one_are_refused(self):
        with pytest.raises(ValueError, match="at least 1"):
            scram.generated_password_verifier(GENERATED, "unitehub", 0)

    @pytest.mark.parametrize("stored, count", [
        (PG_SCRAM_ASCII, 4096), (PG_MD5, None), (None, None), ("SCRAM-SHA-256$x:abc$d:e", None)])
    def test_iteration_count_of_a_stored_verifier(self, stored, count):
        assert scram.scram_iterations(stored) == count
