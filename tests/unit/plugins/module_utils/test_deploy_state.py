"""Unit tests of the deploy state document, on real files and real processes."""

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
    assert state["slots"]["blue"] == {"version": None, "image": None, "image_id": None, "repo_digest": None,
                                      "deployed_at": None, "status": None}


def test_a_state_file_written_before_repo_digest_existed_reads_it_as_null(tmp_path):
    path = tmp_path / "state.json"
    old = deployed(("blue", "v1"), ("green", "v2"))
    for entry in old["slots"].values():
        del entry["repo_digest"]
    path.write_text(json.dumps(old))

    state = ds.load_state(str(path), APP)

    assert {slot: entry["repo_digest"] for slot, entry in state["slots"].items()} == {"blue": None, "green": None}
    assert ds.record(state, "green", version="v2", image="unitehub/app:v2", image_id="sha256:v2") == state, (
        "reading the old file and recording the same facts changes nothing")


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
                                      "repo_digest": None, "deployed_at": "2026-01-05T10:00:00Z", "status": "active"}
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
    assert new["slots"]["blue"] == {"version": "v3", "image": None, "image_id": None, "repo_digest": None,
                                    "deployed_at": "2026-01-06T10:00:00Z", "status": "standby"}
    assert new["active_slot"] == "green"


REPO = "127.0.0.1:5000/unitehub/app"


def test_a_pulled_image_is_recorded_with_its_repo_digest_and_keeps_it_when_recorded_again():
    state = ds.record(ds.empty_state(APP), "blue", version="v1", image=REPO + ":v1", image_id="sha256:aa",
                      repo_digest=REPO + "@sha256:d1", activate=True, now=1767607200)
    assert state["slots"]["blue"]["repo_digest"] == REPO + "@sha256:d1"
    # A rollback's record passes the same image id and digest; one that omits the digest keeps it too.
    assert ds.record(state, "blue", version="v1", image_id="sha256:aa", repo_digest=REPO + "@sha256:d1",
                     now=1767693600) == state
    assert ds.record(state, "blue", version="v1", image_id="sha256:aa", now=1767693600) == state


def test_a_new_image_under_the_same_version_never_keeps_the_old_images_digest():
    state = ds.record(ds.empty_state(APP), "blue", version="v1", image=REPO + ":v1", image_id="sha256:aa",
                      repo_digest=REPO + "@sha256:d1", activate=True, now=1767607200)

    rebuilt = ds.record(state, "blue", version="v1", image=REPO + ":v1", image_id="sha256:bb", now=1767693600)
    repushed = ds.record(state, "blue", version="v1", image=REPO + ":v1", image_id="sha256:cc",
                         repo_digest=REPO + "@sha256:d2", now=1767693600)

    assert (rebuilt["slots"]["blue"]["image_id"], rebuilt["slots"]["blue"]["repo_digest"]) == ("sha256:bb", None)
    assert (repushed["slots"]["blue"]["image_id"], repushed["slots"]["blue"]["repo_digest"]) == (
        "sha256:cc", REPO + "@sha256:d2")
    assert rebuilt["slots"]["blue"]["deployed_at"] == "2026-01-06T10:00:00Z"


def test_a_new_version_drops_the_old_repo_digest():
    state = ds.record(ds.empty_state(APP), "blue", version="v1", image=REPO + ":v1", image_id="sha256:aa",
                      repo_digest=REPO + "@sha256:d1", activate=True)
    new = ds.record(state, "blue", version="v2", image="unitehub/app:v2", image_id="sha256:bb")
    assert new["slots"]["blue"]["repo_digest"] is None


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
    pulled = ds.record(state, "blue", version="v3", image=REPO + ":v3", image_id="sha256:v3",
                       repo_digest=REPO + "@sha256:d3")
    assert ds.protected_images(pulled) == [REPO + ":v3", REPO + "@sha256:d3", "sha256:v2", "sha256:v3",
                                           "unitehub/app:v2"]
    assert ds.protected_images(ds.empty_state(APP)) == []


def test_a_marker_left_by_a_killed_first_deploy_is_the_serving_slot():
    empty = ds.empty_state(APP)
    assert ds.serving_slot(empty, None) is None and ds.idle_slot(empty) == "blue"
    assert ds.serving_slot(empty, "blue") == "blue"
    assert ds.idle_slot(empty, "blue") == "green"
    assert ds.resolve_slot(empty, "auto", live_slot="blue") == "green"
    with pytest.raises(ds.StateError, match="slot blue is the active slot \\(serving a release that no deploy recorded\\)"):
        ds.resolve_slot(empty, "blue", live_slot="blue")
    assert ds.resolve_slot(empty, "blue", force=True, live_slot="blue") == "blue"
    assert ds.route_problem(empty, "blue") is None, "nothing recorded: nothing to disagree with"


def test_route_problem_names_both_slots_and_the_fix():
    state = deployed(("blue", "v1"))
    assert ds.route_problem(state, "blue") is None
    assert ds.route_problem(state, None) is None, "no marker: nginx serves blue"
    problem = ds.route_problem(state, "green")
    assert problem.startswith("the load balancer serves slot green, but the deploy state says blue (v1) is live")
    assert problem.endswith("checks that green runs and records it as the live slot")


def test_reconcile_makes_the_markers_slot_active_with_its_release():
    state = deployed(("blue", "v1"))
    new = ds.reconcile(state, "green", "v2", image="unitehub/app:v2", image_id="sha256:v2")
    assert (new["active_slot"], new["previous_slot"]) == ("green", "blue")
    assert new["slots"]["green"]["version"] == "v2" and new["slots"]["blue"]["status"] == "standby"
    assert ds.reconcile(new, "green", "v2", image="unitehub/app:v2", image_id="sha256:v2") == new
    pulled = ds.reconcile(new, "green", "v2", image=REPO + ":v2", image_id="sha256:p2", repo_digest=REPO + "@sha256:d2")
    assert pulled["slots"]["green"]["repo_digest"] == REPO + "@sha256:d2"
