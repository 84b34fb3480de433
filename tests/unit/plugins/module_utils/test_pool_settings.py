# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PgBouncer settings and facts of module_utils/pool_settings.py: type checks and
version parsing. The rules over the typed values are in test_pool_rules.py."""

from __future__ import annotations

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import pool_settings


@pytest.mark.parametrize("text, version", [
    ("PgBouncer 1.18.0", (1, 18, 0)),
    ("PgBouncer 1.21.0\nlibevent 2.1.12-stable\nadns: c-ares 1.18.1", (1, 21, 0)),
    ("1.22", (1, 22, 0)),
    ([1, 24, 1], (1, 24, 1)),
])
def test_parse_version(text, version):
    assert pool_settings.parse_version(text) == version


def test_parse_version_refuses_text_without_a_number():
    with pytest.raises(ValueError):
        pool_settings.parse_version("PgBouncer")


def test_normalised_settings_are_typed_and_unset_ones_left_out():
    settings = {"pool_mode": " Transaction ", "default_pool_size": "25", "server_lifetime": 3600,
                "reserve_pool_timeout": "2.5", "min_pool_size": None}

    normalised, errors = pool_settings.normalise_settings(settings)

    assert errors == []
    assert normalised == {"pool_mode": "transaction", "default_pool_size": 25, "server_lifetime": 3600.0,
                          "reserve_pool_timeout": 2.5}
    assert isinstance(normalised["default_pool_size"], int) and isinstance(normalised["server_lifetime"], float)


def test_each_bad_setting_is_one_error_and_left_out():
    normalised, errors = pool_settings.normalise_settings(
        {"default_pool_size": True, "server_lifetime": "1h", "pool_sise": 3, "max_client_conn": 100})

    assert normalised == {"max_client_conn": 100}
    assert [e.split(" ")[0] for e in errors] == ["default_pool_size", "pool_sise", "server_lifetime"]
    assert "did you mean 'min_pool_size'? known settings are pool_mode, " in errors[1]


def test_settings_that_are_not_a_mapping():
    assert pool_settings.normalise_settings(["default_pool_size", 20]) == (
        {}, ["pool settings must be a mapping of setting names to values, got list"])
    assert pool_settings.normalise_settings(None) == ({}, [])


def test_facts_are_typed_and_checked_against_their_floor():
    normalised, errors = pool_settings.normalise_facts(
        {"server_max_connections": "100", "pgbouncer_version": "PgBouncer 1.18.0", "cores": 0, "users": None})

    assert normalised == {"server_max_connections": 100, "pgbouncer_version": (1, 18, 0)}
    assert len(errors) == 1 and errors[0].startswith("facts.cores must be at least 1")


@pytest.mark.parametrize("value, text", [(20.0, "20"), (2.5, "2.5"), (15, "15")])
def test_format_number(value, text):
    assert pool_settings.format_number(value) == text


def test_merged_facts_prefer_the_servers_except_for_the_configuration():
    given = {"databases": 1, "users": None, "server_max_connections": 1000, "cores": 4}
    live = {"databases": 2, "users": 3, "server_max_connections": 100, "pgbouncer_version": "1.18.0"}

    assert pool_settings.merge_facts(given, live) == {
        "databases": 1, "users": 3, "server_max_connections": 100, "cores": 4, "pgbouncer_version": "1.18.0"}
    assert pool_settings.merge_facts(None, {}) == {}
