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
    assert FilterModule().filters() == {"pool_settings": pool_settings, "pool_errors": pool_errors}


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
