"""Every module's RETURN block: valid YAML, and no key that Ansible reserves for itself."""

import importlib
import os

import pytest
import yaml

from ansible_collections.unitehub.platform.tests.support.result_keys import misused_keys

MODULES_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "modules")
MODULES = sorted(name[:-3] for name in os.listdir(MODULES_DIR) if name.endswith(".py") and name != "__init__.py")


def test_every_module_is_checked():
    assert len(MODULES) >= 13 and "breaker_info" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_return_keys_are_not_keys_ansible_reserves(name):
    module = importlib.import_module("ansible_collections.unitehub.platform.plugins.modules." + name)
    documented = yaml.safe_load(module.RETURN) or {}
    assert not misused_keys(documented), "%s documents keys Ansible reserves: %s" % (name, misused_keys(documented))
