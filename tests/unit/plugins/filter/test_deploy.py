"""deploy_errors: every bad input is named with its fix; good input passes.
slot_upstreams: the nginx role's initial files are the switch's own."""

import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.unitehub.platform.plugins.filter.deploy import FilterModule, deploy_errors, slot_upstreams

GOOD = {
    "action": "deploy", "slot": "auto", "version": "v1.2.3", "skip_health": False, "force": "false",
    "stability_window": 30, "drain_seconds": "5", "health_timeout": 60, "health_interval": 5,
    "health_consecutive": 3, "health_expect": "pass", "stability_interval": 1, "lock_ttl": 1800,
    "start_batch": 0,
}


def test_good_inputs_have_no_errors():
    assert deploy_errors(GOOD) == []


@pytest.mark.parametrize("key, value, fragment", [
    ("slot", "purple", "blue_green_slot='purple' is not one of blue, green, auto"),
    ("version", "", "blue_green_version='' is not a valid image tag"),
    ("version", "-v1", "is not a valid image tag"),
    ("version", "v1 ; rm -rf /", "is not a valid image tag"),
    ("version", "x" * 129, "is not a valid image tag"),
    ("version", 2, "blue_green_version=2 is not a valid image tag"),
    ("stability_window", -1, "blue_green_stability_window=-1 is below the minimum of 0 seconds"),
    ("drain_seconds", "soon", "blue_green_drain_seconds='soon' is not a number of seconds"),
    ("health_timeout", 0, "blue_green_health_timeout=0 is below the minimum"),
    ("health_consecutive", True, "blue_green_health_consecutive=True is not a number"),
    ("health_expect", "warn", "blue_green_health_expect='warn' is not one of pass, pass_or_warn"),
    ("force", "maybe", "blue_green_force='maybe' is not a boolean"),
    ("action", "redeploy", "blue_green_action='redeploy' is not one of deploy, rollback, reconcile"),
    ("lock_ttl", 5, "blue_green_lock_ttl=5 is below the minimum of 60 seconds"),
    ("start_batch", -1, "blue_green_start_batch=-1 is below the minimum of 0 app hosts"),
    ("start_batch", "two", "blue_green_start_batch='two' is not a number of app hosts"),
])
def test_each_bad_input_is_named(key, value, fragment):
    errors = deploy_errors(dict(GOOD, **{key: value}))
    assert len(errors) == 1
    assert fragment in errors[0]


def test_interval_longer_than_timeout_is_refused():
    errors = deploy_errors(dict(GOOD, health_timeout=5, health_interval=10))
    assert errors == ["blue_green_health_interval=10 is longer than blue_green_health_timeout=5: "
                      "the gate would probe once at most; shorten the interval"]


def test_prefix_and_partial_inputs():
    assert deploy_errors({"slot": "red"}, prefix="") == ["slot='red' is not one of blue, green, auto: "
                                                         "pass -e slot=blue, green or auto (the idle slot)"]
    assert deploy_errors({}) == []


def test_not_a_dict():
    assert deploy_errors(["slot"]) == ["deploy inputs must be a dictionary, got list"]


def test_registered_as_filter():
    assert FilterModule().filters()["deploy_errors"] is deploy_errors


def test_slot_upstreams_render_what_the_switch_writes():
    from ansible_collections.unitehub.platform.plugins.module_utils.slot_switch import render_files
    servers = {"blue": ["127.0.0.1:3008"], "green": ["127.0.0.1:3009"]}
    assert slot_upstreams(servers) == render_files("green", ["127.0.0.1:3009"], ["127.0.0.1:3008"])
    assert FilterModule().filters()["slot_upstreams"] is slot_upstreams


@pytest.mark.parametrize("servers, fragment", [
    ({"blue": ["127.0.0.1:3008"]}, "keys blue and green"),
    (["127.0.0.1:3008"], "keys blue and green"),
    ({"blue": ["127.0.0.1:3008"], "green": ["127.0.0.1"]}, "'127.0.0.1' is not host:port"),
    ({"blue": [], "green": ["127.0.0.1:3009"]}, "blue is empty"),
])
def test_slot_upstreams_name_the_bad_value(servers, fragment):
    with pytest.raises(AnsibleFilterError, match=re.escape(fragment)):
        slot_upstreams(servers)


@pytest.mark.parametrize("key", ["stability_window", "drain_seconds", "health_timeout", "health_interval",
                                 "health_consecutive", "stability_interval", "lock_ttl", "start_batch"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", float("nan"), float("inf")])
def test_every_number_must_be_finite(key, value):
    errors = deploy_errors(dict(GOOD, **{key: value}))
    assert len(errors) == 1 and "is not a finite number of" in errors[0] and errors[0].startswith("blue_green_" + key)


@pytest.mark.parametrize("key, value, fragment", [
    ("stability_window", 3601, "above the maximum of 3600 seconds"),
    ("health_timeout", 3601, "above the maximum of 3600 seconds"),
    ("health_interval", 60.5, "above the maximum of 60 seconds"),
    ("health_interval", 0.05, "below the minimum of 0.1 seconds"),
    ("health_consecutive", 101, "above the maximum of 100 probes"),
    ("health_consecutive", 2.5, "is not a whole number of probes"),
    ("lock_ttl", 86401, "above the maximum of 86400 seconds"),
    ("start_batch", 1.5, "is not a whole number of app hosts"),
])
def test_every_number_is_bounded(key, value, fragment):
    errors = deploy_errors(dict(GOOD, **{key: value}))
    assert len(errors) == 1 and fragment in errors[0]


@pytest.mark.parametrize("key, value", [("version", "v1\n"), ("slot", "blue\n"), ("health_expect", "pass\n"),
                                        ("action", "deploy\n")])
def test_string_checks_match_the_whole_value(key, value):
    assert len(deploy_errors(dict(GOOD, **{key: value}))) == 1


def test_rescue_plan_combines_the_revert_decision_and_the_outcome():
    from ansible_collections.unitehub.platform.plugins.filter.deploy import rescue_plan
    facts = {"switched": True, "target": "green", "old": "blue", "old_stopped": False, "old_running": True}
    assert rescue_plan(facts)["revert"] is True
    after = rescue_plan(dict(facts, live_slot="blue", reverted=True))
    assert (after["reverted"], after["stop_target"], after["status"]) == (True, True, "failed")
    stayed = rescue_plan(dict(facts, old_running=False, live_slot="green"))
    assert (stayed["revert"], stayed["on_new"], stayed["status"], stayed["why_not"]) == (
        False, True, "active", "the old slot blue is not running on every app host")
    with pytest.raises(AnsibleFilterError, match="needs a dictionary"):
        rescue_plan("green")
    assert FilterModule().filters()["rescue_plan"] is rescue_plan


def test_keep_warm_is_checked_with_the_deploy_inputs():
    assert deploy_errors({"keep_warm": "300"}) == []
    [message] = deploy_errors({"keep_warm": "5m"})
    assert message.startswith("blue_green_keep_warm='5m' is not a whole number of seconds from 0 to 86400")
    assert "-e keep_warm=300" in message


def test_fleet_filters_check_their_input_and_reach_the_rules():
    from ansible_collections.unitehub.platform.plugins.filter.deploy import fleet_outcome, lb_divergence
    assert "lb1 blue, lb2 green" in lb_divergence({"lb1": "blue", "lb2": "green"})
    assert fleet_outcome([{"lb": "lb1", "switched": True, "reverted": True, "live_slot": "blue"}])["reverted"] is True
    with pytest.raises(AnsibleFilterError, match="needs a dictionary"):
        lb_divergence(["lb1"])
    with pytest.raises(AnsibleFilterError, match="needs a list"):
        fleet_outcome({"lb": "lb1"})
    filters = FilterModule().filters()
    assert (filters["lb_divergence"], filters["fleet_outcome"]) == (lb_divergence, fleet_outcome)


def test_slot_breaks_names_each_broken_app_host_and_refuses_what_is_not_a_dictionary():
    filters = FilterModule().filters()
    then = {"id": "c1", "running": True, "restart_count": 0, "started_at": "t0"}
    assert filters["slot_breaks"]({"app1": then, "app2": dict(then, restart_count=1)}, {"app1": then, "app2": then}) == {
        "app2": "restarted 1 time(s)"}
    with pytest.raises(AnsibleFilterError, match="slot_breaks needs two dictionaries"):
        filters["slot_breaks"](["app1"], {})


def test_step_results_refuses_what_is_not_a_dictionary_and_a_step_name():
    filters = FilterModule().filters()
    assert filters["step_results"]({"app1": {"step": "s", "result": {"changed": False}}}, "s") == {"app1": {"changed": False}}
    with pytest.raises(AnsibleFilterError, match="step_results needs a dictionary"):
        filters["step_results"](["app1"], "s")
