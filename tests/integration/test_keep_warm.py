"""keep_warm against the real local stack: a deploy keeps the old slot running as a warm
standby, a rollback while it is warm takes the fast path (one switch), the standby timer stops
the slot a rollback left once its short keep_warm ran out, and a rollback with nothing warm runs
in full. Not timed: bench/deploy.py measures the paths.
"""

from __future__ import annotations

import docker
import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import standby_timer
from ansible_collections.unitehub.platform.tests.integration.ansible_runner import run_playbook
from ansible_collections.unitehub.platform.tests.integration.deploy_helpers import (
    BASE_RELEASE, ROLLBACK, STATE_DIR, audit_lines, deploy, ensure_live, lb_version, read_state,
)
from ansible_collections.unitehub.platform.tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

NEXT = "it-next"


def running(slot):
    return docker.from_env().containers.get("unitehub-%s" % slot).attrs["State"]["Running"]


@pytest.fixture
def no_timer_left():
    """A failing test must not leave a timer to stop a slot under the next test's feet."""
    yield
    standby_timer.cancel(STATE_DIR)


def test_while_warm_a_rollback_is_one_switch_and_the_timer_then_stops_the_slot_it_left(no_timer_left):
    old_slot = ensure_live(BASE_RELEASE)
    result = deploy(NEXT, keep_warm=300)
    assert result.rc == 0, result.output[-6000:]
    new_slot, version = lb_version()
    assert version == NEXT and new_slot != old_slot
    state = read_state()
    assert state["warm_standby"]["slot"] == old_slot and state["slots"][old_slot]["status"] == "standby"
    assert running(old_slot), "the warm standby was stopped"
    assert standby_timer.timer_running(standby_timer.read_timer(STATE_DIR))

    planned = run_playbook(ROLLBACK, check=True)
    assert planned.rc == 0, planned.output[-6000:]
    assert "Check mode: the fast path would switch to the warm standby %s" % old_slot in planned.stdout
    assert read_state() == state and lb_version() == (new_slot, NEXT)

    # The slot it leaves stays warm for 2 s only, then the timer stops it.
    result = run_playbook(ROLLBACK, extra_vars={"keep_warm": 2, "drain_seconds": 1})
    assert result.rc == 0, result.output[-6000:]
    assert "Fast path: slot %s (%s) is live again;" % (old_slot, BASE_RELEASE) in result.stdout, result.stdout[-3000:]
    assert "Take the deploy lock and plan under it" not in result.stdout  # the full rollback did not run
    assert lb_version() == (old_slot, BASE_RELEASE)
    line = audit_lines()[-1]
    assert (line["event"], line["slot"], line["from_slot"], line["outcome"]) == ("rollback", old_slot, new_slot,
                                                                                 "success")
    assert line["reason"].startswith("fast path: %s was a warm standby" % old_slot)
    state = read_state()
    assert (state["active_slot"], state["previous_slot"]) == (old_slot, new_slot)
    assert state["warm_standby"]["slot"] == new_slot

    wait_until(lambda: not running(new_slot), timeout=30, what="the timer to stop %s" % new_slot)
    wait_until(lambda: read_state()["warm_standby"] is None, timeout=10, what="the state to drop the standby")
    assert read_state()["slots"][new_slot]["status"] == "stopped"
    # The timer records its outcome after the state it wrote, as its last act.
    wait_until(lambda: standby_timer.read_timer(STATE_DIR)["outcome"] is not None, timeout=10,
               what="the timer to record its outcome")
    assert standby_timer.read_timer(STATE_DIR)["outcome"].startswith("stopped the standby %s" % new_slot)
    assert lb_version() == (old_slot, BASE_RELEASE) and running(old_slot)


def test_with_nothing_warm_a_rollback_runs_in_full(no_timer_left):
    ensure_live(BASE_RELEASE)
    state = read_state()
    target = state["previous_slot"]
    assert state["warm_standby"] is None and target is not None
    result = run_playbook(ROLLBACK, extra_vars={"stability_window": 0, "drain_seconds": 0})
    assert result.rc == 0, result.output[-6000:]
    assert "Full rollback to slot %s: no slot is kept warm" % target in result.stdout, result.stdout[-3000:]
    assert "Fast path" not in result.stdout
    assert lb_version() == (target, state["slots"][target]["version"])
    assert audit_lines()[-1]["reason"] is None  # the full rollback's own line
    assert read_state()["active_slot"] == target
