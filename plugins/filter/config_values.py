# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over module_utils/config_values.py: values bound for configuration files.

config_value_errors    {kind: {variable: value}} -> problems, [] = ok (docs: config_value_errors.yml)
postgresql_conf_value  value -> a quoted postgresql.conf string        (docs: postgresql_conf_value.yml)
redis_conf_args        value -> the arguments of a redis.conf directive (docs: redis_conf_args.yml)
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.unitehub.platform.plugins.module_utils import config_values


def config_value_errors(values_by_kind):
    """Every problem with the values, each naming its variable and the fix; [] when they are good."""
    return config_values.value_errors(values_by_kind)


def postgresql_conf_value(value):
    """``value`` quoted for postgresql.conf; a value it cannot hold fails the template."""
    try:
        return config_values.postgresql_conf_value(value)
    except ValueError as exc:
        raise AnsibleFilterError("postgresql_conf_value: %r %s" % (value, exc))


def redis_conf_args(value):
    """``value`` as the arguments of a redis.conf directive; a value that would break out fails the template."""
    try:
        return config_values.redis_conf_args(value)
    except ValueError as exc:
        raise AnsibleFilterError("redis_conf_args: %r %s" % (value, exc))


class FilterModule:
    """Configuration values."""

    def filters(self):
        return {
            "config_value_errors": config_value_errors,
            "postgresql_conf_value": postgresql_conf_value,
            "redis_conf_args": redis_conf_args,
        }
