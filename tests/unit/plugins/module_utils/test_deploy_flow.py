"""Unit tests of the rescue decisions in plugins/module_utils/deploy_flow.py."""

import pytest

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
