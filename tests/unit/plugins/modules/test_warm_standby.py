"""The warm_standby module's own work: its options, its refusals and the stop the timer runs
(the logic is tested in tests/unit/plugins/module_utils/test_warm_standby.py)."""

import os

from ansible_collections.unitehub.platform.plugins.module_utils import deploy_state as ds
from ansible_collections.unitehub.platform.plugins.modules import warm_standby as module


def args(tmp_path, **over):
    base = {"action": "rollback", "state_dir": str(tmp_path / "state"), "audit_log": str(tmp_path / "audit.jsonl"),
            "upstream_dir": str(tmp_path / "lb"), "run_id": "run-1", "pid": os.getpid(),
            "slot_servers": {"blue": ["127.0.0.1:3008"], "green": ["127.0.0.1:3009"]}}
    base.update(over)
    return base


def test_a_bad_keep_warm_fails_naming_the_value_and_the_fix(run_module, tmp_path):
    result = run_module(module, args(tmp_path, keep_warm="5 minutes")).result
    assert result["failed"]
    assert result["msg"].startswith("keep_warm='5 minutes' is not a whole number of seconds from 0 to 86400")
    assert "-e keep_warm=300" in result["msg"]


def test_nothing_to_roll_back_to_is_refused_as_every_rollback_is(run_module, tmp_path):
    result = run_module(module, args(tmp_path)).result
    assert result["failed"] and result["msg"].startswith("nothing to roll back to: no deploy has been recorded")
    assert not os.path.exists(tmp_path / "state" / "deploy.lock")


def test_without_a_warm_standby_the_full_rollback_is_asked_for(run_module, tmp_path):
    state = ds.record(ds.empty_state("unitehub"), "blue", version="v1", activate=True)
    state = ds.record(state, "green", version="v2", activate=True, replaced_status="stopped")
    ds.save_state(ds.state_file(str(tmp_path / "state")), state)
    (tmp_path / "lb" / "live").mkdir(parents=True)
    (tmp_path / "lb" / "live" / "green").write_text("")
    result = run_module(module, args(tmp_path)).result
    assert not result.get("failed") and not result["changed"]
    assert result["rolled_back"] is False and result["why_not"].startswith("no slot is kept warm")
    assert (result["slot"], result["from_slot"], result["version"]) == ("blue", "green", "v1")


def test_the_timer_stops_the_slot_on_every_app_hosts_docker(fake_docker, tmp_path):
    fake = fake_docker(module, "unitehub/app:v1")
    stopped = []
    fake.stop = lambda name, timeout: stopped.append((name, timeout))
    module.stopper("shop", ["", "tcp://10.0.0.2:2376"], 12)("green")
    assert stopped == [("shop-green", 12), ("shop-green", 12)]
