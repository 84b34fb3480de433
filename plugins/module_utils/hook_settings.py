# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of deploy hook settings: pure, and cheap to import.

``hook_errors(hooks)`` lists every problem with the ``blue_green_hooks`` setting, for the
role's preflight (through the ``hook_errors`` filter); app_hook.py checks one hook's run with
the same rules. This file imports nothing heavy on purpose: Ansible imports every filter file
of the collection whenever a task uses one of its filters, and the Docker SDK that running a
hook needs would cost each such task a tenth of a second.
"""

from __future__ import annotations

import math
import re

from ansible.module_utils.parsing.convert_bool import BOOLEANS

# The hooks of a blue-green deploy, in the order a deploy reaches them.
HOOK_NAMES = ("pre_deploy", "post_switch", "post_deploy", "on_failure")
# What one hook setting may hold.
HOOK_KEYS = ("command", "timeout", "output_lines", "on_rollback")
HOOK_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,62}")

DEFAULT_TIMEOUT = 600
# A hook runs at least a second and at most a day: finite, always (nan passes every comparison).
TIMEOUT_BOUNDS = (1, 86400)
DEFAULT_OUTPUT_LINES = 20
OUTPUT_LINES_MAX = 1000


def _number(value):
    """``value`` as a number (numeric text too, as ``-e`` passes it); ValueError for anything else."""
    if isinstance(value, bool) or value is None:
        raise ValueError(value)
    if isinstance(value, (int, float)):
        return value
    return float(str(value).strip())


def timeout_problem(value, name="timeout"):
    """None when ``value`` is a usable hook timeout, else why not (naming ``name``)."""
    low, high = TIMEOUT_BOUNDS
    try:
        seconds = _number(value)
    except (TypeError, ValueError):
        return "%s=%r is not a number of seconds" % (name, value)
    if not math.isfinite(seconds) or not low <= seconds <= high:
        return "%s=%s is not a finite number of seconds from %s to %s" % (name, value, low, high)
    return None


def output_lines_problem(value, name="output_lines"):
    try:
        lines = _number(value)
    except (TypeError, ValueError):
        return "%s=%r is not a number of lines" % (name, value)
    if not math.isfinite(lines) or lines != int(lines) or not 0 <= lines <= OUTPUT_LINES_MAX:
        return "%s=%s is not a whole number of lines from 0 to %d" % (name, value, OUTPUT_LINES_MAX)
    return None


def command_problem(command, name="command"):
    if isinstance(command, str):
        return ("%s is the string %r; give a list of arguments, for example [sh, -c, '...'] or "
                "[python3, -m, myapp.migrate]" % (name, command))
    if not isinstance(command, (list, tuple)) or not command:
        return "%s must be a non-empty list of arguments (strings), not %r" % (name, command)
    bad = [arg for arg in command if not isinstance(arg, str)]
    if bad:
        return "%s has arguments that are not strings: %s; quote them" % (name, ", ".join(repr(a) for a in bad))
    if not command[0].strip():
        return "%s starts with an empty program name" % name
    return None


def _is_boolean(value):
    return isinstance(value, bool) or str(value).strip().lower() in BOOLEANS


def hook_errors(hooks, prefix="blue_green_hooks"):
    """Every problem with the hook settings, each naming the setting and the fix; [] when good.

    ``hooks`` maps hook names (HOOK_NAMES) to ``{command, timeout, output_lines, on_rollback}``;
    ``command`` is required, the rest optional. An empty mapping (or None) means no hooks.
    """
    if hooks in (None, ""):
        return []
    if not isinstance(hooks, dict):
        return ["%s must be a dictionary of hook name -> settings, not %s" % (prefix, type(hooks).__name__)]
    errors = []
    for name in sorted(set(hooks) - set(HOOK_NAMES), key=str):
        errors.append("%s.%s is not a hook; the hooks are %s" % (prefix, name, ", ".join(HOOK_NAMES)))
    for name in HOOK_NAMES:
        if name not in hooks:
            continue
        where = "%s.%s" % (prefix, name)
        settings = hooks[name]
        if not isinstance(settings, dict):
            errors.append("%s must be a dictionary with command (and optionally %s), not %r"
                          % (where, ", ".join(HOOK_KEYS[1:]), settings))
            continue
        for key in sorted(set(settings) - set(HOOK_KEYS), key=str):
            errors.append("%s.%s is not a hook setting; the settings are %s" % (where, key, ", ".join(HOOK_KEYS)))
        if "command" not in settings:
            errors.append("%s.command is missing: give the command to run, a list of arguments" % where)
        else:
            problem = command_problem(settings["command"], where + ".command")
            if problem:
                errors.append(problem)
        checks = (("timeout", timeout_problem), ("output_lines", output_lines_problem))
        for key, check in checks:
            if settings.get(key) is not None:
                problem = check(settings[key], "%s.%s" % (where, key))
                if problem:
                    errors.append(problem)
        if settings.get("on_rollback") is not None and not _is_boolean(settings["on_rollback"]):
            errors.append("%s.on_rollback=%r is not a boolean: use true or false" % (where, settings["on_rollback"]))
    return errors
