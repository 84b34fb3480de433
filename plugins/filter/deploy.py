# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation of blue-green deploy inputs, before anything on a host changes.

The documentation of the filter is in ``deploy_errors.yml`` beside this file.
"""

from __future__ import annotations

import math

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import BOOLEANS

from ansible_collections.unitehub.platform.plugins.module_utils import deploy_flow
from ansible_collections.unitehub.platform.plugins.module_utils.slot_switch import render_files, validate_servers
from ansible_collections.unitehub.platform.plugins.module_utils.slots import SLOTS, TAG_RULE, is_valid_tag
from ansible_collections.unitehub.platform.plugins.module_utils.warm_standby import keep_warm_problem

SLOT_CHOICES = SLOTS + ("auto",)
EXPECT_CHOICES = ("pass", "pass_or_warn")
ACTION_CHOICES = ("deploy", "rollback", "reconcile")

# name -> (minimum, maximum, what the number is, whether it must be whole). Finite, always:
# nan compares false with every bound, so it would slip through a plain range check.
NUMBER_BOUNDS = {
    "stability_window": (0, 3600, "seconds", False),
    "drain_seconds": (0, 3600, "seconds", True),
    "health_timeout": (1, 3600, "seconds", False),
    "health_interval": (0.1, 60, "seconds", False),
    "health_consecutive": (1, 100, "probes", True),
    "stability_interval": (0.1, 60, "seconds", False),
    "lock_ttl": (60, 86400, "seconds", True),
    "start_batch": (0, 10000, "app hosts", True),
}
_BOOLEANS = ("skip_health", "force")


def _as_number(value):
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, (int, float)):
        return value
    return float(str(value).strip())


def _is_boolean(value):
    return isinstance(value, bool) or str(value).strip().lower() in BOOLEANS


def deploy_errors(inputs, prefix="blue_green_"):
    """Problems with the deploy inputs, each naming the variable and the fix.

    ``inputs`` maps the unprefixed names (slot, version, action, skip_health,
    force, stability_window, drain_seconds, health_timeout, health_interval,
    health_consecutive, health_expect, stability_interval, lock_ttl, keep_warm, start_batch)
    to values;
    missing keys are not checked. Returns an empty list when all is well.
    """
    errors = []
    if not isinstance(inputs, dict):
        return ["deploy inputs must be a dictionary, got %s" % type(inputs).__name__]

    def name(key):
        return prefix + key

    if "action" in inputs and inputs["action"] not in ACTION_CHOICES:
        errors.append("%s=%r is not one of %s" % (name("action"), inputs["action"], ", ".join(ACTION_CHOICES)))
    if "slot" in inputs and inputs["slot"] not in SLOT_CHOICES:
        errors.append("%s=%r is not one of %s: pass -e slot=blue, green or auto (the idle slot)"
                      % (name("slot"), inputs["slot"], ", ".join(SLOT_CHOICES)))
    if "version" in inputs:
        version = inputs["version"]
        if not is_valid_tag(version):
            errors.append("%s=%r is not a valid image tag: %s (e.g. -e version=v1.2.3)"
                          % (name("version"), version, TAG_RULE))
    if "health_expect" in inputs and inputs["health_expect"] not in EXPECT_CHOICES:
        errors.append("%s=%r is not one of %s" % (name("health_expect"), inputs["health_expect"],
                                                  ", ".join(EXPECT_CHOICES)))
    for key in _BOOLEANS:
        if key in inputs and not _is_boolean(inputs[key]):
            errors.append("%s=%r is not a boolean: use true or false" % (name(key), inputs[key]))
    for key, (minimum, maximum, unit, whole) in NUMBER_BOUNDS.items():
        if key not in inputs:
            continue
        try:
            value = _as_number(inputs[key])
        except (TypeError, ValueError):
            errors.append("%s=%r is not a number of %s" % (name(key), inputs[key], unit))
            continue
        if not math.isfinite(value):
            errors.append("%s=%s is not a finite number of %s; give %s to %s"
                          % (name(key), inputs[key], unit, minimum, maximum))
        elif whole and value != int(value):
            errors.append("%s=%s is not a whole number of %s" % (name(key), inputs[key], unit))
        elif value < minimum:
            errors.append("%s=%s is below the minimum of %s %s" % (name(key), inputs[key], minimum, unit))
        elif value > maximum:
            errors.append("%s=%s is above the maximum of %s %s" % (name(key), inputs[key], maximum, unit))
    if "keep_warm" in inputs and keep_warm_problem(inputs["keep_warm"], name("keep_warm")):
        errors.append(keep_warm_problem(inputs["keep_warm"], name("keep_warm")))
    if not errors and "health_timeout" in inputs and "health_interval" in inputs:  # both finite and in range
        if _as_number(inputs["health_interval"]) > _as_number(inputs["health_timeout"]):
            errors.append("%s=%s is longer than %s=%s: the gate would probe once at most; shorten the interval"
                          % (name("health_interval"), inputs["health_interval"],
                             name("health_timeout"), inputs["health_timeout"]))
    return errors


def slot_upstreams(servers):
    """{file name: text}: the switch's files (blue.conf, green.conf, slots.map) as it writes
    them, from {"blue": [host:port, ...], "green": [...]}."""
    if not isinstance(servers, dict) or sorted(servers) != sorted(SLOTS):
        raise AnsibleFilterError("slot_upstreams needs a dictionary with the keys blue and green, got %r" % (servers,))
    problems = validate_servers(servers["blue"], "blue") + validate_servers(servers["green"], "green")
    if problems:
        raise AnsibleFilterError("; ".join(problems))
    return render_files("blue", list(servers["blue"]), list(servers["green"]))


def rescue_plan(facts):
    """The decisions of a failed deploy, from what the run knows (module_utils/deploy_flow.py)."""
    if not isinstance(facts, dict):
        raise AnsibleFilterError("rescue_plan needs a dictionary of the run's facts, got %r" % (facts,))
    return deploy_flow.rescue_plan(facts)


def lb_divergence(markers):
    """Which load balancers serve which slot, when they disagree (module_utils/deploy_flow.py)."""
    if not isinstance(markers, dict):
        raise AnsibleFilterError("lb_divergence needs a dictionary of load balancer: slot, got %r" % (markers,))
    return deploy_flow.lb_divergence(markers)


def fleet_outcome(outcomes):
    """A failed run's traffic over every load balancer, as rescue_plan reads it (module_utils/deploy_flow.py)."""
    if not isinstance(outcomes, list) or not all(isinstance(o, dict) for o in outcomes):
        raise AnsibleFilterError("fleet_outcome needs a list of each load balancer's outcome, got %r" % (outcomes,))
    return deploy_flow.fleet_outcome(outcomes)


def slot_breaks(observed, released):
    """App hosts whose new slot did not run unbroken since its gate (module_utils/deploy_flow.py)."""
    if not isinstance(observed, dict) or not isinstance(released, dict):
        raise AnsibleFilterError("slot_breaks needs two dictionaries of app host: container, got %r and %r"
                                 % (observed, released))
    return deploy_flow.slot_breaks(observed, released)


def step_results(stamped, step):
    """Each app host's result of the step a play over the app hosts ran (module_utils/deploy_flow.py)."""
    if not isinstance(stamped, dict) or not isinstance(step, str):
        raise AnsibleFilterError("step_results needs a dictionary of app host: kept result and the step's name, got %r and %r"
                                 % (stamped, step))
    return deploy_flow.step_results(stamped, step)


class FilterModule:
    """Deploy filters."""

    def filters(self):
        return {"deploy_errors": deploy_errors, "slot_upstreams": slot_upstreams, "rescue_plan": rescue_plan,
                "lb_divergence": lb_divergence, "fleet_outcome": fleet_outcome, "slot_breaks": slot_breaks,
                "step_results": step_results}
