# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL password verifiers, computed and checked here so a password never
travels or gets stored in clear.

* ``password_matches`` compares a password with a role's stored verifier
  (``pg_authid.rolpassword``) by recomputing it: SCRAM-SHA-256 with the stored
  salt and iteration count, or MD5;
* ``make_verifier`` builds a new verifier to send instead of the password, the
  way ``psql \\password`` does, so the clear text never shows up in the server
  log even with ``log_statement=all``;
* ``generated_password_verifier`` is the verifier of a generated random password:
  few iterations and a salt derived from the password, so that PostgreSQL and
  PgBouncer's userlist, written apart, hold the very same verifier (SCRAM
  pass-through needs that) and a client login costs no key derivation worth the
  name. ``generated_password_problem`` is the contract such a password must meet.

Pure functions, tested against verifiers PostgreSQL 15 stored itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import string
import stringprep
import unicodedata

SCRAM_PREFIX = "SCRAM-SHA-256$"
SCRAM_ITERATIONS = 4096  # PostgreSQL's default (scram_iterations)
SCRAM_SALT_BYTES = 16  # PostgreSQL's SCRAM_DEFAULT_SALT_LEN
PASSWORD_ENCRYPTIONS = ("scram-sha-256", "md5")

# A generated password: at least 32 characters out of 62 or more (190 bits or more), as the
# collection's inventories generate them (ansible.builtin.password, secrets.token_urlsafe).
GENERATED_PASSWORD_MIN_LENGTH = 32
GENERATED_PASSWORD_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")
# Iterations protect guessable passwords; a 192-bit random one is out of reach at any count.
GENERATED_PASSWORD_ITERATIONS = 16
_GENERATED_SALT_CONTEXT = b"unitehub.platform generated-password SCRAM salt\0"


def _prohibited(char):
    return (
        stringprep.in_table_c12(char)
        or stringprep.in_table_c21_c22(char)
        or stringprep.in_table_c3(char)
        or stringprep.in_table_c4(char)
        or stringprep.in_table_c5(char)
        or stringprep.in_table_c6(char)
        or stringprep.in_table_c7(char)
        or stringprep.in_table_c8(char)
        or stringprep.in_table_c9(char)
        or stringprep.in_table_a1(char)
    )


def saslprep(password):
    """SASLprep (RFC 4013) as PostgreSQL applies it to SCRAM passwords.

    Returns the prepared string, or None when the password is not a valid
    SASLprep string; PostgreSQL then uses the password unchanged. Pure ASCII is
    returned as is, as PostgreSQL does.
    """
    if password.isascii():
        return password
    mapped = []
    for char in password:
        if stringprep.in_table_c12(char):  # non-ASCII spaces map to a space
            mapped.append(" ")
        elif not stringprep.in_table_b1(char):  # "commonly mapped to nothing" are dropped
            mapped.append(char)
    prepared = unicodedata.normalize("NFKC", "".join(mapped))
    if any(_prohibited(char) for char in prepared):
        return None
    if any(stringprep.in_table_d1(char) for char in prepared):  # right-to-left text
        if any(stringprep.in_table_d2(char) for char in prepared):
            return None
        if not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1])):
            return None
    return prepared


def _scram_keys(password, salt, iterations):
    prepared = saslprep(password)
    secret = (prepared if prepared is not None else password).encode("utf-8")
    salted = hashlib.pbkdf2_hmac("sha256", secret, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return stored_key, server_key


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def scram_sha256_verifier(password, salt=None, iterations=SCRAM_ITERATIONS):
    """The ``rolpassword`` PostgreSQL stores for ``password`` with SCRAM-SHA-256:
    ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (base64)."""
    if salt is None:
        salt = os.urandom(SCRAM_SALT_BYTES)
    stored_key, server_key = _scram_keys(password, salt, iterations)
    return "%s%d:%s$%s:%s" % (SCRAM_PREFIX, iterations, _b64(salt), _b64(stored_key), _b64(server_key))


def generated_password_problem(password):
    """Why ``password`` does not look generated, or None when it meets the contract
    (at least GENERATED_PASSWORD_MIN_LENGTH letters, digits, '-' or '_')."""
    if not isinstance(password, str):
        return "it is not a string"
    if len(password) < GENERATED_PASSWORD_MIN_LENGTH:
        return "it has %d characters, fewer than the %d of a generated password" % (
            len(password), GENERATED_PASSWORD_MIN_LENGTH)
    if not set(password) <= GENERATED_PASSWORD_ALPHABET:
        return "it holds characters other than letters, digits, '-' and '_'"
    return None


def generated_password_verifier(password, username, iterations=GENERATED_PASSWORD_ITERATIONS):
    """The SCRAM verifier of a generated password: ``iterations`` rounds, and a salt
    derived from the password and the user, so every writer derives the same verifier.

    Only for passwords that meet ``generated_password_problem``: the salt is as secret
    as the password, but SCRAM hands it to anyone who starts a login, and with it a
    guess costs one HMAC; that is harmless only when guessing is hopeless anyway."""
    problem = generated_password_problem(password)
    if problem is not None:
        raise ValueError("the password of %r is not a generated one: %s" % (username, problem))
    if int(iterations) < 1:
        raise ValueError("SCRAM iterations must be at least 1, not %r" % (iterations,))
    salt = hmac.new(password.encode("utf-8"), _GENERATED_SALT_CONTEXT + username.encode("utf-8"),
                    hashlib.sha256).digest()[:SCRAM_SALT_BYTES]
    return scram_sha256_verifier(password, salt, int(iterations))


def scram_iterations(stored):
    """The iteration count of a SCRAM verifier, or None when ``stored`` is not one."""
    if verifier_encryption(stored) != "scram-sha-256":
        return None
    head = stored[len(SCRAM_PREFIX):].split("$", 1)[0]
    try:
        return int(head.split(":", 1)[0])
    except ValueError:
        return None


def md5_verifier(password, username):
    """The ``rolpassword`` PostgreSQL stores for ``password`` with MD5."""
    return "md5" + hashlib.md5((password + username).encode("utf-8")).hexdigest()  # nosec - PostgreSQL's format


def make_verifier(password, username, encryption):
    """A fresh verifier for ``password`` stored with ``encryption`` (one of PASSWORD_ENCRYPTIONS)."""
    if encryption == "scram-sha-256":
        return scram_sha256_verifier(password)
    if encryption == "md5":
        return md5_verifier(password, username)
    raise ValueError("password_encryption %r is not one of %s" % (encryption, ", ".join(PASSWORD_ENCRYPTIONS)))


def verifier_encryption(stored):
    """'scram-sha-256', 'md5', or None (no password, or a form this code does not know)."""
    if not stored:
        return None
    if stored.startswith(SCRAM_PREFIX):
        return "scram-sha-256"
    if stored.startswith("md5") and len(stored) == 35:
        return "md5"
    return None


def password_matches(stored, password, username):
    """Whether ``password`` is the one behind the stored verifier. Unknown or
    malformed verifiers never match, so the password gets set again."""
    encryption = verifier_encryption(stored)
    if encryption == "md5":
        return hmac.compare_digest(stored, md5_verifier(password, username))
    if encryption != "scram-sha-256":
        return False
    try:
        head, keys = stored[len(SCRAM_PREFIX):].split("$", 1)
        iterations, salt = head.split(":", 1)
        stored_key, server_key = keys.split(":", 1)
        expected = _scram_keys(password, base64.b64decode(salt, validate=True), int(iterations))
        actual = (base64.b64decode(stored_key, validate=True), base64.b64decode(server_key, validate=True))
    except ValueError:  # binascii.Error is a ValueError
        return False
    return hmac.compare_digest(expected[0], actual[0]) and hmac.compare_digest(expected[1], actual[1])
