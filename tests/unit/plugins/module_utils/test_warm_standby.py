"""Unit tests of the warm standby: its state, its expiry, the fast rollback and the timer
(real files, a real deploy lock and a stand-in nginx; no container, no load balancer)."""

import json
import os
import stat
import time

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import deploy_audit as audit
from ansible_collections.unitehub.platform.plugins.module_utils import deploy_lock as locks
from ansible_collections.unitehub.platform.plugins.module_utils import deploy_state as ds
from ansible_collections.unitehub.platform.plugins.module_utils import slot_switch as sw
from ansible_collections.unitehub.platform.plugins.module_utils import standby_timer
from ansible_collections.unitehub.platform.plugins.module_utils import warm_standby as ws
from ansible_collections.unitehub.platform.plugins.module_utils.clock import format_ts, parse_ts
from ansible_collections.unitehub.platform.plugins.module_utils.warm_rollback import Standby, WarmError

APP = "unitehub"
SERVERS = {"blue": ["127.0.0.1:3008"], "green": ["127.0.0.1:3009"]}


def deployed(warm_for=None, now=None):
    """blue v1 then green v2 live; with ``warm_for`` seconds, blue kept warm as a deploy leaves it."""
    state = ds.record(ds.empty_state(APP), "blue", version="v1", activate=True)
    if warm_for is not None:
        state = ws.mark_warm(state, "blue", (now or time.time()) + warm_for)
    return ds.record(state, "green", version="v2", activate=True,
                     replaced_status="standby" if warm_for is not None else "stopped")


# ------------------------------------------------------------------ values and state

@pytest.mark.parametrize("value", [0, "0", 300, "300", "86400"])
def test_keep_warm_accepts_whole_seconds_up_to_a_day(value):
    assert ws.keep_warm_problem(value) is None


@pytest.mark.parametrize("value", ["abc", -1, "1.5", True, 86401, "nan", None])
def test_a_bad_keep_warm_names_the_value_and_the_fix(value):
    message = ws.keep_warm_problem(value)
    assert message.startswith("blue_green_keep_warm=%r is not a whole number of seconds" % (value,))
    assert "-e keep_warm=300" in message


def test_a_deploy_that_keeps_the_old_slot_warm_records_it_as_the_standby():
    now = 1_800_000_000
    state = deployed(warm_for=300, now=now)
    assert state["warm_standby"] == {"slot": "blue", "until": format_ts(now + 300)}
    assert state["slots"]["blue"]["status"] == "standby"
    assert ws.warm_slot(state, now=now + 299) == ("blue", None)


@pytest.mark.parametrize("case, reason", [
    ("none", "no slot is kept warm"),
    ("expired", "which has passed"),
    ("stopped", "is not the rollback target"),
])
def test_a_slot_is_warm_only_while_the_state_says_so(case, reason):
    now = 1_800_000_000
    state = deployed() if case == "none" else deployed(warm_for=300, now=now)
    if case == "stopped":
        state["slots"]["blue"]["status"] = "stopped"
    slot, why_not = ws.warm_slot(state, now=now + (301 if case == "expired" else 1))
    assert slot is None and reason in why_not


def test_recording_the_warm_slot_ends_its_warm_time():
    state = deployed(warm_for=300)
    assert ds.record(state, "blue", status="active", activate=True)["warm_standby"] is None
    assert ds.record(state, "blue", version="v3")["warm_standby"] is None


def test_a_slot_replaced_as_stopped_is_no_longer_warm():
    state = ds.record(ds.empty_state(APP), "blue", version="v1", activate=True)
    state = ws.mark_warm(state, "blue", time.time() + 60)
    assert ds.record(state, "green", version="v2", activate=True, replaced_status="stopped")["warm_standby"] is None


def test_a_state_file_without_warm_standby_reads_it_as_null_and_a_bad_one_is_refused(tmp_path):
    path = tmp_path / "state.json"
    doc = deployed()
    del doc["warm_standby"]
    path.write_text(json.dumps(doc))
    assert ds.load_state(str(path), APP)["warm_standby"] is None
    doc["warm_standby"] = {"slot": "purple", "until": "soon"}
    path.write_text(json.dumps(doc))
    with pytest.raises(ds.StateError, match="warm_standby is .*expected null or"):
        ds.load_state(str(path), APP)


# ------------------------------------------------------------------ expiry

@pytest.fixture
def deploy_dirs(tmp_path):
    state_dir, upstream = tmp_path / "state", tmp_path / "lb"
    state_dir.mkdir()
    (upstream / "live").mkdir(parents=True)
    return str(state_dir), str(upstream)


def test_expiry_plan_never_stops_a_slot_that_went_live_or_was_renewed():
    state = deployed(warm_for=300)
    until = state["warm_standby"]["until"]
    assert ws.expiry_plan(state, "blue", until, "green") == (True, None)
    assert ws.expiry_plan(state, "blue", until, "blue") == (False, "blue is live")
    assert ws.expiry_plan(state, "blue", "2000-01-01T00:00:00Z", "green")[0] is False
    assert ws.expiry_plan(ds.record(state, "blue", status="active", activate=True), "blue", until, "blue")[0] is False


def test_expire_stops_the_standby_and_records_it_stopped(deploy_dirs):
    state_dir, upstream = deploy_dirs
    sw.set_live_marker(upstream, "green")
    state = deployed(warm_for=300)
    ds.save_state(ds.state_file(state_dir), state)
    stopped = []
    outcome = ws.expire(state_dir, APP, upstream, "blue", state["warm_standby"]["until"],
                        lambda: stopped.append("blue"), "timer", os.getpid())
    assert stopped == ["blue"] and outcome.startswith("stopped the standby blue")
    after = ds.load_state(ds.state_file(state_dir), APP)
    assert after["warm_standby"] is None and after["slots"]["blue"]["status"] == "stopped"
    assert locks.read_lock(locks.lock_file(state_dir)) is None


def test_expire_leaves_a_slot_the_marker_made_live(deploy_dirs):
    state_dir, upstream = deploy_dirs
    sw.set_live_marker(upstream, "blue")  # a run switched to it and has not recorded yet
    state = deployed(warm_for=300)
    ds.save_state(ds.state_file(state_dir), state)
    outcome = ws.expire(state_dir, APP, upstream, "blue", state["warm_standby"]["until"],
                        lambda: pytest.fail("stopped a live slot"), "timer", os.getpid())
    assert outcome == "left blue alone: blue is live"


def test_expire_waits_for_the_run_holding_the_lock_and_judges_its_outcome(deploy_dirs):
    state_dir, upstream = deploy_dirs
    sw.set_live_marker(upstream, "green")
    state = deployed(warm_for=300)
    ds.save_state(ds.state_file(state_dir), state)
    lock_path = locks.lock_file(state_dir)
    held = locks.acquire_lock(lock_path, "alice", "run-1", os.getpid())

    def rollback_meanwhile(_seconds):
        """The holder rolls back to blue and releases the lock while the timer waits."""
        sw.set_live_marker(upstream, "blue")
        ds.save_state(ds.state_file(state_dir), ds.record(state, "blue", status="active", activate=True))
        locks.release_lock(lock_path, token=held["lock"]["token"])

    outcome = ws.expire(state_dir, APP, upstream, "blue", state["warm_standby"]["until"],
                        lambda: pytest.fail("stopped a live slot"), "timer", os.getpid(), sleep=rollback_meanwhile)
    assert outcome.startswith("left blue alone")


# ------------------------------------------------------------------ the fast rollback

@pytest.fixture
def fake_nginx(tmp_path):
    """A stand-in nginx whose -t passes; the pidfile names this test process."""
    script = tmp_path / "nginx"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    pidfile = tmp_path / "nginx.pid"
    pidfile.write_text(str(os.getpid()))
    return str(script), str(pidfile)


def params(state_dir, upstream, fake_nginx, tmp_path, **over):
    p = {"app": APP, "state_dir": state_dir, "audit_log": str(tmp_path / "audit.jsonl"), "upstream_dir": upstream,
         "owner": "alice", "run_id": "run-9", "pid": os.getpid(), "controller_host": None, "ttl": 1800,
         "force": False, "slot": None, "keep_warm": 0, "drain_seconds": 5, "slot_servers": SERVERS,
         "health_path": "/health", "health_expect": "pass", "verify_url": "http://lb/health", "ca_path": None,
         "nginx_binary": fake_nginx[0], "nginx_pidfile": fake_nginx[1]}
    p.update(over)
    return p


class Lb:
    """The load balancer as the fast path sees it: answers from the slot the marker names."""

    def __init__(self, upstream):
        self.upstream = upstream

    def fetch(self):
        return sw.current_slot(self.upstream), None


def standby(p, probe_answer=("pass", "v1", None), timers=None, check_mode=False):
    timers = [] if timers is None else timers
    return Standby(p, stopper=lambda: (lambda slot: None), check_mode=check_mode,
                   start_timer=lambda *args: timers.append(args) or {"pid": 1},
                   probe=lambda url: probe_answer, fetch=Lb(p["upstream_dir"]).fetch)


@pytest.fixture
def warm_stack(deploy_dirs, tmp_path):
    """green v2 live, blue v1 its warm standby; the switch's files as the nginx role leaves them."""
    state_dir, upstream = deploy_dirs
    for name, text in sw.render_files("green", SERVERS["green"], SERVERS["blue"]).items():
        with open(os.path.join(upstream, name), "w", encoding="utf-8") as handle:
            handle.write(text)
    sw.set_live_marker(upstream, "green")
    ds.save_state(ds.state_file(state_dir), deployed(warm_for=300))
    return state_dir, upstream


def test_the_fast_path_switches_records_audits_and_hands_the_old_slot_to_the_timer(warm_stack, fake_nginx, tmp_path):
    state_dir, upstream = warm_stack
    timers = []
    result = standby(params(state_dir, upstream, fake_nginx, tmp_path, keep_warm=60), timers=timers).rollback()
    assert result["rolled_back"] and (result["slot"], result["from_slot"], result["version"]) == ("blue", "green", "v1")
    assert sw.current_slot(upstream) == "blue"
    state = ds.load_state(ds.state_file(state_dir), APP)
    assert (state["active_slot"], state["previous_slot"]) == ("blue", "green")
    assert state["slots"]["green"]["status"] == "standby" and state["warm_standby"]["slot"] == "green"
    [line] = audit.read_audit(str(tmp_path / "audit.jsonl"))
    assert line["event"] == "rollback" and line["reason"].startswith("fast path: blue was a warm standby")
    assert [args[2] for args in timers] == ["green"]
    assert locks.read_lock(locks.lock_file(state_dir)) is None


def test_without_keep_warm_the_slot_left_is_stopped_after_the_drain(warm_stack, fake_nginx, tmp_path):
    state_dir, upstream = warm_stack
    before = time.time()
    result = standby(params(state_dir, upstream, fake_nginx, tmp_path, keep_warm=0, drain_seconds=5)).rollback()
    until = ds.load_state(ds.state_file(state_dir), APP)["warm_standby"]["until"]
    assert result["rolled_back"] and before + 5 <= parse_ts(until) <= time.time() + 6


@pytest.mark.parametrize("probe_answer, reason", [
    (("fail", None, "connection refused"), "the standby does not answer healthy on 127.0.0.1:3008: connection refused"),
    (("pass", "v9", None), "the standby on 127.0.0.1:3008 runs v9, not v1"),
])
def test_an_unhealthy_standby_leaves_the_rollback_to_the_full_path(warm_stack, fake_nginx, tmp_path, probe_answer,
                                                                   reason):
    state_dir, upstream = warm_stack
    before = ds.load_state(ds.state_file(state_dir), APP)
    result = standby(params(state_dir, upstream, fake_nginx, tmp_path), probe_answer=probe_answer).rollback()
    assert not result["rolled_back"] and result["why_not"] == reason
    assert sw.current_slot(upstream) == "green" and ds.load_state(ds.state_file(state_dir), APP) == before
    assert locks.read_lock(locks.lock_file(state_dir)) is None
    assert not os.path.exists(tmp_path / "audit.jsonl")


def test_hooks_that_run_on_rollbacks_leave_the_rollback_to_the_full_path(warm_stack, fake_nginx, tmp_path):
    state_dir, upstream = warm_stack
    result = standby(params(state_dir, upstream, fake_nginx, tmp_path, rollback_hooks=["post_deploy"])).rollback()
    assert not result["rolled_back"] and "hooks post_deploy run on rollbacks" in result["why_not"]
    assert sw.current_slot(upstream) == "green"


def test_a_divergence_is_refused_and_the_lock_released(warm_stack, fake_nginx, tmp_path):
    state_dir, upstream = warm_stack
    sw.set_live_marker(upstream, "blue")
    with pytest.raises(WarmError, match="Run playbooks/reconcile.yml"):
        standby(params(state_dir, upstream, fake_nginx, tmp_path)).rollback()
    assert locks.read_lock(locks.lock_file(state_dir)) is None


def test_a_held_lock_refuses_the_fast_path_too(warm_stack, fake_nginx, tmp_path):
    state_dir, upstream = warm_stack
    locks.acquire_lock(locks.lock_file(state_dir), "bob", "run-1", os.getpid())
    with pytest.raises(locks.LockHeld, match="held by bob"):
        standby(params(state_dir, upstream, fake_nginx, tmp_path)).rollback()


def test_check_mode_decides_but_changes_nothing(warm_stack, fake_nginx, tmp_path):
    state_dir, upstream = warm_stack
    before = ds.load_state(ds.state_file(state_dir), APP)
    timers = []
    result = standby(params(state_dir, upstream, fake_nginx, tmp_path), timers=timers, check_mode=True).rollback()
    assert result["rolled_back"] and result["timer"] is None and timers == []
    assert sw.current_slot(upstream) == "green" and ds.load_state(ds.state_file(state_dir), APP) == before
    assert locks.read_lock(locks.lock_file(state_dir)) is None


def test_keep_needs_the_lock_and_records_the_standby(deploy_dirs, fake_nginx, tmp_path):
    state_dir, upstream = deploy_dirs
    ds.save_state(ds.state_file(state_dir), ds.record(ds.empty_state(APP), "blue", version="v1", activate=True))
    p = params(state_dir, upstream, fake_nginx, tmp_path, slot="blue", keep_warm=300)
    with pytest.raises(WarmError, match="does not hold the deploy lock"):
        standby(p).keep()
    locks.acquire_lock(locks.lock_file(state_dir), "alice", "run-9", os.getpid())
    result = standby(p).keep()
    assert result["warm_standby"]["slot"] == "blue"
    assert ds.load_state(ds.state_file(state_dir), APP)["warm_standby"] == result["warm_standby"]


# ------------------------------------------------------------------ the timer

def test_the_timer_runs_detached_at_its_deadline_and_records_its_outcome(tmp_path):
    state_dir = str(tmp_path)
    marker = tmp_path / "fired"

    def work():
        marker.write_text(str(os.getpid()))
        return "done"

    record = standby_timer.start(state_dir, APP, "blue", time.time() + 0.3, work)
    assert record["slot"] == "blue" and standby_timer.timer_running(record)
    deadline = time.time() + 10
    while (standby_timer.read_timer(state_dir) or {}).get("outcome") is None and time.time() < deadline:
        time.sleep(0.05)
    assert standby_timer.read_timer(state_dir)["outcome"] == "done"
    assert marker.read_text() == str(record["pid"]) and record["pid"] != os.getpid()


def test_a_new_timer_ends_the_previous_one_and_never_signals_a_reused_pid(tmp_path):
    state_dir = str(tmp_path)
    first = standby_timer.start(state_dir, APP, "blue", time.time() + 60, lambda: "first")
    second = standby_timer.start(state_dir, APP, "green", time.time() + 0.1, lambda: "second")
    deadline = time.time() + 10
    while standby_timer.timer_running(first) and time.time() < deadline:
        time.sleep(0.05)
    assert not standby_timer.timer_running(first)
    assert standby_timer.read_timer(state_dir)["pid"] == second["pid"]
    # A record naming this process with another start time is not this process: left alone.
    with open(standby_timer.timer_file(state_dir), "w", encoding="utf-8") as handle:
        json.dump({"pid": os.getpid(), "start": -1}, handle)
    assert standby_timer.cancel(state_dir) is None


def test_with_systemd_the_timer_gets_a_transient_scope_of_its_own():
    command = standby_timer.scope_command("shop", 4242)
    assert command[:6] == ["busctl", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                           "org.freedesktop.systemd1.Manager", "StartTransientUnit"]
    assert "unitehub-shop-standby-4242.scope" in command and command[-3:] == ["1", "4242", "0"]


def test_the_timer_sleeps_in_naps_to_a_wall_clock_deadline():
    clock = {"now": 100.0}
    naps = []

    def sleep(seconds):
        naps.append(seconds)
        clock["now"] += seconds

    standby_timer.sleep_until(170.0, now=lambda: clock["now"], sleep=sleep)
    assert naps == [30.0, 30.0, 10.0]


def test_a_timer_at_work_is_not_ended_by_a_new_one(tmp_path):
    """While it works it may hold the deploy lock: a SIGTERM then waits until it is done."""
    state_dir = str(tmp_path)
    started = tmp_path / "working"

    def work():
        started.write_text("yes")
        time.sleep(0.5)
        return "finished"

    first = standby_timer.start(state_dir, APP, "blue", time.time(), work)
    deadline = time.time() + 10
    while not started.exists() and time.time() < deadline:
        time.sleep(0.02)
    assert standby_timer.cancel(state_dir) == first["pid"]
    while (standby_timer.read_timer(state_dir) or {}).get("outcome") is None and time.time() < deadline:
        time.sleep(0.05)
    assert standby_timer.read_timer(state_dir)["outcome"] == "finished"
