"""deploy_events: the pure builders, an OTLP send to a loopback collector, and real
ansible-playbook runs with the callback enabled (controller-only tasks on localhost)."""

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.unitehub.platform.plugins.callback import deploy_events as de
from ansible_collections.unitehub.platform.plugins.module_utils import deploy_audit

from ansible_collections.unitehub.platform.tests.support.loopback import free_port
from ansible_collections.unitehub.platform.tests.support.otlp import OtlpPost

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
EVENT = {
    "event": "deploy", "app": "unitehub", "slot": "green", "from_slot": "blue", "version": "v2",
    "previous_version": "v1", "outcome": "success", "reason": None, "run_id": "r-1", "user": "alice",
    "duration_s": 92.5, "phases": {"preflight": 1.5, "health_gate": 11.25}, "source": "callback",
}


# ---------------------------------------------------------------- pure parts

def test_phase_of_reads_the_deploy_phase_variable_then_a_tag():
    assert de.phase_of({"deploy_phase": "health_gate"}, ["phase:switch"]) == "health_gate"
    assert de.phase_of({"deploy_phase": "{{ phase }}"}, []) is None, "an untemplated value is no phase"
    assert de.phase_of({}, ["deploy", "phase:switch"]) == "switch"
    assert de.phase_of({}, ["phase:"]) is None
    assert de.phase_of({}, ["phase:Bad Name"]) is None
    assert de.phase_of(None, None) is None


def test_info_from_audit_event():
    audited = {"event": "failure", "slot": "green", "from_slot": "blue", "version": "v3",
               "previous_version": "v2", "app": "unitehub", "run_id": "r-1", "outcome": "failed"}
    assert de.info_from_audit_event(audited) == {
        "slot": "green", "from_slot": "blue", "to_version": "v3",
        "from_version": "v2", "app": "unitehub", "run_id": "r-1",
    }
    assert de.info_from_audit_event(dict(audited, event="auto_revert")) is None
    assert de.info_from_audit_event(None) is None


def test_event_kind_from_play_var_then_playbook_name():
    assert de.event_kind("rollback", "/x/deploy.yml") == "rollback"
    assert de.event_kind(None, "/x/playbooks/rollback.yml") == "rollback"
    assert de.event_kind("nonsense", "/x/deploy.yml") == "deploy"
    assert de.event_kind(None, "/x/site.yml") == "deploy"


def test_phase_timer_measures_first_start_to_last_end_in_deploy_order():
    timer = de.PhaseTimer(wall_ns=1_000_000_000_000, mono_ns=0)
    timer.start("switch", 5_000_000_000)
    timer.start("preflight", 0)
    timer.end("preflight", 1_500_000_000)
    timer.start("preflight", 1_600_000_000)  # a second preflight task: the start stays
    timer.end("preflight", 2_000_000_000)
    timer.end("preflight", 1_900_000_000)  # an earlier end (another host) never shrinks it
    timer.end("switch", 5_250_000_000)
    timer.start("custom_step", 6_000_000_000)
    timer.end("custom_step", 6_001_000_000)
    timer.end("never_started", 9_000_000_000)
    assert timer.durations() == {"preflight": 2.0, "switch": 0.25, "custom_step": 0.001}
    assert timer.spans()[0] == ("preflight", 1_000_000_000_000, 1_002_000_000_000)


def test_a_module_that_times_its_own_steps_reports_each_as_a_phase():
    timer = de.PhaseTimer(wall_ns=0, mono_ns=0)
    timer.start("image", 1_000_000_000)  # the task (app_release) starts in the image phase
    steps = de.module_steps("image", {"image": 0.25, "start": 0.5, "health_gate": 1.0, "stop": 9.0})
    assert steps == [("image", 0.25), ("start", 0.5), ("health_gate", 1.0)], "unknown phases are left out"
    timer.carve(steps, at_ns=3_000_000_000)
    # Laid out backwards from the task's end; the image phase keeps the module's start-up before it.
    assert timer.durations() == {"image": 0.5, "start": 0.5, "health_gate": 1.0}


def test_steps_are_used_only_when_the_task_is_in_the_first_of_them():
    assert de.module_steps("preflight", {"image": 0.1, "start": 0.2}) is None, "a check-mode call in preflight"
    assert de.module_steps("drain", {"stop": 0.3}) is None
    assert de.module_steps("image", None) is None and de.module_steps("image", {}) is None
    assert de.module_steps("image", {"image": "soon"}) is None


class _Task:
    def __init__(self, uuid, phase):
        self._uuid, self._phase, self.tags = uuid, phase, []

    def get_vars(self):
        return {"deploy_phase": self._phase}


class _Result:
    def __init__(self, task, result):
        self._task, self._result = task, result


def test_the_tasks_after_a_self_timed_call_extend_its_last_step_not_its_first(monkeypatch):
    callback = de.CallbackModule()
    callback.timer = de.PhaseTimer(wall_ns=0, mono_ns=0)
    # The release call starts at 0 and ends at 2 s; the task registering its result ends at 2.2 s.
    now = iter([0, 2_000_000_000, 2_100_000_000, 2_200_000_000])
    monkeypatch.setattr(de.time, "monotonic_ns", lambda: next(now))
    release, register = _Task("release", "image"), _Task("register", "image")
    callback.v2_playbook_on_task_start(release, False)
    callback._finished(_Result(release, {"phases": {"image": 0.5, "start": 0.5, "health_gate": 1.0}}))
    callback.v2_playbook_on_task_start(register, False)
    callback._finished(_Result(register, {}))
    assert callback.timer.durations() == {"image": 0.5, "start": 0.5, "health_gate": 1.2}


def test_build_event_maps_versions_onto_the_audit_schema():
    event = de.build_event("deploy", "success", {"switch": 0.5},
                           {"slot": "green", "from_slot": "blue", "from_version": "v1", "to_version": "v2",
                            "app": "unitehub", "run_id": "r-1"}, 12.34567, reason="ignored on success", user="alice")
    assert event["version"] == "v2" and event["previous_version"] == "v1"
    assert event["reason"] is None and event["duration_s"] == 12.346 and event["source"] == "callback"
    assert deploy_audit.normalize_event(event)["event"] == "deploy", "the callback's event passes the audit schema"
    failed = de.build_event("rollback", "failed", {}, {}, 1, reason="task 'x' failed on lb1: boom", user=None)
    assert failed["reason"] == "task 'x' failed on lb1: boom" and failed["slot"] is None


def test_otlp_payload_has_a_parent_and_one_child_per_phase():
    spans_in = [("preflight", 100, 200), ("health_gate", 200, 1_200)]
    ids = ["a" * 32, "b" * 16, "c" * 16, "d" * 16]
    failed_event = dict(EVENT, outcome="failed", reason="health gate failed")
    payload = de.build_otlp_payload(failed_event, spans_in, 50, 1_300, "unitehub-deploy", {"health_gate"}, ids=ids)
    resource = payload["resourceSpans"][0]
    assert resource["resource"]["attributes"] == [{"key": "service.name", "value": {"stringValue": "unitehub-deploy"}}]
    parent, first, second = resource["scopeSpans"][0]["spans"]
    assert (parent["traceId"], parent["spanId"], parent["name"]) == ("a" * 32, "b" * 16, "deploy unitehub")
    assert (parent["startTimeUnixNano"], parent["endTimeUnixNano"]) == ("50", "1300")
    assert parent["status"] == {"code": 2, "message": "health gate failed"}
    attrs = {a["key"]: a["value"] for a in parent["attributes"]}
    assert attrs["deploy.to_version"] == {"stringValue": "v2"} and attrs["deploy.from_version"] == {"stringValue": "v1"}
    assert attrs["deploy.duration_s"] == {"doubleValue": 92.5}
    assert [(s["name"], s["parentSpanId"], s["traceId"], s["status"]["code"]) for s in (first, second)] == [
        ("phase preflight", "b" * 16, "a" * 32, 1), ("phase health_gate", "b" * 16, "a" * 32, 2)]
    assert json.loads(json.dumps(payload)) == payload


def test_otlp_traces_url():
    assert de.otlp_traces_url("http://127.0.0.1:4318") == "http://127.0.0.1:4318/v1/traces"
    assert de.otlp_traces_url("http://127.0.0.1:4318/v1/traces/") == "http://127.0.0.1:4318/v1/traces"
    with pytest.raises(ValueError, match="otlp_endpoint '127.0.0.1:4318' is not an http"):
        de.otlp_traces_url("127.0.0.1:4318")


def test_datadog_request_builder():
    url, headers, body = de.build_datadog_request(EVENT, "dd-key-123", "datadoghq.eu", "unitehub-deploy", now=1767607200)
    assert url == "https://api.datadoghq.eu/api/v1/events"
    assert headers["DD-API-KEY"] == "dd-key-123"
    assert body["title"] == "unitehub deploy v2 to green: success"
    assert body["alert_type"] == "success" and body["date_happened"] == 1767607200
    assert body["tags"] == ["service:unitehub-deploy", "app:unitehub", "event:deploy", "outcome:success",
                            "slot:green", "version:v2"]
    assert "From v1 on blue." in body["text"] and "health_gate 11.2s" in body["text"]
    assert "dd-key-123" not in json.dumps(body)
    _unused, _unused, failed = de.build_datadog_request(dict(EVENT, outcome="failed", reason="gate"), "k", "datadoghq.com")
    assert failed["alert_type"] == "error" and "Reason: gate" in failed["text"]
    with pytest.raises(ValueError, match="datadog_site 'https://datadoghq.com' is not a Datadog site"):
        de.build_datadog_request(EVENT, "k", "https://datadoghq.com")


def test_post_json_sends_to_a_loopback_collector(otlp_receiver):
    payload = de.build_otlp_payload(EVENT, [("switch", 1, 2)], 0, 3, "svc")
    status = de.post_json(de.otlp_traces_url(otlp_receiver.endpoint), payload, timeout=2)
    assert status == 200
    assert otlp_receiver.received == [OtlpPost("/v1/traces", "application/json", payload, None)]


def test_post_json_to_a_dead_endpoint_raises_quickly():
    with pytest.raises(Exception):
        de.post_json("http://127.0.0.1:%d/v1/traces" % free_port(), {}, timeout=1)


# ------------------------------------------------ real ansible-playbook runs

PLAYBOOK = """
- name: Fake deploy
  hosts: localhost
  gather_facts: false
  vars:
    app_name: unitehub
  tasks:
    - name: Preflight
      ansible.builtin.include_tasks: preflight.yml
      vars:
        deploy_phase: preflight

    - name: Health gate
      ansible.builtin.command: sleep 0.3
      changed_when: false
      tags: ["phase:health_gate"]

    - name: Switch
      vars:
        deploy_phase: switch
      block:
        - name: Switch traffic
          ansible.builtin.fail:
            msg: "switch refused: nginx -t failed"
          when: fail_switch | default(false) | bool

    - name: Audit the deploy on the load balancer
      unitehub.platform.deploy_state:
        action: audit
        state_dir: "{{ playbook_dir }}/state"
        audit_log: "{{ playbook_dir }}/role-audit.jsonl"
        run_id: r-7
        event: {event: deploy, slot: green, from_slot: blue, version: v2, previous_version: v1, outcome: success}
      vars:
        deploy_phase: record

    - name: Untimed task
      ansible.builtin.debug:
        msg: not a phase
"""

PREFLIGHT = """
- name: Check something
  ansible.builtin.debug:
    msg: ok
"""


def run_playbook(tmp_path, name="deploy.yml", content=PLAYBOOK, extra_env=None, extra_args=()):
    (tmp_path / name).write_text(content)
    (tmp_path / "preflight.yml").write_text(PREFLIGHT)
    audit = tmp_path / "audit.jsonl"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DD_", "UNITEHUB_", "ANSIBLE_"))}
    env.update({
        "ANSIBLE_CONFIG": str(tmp_path / "none.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, "collections"),
        "ANSIBLE_CALLBACKS_ENABLED": "unitehub.platform.deploy_events",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "ANSIBLE_HOME": str(tmp_path / "home"),
        "ANSIBLE_NOCOLOR": "1",
        "UNITEHUB_DEPLOY_AUDIT_LOG": str(audit),
    })
    env.update(extra_env or {})
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", "ansible_python_interpreter=%s" % sys.executable, str(tmp_path / name), *extra_args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    return proc, deploy_audit.read_audit(str(audit))


def test_playbook_run_writes_the_audit_line_and_sends_the_trace(tmp_path, otlp_receiver):
    proc, events = run_playbook(tmp_path, extra_env={"UNITEHUB_OTLP_ENDPOINT": otlp_receiver.endpoint})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(events) == 1
    event = events[0]
    assert {k: event[k] for k in ("event", "outcome", "app", "slot", "from_slot", "version", "previous_version",
                                  "run_id", "reason", "source")} == {
        "event": "deploy", "outcome": "success", "app": "unitehub", "slot": "green", "from_slot": "blue",
        "version": "v2", "previous_version": "v1", "run_id": "r-7", "reason": None, "source": "callback"}
    assert list(event["phases"]) == ["preflight", "health_gate", "switch", "record"]
    assert 0.3 <= event["phases"]["health_gate"] < event["duration_s"]
    assert [e["source"] for e in deploy_audit.read_audit(str(tmp_path / "role-audit.jsonl"))] == ["module"]
    assert len(otlp_receiver.received) == 1
    post = otlp_receiver.received[0]
    spans = post.body["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert post.path == "/v1/traces"
    assert [s["name"] for s in spans] == ["deploy unitehub", "phase preflight", "phase health_gate", "phase switch",
                                          "phase record"]


def test_failed_rollback_with_the_collector_down_warns_and_records_the_failure(tmp_path):
    proc, events = run_playbook(tmp_path, name="rollback.yml", extra_args=("-e", "fail_switch=true"),
                                extra_env={"UNITEHUB_OTLP_ENDPOINT": "http://127.0.0.1:%d" % free_port()})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "the deploy trace was not sent to http://127.0.0.1:" in proc.stdout + proc.stderr
    assert [(e["event"], e["outcome"]) for e in events] == [("rollback", "failed")]
    assert events[0]["reason"] == "task 'Switch traffic' failed on localhost: switch refused: nginx -t failed"
    assert list(events[0]["phases"]) == ["preflight", "health_gate", "switch"]


def test_check_mode_and_phase_free_playbooks_write_nothing(tmp_path):
    proc, events = run_playbook(tmp_path, extra_args=("--check",))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert events == []
    plain = "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.debug:\n        msg: hi\n"
    proc, events = run_playbook(tmp_path, name="plain.yml", content=plain)
    assert proc.returncode == 0 and events == []


def test_an_empty_audit_log_option_disables_the_audit_line(tmp_path):
    proc, events = run_playbook(tmp_path, extra_env={"UNITEHUB_DEPLOY_AUDIT_LOG": ""})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert events == [] and "not audited" not in proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.glob("*.jsonl")) == ["role-audit.jsonl"]
