# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Result keys that Ansible itself gives a meaning: a module must not return them for
anything else. ``unreachable`` makes the host drop out of the play (its rescue and
always do not run); ``results`` is read as loop items; ``skipped`` and
``failed_when_result`` change the task's outcome; the rest Ansible fills in itself
(``invocation`` too, which is why it is not listed: Ansible adds it to every result)."""

from __future__ import annotations

RESERVED_RESULT_KEYS = frozenset((
    "unreachable", "skipped", "skip_reason", "results", "failed_when_result", "changed_when_result",
    "ansible_facts", "ansible_job_id", "_ansible_no_log",
))

# What a module may return that Ansible also reads, only with Ansible's own meaning.
ANSIBLE_RESULT_KEYS = frozenset(("changed", "failed", "msg", "diff", "warnings", "deprecations", "exception"))


def misused_keys(result):
    """The keys of a module's result (or of its RETURN documentation) that Ansible reserves."""
    return sorted(set(result) & RESERVED_RESULT_KEYS)
