"""Unit tests of the rescue decisions in plugins/module_utils/deploy_flow.py."""

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import deploy_flow
from ansible_collections.unitehub.platform.plugins.module_utils.deploy_flow import failure_outcome, revert_decision


@pytest.mark.parametrize("switched, old, old_stopped, old_running, expected", [
    (False, "blue", False, True, (False, "traffic never left the old slot")),
    (True, None, False, None, (False, "there is no other slot")),
    (True, "green", False, True, (False, "the new release replaced the live slot itself")),
    (True, "blue", True, False, (False, "the old slot blue was already drained and stopped")),
    (True, "blue", False, False, (False, "the old slot blue is not running on every app host")),
    (True, "blue", False, None, (False, "the old slot blue is not running on every app host")),
    (True, "blue", False, True, (True, None)),
])
def test_traffic_goes_back_only_to_a_running_undrained_old_slot(switched, old, old_stopped, old_running, expected):
    assert revert_decision(switched, "green", old, old_stopped, old_running) == expected


def test_a_failure_before_the_switch_stops_the_new_slot_and_records_it_failed():
    outcome = failure_outcome(False, "green", "blue", None, False, True)
    assert outcome == {"on_new": False, "stop_target": True, "record": True, "status": "failed", "activate": False,
                       "replaced_status": "standby"}


def test_a_verified_revert_stops_the_new_slot():
    assert failure_outcome(True, "green", "blue", "blue", True, True)["stop_target"] is True


def test_a_revert_that_did_not_verify_keeps_the_new_slot_running_for_the_fallback():
    outcome = failure_outcome(True, "green", "blue", "blue", False, True)
    assert outcome["stop_target"] is False and outcome["on_new"] is False and outcome["status"] == "failed"


def test_traffic_that_cannot_go_back_stays_on_the_new_slot_and_the_state_follows_the_marker():
    outcome = failure_outcome(True, "green", "blue", "green", False, False)
    assert outcome == {"on_new": True, "stop_target": False, "record": True, "status": "active", "activate": True,
                       "replaced_status": "stopped"}


def test_a_forced_redeploy_of_the_live_slot_is_never_recorded_as_failed():
    outcome = failure_outcome(False, "blue", "blue", None, False, True)
    assert outcome["record"] is False and outcome["stop_target"] is False


def test_a_failure_before_the_target_started_records_and_stops_nothing():
    """A missing image tag or a failing pre-deploy hook: the slot keeps what it ran, and stays
    a rollback target."""
    outcome = failure_outcome(False, "green", "blue", None, False, True, started=False)
    assert (outcome["record"], outcome["stop_target"]) == (False, False)


def test_load_balancers_on_one_slot_do_not_diverge():
    assert deploy_flow.lb_divergence({"lb1": "green", "lb2": "green"}) is None
    assert deploy_flow.lb_divergence({"lb1": None, "lb2": None}) is None
    assert deploy_flow.lb_divergence({"localhost": "blue"}) is None


def test_a_divergence_names_each_load_balancer_and_its_slot_and_the_fix():
    message = deploy_flow.lb_divergence({"lb2": "green", "lb1": "blue", "lb3": None})
    assert "lb1 blue, lb2 green, lb3 no marker (blue)" in message
    assert "playbooks/reconcile.yml" in message


def test_fleet_reverted_only_when_every_switched_load_balancer_went_back():
    outcome = deploy_flow.fleet_outcome([
        {"lb": "lb1", "switched": True, "reverted": True, "live_slot": "blue"},
        # Refused its switch: it never left the old slot, so it neither reverts nor counts.
        {"lb": "lb2", "switched": False, "reverted": False, "live_slot": None},
    ])
    assert outcome == {"switched": True, "reverted": True, "live_slot": "blue", "diverged": None}
    plan = deploy_flow.rescue_plan(dict(switched=True, target="green", old="blue", old_running=True, **{
        k: outcome[k] for k in ("reverted", "live_slot")}))
    assert (plan["stop_target"], plan["on_new"], plan["status"]) == (True, False, "failed")


def test_a_fleet_left_apart_keeps_the_new_slot_running_and_says_where_each_is():
    outcome = deploy_flow.fleet_outcome([
        {"lb": "lb1", "switched": True, "reverted": True, "live_slot": "blue"},
        {"lb": "lb2", "switched": True, "reverted": False, "live_slot": "green"},
    ])
    assert (outcome["switched"], outcome["reverted"], outcome["live_slot"]) == (True, False, None)
    assert "lb1 blue, lb2 green" in outcome["diverged"]
    plan = deploy_flow.rescue_plan(dict(switched=True, target="green", old="blue", old_running=True,
                                        reverted=False, live_slot=None))
    # lb2 still serves green: it must keep running, and the state does not call it live.
    assert (plan["stop_target"], plan["on_new"], plan["status"]) == (False, False, "failed")


def test_a_fleet_that_never_switched_has_nothing_to_revert():
    outcome = deploy_flow.fleet_outcome([{"lb": "lb1", "switched": False}, {"lb": "lb2", "switched": False}])
    assert outcome == {"switched": False, "reverted": False, "live_slot": None, "diverged": None}


RELEASED = {"id": "c1", "running": True, "status": "running", "restart_count": 0, "started_at": "2026-12-07T21:00:00Z"}


def test_slot_breaks_is_empty_when_every_host_runs_the_container_its_gate_passed():
    assert deploy_flow.slot_breaks({"app1": dict(RELEASED), "app2": dict(RELEASED, id="c2")},
                                   {"app1": RELEASED, "app2": dict(RELEASED, id="c2")}) == {}


@pytest.mark.parametrize("now, why", [
    (None, "not running (gone)"),
    (dict(RELEASED, running=False, status="exited"), "not running (exited)"),
    (dict(RELEASED, id="c9"), "replaced by another container"),
    (dict(RELEASED, restart_count=2), "restarted 2 time(s)"),
    (dict(RELEASED, started_at="2026-12-07T21:00:09Z"), "started again at 2026-12-07T21:00:09Z"),
])
def test_slot_breaks_names_the_host_that_broke_and_why(now, why):
    assert deploy_flow.slot_breaks({"app1": dict(RELEASED), "app2": now}, {"app1": RELEASED, "app2": RELEASED}) == {
        "app2": why}


STEP = "run-1/blue_green_start"


def test_step_results_takes_each_hosts_result_of_this_very_step():
    ok = {"changed": True, "container": {"slot": "green", "running": True}}
    gate = {"failed": True, "stage": "health", "msg": "gate failed"}
    results = deploy_flow.step_results({"app1": {"step": STEP, "result": ok}, "app2": {"step": STEP, "result": gate}},
                                       STEP)
    assert results == {"app1": ok, "app2": gate}


def test_step_results_fails_a_host_that_never_ran_the_step_or_kept_an_earlier_ones():
    earlier = {"step": "run-0/blue_green_start", "result": {"changed": False}}
    results = deploy_flow.step_results({"app1": None, "app2": earlier, "app3": {}}, STEP)
    assert set(results) == {"app1", "app2", "app3"}
    for host, result in results.items():
        assert result["failed"] is True and result["stage"] == "not run" and host in result["msg"]


def test_step_results_fails_a_host_that_was_not_reached():
    unreachable = {"unreachable": True, "msg": "Failed to connect to the host via ssh"}
    result = deploy_flow.step_results({"app2": {"step": STEP, "result": unreachable}}, STEP)["app2"]
    assert result["failed"] is True and "app2 was not reached: Failed to connect" in result["msg"]
    assert "stage" not in result  # whether it started the slot is unknown: the revert stops it
