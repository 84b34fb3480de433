# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The config_value_errors, postgresql_conf_value and redis_conf_args filters."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.unitehub.platform.plugins.filter.config_values import (
    FilterModule,
    config_value_errors,
    postgresql_conf_value,
    redis_conf_args,
)
from ansible_collections.unitehub.platform.plugins.filter.pooling import pool_errors


def test_filters_are_registered():
    assert FilterModule().filters() == {"config_value_errors": config_value_errors,
                                        "postgresql_conf_value": postgresql_conf_value,
                                        "redis_conf_args": redis_conf_args}


def test_config_value_errors_names_each_variable():
    problems = config_value_errors({"server_names": {"nginx_server_name": "_; location ^~ /api/admin/ { }"},
                                    "deletable_directory": {"base_image_build_dir": "/"}})

    assert [p.split("=")[0] for p in problems] == ["base_image_build_dir", "nginx_server_name"]
    assert config_value_errors("not a mapping") == [
        "config values must be a mapping of kinds to {variable: value}, got str"]


def test_a_value_the_file_cannot_hold_fails_the_template_with_the_reason():
    assert postgresql_conf_value("it's") == "'it''s'"
    assert redis_conf_args(["a b"]) == '"a b"'
    with pytest.raises(AnsibleFilterError, match=r"postgresql_conf_value: '4MB\\n.*' contains a line break"):
        postgresql_conf_value("4MB\nssl = off")
    with pytest.raises(AnsibleFilterError, match="redis_conf_args: .* contains a line break"):
        redis_conf_args("0\nrequirepass x")


def test_pool_errors_refuses_trust_unless_allowed():
    assert pool_errors({"auth_type": "trust"})[0].startswith("auth_type trust lets anyone")
    assert pool_errors({"auth_type": "trust"}, None, True) == []
