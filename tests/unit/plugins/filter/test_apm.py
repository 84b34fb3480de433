# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The apm_errors and apm_env filters, directly, through Ansible's templar, and their documentation."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.unitehub.platform.plugins.filter import apm as apm_filters
from ansible_collections.unitehub.platform.plugins.filter.apm import FilterModule, apm_env, apm_errors

FILTER_DIR = os.path.dirname(apm_filters.__file__)
REPO_ROOT = os.path.abspath(os.path.join(FILTER_DIR, "..", ".."))
COLLECTIONS_ROOT = os.path.abspath(os.path.join(REPO_ROOT, "..", "..", ".."))
API_KEY = "fedcba9876543210fedcba9876543210"


def test_filters_are_registered():
    assert FilterModule().filters() == {"apm_errors": apm_errors, "apm_env": apm_env}


def test_apm_errors_lists_every_problem_with_the_prefix():
    errors = apm_errors({"provider": "newrelic", "sample_rate": 2, "enabled": True}, "app_apm_")
    assert [e.split(" ")[0] for e in errors] == ["app_apm_provider", "app_apm_sample_rate"]


def test_apm_errors_is_empty_for_good_settings():
    assert apm_errors({"enabled": True, "provider": "datadog", "dd_api_key": API_KEY}) == []


def test_apm_env_returns_visible_and_secret_parts():
    result = apm_env({"enabled": True, "dd_api_key": API_KEY, "dd_site": "us5.datadoghq.com"})
    assert result["secret_env"] == {"DD_API_KEY": API_KEY}
    assert result["env"]["DD_SITE"] == "us5.datadoghq.com"
    assert API_KEY not in json.dumps(result["env"])


def test_apm_env_bad_settings_are_a_filter_error_listing_each_problem_without_the_secret():
    secret = "not a key"
    with pytest.raises(AnsibleFilterError) as info:
        apm_env({"enabled": True, "dd_api_key": secret, "flush_interval_ms": 0}, "app_apm_")
    message = str(info.value)
    assert message.startswith("apm_env: the APM settings have 2 problem(s): ")
    assert "app_apm_flush_interval_ms (APM_FLUSH_INTERVAL) is 0" in message
    assert "app_apm_dd_api_key (DD_API_KEY) contains whitespace" in message
    assert secret not in message


@pytest.mark.parametrize("name", ["apm_errors", "apm_env"])
def test_each_filter_has_a_documentation_file(name):
    with open(os.path.join(FILTER_DIR, name + ".yml"), encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    assert doc["DOCUMENTATION"]["name"] == name
    assert doc["DOCUMENTATION"]["positional"] == "_input, prefix"
    assert doc["DOCUMENTATION"]["options"]["_input"]["required"] is True
    assert "unitehub.platform.%s" % name in doc["EXAMPLES"]
    assert "_value" in doc["RETURN"]


def test_ansible_doc_renders_both_filters():
    ansible_doc = os.path.join(os.path.dirname(sys.executable), "ansible-doc")
    proc = subprocess.run(
        [ansible_doc, "-t", "filter", "--json", "unitehub.platform.apm_errors", "unitehub.platform.apm_env"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    assert docs["unitehub.platform.apm_errors"]["doc"]["short_description"] == \
        "Every problem with the APM settings of the app"
    assert set(docs["unitehub.platform.apm_env"]["return"]["_value"]["contains"]) == {"env", "secret_env"}


TEMPLAR_SCRIPT = """
import json, sys
from ansible.errors import AnsibleError
from ansible.template import Templar, trust_as_template
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

_AnsibleCollectionFinder(paths=[sys.argv[1]])._install()
templar = Templar(loader=None, variables={
    "app_apm_enabled": True,
    "app_apm_provider": "opentelemetry",
    "app_apm_sample_rate": "0.25",
    "app_apm_otlp_endpoint": "http://127.0.0.1:4318/",
    "app_env": {"LOG_LEVEL": "info"},
})
settings = ("{'enabled': app_apm_enabled, 'provider': app_apm_provider, 'sample_rate': app_apm_sample_rate, "
            "'otlp_endpoint': app_apm_otlp_endpoint}")
out = {
    "errors": templar.template(trust_as_template("{{ " + settings + " | unitehub.platform.apm_errors('app_apm_') }}")),
    "env": templar.template(trust_as_template(
        "{{ app_env | combine((" + settings + " | unitehub.platform.apm_env).env) }}")),
}
try:
    templar.template(trust_as_template("{{ {'sample_rate': 7} | unitehub.platform.apm_env('app_apm_') }}"))
    out["raised"] = None
except AnsibleError as exc:
    out["raised"] = str(exc)
print(json.dumps(out))
"""


def test_filters_through_the_templar():
    """As the app role uses them: by FQCN, from role variables, chained with combine.

    Run in a child process, as it installs Ansible's collection loader."""
    proc = subprocess.run([sys.executable, "-c", TEMPLAR_SCRIPT, COLLECTIONS_ROOT], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["errors"] == []
    assert out["env"]["LOG_LEVEL"] == "info"
    assert out["env"]["ENABLE_APM"] == "true"
    assert out["env"]["APM_PROVIDER"] == "opentelemetry"
    assert out["env"]["APM_SAMPLE_RATE"] == "0.25"
    assert out["env"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"
    assert "app_apm_sample_rate (APM_SAMPLE_RATE) is 7, outside 0..1" in out["raised"]
