"""The deploy_state module end to end: real argument parsing, real files under tmp_path."""

import errno
import json
import os

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import deploy_audit
from ansible_collections.unitehub.platform.plugins.module_utils import deploy_lock as locks
from ansible_collections.unitehub.platform.plugins.module_utils import deploy_state as ds
from ansible_collections.unitehub.platform.plugins.modules import deploy_state as module

PID = os.getpid()


@pytest.fixture
def run(tmp_path, run_module):
    """Run the module with ``args`` (plus the tmp state_dir and audit_log) and return its
    result. ``_ansible_check_mode`` / ``_ansible_diff`` pass through."""

    def _run(**args):
        args.setdefault("state_dir", str(tmp_path / "deploy"))
        args.setdefault("audit_log", str(tmp_path / "log" / "deploy-audit.jsonl"))
        # Never the host's own pre-0.2.0 state directory.
        args.setdefault("legacy_state_dir", str(tmp_path / "no-legacy-state"))
        return run_module(module, args).result
    _run.state_path = tmp_path / "deploy" / "state.json"
    _run.lock_path = tmp_path / "deploy" / "deploy.lock"
    _run.audit_path = tmp_path / "log" / "deploy-audit.jsonl"
    return _run


def me(**extra):
    return dict(run_id="run-1", pid=PID, owner="alice", **extra)


def test_read_of_a_fresh_host(run):
    result = run(action="read")
    assert not result["changed"]
    assert result["state"] == ds.empty_state("unitehub")
    assert result["lock"] is None
    assert result["idle_slot"] == "blue"
    assert result["rollback"] is None
    assert result["rollback_error"].startswith("nothing to roll back to: no deploy has been recorded")
    assert result["protected_images"] == [] and result["audit"] == []
    assert not run.state_path.exists()


def test_full_deploy_cycle(run):
    lock = run(action="lock", **me())
    assert lock["changed"] and lock["lock"]["run_id"] == "run-1" and lock["lock"]["token"]
    assert run(action="lock", **me())["changed"] is False, "taking our own lock again is idempotent"

    plan = run(action="read", slot="auto")
    assert plan["target_slot"] == "blue"
    assert "token" not in plan["lock"], "read never hands out the holder's token"

    rec = run(action="record", slot="blue", version="v1", image="unitehub/app:v1", image_id="sha256:v1",
              activate=True, **me())
    assert rec["changed"] and rec["state"]["active_slot"] == "blue"
    assert json.loads(run.state_path.read_text()) == rec["state"]
    assert run(action="record", slot="blue", version="v1", image="unitehub/app:v1", image_id="sha256:v1",
               activate=True, **me())["changed"] is False

    audit = run(action="audit", run_id="run-1", owner="alice",
                event={"event": "deploy", "slot": "blue", "version": "v1", "outcome": "success", "duration_s": 42})
    assert audit["changed"]
    assert {k: audit["audit_event"][k] for k in ("event", "app", "run_id", "user", "source")} == {
        "event": "deploy", "app": "unitehub", "run_id": "run-1", "user": "alice", "source": "module"}

    unlock = run(action="unlock", token=lock["lock"]["token"])
    assert unlock["changed"] and unlock["lock"] is None and not run.lock_path.exists()
    assert run(action="unlock", **me())["changed"] is False

    status = run(action="read", last_n=5)
    assert [e["event"] for e in status["audit"]] == ["deploy"]
    assert status["idle_slot"] == "green"


def test_record_ends_a_run_in_one_step(run):
    run(action="lock", **me())
    run(action="record", slot="blue", version="v1", activate=True, **me())
    event = {"event": "deploy", "slot": "green", "from_slot": "blue", "version": "v2", "outcome": "success"}

    # Check mode plans all three and touches nothing.
    state_before, lock_before = run.state_path.read_text(), run.lock_path.read_text()
    planned = run(action="record", slot="green", version="v2", activate=True, replaced_status="stopped",
                  event=event, release_lock=True, _ansible_check_mode=True, **me())
    assert planned["changed"] and planned["audit_event"]["event"] == "deploy" and planned["lock"] is None
    assert (run.state_path.read_text(), run.lock_path.read_text()) == (state_before, lock_before)
    assert not run.audit_path.exists()

    done = run(action="record", slot="green", version="v2", activate=True, replaced_status="stopped",
               event=event, release_lock=True, **me())
    assert done["changed"] and done["lock"] is None and not run.lock_path.exists()
    assert done["state"]["active_slot"] == "green" and done["state"]["previous_slot"] == "blue"
    assert done["state"]["slots"]["blue"]["status"] == "stopped"
    assert [e["event"] for e in run(action="read")["audit"]] == ["deploy"]
    assert done["audit_event"]["run_id"] == "run-1" and done["audit_event"]["source"] == "module"


def test_lock_for_rollback_refuses_without_a_target_and_takes_nothing(run):
    refused = run(action="lock", for_rollback=True, **me())
    assert refused["failed"] and refused["msg"].startswith("nothing to roll back to: no deploy has been recorded")
    assert not run.lock_path.exists()

    run(action="record", slot="blue", version="v1", activate=True)
    run(action="record", slot="green", version="v2", activate=True)
    locked = run(action="lock", for_rollback=True, **me())
    assert locked["changed"] and run.lock_path.exists()
    assert (locked["rollback"]["slot"], locked["rollback"]["version"]) == ("blue", "v1")
    assert locked["state"]["active_slot"] == "green"


def test_lock_for_rollback_fails_on_a_broken_state_file(run):
    run.state_path.parent.mkdir(parents=True)
    run.state_path.write_text("{not json")
    refused = run(action="lock", for_rollback=True, **me())
    assert refused["failed"] and "not valid JSON" in refused["msg"]
    assert not run.lock_path.exists()


def test_record_without_replaced_status_leaves_the_old_slot_standby(run):
    run(action="record", slot="blue", version="v1", activate=True)
    assert run(action="record", slot="green", version="v2", activate=True)["state"]["slots"]["blue"]["status"] == "standby"


def test_record_cannot_release_a_lock_another_run_holds(run):
    run(action="lock", run_id="run-2", pid=PID, owner="bob")
    refused = run(action="record", slot="blue", version="v1", activate=True, release_lock=True, **me())
    assert refused["failed"] and "bob" in refused["msg"]
    assert run.lock_path.exists() and not run.state_path.exists()


def test_second_run_is_refused_with_the_holder_named(run):
    run(action="lock", controller_host="ctl1", **me())
    result = run(action="lock", run_id="run-2", pid=PID, owner="bob", controller_host="ctl2", force=True)
    assert result["failed"]
    assert "held by alice (run run-1, pid %d on ctl1)" % PID in result["msg"]
    assert result["lock"]["owner"] == "alice" and "token" not in result["lock"]


def test_stale_lock_break_is_warned_and_audited(run):
    locks.acquire_lock(str(run.lock_path), "alice", "run-0", PID, now=0)  # taken in 1970: long past its ttl
    refused = run(action="lock", **me())
    assert refused["failed"] and "Rerun with force=true to break it" in refused["msg"]
    result = run(action="lock", force=True, **me())
    assert result["changed"] and result["broken_lock"]["run_id"] == "run-0"
    assert "deploy lock: broke the stale lock of alice (run run-0" in json.dumps(result["warnings"])
    events = deploy_audit.read_audit(str(run.audit_path))
    assert [e["event"] for e in events] == ["lock_broken"]
    assert "older than its ttl" in events[0]["reason"] and events[0]["run_id"] == "run-1"


def test_unlock_by_another_run_is_refused(run):
    run(action="lock", **me())
    result = run(action="unlock", run_id="run-2", pid=PID)
    assert result["failed"] and "only its holder releases it" in result["msg"]
    missing = run(action="unlock")
    assert missing["failed"] and "needs the holder's run_id and pid, or its token, or force=true" in missing["msg"]
    assert run.lock_path.exists()
    forced = run(action="unlock", force=True, run_id="run-2", pid=PID)
    assert forced["changed"] and forced["broken_lock"]["run_id"] == "run-1"
    assert [e["event"] for e in deploy_audit.read_audit(str(run.audit_path))] == ["lock_broken"]


def test_record_refused_while_another_run_holds_the_lock(run):
    run(action="lock", **me())
    result = run(action="record", slot="blue", version="v1", activate=True, run_id="run-2", pid=PID)
    assert result["failed"] and "refusing to record while alice (run run-1" in result["msg"]
    assert not run.state_path.exists()


def test_check_mode_changes_nothing(run):
    checked = dict(_ansible_check_mode=True)
    lock = run(action="lock", **me(), **checked)
    assert lock["changed"] and not run.lock_path.exists()
    rec = run(action="record", slot="green", version="v2", activate=True, **me(), **checked)
    assert rec["changed"] and rec["state"]["active_slot"] == "green" and not run.state_path.exists()
    audit = run(action="audit", event={"event": "switch", "slot": "green"}, **checked)
    assert audit["changed"] and audit["audit_event"]["event"] == "switch" and not run.audit_path.exists()

    run(action="lock", **me())
    content = run.lock_path.read_text()
    assert run(action="unlock", **me(), **checked)["changed"]
    assert run.lock_path.read_text() == content
    refused = run(action="lock", run_id="run-2", pid=PID, **checked)
    assert refused["failed"] and "is held by alice" in refused["msg"]


def test_record_diff_shows_the_state_before_and_after(run):
    run(action="record", slot="blue", version="v1", activate=True, **me())
    result = run(action="record", slot="green", version="v2", activate=True, _ansible_diff=True, **me())
    before, after = json.loads(result["diff"]["before"]), json.loads(result["diff"]["after"])
    assert (before["active_slot"], after["active_slot"], after["previous_slot"]) == ("blue", "green", "blue")
    assert result["diff"]["before_header"] == str(run.state_path)


def test_rollback_target_and_protected_images_are_returned(run):
    run(action="record", slot="blue", version="v1", image="unitehub/app:v1", activate=True, **me())
    result = run(action="record", slot="green", version="v2", image="unitehub/app:v2", activate=True, **me())
    assert result["rollback"] == {"slot": "blue", "version": "v1", "image": "unitehub/app:v1", "image_id": None,
                                  "repo_digest": None}
    assert result["rollback_error"] is None
    assert result["protected_images"] == ["unitehub/app:v1", "unitehub/app:v2"]


def test_a_pulled_release_records_its_repo_digest_for_the_rollback(run):
    pulled = "127.0.0.1:5000/unitehub/app"
    run(action="record", slot="blue", version="v1", image=pulled + ":v1", image_id="sha256:aa",
        repo_digest=pulled + "@sha256:d1", activate=True, **me())
    result = run(action="record", slot="green", version="v2", image=pulled + ":v2", activate=True, **me())
    assert result["rollback"] == {"slot": "blue", "version": "v1", "image": pulled + ":v1", "image_id": "sha256:aa",
                                  "repo_digest": pulled + "@sha256:d1"}
    assert pulled + "@sha256:d1" in result["protected_images"]
    assert json.loads(run.state_path.read_text())["slots"]["blue"]["repo_digest"] == pulled + "@sha256:d1"


def test_bad_input_fails_with_a_clear_message(run):
    run(action="record", slot="blue", version="v1", activate=True, **me())
    active = run(action="read", slot="blue")
    assert active["failed"] and "slot blue is the active slot (serving v1)" in active["msg"]
    assert run(action="read", slot="blue", force=True)["target_slot"] == "blue"
    auto = run(action="record", slot="auto", version="v2", **me())
    assert auto["failed"] and "needs slot blue or green, not 'auto'" in auto["msg"]
    bad_event = run(action="audit", event={"event": "deploy", "colour": "red"})
    assert bad_event["failed"] and "unknown audit field(s) colour" in bad_event["msg"]
    no_pid = run(action="lock", run_id="run-1")
    assert no_pid["failed"] and "pid" in no_pid["msg"]


def test_corrupt_state_file_fails_cleanly(run):
    run.state_path.parent.mkdir(parents=True)
    run.state_path.write_text("{not json")
    result = run(action="read")
    assert result["failed"]
    assert result["msg"].startswith("deploy state file %s is not valid JSON" % run.state_path)
    assert "Traceback" not in json.dumps(result) and "exception" not in result


def test_corrupt_state_file_does_not_block_unlock_or_audit(run):
    run(action="lock", **me())
    run.state_path.write_text("{not json")
    unlock = run(action="unlock", **me())
    assert unlock["changed"] and unlock["state"] is None and not run.lock_path.exists()
    assert "is not valid JSON" in json.dumps(unlock["warnings"])
    audit = run(action="audit", event={"event": "failure", "outcome": "failed", "reason": "state file corrupt"})
    assert audit["changed"] and [e["event"] for e in deploy_audit.read_audit(str(run.audit_path))] == ["failure"]
    assert run(action="record", slot="blue", version="v1", **me())["failed"]


# ------------------------------------------------ decisions under the lock, the marker

def live(tmp_path, slot):
    """A switch directory whose live-slot marker names ``slot``."""
    upstream = tmp_path / "lb"
    (upstream / "live").mkdir(parents=True, exist_ok=True)
    for name in ("blue", "green"):
        if (upstream / "live" / name).exists():
            (upstream / "live" / name).unlink()
    (upstream / "live" / slot).write_text("")
    return str(upstream)


def deployed_blue(run):
    run(action="lock", **me())
    run(action="record", slot="blue", version="v1", activate=True, release_lock=True, **me())


def test_the_target_is_resolved_under_the_lock_from_the_state_it_guards(run, tmp_path):
    deployed_blue(run)
    planned_before = run(action="read", slot="auto")["target_slot"]
    # Another run deploys green and finishes between this run's read and its lock.
    run(action="lock", run_id="run-0", pid=PID)
    run(action="record", slot="green", version="v2", activate=True, release_lock=True, run_id="run-0", pid=PID)
    locked = run(action="lock", slot="auto", upstream_dir=live(tmp_path, "green"), **me())
    assert planned_before == "green", "a plan made before the lock would replace the live slot"
    assert locked["target_slot"] == "blue" and locked["live_slot"] == "green"


def test_a_state_that_disagrees_with_the_marker_is_refused_and_keeps_no_lock(run, tmp_path):
    deployed_blue(run)
    result = run(action="lock", slot="auto", upstream_dir=live(tmp_path, "green"), **me())
    assert result["failed"]
    assert result["msg"].startswith("the load balancer serves slot green, but the deploy state says blue (v1) is live")
    assert "Run playbooks/reconcile.yml" in result["msg"]
    assert result["live_slot"] == "green"
    assert not run.lock_path.exists(), "a refused run must not keep the lock"
    read = run(action="read", upstream_dir=str(tmp_path / "lb"))
    assert read["live_slot"] == "green" and read["divergence"].startswith("the load balancer serves slot green")


def test_a_first_deploy_killed_after_its_switch_is_not_replaced(run, tmp_path):
    """The state records nothing, but the marker says blue serves: the next deploy goes to green."""
    result = run(action="lock", slot="auto", upstream_dir=live(tmp_path, "blue"), **me())
    assert result["changed"] and result["target_slot"] == "green"
    assert (result["live_slot"], result["serving_slot"]) == ("blue", "blue")
    run(action="unlock", **me())
    fresh = run(action="lock", slot="auto", upstream_dir=str(tmp_path / "no-marker-yet"), **me())
    assert (fresh["target_slot"], fresh["serving_slot"]) == ("blue", None)


def test_reconcile_records_the_markers_slot_with_the_release_it_runs(run, tmp_path):
    deployed_blue(run)
    upstream = live(tmp_path, "green")
    run(action="lock", **me())
    result = run(action="reconcile", upstream_dir=upstream, slot="green", version="v2", image="unitehub/app:v2",
                 image_id="sha256:v2", event={"event": "reconcile", "slot": "green", "outcome": "success"},
                 release_lock=True, **me())
    assert result["changed"] and result["live_slot"] == "green"
    assert (result["state"]["active_slot"], result["state"]["previous_slot"]) == ("green", "blue")
    assert result["state"]["slots"]["green"]["version"] == "v2"
    assert not run.lock_path.exists()
    assert [e["event"] for e in deploy_audit.read_audit(str(run.audit_path))] == ["reconcile"]
    assert run(action="lock", slot="auto", upstream_dir=upstream, **me())["target_slot"] == "blue"


def test_reconcile_refuses_a_slot_the_marker_does_not_name(run, tmp_path):
    deployed_blue(run)
    run(action="lock", **me())
    result = run(action="reconcile", upstream_dir=live(tmp_path, "green"), slot="blue", version="v1", **me())
    assert result["failed"] and "the marker in" in result["msg"] and "names green, not blue" in result["msg"]


def test_a_failed_state_write_still_writes_the_audit_lines_then_fails(run, monkeypatch):
    deployed_blue(run)
    run(action="lock", **me())

    def disk_full(path, content, mode=0o644):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ds, "atomic_write", disk_full)
    events = [{"event": "auto_revert", "slot": "blue", "outcome": "success"},
              {"event": "failure", "slot": "green", "outcome": "failed", "reason": "stability window"}]
    result = run(action="record", slot="green", version="v2", status="failed", event=events, release_lock=True,
                 **me())
    assert result["failed"] and "cannot write the deploy state file" in result["msg"]
    assert "No space left on device" in result["msg"]
    audit = deploy_audit.read_audit(str(run.audit_path))
    assert [e["event"] for e in audit] == ["auto_revert", "failure"]
    assert "the state was not written" in audit[1]["reason"] and audit[1]["reason"].startswith("stability window")
    assert run.lock_path.exists(), "the lock is released by the run's last step, which reports it"


def test_an_event_that_is_not_a_dictionary_is_refused(run):
    result = run(action="audit", event=["deploy"])
    assert result["failed"] and "event must be an event (a dictionary) or a list of them" in result["msg"]


def test_an_unexpected_error_is_a_failure_with_context_not_a_traceback(run, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(ds, "load_state", broken)
    result = run(action="read")
    assert result["failed"]
    assert result["msg"].startswith("unexpected RuntimeError during action=read on ")
    assert result["msg"].endswith("simulated bug")


def test_an_unreadable_state_still_gets_the_audit_lines_of_a_record(run):
    deployed_blue(run)
    run(action="lock", **me())
    run.state_path.unlink()
    run.state_path.mkdir()  # neither readable nor replaceable
    result = run(action="record", slot="green", version="v2", status="failed", release_lock=True,
                 event={"event": "failure", "slot": "green", "outcome": "failed", "reason": "stability window"}, **me())
    assert result["failed"] and "cannot read the deploy state file" in result["msg"]
    audit = deploy_audit.read_audit(str(run.audit_path))
    assert audit[-1]["event"] == "failure"
    assert audit[-1]["reason"].startswith("stability window; the state was not written: cannot read the deploy state")


def test_read_tells_the_live_slot_even_when_the_state_is_unreadable(run, tmp_path):
    upstream = live(tmp_path, "green")
    run.state_path.parent.mkdir(parents=True)
    run.state_path.write_text("{not json")
    result = run(action="read", upstream_dir=upstream)
    assert result["failed"] and "is not valid JSON" in result["msg"]
    assert result["live_slot"] == "green"


# ------------------------------------------------------------- one state per app

def test_each_app_has_its_own_files_by_default(run_module, monkeypatch, tmp_path):
    monkeypatch.setattr(ds, "STATE_ROOT", str(tmp_path / "lib"))
    monkeypatch.setattr(deploy_audit, "AUDIT_ROOT", str(tmp_path / "log"))
    for app in ("shop", "blog"):
        result = run_module(module, dict(action="lock", app=app, legacy_state_dir="", **me())).result
        assert result["lock"]["path"] == str(tmp_path / "lib" / app / "deploy.lock")
        run_module(module, dict(action="record", app=app, slot="blue", version="v1", activate=True,
                                release_lock=True, event={"event": "deploy", "outcome": "success"},
                                legacy_state_dir="", **me()))
    for app in ("shop", "blog"):
        assert json.loads((tmp_path / "lib" / app / "state.json").read_text())["app"] == app
        assert [e["app"] for e in deploy_audit.read_audit(str(tmp_path / "log" / app / "deploy-audit.jsonl"))] == [app]


def test_a_state_under_the_old_shared_default_is_moved_to_its_apps_own_directory(run, tmp_path):
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    state = ds.record(ds.empty_state("unitehub"), "green", version="v7", activate=True)
    (legacy / "state.json").write_text(ds.dump_state(state))
    checked = run(action="read", legacy_state_dir=str(legacy), _ansible_check_mode=True)
    assert checked["state"]["active_slot"] == "green", "check mode reads it where it still is"
    assert not run.state_path.exists() and (legacy / "state.json").exists()
    result = run(action="read", legacy_state_dir=str(legacy))
    assert result["migrated_from"] == str(legacy / "state.json")
    assert "moved the deploy state of unitehub" in json.dumps(result["warnings"])
    assert result["state"] == state and json.loads(run.state_path.read_text()) == state
    assert not (legacy / "state.json").exists() and (legacy / "state.json.migrated-to-unitehub").exists()
    assert "migrated_from" not in run(action="read", legacy_state_dir=str(legacy)), "moved once"


def test_a_legacy_state_of_another_app_is_left_alone(run, tmp_path):
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "state.json").write_text(ds.dump_state(ds.record(ds.empty_state("other"), "blue", version="v1",
                                                               activate=True)))
    result = run(action="read", legacy_state_dir=str(legacy))
    assert "migrated_from" not in result and result["state"]["active_slot"] is None
    assert (legacy / "state.json").exists()
