# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pool_settings and pool_errors filters, directly and through Ansible's templar."""

from __future__ import annotations

import os

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.unitehub.platform.plugins.filter import pooling as pooling_filters
from ansible_collections.unitehub.platform.plugins.filter.pooling import FilterModule, pool_errors, pool_settings

FILTER_DIR = os.path.dirname(pooling_filters.__file__)


def test_filters_are_registered():
    assert FilterModule().filters() == {
        "pool_settings": pool_settings,
        "pool_errors": pool_errors,
        "generated_password_problem": pooling_filters.generated_password_problem,
        "pgbouncer_userlist_errors": pooling_filters.pgbouncer_userlist_errors,
        "pgbouncer_userlist": pooling_filters.pgbouncer_userlist,
    }


def test_pool_settings_per_environment():
    assert pool_settings("production")["default_pool_size"] == 20
    assert pool_settings("development")["default_pool_size"] == 5
    assert pool_settings("production", {"cores": 2, "spindles": 1})["default_pool_size"] == 5


def test_pool_settings_bad_environment_is_a_filter_error_with_the_fix():
    with pytest.raises(AnsibleFilterError, match="environment 'live' is not one of development, staging, production"):
        pool_settings("live")


def test_pool_settings_bad_facts_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="facts.server_max_connections"):
        pool_settings("production", {"server_max_connections": "lots"})


def test_pool_errors_empty_for_recommended_settings():
    facts = {"server_max_connections": 100, "pgbouncer_version": "1.18.0"}
    assert pool_errors(pool_settings("production", facts), facts) == []


def test_pool_errors_lists_each_problem_naming_the_setting():
    errors = pool_errors({"default_pool_size": 0, "server_idle_timeout": -1, "pool_mode": "fast"})

    assert [e.split(" ")[0] for e in errors] == ["default_pool_size", "pool_mode", "server_idle_timeout"]


def test_pool_errors_uses_the_facts():
    settings = {"default_pool_size": 200}
    assert pool_errors(settings) == []
    errors = pool_errors(settings, {"server_max_connections": 100})
    assert len(errors) == 1 and "accepts only 97" in errors[0]


def test_pool_errors_without_facts_argument_is_like_empty_facts():
    assert pool_errors({"max_prepared_statements": 5}) == pool_errors({"max_prepared_statements": 5}, {}) == []


POSITIONAL = {"pool_settings": "_input, facts", "pool_errors": "_input, facts, allow_insecure_auth"}


@pytest.mark.parametrize("name", ["pool_settings", "pool_errors"])
def test_each_filter_has_a_documentation_file(name):
    import yaml

    with open(os.path.join(FILTER_DIR, name + ".yml")) as handle:
        doc = yaml.safe_load(handle)
    assert doc["DOCUMENTATION"]["name"] == name
    assert doc["DOCUMENTATION"]["positional"] == POSITIONAL[name]
    assert "_value" in doc["RETURN"]
    assert "unitehub.platform." + name in doc["EXAMPLES"]


TEMPLAR_SCRIPT = """
import json, sys
from ansible.template import Templar, trust_as_template
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

_AnsibleCollectionFinder(paths=[sys.argv[1]])._install()
templar = Templar(loader=None, variables={
    "env": "production",
    "facts": {"server_max_connections": 100, "databases": 1},
    "overrides": {"default_pool_size": 500},
})
good = "{{ env | unitehub.platform.pool_settings(facts) | unitehub.platform.pool_errors(facts) }}"
bad = "{{ env | unitehub.platform.pool_settings | combine(overrides) | unitehub.platform.pool_errors(facts) }}"
print(json.dumps([templar.template(trust_as_template(good)), templar.template(trust_as_template(bad))]))
"""


def test_filters_through_the_templar():
    """As a role uses them: by FQCN, chained with builtin filters, facts from a variable.

    Run in a child process, as it installs Ansible's collection loader."""
    import json
    import subprocess
    import sys

    collections_root = os.path.abspath(os.path.join(FILTER_DIR, "..", "..", "..", "..", ".."))
    proc = subprocess.run([sys.executable, "-c", TEMPLAR_SCRIPT, collections_root], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    good, bad = json.loads(proc.stdout)

    assert good == []
    assert len(bad) == 1 and bad[0].startswith("default_pool_size (500) plus reserve_pool_size (5)")


# --- the userlist: verifiers only ----------------------------------------------------------------

from ansible_collections.unitehub.platform.plugins.filter.pooling import (  # noqa: E402
    generated_password_problem,
    pgbouncer_userlist,
    pgbouncer_userlist_errors,
)
from ansible_collections.unitehub.platform.plugins.module_utils import pgbouncer, scram  # noqa: E402

GENERATED = "Zq3vX9kLm2Pw7RtY8sUa1BcD4eFgH5jK"
CHOSEN = "correct horse battery staple"


def user(name, password, generated=False, console=False, variable="pgbouncer_auth_users"):
    return {"name": name, "password": password, "generated": generated, "console": console, "variable": variable}


class TestUserlist:
    def test_a_generated_password_becomes_the_verifier_postgres_holds(self):
        lines = pgbouncer_userlist([user("unitehub", GENERATED, generated=True)], "", 16)
        assert lines == [["unitehub", scram.generated_password_verifier(GENERATED, "unitehub", 16)]]

    def test_no_line_holds_a_plain_password(self):
        users = [user("admin", CHOSEN, console=True, variable="pgbouncer_admin_password"),
                 user("stats", GENERATED, generated="true", console=True),
                 user("unitehub", GENERATED, generated=True)]
        lines = pgbouncer_userlist(users, "", 16)
        assert [name for name, _secret in lines] == ["admin", "stats", "unitehub"]
        for (name, secret), given in zip(lines, users):
            assert secret.startswith("SCRAM-SHA-256$") and given["password"] not in secret
            assert scram.password_matches(secret, given["password"], name)

    def test_a_chosen_console_password_gets_4096_iterations_and_keeps_its_verifier(self):
        admin = user("admin", CHOSEN, console=True)
        first = pgbouncer_userlist([admin], "", 16)[0][1]
        assert scram.scram_iterations(first) == 4096
        current = ';; Ansible managed\n"admin" "%s"\n' % first
        assert pgbouncer_userlist([admin], current, 16)[0][1] == first  # a second run changes nothing
        assert pgbouncer_userlist([user("admin", CHOSEN + "!", console=True)], current, 16)[0][1] != first

    def test_a_cheap_verifier_left_behind_is_replaced_for_a_chosen_password(self):
        cheap = scram.scram_sha256_verifier(CHOSEN, b"s" * 16, 16)
        current = '"admin" "%s"\n' % cheap
        assert scram.scram_iterations(pgbouncer_userlist([user("admin", CHOSEN, console=True)], current, 16)[0][1]) == 4096

    def test_a_verifier_given_is_written_as_is(self):
        verifier = scram.scram_sha256_verifier(CHOSEN)
        assert pgbouncer_userlist([user("unitehub", verifier)], "", 16) == [["unitehub", verifier]]

    def test_a_chosen_password_for_a_pool_user_is_refused_naming_the_fix(self):
        errors = pgbouncer_userlist_errors([user("unitehub", CHOSEN)], 16)
        assert len(errors) == 1
        assert errors[0].startswith("pgbouncer_auth_users: the password of unitehub is neither marked generated")
        assert "SELECT rolpassword FROM pg_authid WHERE rolname = 'unitehub'" in errors[0] and CHOSEN not in errors[0]
        with pytest.raises(AnsibleFilterError, match="neither marked generated"):
            pgbouncer_userlist([user("unitehub", CHOSEN)], "", 16)

    @pytest.mark.parametrize("console", [True, False])
    def test_a_chosen_password_marked_generated_is_refused_naming_the_variable(self, console):
        errors = pgbouncer_userlist_errors([user("admin", CHOSEN, generated=True, console=console,
                                                 variable="pgbouncer_admin_password")], 16)
        assert len(errors) == 1 and errors[0].startswith("pgbouncer_admin_password: the password of admin is marked "
                                                         "generated, but it has 28 characters")
        assert "stop marking it generated" in errors[0] and CHOSEN not in errors[0]

    def test_iterations_below_one_are_refused(self):
        assert pgbouncer_userlist_errors([user("unitehub", GENERATED, generated=True)], 0) == [
            "pgbouncer_generated_password_iterations (0) must be at least 1"]

    def test_userlist_parsing_reads_quotes_written_twice(self):
        text = ';; comment\n"a""b" "SCRAM-SHA-256$x"\n\n"c" "d"""\n'
        assert pgbouncer.parse_userlist(text) == {'a"b': "SCRAM-SHA-256$x", "c": 'd"'}

    def test_generated_password_problem_filter(self):
        assert generated_password_problem(GENERATED) is None
        assert "fewer than the 32" in generated_password_problem(CHOSEN)

    def test_the_userlist_filters_are_documented(self):
        for name in ("generated_password_problem", "pgbouncer_userlist", "pgbouncer_userlist_errors"):
            assert os.path.exists(os.path.join(FILTER_DIR, name + ".yml"))
