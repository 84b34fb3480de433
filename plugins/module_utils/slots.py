# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The two slots of a blue-green app, and the rule for the release tag a slot runs.

Every module, filter and role check that names a slot or checks a version goes
through here, so a slot or a tag is refused with the same words wherever it is
caught.
"""

from __future__ import annotations

import re

SLOTS = ("blue", "green")
# The response header the load balancer sets to the slot of the server it reached.
UPSTREAM_SLOT_HEADER = "X-Upstream-Slot"

# Docker's tag grammar: a word character first, then up to 127 of [\w.-].
TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
TAG_RULE = "use 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"


def other_slot(slot):
    """The slot that is not ``slot``."""
    return "green" if slot == "blue" else "blue"


def is_valid_tag(value):
    """Whether ``value`` is a string Docker accepts as an image tag (the whole of it)."""
    return isinstance(value, str) and TAG_PATTERN.fullmatch(value) is not None


def tag_problem(value, name="version"):
    """None when ``value`` is a valid tag, else a message naming ``name`` and the rule."""
    if is_valid_tag(value):
        return None
    return "%s %r is not a valid image tag: %s (e.g. v1.2.3)" % (name, value, TAG_RULE)
