# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the unitehub.platform.health_probe module.

The module runs in-process against an http.server on 127.0.0.1 started here;
Docker is replaced by a fake inspect function. One test runs the module through
ansible-playbook to cover the real module packaging.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from http.server import BaseHTTPRequestHandler

import docker.errors
import pytest
import yaml

from ansible_collections.unitehub.platform.plugins.module_utils import postgres_client
from ansible_collections.unitehub.platform.plugins.module_utils.health_targets import TARGET_DEFAULTS
from ansible_collections.unitehub.platform.plugins.modules import health_probe
from ansible_collections.unitehub.platform.tests.support.loopback import free_port, serve_http

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))))

FAIL_DOC = {
    "status": "fail",
    "version": "v2",
    "checks": {
        "database:responseTime": [{"status": "fail", "observedValue": 2003, "observedUnit": "ms",
                                   "output": "connection refused"}],
        "ai:config": [{"status": "pass", "observedValue": True}],
    },
}
PASS_DOC = {"status": "pass", "version": "v2", "checks": {"ai:config": [{"status": "pass"}]}}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/slow":
            time.sleep(1.0)
        doc, code = (FAIL_DOC, 503) if self.path == "/fail" else (PASS_DOC, 200)
        data = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/health+json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-App-Slot", "blue")
        self.send_header("X-App-Version", "v2")
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def base_url():
    with serve_http(Handler) as url:
        yield url


@pytest.fixture
def probe(run_module):
    """``probe(args, check_mode=False)`` runs the module and returns (failed, result)."""

    def run(args, check_mode=False):
        rc, result, _out = run_module(health_probe, args, check_mode=check_mode)
        return rc != 0, result

    return run


# ---------------------------------------------------------------------------
# Documentation matches the code
# ---------------------------------------------------------------------------


def _check_options(documented, spec, where):
    assert set(documented) == set(spec), where
    for name, option in spec.items():
        doc = documented[name]
        assert doc["type"] == option["type"], "%s.%s type" % (where, name)
        assert doc.get("default") == option.get("default"), "%s.%s default" % (where, name)
        assert doc.get("choices") == option.get("choices"), "%s.%s choices" % (where, name)
        assert doc.get("elements") == option.get("elements"), "%s.%s elements" % (where, name)
        assert doc.get("aliases") == option.get("aliases"), "%s.%s aliases" % (where, name)
        assert bool(option.get("no_log")) == (name == "login_password"), "%s.%s no_log" % (where, name)
        if "options" in option:
            _check_options(doc["suboptions"], option["options"], "%s.%s" % (where, name))


def test_documentation_matches_the_argument_spec():
    documented = yaml.safe_load(health_probe.DOCUMENTATION)
    assert documented["module"] == "health_probe"
    assert documented["attributes"]["check_mode"]["support"] == "full"
    _check_options(documented["options"], health_probe.argument_spec(), "options")


def test_target_options_cover_every_probe_setting():
    suboptions = set(health_probe.argument_spec()["targets"]["options"])
    assert suboptions == set(TARGET_DEFAULTS)


def test_examples_use_fqcn_and_parse():
    examples = yaml.safe_load(health_probe.EXAMPLES)
    for task in examples:
        modules = [key for key in task if "." in key]
        assert modules and all(key.startswith(("unitehub.platform.", "ansible.builtin.")) for key in modules), task


def test_return_documents_every_returned_key(probe, base_url):
    documented = set(yaml.safe_load(health_probe.RETURN))
    _unused, single = probe({"type": "http", "url": base_url + "/ok"})
    _unused, many = probe({"targets": [{"type": "http", "url": base_url + "/ok"}]})
    returned = (set(single) | set(many)) - {"changed", "failed", "invocation", "warnings", "deprecations"}
    assert returned <= documented, returned - documented
    assert set(many["target_results"][0]) <= documented | {"name", "type"}


# ---------------------------------------------------------------------------
# One target
# ---------------------------------------------------------------------------


def test_a_healthy_endpoint_passes(probe, base_url):
    failed, result = probe({"type": "http", "url": base_url + "/ok", "consecutive_successes": 2,
                            "interval": 0.1})
    assert not failed
    assert result["changed"] is False
    assert (result["status"], result["ok"], result["http_status"], result["attempts"]) == ("pass", True, 200, 2)
    assert (result["slot"], result["version"], result["reason"]) == ("blue", "v2", "passed")
    assert result["checks"] == {"ai:config": [{"status": "pass"}]}
    assert result["failing"] == []


def test_an_unhealthy_endpoint_fails_naming_the_check(probe, base_url):
    url = base_url + "/fail"
    failed, result = probe({"type": "http", "url": url, "timeout": 1, "interval": 0.5})
    assert failed
    assert re.fullmatch(r"%s is fail after 3 attempts in 1\.\d s: database:responseTime fail \(connection refused\)"
                        % re.escape(url), result["msg"]), result["msg"]
    assert result["failing"] == [{"name": "database:responseTime", "status": "fail", "output": "connection refused",
                                  "observedValue": 2003, "observedUnit": "ms"}]
    assert (result["status"], result["http_status"], result["reason"]) == ("fail", 503, "timeout")


def test_fail_on_unhealthy_false_reports_without_failing(probe, base_url):
    failed, result = probe({"type": "http", "url": base_url + "/fail", "timeout": 0,
                            "fail_on_unhealthy": False})
    assert not failed
    assert (result["ok"], result["status"], result["attempts"]) == (False, "fail", 1)


def test_check_mode_still_probes(probe, base_url):
    failed, result = probe({"type": "http", "url": base_url + "/fail", "timeout": 0}, check_mode=True)
    assert failed and result["http_status"] == 503
    failed, result = probe({"type": "http", "url": base_url + "/ok"}, check_mode=True)
    assert not failed and result["status"] == "pass" and result["changed"] is False


def test_a_closed_port_is_refused_clearly(probe):
    port = free_port()
    failed, result = probe({"type": "tcp", "login_port": port, "timeout": 0})
    assert failed
    assert re.fullmatch(r"tcp://127\.0\.0\.1:%d is fail after 1 attempt in \d\.\d s: connection refused" % port,
                        result["msg"]), result["msg"]
    assert result["error"] == "connection refused"


def test_the_password_never_appears_in_the_output(probe):
    secret = "hunter2-" + "x7Qz"
    failed, result = probe({"type": "redis", "login_port": free_port(), "login_password": secret, "timeout": 0,
                            "targets": [{"name": "cache", "login_password": secret}]})
    assert failed
    assert secret not in json.dumps(result)


@pytest.mark.parametrize("old, new", [("host", "login_host"), ("port", "login_port"), ("user", "login_user"),
                                      ("password", "login_password"), ("database", "login_db")])
def test_the_old_connection_option_names_still_work_and_are_deprecated(probe, old, new):
    port = free_port()
    args = {"type": "postgres" if old in ("user", "password", "database") else "tcp", "login_port": port,
            "timeout": 0, old: str(port) if old == "port" else "unitehub"}
    if old == "host":
        args[old] = "127.0.0.1"
    failed, result = probe(args)
    assert failed and "refused" in result["error"].lower(), "the probe ran with the aliased option"
    deprecations = json.dumps(result.get("deprecations", []))
    assert "Alias '%s' is deprecated" % old in deprecations and '"2.0.0"' in deprecations, deprecations


# ---------------------------------------------------------------------------
# Many targets
# ---------------------------------------------------------------------------


def test_targets_are_probed_concurrently_and_reported_in_order(probe, base_url):
    started = time.monotonic()
    failed, result = probe({
        "type": "http",
        "timeout": 0,
        "request_timeout": 3,
        "fail_on_unhealthy": False,
        "targets": [
            {"name": "slow-1", "url": base_url + "/slow"},
            {"name": "slow-2", "url": base_url + "/slow"},
            {"name": "slow-3", "url": base_url + "/slow"},
            {"name": "broken", "url": base_url + "/fail"},
            {"name": "port", "type": "tcp", "login_port": free_port()},
        ],
    })
    took = time.monotonic() - started
    assert not failed
    assert took < 2.0, "three 1 s probes took %.1f s: not concurrent" % took
    assert [r["name"] for r in result["target_results"]] == ["slow-1", "slow-2", "slow-3", "broken", "port"]
    assert [r["status"] for r in result["target_results"]] == ["pass", "pass", "pass", "fail", "fail"]
    assert (result["status"], result["ok"]) == ("fail", False)
    assert result["target_results"][4]["target"].startswith("tcp://127.0.0.1:")
    assert "database:responseTime fail (connection refused)" in result["msg"]
    assert "connection refused" in result["msg"].split(";")[1]


def test_targets_fail_the_task_when_one_is_unhealthy(probe, base_url):
    failed, result = probe({"timeout": 0, "targets": [
        {"type": "http", "url": base_url + "/ok"},
        {"type": "http", "url": base_url + "/fail", "name": "green"},
    ]})
    assert failed
    assert result["msg"].startswith("%s/fail is fail after 1 attempt" % base_url)
    assert result["target_results"][0]["ok"] is True


def test_all_healthy_targets(probe, base_url):
    failed, result = probe({"type": "http", "targets": [{"url": base_url + "/ok"}, {"url": base_url}]})
    assert not failed
    assert (result["ok"], result["status"], result["msg"]) == (True, "pass", "2 targets healthy")


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    ({"type": "http"}, "type http needs url, e.g. http://127.0.0.1:3008/api/health/system"),
    ({"type": "tcp"}, "type tcp needs login_port"),
    ({"type": "http", "url": "http://127.0.0.1:1/", "interval": 0}, "interval 0 must be more than 0 seconds"),
    ({"targets": []}, "targets is empty"),
    ({"targets": [{"name": "db", "type": "mysql"}]}, "value of type must be one of"),
    ({"targets": [{"name": "lb"}]}, "lb: type None is not one of http, tcp, redis, postgres, pgbouncer"),
    ({"url": "http://127.0.0.1:1/"}, "one of the following is required: type, targets"),
])
def test_bad_input_fails_with_a_clear_message(probe, args, message):
    failed, result = probe(args)
    assert failed
    assert message in result["msg"]


def test_missing_psycopg_is_reported(probe, monkeypatch):
    # psycopg is imported on a database probe's first use, through postgres_client.
    monkeypatch.setattr(postgres_client, "HAS_PSYCOPG", False)
    failed, result = probe({"type": "postgres"})
    assert failed
    assert "Failed to import the required Python library (psycopg)" in result["msg"]


def test_missing_docker_sdk_is_reported(probe, monkeypatch):
    monkeypatch.setattr(health_probe, "HAS_DOCKER", False)
    failed, result = probe({"type": "tcp", "login_port": 1, "container": "unitehub-blue"})
    assert failed
    assert "Failed to import the required Python library (docker)" in result["msg"]


# ---------------------------------------------------------------------------
# Container watch
# ---------------------------------------------------------------------------


def fake_container(exits_after=None, restart_after=None):
    """An inspect function whose container exits (or restarts) some real seconds after creation."""
    born = time.monotonic()

    def inspect():
        age = time.monotonic() - born
        running = exits_after is None or age < exits_after
        restarts = 1 if restart_after is not None and age >= restart_after else 0
        return {"RestartCount": restarts,
                "State": {"Status": "running" if running else "exited", "Running": running, "Restarting": False,
                          "Paused": False, "OOMKilled": False, "ExitCode": 0 if running else 1,
                          "StartedAt": "2026-01-01T00:00:00Z", "Error": ""}}

    return inspect


def test_a_container_exit_ends_the_wait_within_a_second(probe, monkeypatch):
    monkeypatch.setattr(health_probe, "docker_inspector", lambda name: fake_container(exits_after=0.5))
    url = "http://127.0.0.1:%d/api/health/system" % free_port()
    started = time.monotonic()
    failed, result = probe({"type": "http", "url": url, "container": "unitehub-green",
                            "interval": 5, "timeout": 60})
    took = time.monotonic() - started
    assert failed
    assert took < 1.5, "exit noticed after %.2f s" % took
    assert result["msg"].startswith("container unitehub-green has exited (exit code 1) while waiting for %s" % url)
    assert result["msg"].endswith("; last probe fail: connection refused)")
    assert (result["reason"], result["status"], result["attempts"]) == ("container", "fail", 1)


def test_a_container_restart_ends_the_wait(probe, monkeypatch, base_url):
    monkeypatch.setattr(health_probe, "docker_inspector", lambda name: fake_container(restart_after=0.3))
    failed, result = probe({"type": "http", "url": base_url + "/ok", "container": "unitehub-blue",
                            "consecutive_successes": 100, "interval": 5, "timeout": 60})
    assert failed
    assert result["msg"].startswith("container unitehub-blue restarted (RestartCount 0 -> 1")


def test_an_unknown_container_is_refused(probe, monkeypatch):
    monkeypatch.setattr(health_probe, "docker_inspector", lambda name: (lambda: None))
    failed, result = probe({"type": "tcp", "login_port": 1, "container": "unitehub-pink"})
    assert failed
    assert result["msg"] == "container 'unitehub-pink' does not exist; check the name with docker ps -a"


def test_an_unreachable_docker_daemon_is_reported(probe, monkeypatch):
    def broken(name):
        raise docker.errors.DockerException("Error while fetching server API version")

    monkeypatch.setattr(health_probe, "docker_inspector", broken)
    failed, result = probe({"type": "tcp", "login_port": 1, "container": "unitehub-blue"})
    assert failed
    assert result["msg"].startswith("tcp://127.0.0.1:1: cannot inspect container unitehub-blue through the Docker "
                                    "daemon (Error while fetching server API version)")


def test_docker_inspector_maps_not_found_to_none(monkeypatch):
    class FakeApi:
        def inspect_container(self, name):
            if name == "gone":
                raise docker.errors.NotFound("No such container: gone")
            return {"Name": "/" + name}

    monkeypatch.setattr(health_probe, "docker_api_client", FakeApi)
    assert health_probe.docker_inspector("gone")() is None
    assert health_probe.docker_inspector("unitehub-blue")() == {"Name": "/unitehub-blue"}


# ---------------------------------------------------------------------------
# Through ansible-playbook
# ---------------------------------------------------------------------------


def test_module_runs_through_ansible_playbook(tmp_path, base_url):
    playbook = tmp_path / "probe.yml"
    playbook.write_text(textwrap.dedent("""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - name: Probe
              unitehub.platform.health_probe:
                timeout: 0
                fail_on_unhealthy: false
                targets:
                  - name: ok
                    type: http
                    url: %s/ok
                  - name: broken
                    type: http
                    url: %s/fail
              register: probe
            - name: Check
              ansible.builtin.assert:
                that:
                  - probe.target_results | map(attribute='status') | list == ['pass', 'fail']
                  - probe.target_results[1].failing[0].name == 'database:responseTime'
                  - probe is not changed
        """ % (base_url, base_url)))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO_ROOT, "ansible.cfg"))
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", "ansible_python_interpreter=%s" % sys.executable, str(playbook)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok=2" in proc.stdout and "failed=0" in proc.stdout
