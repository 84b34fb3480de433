"""Unit tests of the deploy audit log, on real files."""

import json
import os
import re
import stat

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import deploy_audit as audit

APP = "unitehub"


# -------------------------------------------------------------------- audit

def test_append_audit_writes_one_json_line_per_event(tmp_path):
    log = tmp_path / "log" / "deploy-audit.jsonl"
    first = audit.append_audit(str(log), {
        "event": "deploy", "app": APP, "slot": "green", "from_slot": "blue",
        "version": "v2", "previous_version": "v1", "outcome": "success",
        "duration_s": 81.5, "phases": {"health_gate": 12.25},
    })
    audit.append_audit(str(log), {"event": "rollback", "slot": "blue", "outcome": "success"})
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0]) == first
    assert list(first) == list(audit.AUDIT_FIELDS)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o640
    assert [e["event"] for e in audit.read_audit(str(log))] == ["deploy", "rollback"]


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
    with pytest.raises(audit.AuditError, match=re.escape(message)):
        audit.append_audit(str(log), event)
    assert not log.exists()


def test_torn_last_line_is_tolerated_and_never_swallows_the_next_event(tmp_path):
    log = tmp_path / "audit.jsonl"
    audit.append_audit(str(log), {"event": "deploy", "version": "v1"})
    audit.append_audit(str(log), {"event": "deploy", "version": "v2"})
    with open(log, "ab") as handle:
        handle.write(b'{"ts": "2026-01-06T10:00:00.000Z", "event": "swi')  # crash mid-write
    assert [e["version"] for e in audit.read_audit(str(log))] == ["v1", "v2"]
    assert [e["version"] for e in audit.read_audit(str(log), last_n=1)] == ["v2"]
    audit.append_audit(str(log), {"event": "rollback", "version": "v1"})
    assert [e["event"] for e in audit.read_audit(str(log))] == ["deploy", "deploy", "rollback"]


def test_read_audit_last_n_across_many_blocks(tmp_path):
    log = tmp_path / "audit.jsonl"
    with open(log, "w") as handle:
        for number in range(3000):
            handle.write(json.dumps({"event": "switch", "reason": "x" * 40, "version": "v%d" % number}) + "\n")
    tail = audit.read_audit(str(log), last_n=5)
    assert [e["version"] for e in tail] == ["v2995", "v2996", "v2997", "v2998", "v2999"]
    assert len(audit.read_audit(str(log))) == 3000
    assert audit.read_audit(str(log), last_n=0) == []
    assert audit.read_audit(str(tmp_path / "missing.jsonl"), last_n=5) == []
