# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/filter/health.py and its documentation."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.unitehub.platform.plugins.filter.health import (
    FilterModule,
    health_failing,
    health_http_status,
    health_rows,
    health_slot_targets,
    health_table,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))))
FILTER_DIR = os.path.join(REPO_ROOT, "plugins", "filter")

DOC = {
    "status": "fail",
    "version": "v2",
    "checks": {
        "database:responseTime": [{"status": "fail", "observedValue": 2003, "observedUnit": "ms",
                                   "output": "connection refused"}],
        "redis:responseTime": [{"status": "warn", "observedValue": 180, "observedUnit": "ms"}],
        "ai:config": [{"status": "pass", "observedValue": True}],
    },
}


def test_filters_are_registered():
    assert FilterModule().filters() == {"health_http_status": health_http_status,
                                        "health_failing": health_failing,
                                        "health_slot_targets": health_slot_targets,
                                        "health_rows": health_rows,
                                        "health_table": health_table}


def test_report_filters_refuse_inputs_of_the_wrong_shape():
    with pytest.raises(AnsibleFilterError, match="ports must map each slot to its port"):
        health_slot_targets({}, "127.0.0.1", [3008, 3009])
    with pytest.raises(AnsibleFilterError, match="reports must map each host to its report"):
        health_rows(["lb1"], ["lb1"])


@pytest.mark.parametrize("status, code", [("pass", 200), ("warn", 206), ("fail", 503), ("ok", 200), ("DOWN", 503)])
def test_health_http_status(status, code):
    assert health_http_status(status) == code


@pytest.mark.parametrize("status, message", [
    ("degraded", "health_http_status: status 'degraded' is not a health status; use one of pass, warn, fail"),
    (None, "health_http_status: status must be a string, one of pass, warn, fail; got null"),
    (200, "got number 200"),
])
def test_health_http_status_names_an_unknown_status(status, message):
    with pytest.raises(AnsibleFilterError) as err:
        health_http_status(status)
    assert message in str(err.value)


def test_health_failing_from_a_dict():
    assert health_failing(DOC) == [{"name": "database:responseTime", "status": "fail",
                                    "output": "connection refused", "observedValue": 2003, "observedUnit": "ms"}]


def test_health_failing_from_json_text_with_warnings():
    failing = health_failing(json.dumps(DOC), include_warn=True)
    assert [(f["name"], f["status"]) for f in failing] == [
        ("database:responseTime", "fail"), ("redis:responseTime", "warn")]
    assert failing[1]["output"] is None


def test_health_failing_of_a_healthy_document_is_empty():
    assert health_failing('{"status": "pass", "checks": {"a:b": [{"status": "pass"}]}}') == []
    assert health_failing({"status": "pass"}) == []


@pytest.mark.parametrize("document, message", [
    ("<html>", "health_failing: input is not JSON"),
    ("[]", "health_failing: health document must be a JSON object with a status, got list"),
    ({"checks": {}}, "health_failing: health document has no 'status'"),
    ({"status": "pass", "checks": []}, "health_failing: checks must be an object keyed component:measurement"),
    ({"status": "pass", "checks": {"a:b": {"status": "fail"}}}, "checks['a:b'] must be a list of objects"),
    (None, "health document must be a JSON object with a status, got null"),
])
def test_health_failing_rejects_malformed_documents_clearly(document, message):
    with pytest.raises(AnsibleFilterError) as err:
        health_failing(document)
    assert message in str(err.value)


def test_health_failing_rejects_a_non_boolean_include_warn():
    with pytest.raises(AnsibleFilterError, match="include_warn must be true or false, got 'yes'"):
        health_failing(DOC, include_warn="yes")


@pytest.mark.parametrize("name", ["health_http_status", "health_failing", "health_slot_targets", "health_rows",
                                  "health_table"])
def test_each_filter_has_a_documentation_file(name):
    with open(os.path.join(FILTER_DIR, name + ".yml"), encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    assert doc["DOCUMENTATION"]["name"] == name
    assert doc["DOCUMENTATION"]["options"]["_input"]["required"] is True
    assert "unitehub.platform.%s" % name in doc["EXAMPLES"]
    assert "_value" in doc["RETURN"]


def test_ansible_doc_renders_both_filters():
    ansible_doc = os.path.join(os.path.dirname(sys.executable), "ansible-doc")
    proc = subprocess.run(
        [ansible_doc, "-t", "filter", "--json",
         "unitehub.platform.health_http_status", "unitehub.platform.health_failing"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    assert docs["unitehub.platform.health_http_status"]["doc"]["short_description"] == \
        "HTTP status code for a health status"
    assert "include_warn" in docs["unitehub.platform.health_failing"]["doc"]["options"]
