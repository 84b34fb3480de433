"""The hook_errors filter: registered, and the same rules as module_utils/app_hook.py."""

from __future__ import annotations

from ansible_collections.unitehub.platform.plugins.filter.hooks import FilterModule, hook_errors


def test_the_filter_is_registered():
    assert FilterModule().filters() == {"hook_errors": hook_errors}


def test_the_filter_names_the_role_variable_or_the_given_prefix():
    assert hook_errors({"pre_deploy": {"command": "make migrate"}})[0].startswith(
        "blue_green_hooks.pre_deploy.command is the string 'make migrate'")
    assert hook_errors({"on_success": {"command": ["true"]}}, "hooks") == [
        "hooks.on_success is not a hook; the hooks are pre_deploy, post_switch, post_deploy, on_failure"]
    assert hook_errors({"pre_deploy": {"command": ["true"], "timeout": 60}}) == []
