"""Unit tests of the deploy state, lock and audit log, on real files and real processes."""

import json
import multiprocessing
import os
import random
import re
import signal
import stat
import time

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import deploy_state as ds

FORK = multiprocessing.get_context("fork")
APP = "unitehub"


def deployed(*steps):
    """A state built by recording (slot, version) activations in order."""
    state = ds.empty_state(APP)
    for slot, version in steps:
        state = ds.record(state, slot, version=version, image="unitehub/app:%s" % version,
                          image_id="sha256:%s" % version, activate=True)
    return state


# ------------------------------------------------------------------ state file

def test_missing_state_file_is_an_empty_state(tmp_path):
    state = ds.load_state(str(tmp_path / "state.json"), APP)
    assert state == ds.empty_state(APP)
    assert state["active_slot"] is None
    assert state["slots"]["blue"] == {"version": None, "image": None, "image_id": None,
                                      "deployed_at": None, "status": None}


def test_save_then_load_round_trips_with_mode_0640(tmp_path):
    path = str(tmp_path / "deploy" / "state.json")
    state = deployed(("blue", "v1"), ("green", "v2"))
    ds.save_state(path, state)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert ds.load_state(path, APP) == state


def test_crash_between_write_and_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / "state.json")
    old = deployed(("blue", "v1"))
    ds.save_state(path, old)
    before = open(path, encoding="utf-8").read()

    def crash(src, dst):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(ds.StateError, match="cannot write the deploy state file .*state.json.*previous file is unchanged"):
        ds.save_state(path, deployed(("blue", "v1"), ("green", "v2")))
    monkeypatch.undo()
    assert open(path, encoding="utf-8").read() == before
    assert ds.load_state(path, APP) == old
    assert sorted(os.listdir(tmp_path)) == ["state.json"], "the temp file must be cleaned up"


@pytest.mark.parametrize("content, detail", [
    ("{\"schema\": 1, \"app\": ", "is not valid JSON (line 1 column"),
    ("", "is not valid JSON"),
    ("[1, 2]", "the top level is a list"),
    (json.dumps({"schema": 1, "app": APP, "active_slot": "purple", "previous_slot": None,
                 "slots": {}, "updated_at": None}), "active_slot is 'purple'"),
    (json.dumps({"schema": 7, "app": APP, "active_slot": None, "previous_slot": None,
                 "slots": {}, "updated_at": None}), "schema is 7, this collection reads schema 1"),
    (json.dumps({"schema": 1, "app": APP, "active_slot": "blue", "previous_slot": None,
                 "slots": {"blue": {"status": "active"}}, "updated_at": None}), "the active slot blue has no version"),
    (json.dumps({"schema": 1, "app": APP, "active_slot": None, "previous_slot": None,
                 "slots": {"blue": {"status": "exploded"}}, "updated_at": None}), "slots.blue.status is 'exploded'"),
])
def test_corrupt_or_invalid_state_file_gives_a_clear_error(tmp_path, content, detail):
    path = tmp_path / "state.json"
    path.write_text(content)
    with pytest.raises(ds.StateError) as err:
        ds.load_state(str(path), APP)
    message = str(err.value)
    assert str(path) in message
    assert detail in message
    assert "mv %s %s.broken" % (path, path) in message
    assert "Traceback" not in message


def test_binary_state_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "state.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ds.StateError, match="is not UTF-8 text"):
        ds.load_state(str(path), APP)


def test_state_of_another_app_is_refused(tmp_path):
    path = str(tmp_path / "state.json")
    ds.save_state(path, deployed(("blue", "v1")))
    with pytest.raises(ds.StateError, match="belongs to app 'unitehub', not 'billing'. Give each app its own state_dir"):
        ds.load_state(path, "billing")


def test_saving_an_invalid_state_is_refused_and_writes_nothing(tmp_path):
    path = tmp_path / "state.json"
    bad = ds.empty_state(APP)
    bad["active_slot"] = "blue"
    with pytest.raises(ds.StateError, match="refusing to write an invalid deploy state"):
        ds.save_state(str(path), bad)
    assert not path.exists()


def _writer(path, iterations):
    for number in range(iterations):
        ds.save_state(path, deployed(("blue", "v%d" % number), ("green", "v%d" % (number + 1))))


def test_sigkill_of_a_writer_never_leaves_a_corrupt_state_file(tmp_path):
    path = str(tmp_path / "state.json")
    ds.save_state(path, deployed(("blue", "v0")))
    rng = random.Random(20260106)
    versions_seen = set()
    for _unused in range(50):
        proc = FORK.Process(target=_writer, args=(path, 100000))
        proc.start()
        time.sleep(rng.uniform(0.002, 0.03))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        assert proc.exitcode == -signal.SIGKILL
        state = ds.load_state(path, APP)  # raises on a torn or partial file
        active = state["slots"][state["active_slot"]]["version"]
        assert re.fullmatch(r"v\d+", active)
        versions_seen.add(active)
    assert len(versions_seen) > 1, "the writer must actually have replaced the file during the test"


# -------------------------------------------------------------- state logic

def test_first_deploy_activates_without_a_previous_slot():
    state = ds.record(ds.empty_state(APP), "blue", version="v1", image="unitehub/app:v1",
                      image_id="sha256:aa", activate=True, now=1767607200)
    assert state["active_slot"] == "blue"
    assert state["previous_slot"] is None
    assert state["slots"]["blue"] == {"version": "v1", "image": "unitehub/app:v1", "image_id": "sha256:aa",
                                      "deployed_at": "2026-01-05T10:00:00Z", "status": "active"}
    assert state["updated_at"] == "2026-01-05T10:00:00Z"


def test_activation_demotes_the_old_slot_and_remembers_it():
    state = deployed(("blue", "v1"), ("green", "v2"))
    assert (state["active_slot"], state["previous_slot"]) == ("green", "blue")
    assert state["slots"]["blue"]["status"] == "standby"
    assert state["slots"]["green"]["status"] == "active"
    stopped = ds.record(state, "blue", status="stopped")
    assert stopped["slots"]["blue"] == dict(state["slots"]["blue"], status="stopped")


def test_record_is_pure_and_idempotent():
    state = deployed(("blue", "v1"))
    snapshot = json.dumps(state, sort_keys=True)
    again = ds.record(state, "blue", version="v1", image="unitehub/app:v1", image_id="sha256:v1",
                      activate=True, now=time.time() + 3600)
    assert json.dumps(state, sort_keys=True) == snapshot
    assert again == state, "recording the same facts later changes nothing, not even updated_at"


def test_new_version_replaces_the_image_fields_and_stamps_deployed_at():
    state = deployed(("blue", "v1"), ("green", "v2"))
    new = ds.record(state, "blue", version="v3", status="standby", now=1767693600)
    assert new["slots"]["blue"] == {"version": "v3", "image": None, "image_id": None,
                                    "deployed_at": "2026-01-06T10:00:00Z", "status": "standby"}
    assert new["active_slot"] == "green"


@pytest.mark.parametrize("kwargs, message", [
    (dict(slot="purple", version="v9"), "slot 'purple' is not one of blue, green"),
    (dict(slot="blue", version="v9", status="broken"), "status 'broken' is not one of active, standby, stopped, failed"),
    (dict(slot="blue", version="v9", status="failed", activate=True), "being activated, so its status is 'active'"),
    (dict(slot="blue", version="v9", status="active"), "slot blue cannot be 'active' while green is the active slot"),
    (dict(slot="green", status="stopped"), "slot green is the active slot, so it cannot be marked 'stopped'; activate blue first"),
    (dict(slot="blue", version="v 9"), "version 'v 9' is not a valid image tag"),
    (dict(slot="blue", version="-v9"), "version '-v9' is not a valid image tag"),
])
def test_record_refuses_contradictions(kwargs, message):
    state = deployed(("blue", "v1"), ("green", "v2"))
    with pytest.raises(ds.StateError, match=re.escape(message)):
        ds.record(state, **kwargs)


def test_record_of_a_never_deployed_slot_needs_a_version():
    with pytest.raises(ds.StateError, match="slot green has no version recorded yet; pass the version it runs"):
        ds.record(deployed(("blue", "v1")), "green", status="stopped")


def test_rollback_target_is_the_previous_slot_and_toggles():
    state = deployed(("blue", "v1"), ("green", "v2"))
    assert ds.rollback_target(state) == ("blue", "v1")
    rolled = ds.record(state, "blue", activate=True)
    assert (rolled["active_slot"], rolled["previous_slot"]) == ("blue", "green")
    assert ds.rollback_target(rolled) == ("green", "v2")


@pytest.mark.parametrize("state, message", [
    (ds.empty_state(APP), "nothing to roll back to: no deploy has been recorded for app 'unitehub' yet"),
    (deployed(("blue", "v1")), "nothing to roll back to: blue (v1) is the only deploy recorded"),
    (ds.record(deployed(("blue", "v1"), ("green", "v2")), "blue", version="v3", status="failed"),
     "the previous slot blue now holds v3, whose deploy failed; green (v2) stays active"),
])
def test_rollback_target_explains_why_there_is_none(state, message):
    with pytest.raises(ds.StateError, match=re.escape(message)):
        ds.rollback_target(state)


def test_idle_slot_and_resolve_slot():
    empty = ds.empty_state(APP)
    assert ds.idle_slot(empty) == "blue"
    assert ds.resolve_slot(empty, "auto") == "blue"
    state = deployed(("blue", "v1"))
    assert ds.idle_slot(state) == "green"
    assert ds.resolve_slot(state, "auto") == "green"
    assert ds.resolve_slot(state, "green") == "green"
    with pytest.raises(ds.StateError, match=r"slot blue is the active slot \(serving v1\).*force=true"):
        ds.resolve_slot(state, "blue")
    assert ds.resolve_slot(state, "blue", force=True) == "blue"
    with pytest.raises(ds.StateError, match="slot 'purple' is not one of blue, green, auto"):
        ds.resolve_slot(state, "purple")


def test_protected_images_names_every_image_the_state_mentions():
    state = deployed(("blue", "v1"), ("green", "v2"))
    assert ds.protected_images(state) == ["sha256:v1", "sha256:v2", "unitehub/app:v1", "unitehub/app:v2"]
    assert ds.protected_images(ds.empty_state(APP)) == []


# --------------------------------------------------------------------- lock

def take(path, run_id="run-a", pid=None, **kwargs):
    return ds.acquire_lock(str(path), "alice", run_id, os.getpid() if pid is None else pid, **kwargs)


def dead_pid():
    proc = FORK.Process(target=int)
    proc.start()
    proc.join()
    assert not ds.pid_alive(proc.pid)
    return proc.pid


def test_acquire_writes_the_holder_and_is_reentrant(tmp_path):
    path = tmp_path / "deploy.lock"
    first = take(path)
    assert first["acquired"] and first["broken"] is None
    doc = json.loads(path.read_text())
    assert {k: doc[k] for k in ("owner", "run_id", "pid", "host", "ttl")} == {
        "owner": "alice", "run_id": "run-a", "pid": os.getpid(), "host": ds.this_host(), "ttl": 1800}
    assert ds.parse_ts(doc["started_at"]) == pytest.approx(time.time(), abs=5)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    again = take(path)
    assert not again["acquired"]
    assert again["lock"]["token"] == first["lock"]["token"]


def test_live_lock_is_refused_with_the_holder_named_even_with_force(tmp_path):
    path = tmp_path / "deploy.lock"
    take(path, run_id="run-a", now=time.time() - 125)
    for force in (False, True):
        with pytest.raises(ds.LockHeld) as err:
            take(path, run_id="run-b", pid=os.getpid(), force=force)
        message = str(err.value)
        assert "held by alice (run run-a, pid %d on %s)" % (os.getpid(), ds.this_host()) in message
        assert "taken 2m0" in message and "ttl 1800s" in message
        assert "force=true breaks only a stale lock" in message
        assert err.value.holder["stale"] is False
    assert json.loads(path.read_text())["run_id"] == "run-a"


def test_stale_by_ttl_needs_force_and_the_break_is_reported(tmp_path):
    path = tmp_path / "deploy.lock"
    take(path, run_id="run-a", now=time.time() - 3600)
    with pytest.raises(ds.LockHeld, match=r"stale: it is older than its ttl \(age 1h00m > ttl 1800s\). Rerun with force=true"):
        take(path, run_id="run-b")
    result = take(path, run_id="run-b", force=True)
    assert result["acquired"]
    assert result["broken"]["run_id"] == "run-a"
    assert result["broken"]["stale_reason"].startswith("it is older than its ttl")
    assert json.loads(path.read_text())["run_id"] == "run-b"


def test_stale_by_dead_pid_on_this_host(tmp_path):
    path = tmp_path / "deploy.lock"
    pid = dead_pid()
    take(path, run_id="run-a", pid=pid)
    with pytest.raises(ds.LockHeld, match="pid %d is no longer running on %s" % (pid, re.escape(ds.this_host()))):
        take(path, run_id="run-b")
    assert take(path, run_id="run-b", force=True)["broken"]["pid"] == pid


def test_dead_pid_on_another_host_is_not_judged(tmp_path):
    path = tmp_path / "deploy.lock"
    take(path, run_id="run-a", pid=dead_pid(), host="controller-elsewhere")
    with pytest.raises(ds.LockHeld) as err:
        take(path, run_id="run-b", force=True)
    assert err.value.holder["stale"] is False


def test_unreadable_lock_file_counts_as_held_until_its_mtime_passes_the_ttl(tmp_path):
    path = tmp_path / "deploy.lock"
    path.write_text("")
    with pytest.raises(ds.LockHeld, match="held by an unreadable lock file"):
        take(path, force=True)
    old = time.time() - 7200
    os.utime(path, (old, old))
    result = take(path, force=True)
    assert result["acquired"] and result["broken"]["readable"] is False


def test_dry_run_acquire_and_release_change_nothing(tmp_path):
    path = tmp_path / "deploy.lock"
    planned = take(path, dry_run=True)
    assert planned["acquired"] and planned["lock"]["run_id"] == "run-a"
    assert not path.exists()
    take(path)
    content = path.read_text()
    assert ds.release_lock(str(path), run_id="run-a", pid=os.getpid(), dry_run=True)["released"]
    assert path.read_text() == content


def test_release_by_holder_token_or_force_only(tmp_path):
    path = tmp_path / "deploy.lock"
    token = take(path)["lock"]["token"]
    with pytest.raises(ds.LockError, match=r"held by alice \(run run-a.*not by this run \(run run-b, pid %d\).*force=true"
                       % os.getpid()):
        ds.release_lock(str(path), run_id="run-b", pid=os.getpid())
    with pytest.raises(ds.LockError, match="not by this run"):
        ds.release_lock(str(path), run_id="run-a", pid=os.getpid() + 1)
    with pytest.raises(ds.LockError, match="not by this run"):
        ds.release_lock(str(path), token="not-the-token")
    assert path.exists()
    released = ds.release_lock(str(path), token=token)
    assert (released["released"], released["forced"], released["lock"]["run_id"]) == (True, False, "run-a")
    assert not path.exists()
    assert ds.release_lock(str(path), run_id="run-a", pid=os.getpid())["released"] is False

    take(path)
    forced = ds.release_lock(str(path), run_id="run-z", pid=1, force=True)
    assert forced["released"] and forced["forced"] and forced["lock"]["run_id"] == "run-a"
    assert not path.exists()


def test_lock_identity_is_validated(tmp_path):
    with pytest.raises(ds.LockError, match="pid 0 is not a process id"):
        take(tmp_path / "deploy.lock", pid=0)
    with pytest.raises(ds.LockError, match="run_id '' is empty"):
        take(tmp_path / "deploy.lock", run_id="")


def _contender(path, run_id, barrier, results):
    barrier.wait(10)
    try:
        ds.acquire_lock(path, "racer", run_id, os.getpid())
        results.put((run_id, "won"))
    except ds.LockHeld:
        results.put((run_id, "held"))


def test_concurrent_processes_exactly_one_wins(tmp_path):
    contenders = 6
    for round_number in range(10):
        path = str(tmp_path / ("deploy-%d.lock" % round_number))
        barrier, results = FORK.Barrier(contenders), FORK.Queue()
        procs = [FORK.Process(target=_contender, args=(path, "run-%d" % i, barrier, results))
                 for i in range(contenders)]
        for proc in procs:
            proc.start()
        outcomes = dict(results.get(timeout=30) for _unused in procs)
        for proc in procs:
            proc.join(10)
        winners = [run for run, outcome in outcomes.items() if outcome == "won"]
        assert len(winners) == 1, outcomes
        assert json.loads(open(path).read())["run_id"] == winners[0]


# -------------------------------------------------------------------- audit

def test_append_audit_writes_one_json_line_per_event(tmp_path):
    log = tmp_path / "log" / "deploy-audit.jsonl"
    first = ds.append_audit(str(log), {
        "event": "deploy", "app": APP, "slot": "green", "from_slot": "blue",
        "version": "v2", "previous_version": "v1", "outcome": "success",
        "duration_s": 81.5, "phases": {"health_gate": 12.25},
    })
    ds.append_audit(str(log), {"event": "rollback", "slot": "blue", "outcome": "success"})
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0]) == first
    assert list(first) == list(ds.AUDIT_FIELDS)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o640
    assert [e["event"] for e in ds.read_audit(str(log))] == ["deploy", "rollback"]


@pytest.mark.parametrize("event, message", [
    ({"event": "explode"}, "audit event 'explode' is not one of deploy, rollback, switch, failure, auto_revert, lock_broken"),
    ({"event": "deploy", "colour": "red"}, "unknown audit field(s) colour"),
    ({"event": "deploy", "outcome": "meh"}, "audit outcome 'meh' is not one of success, failed"),
    ({"event": "deploy", "slot": "purple"}, "audit slot 'purple' is not one of blue, green"),
    ({"event": "deploy", "duration_s": -1}, "audit duration_s -1 is not a number of seconds"),
    ({"event": "deploy", "phases": {"switch": "fast"}}, "audit phases {'switch': 'fast'} is not an object"),
])
def test_malformed_audit_events_are_refused(tmp_path, event, message):
    log = tmp_path / "audit.jsonl"
    with pytest.raises(ds.AuditError, match=re.escape(message)):
        ds.append_audit(str(log), event)
    assert not log.exists()


def test_torn_last_line_is_tolerated_and_never_swallows_the_next_event(tmp_path):
    log = tmp_path / "audit.jsonl"
    ds.append_audit(str(log), {"event": "deploy", "version": "v1"})
    ds.append_audit(str(log), {"event": "deploy", "version": "v2"})
    with open(log, "ab") as handle:
        handle.write(b'{"ts": "2026-01-06T10:00:00.000Z", "event": "swi')  # crash mid-write
    assert [e["version"] for e in ds.read_audit(str(log))] == ["v1", "v2"]
    assert [e["version"] for e in ds.read_audit(str(log), last_n=1)] == ["v2"]
    ds.append_audit(str(log), {"event": "rollback", "version": "v1"})
    assert [e["event"] for e in ds.read_audit(str(log))] == ["deploy", "deploy", "rollback"]


def test_read_audit_last_n_across_many_blocks(tmp_path):
    log = tmp_path / "audit.jsonl"
    with open(log, "w") as handle:
        for number in range(3000):
            handle.write(json.dumps({"event": "switch", "reason": "x" * 40, "version": "v%d" % number}) + "\n")
    tail = ds.read_audit(str(log), last_n=5)
    assert [e["version"] for e in tail] == ["v2995", "v2996", "v2997", "v2998", "v2999"]
    assert len(ds.read_audit(str(log))) == 3000
    assert ds.read_audit(str(log), last_n=0) == []
    assert ds.read_audit(str(tmp_path / "missing.jsonl"), last_n=5) == []


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (59.9, "59s"), (312, "5m12s"), (11040, "3h04m"), (190800, "2d05h")])
def test_format_age(seconds, text):
    assert ds.format_age(seconds) == text
