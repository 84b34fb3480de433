"""Unit tests of the slot names and the image-tag rule every check shares."""

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils.slots import (
    SLOTS,
    is_valid_tag,
    other_slot,
    tag_problem,
)


def test_each_slot_has_the_other():
    assert SLOTS == ("blue", "green")
    assert [other_slot(slot) for slot in SLOTS] == ["green", "blue"]


@pytest.mark.parametrize("tag", ["v1", "1.0.0", "_x", "a" * 128, "release-2026.01_rc1"])
def test_valid_tags(tag):
    assert is_valid_tag(tag) and tag_problem(tag) is None


@pytest.mark.parametrize("tag", ["", ".v1", "-v1", "a" * 129, "v1 ", "v1\n", "v1:2", "v/1", None, 1, "é"])
def test_invalid_tags_are_named_with_the_rule(tag):
    assert not is_valid_tag(tag)
    message = tag_problem(tag, name="app_version")
    assert message.startswith("app_version %r is not a valid image tag" % (tag,))
    assert "not starting with '.' or '-'" in message
