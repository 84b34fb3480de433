# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The monitoring role against the real Prometheus and exporters of this host.

The service roles and the monitoring role converge with the local inventory (which
creates the exporters' least-privilege users), a second run reports changed=0, and a
check-mode run with --diff changes nothing. Then Prometheus itself is asked: every
target is up, every exporter reads its service, and the app's series carry the labels
app, slot, version and host. The alert rules that the role installed get behaviour
tests with ``promtool test rules``, each firing and not firing, and the configuration
passes ``promtool check config``. Credentials must not show in any process's command
line or environment, nor in the runs' output.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import stat
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
import redis

from ansible_collections.unitehub.platform.tests.integration.ansible_runner import run_playbook, write_playbook
from ansible_collections.unitehub.platform.tests.integration.stack_helpers import REDIS_PORT, SLOT_PORTS, local_secret

pytestmark = pytest.mark.integration

PROMETHEUS = "http://127.0.0.1:9090"
RULES_FILE = "/etc/prometheus/unitehub-rules.yml"
CONFIG_FILE = "/etc/prometheus/prometheus.yml"
SECRET_DIR = "/etc/prometheus/unitehub-exporters"
# The exporters of the local stack: the user each runs as, and its "can read my service" series.
EXPORTERS = {
    "nginx": ("nginx_exporter", "nginx_up"),
    "redis": ("redis_exporter", "redis_up"),
    "postgres": ("postgres_exporter", "pg_up"),
    "pgbouncer": ("pgbouncer_exporter", "pgbouncer_up"),
    "blackbox": ("blackbox_exporter", "probe_success"),
}
# The roles the monitoring role reads from, in site.yml's order, then the role itself.
ROLES = ["postgresql", "pgbouncer", "redis", "nginx", "monitoring"]
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def converge(tmp_path, check=False):
    plays = [{"name": "Stack and monitoring", "hosts": "localhost", "gather_facts": False,
              "roles": ["unitehub.platform.%s" % role for role in ROLES]}]
    return run_playbook(write_playbook(tmp_path, plays), check=check, diff=check)


def prometheus(path, **params):
    url = PROMETHEUS + path + ("?" + urllib.parse.urlencode(params) if params else "")
    with _NO_PROXY.open(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def query(expr):
    return prometheus("/api/v1/query", query=expr)["result"]


def wait_for(what, probe, timeout=90.0, interval=2.0, seen=None):
    """probe() until it returns a true value; fail naming ``what`` and what ``seen()`` says then."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail("no %s within %.0f s%s" % (what, timeout, "; seen: %r" % (seen(),) if seen else ""))
        time.sleep(interval)


def secrets():
    return {"redis": local_secret("redis_monitoring_password"), "pgbouncer": local_secret("pgbouncer_exporter_password")}


@pytest.fixture(scope="module")
def converged(tmp_path_factory):
    """The first converge (which may change things) and the second one (which must not)."""
    directory = tmp_path_factory.mktemp("monitoring")
    first = converge(directory)
    assert first.rc == 0, first.output[-6000:]
    second = converge(directory)
    assert second.rc == 0, second.output[-6000:]
    return first, second, directory


# --- the role ------------------------------------------------------------------------------

def test_a_second_converge_changes_nothing(converged):
    _first, second, _directory = converged
    counts = second.counts()
    assert counts["changed"] == 0 and counts["failed"] == 0, second.stdout[-6000:]


def test_check_mode_with_diff_changes_nothing_and_shows_no_secret(converged):
    first, second, directory = converged
    check = converge(directory, check=True)
    assert check.rc == 0, check.output[-6000:]
    assert check.counts()["changed"] == 0, check.stdout[-6000:]
    for result in (first, second, check):
        for name, value in secrets().items():
            assert value not in result.output, "the %s exporter's password is in a run's output" % name


@pytest.mark.parametrize("bad, named", [
    ({"monitoring_pgbouncer_password": ""}, "monitoring_pgbouncer_password"),
    ({"nginx_status_port": 0}, "nginx_status_port"),
    ({"monitoring_exporter_users": {"nginx": "same", "redis": "same", "postgres": "p", "pgbouncer": "b", "blackbox": "x"}},
     "monitoring_exporter_users"),
])
def test_a_bad_setting_fails_in_validation_before_anything_changes(tmp_path, bad, named):
    plays = [{"name": "Monitoring", "hosts": "localhost", "gather_facts": False, "roles": ["unitehub.platform.monitoring"]}]
    result = run_playbook(write_playbook(tmp_path, plays), extra_vars=bad)
    assert result.rc != 0
    counts = result.counts()
    assert counts["failed"] == 1 and counts["changed"] == 0, result.stdout[-4000:]
    assert named in result.stdout, result.stdout[-4000:]
    assert re.findall(r"^TASK \[(.*?)\]", result.stdout, re.M)[-1].endswith("Check the monitoring settings")


def test_prometheus_listens_on_loopback_only(converged):
    listening = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    local_addresses = [line.split()[3] for line in listening.splitlines()]
    for port in (9090, 9113, 9115, 9121, 9127, 9187):
        on_port = [address for address in local_addresses if address.rsplit(":", 1)[1] == str(port)]
        assert on_port == ["127.0.0.1:%d" % port], (port, on_port)


def test_promtool_accepts_the_configuration(converged):
    result = subprocess.run(["promtool", "check", "config", CONFIG_FILE], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


# --- what Prometheus sees ------------------------------------------------------------------

def test_every_target_is_up_and_every_exporter_reads_its_service(converged):
    def target_health():
        targets = prometheus("/api/v1/targets", state="active")["activeTargets"]
        return sorted((t["labels"]["job"], t["scrapeUrl"], t["health"], t["lastError"]) for t in targets)

    # A target Prometheus has not scraped yet is "unknown": wait for the first scrape of each.
    wait_for("first scrape of every target", lambda: all(health != "unknown" for _j, _u, health, _e in target_health()),
             timeout=60, seen=target_health)
    health = target_health()
    assert {job for job, _url, _health, _error in health} == {"app", "prometheus", *EXPORTERS}, health
    assert all(state == "up" for _job, _url, state, _error in health), health
    for job, (_user, series) in EXPORTERS.items():
        values = wait_for("%s = 1" % series, lambda s=series: [r["value"][1] for r in query(s)] or None)
        assert values == ["1"], (job, series, values)


def test_the_app_series_carry_app_slot_version_and_host(converged):
    running = {}
    for slot, port in SLOT_PORTS.items():
        try:
            with _NO_PROXY.open("http://127.0.0.1:%d/api/version" % port, timeout=5) as response:
                running[slot] = json.load(response)["version"]
        except OSError:
            continue
    assert running, "no slot answers on its port"
    expected = {("unitehub", slot, version, "localhost") for slot, version in running.items()}

    def labelled():
        results = query('unitehub_http_requests_total{job="app"}')
        return {(r["metric"]["app"], r["metric"]["slot"], r["metric"]["version"], r["metric"]["host"]) for r in results}

    # Prometheus picks up rewritten target files within its file_sd refresh (30 s) and scrapes every 15 s.
    wait_for("series labelled %s" % sorted(expected), lambda: labelled() == expected, seen=labelled)


# --- least privilege and secrets ------------------------------------------------------------

def exporter_pids(user):
    uid = pwd.getpwnam(user).pw_uid
    return [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and os.stat("/proc/" + pid).st_uid == uid]


def test_each_exporter_runs_as_its_own_user_with_no_secret_in_its_command_line_or_environment(converged):
    for job, (user, _series) in EXPORTERS.items():
        pids = exporter_pids(user)
        assert pids, "no process runs as %s (%s exporter)" % (user, job)
        for pid in pids:
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                cmdline = handle.read().decode(errors="replace")
            with open("/proc/%d/environ" % pid, "rb") as handle:
                environ = handle.read().decode(errors="replace")
            for name, value in secrets().items():
                assert value not in cmdline and value not in environ, "%s password visible in pid %d (%s)" % (name, pid, user)


SERVICES = {"nginx": ("prometheus-nginx-exporter", 9113), "redis": ("prometheus-redis-exporter", 9121),
            "postgres": ("prometheus-postgres-exporter", 9187), "pgbouncer": ("unitehub-pgbouncer-exporter", 9127),
            "blackbox": ("prometheus-blackbox-exporter", 9115)}


def test_each_exporter_stops_and_starts_again_through_its_init_script(converged):
    for job, (service, port) in SERVICES.items():
        user = EXPORTERS[job][0]
        before = set(exporter_pids(user))
        subprocess.run(["service", service, "stop"], capture_output=True, text=True, check=True, timeout=60)
        wait_for("%s stopped" % service, lambda u=user: not exporter_pids(u), timeout=30, seen=lambda u=user: exporter_pids(u))
        subprocess.run(["service", service, "start"], capture_output=True, text=True, check=True, timeout=60)

        def answers(p=port):
            try:
                with _NO_PROXY.open("http://127.0.0.1:%d/metrics" % p, timeout=5) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for("%s answering again" % service, answers, timeout=60)
        assert before and not before & set(exporter_pids(user)), (service, before)


def test_credential_files_are_readable_by_their_exporter_alone(converged):
    for name, user in (("redis.json", "redis_exporter"), ("pgbouncer.pgpass", "pgbouncer_exporter")):
        info = os.stat(os.path.join(SECRET_DIR, name))
        assert pwd.getpwuid(info.st_uid).pw_name == user
        assert stat.S_IMODE(info.st_mode) == 0o400


def test_the_redis_monitoring_user_reads_statistics_and_nothing_else(converged):
    client = redis.Redis(host="127.0.0.1", port=REDIS_PORT, username="unitehub-monitor",
                         password=local_secret("redis_monitoring_password"), socket_timeout=5)
    try:
        assert client.ping() is True
        assert "redis_version" in client.info()
        for command in (("GET", "unitehub:hits"), ("KEYS", "*"), ("CONFIG", "GET", "*"), ("CLIENT", "LIST"), ("ACL", "LIST")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.execute_command(*command)
    finally:
        client.close()


def test_the_postgresql_monitoring_role_is_in_pg_monitor_only(converged):
    sql = ("SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolpassword IS NULL, "
           "array(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid WHERE m.member = a.oid) "
           "FROM pg_authid a WHERE rolname = 'postgres_exporter'")
    out = subprocess.run(["psql", "-XAtq", "-h", "/var/run/postgresql", "-U", "postgres", "-d", "postgres", "-c", sql],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "f|f|f|f|f|t|{pg_monitor}"


def test_nginx_logs_the_answering_slot_and_serves_stub_status_on_loopback(converged):
    with _NO_PROXY.open("http://127.0.0.1:8089/stub_status", timeout=5) as response:
        assert b"Active connections" in response.read()
    with _NO_PROXY.open("http://127.0.0.1:8080/api/version", timeout=5) as response:
        answered = response.headers["X-Upstream-Slot"]
    with open("/var/log/nginx/unitehub-access.log", encoding="utf-8") as handle:
        lines = [json.loads(line) for line in handle if '"/api/version"' in line]
    assert lines and lines[-1]["slot"] == answered and lines[-1]["status"] == 200


# --- the alert rules, by behaviour ------------------------------------------------------------

SLOT = {"app": "unitehub", "slot": "green", "version": "v2", "host": "lb1"}


def labels(**extra):
    merged = dict(extra)
    return "{" + ",".join('%s="%s"' % item for item in merged.items()) + "}"


def alert_case(name, series, alerts, eval_time="10m"):
    return {"interval": "1m", "input_series": [{"series": s, "values": v} for s, v in series],
            "alert_rule_test": [{"eval_time": eval_time, "alertname": name, "exp_alerts": alerts}], "name": name}


RULE_CASES = {
    "UnitehubBreakerOpen": (
        [("unitehub_circuit_breaker_state" + labels(**SLOT, breaker="redis", state="OPEN"), "1x15")],
        [("unitehub_circuit_breaker_state" + labels(**SLOT, breaker="redis", state="OPEN"), "0x15")],
        {**SLOT, "breaker": "redis", "severity": "warning"},
        "Circuit breaker redis is open on slot green of lb1",
    ),
    "UnitehubHighErrorRate": (
        [("unitehub_http_requests_total" + labels(**SLOT, route="/", status="200"), "0+90x15"),
         ("unitehub_http_requests_total" + labels(**SLOT, route="/", status="500"), "0+10x15")],
        [("unitehub_http_requests_total" + labels(**SLOT, route="/", status="200"), "0+98x15"),
         ("unitehub_http_requests_total" + labels(**SLOT, route="/", status="500"), "0+2x15")],
        {**SLOT, "severity": "critical"},
        "Slot green (v2) on lb1 answers 10% of its requests with 5xx",
    ),
    "PgBouncerClientsWaiting": (
        [("pgbouncer_pools_cl_waiting" + labels(host="db1", database="unitehub", user="unitehub"), "3x15")],
        [("pgbouncer_pools_cl_waiting" + labels(host="db1", database="unitehub", user="unitehub"), "0x15")],
        {"host": "db1", "database": "unitehub", "severity": "warning"},
        "3 clients wait for a server connection to unitehub in PgBouncer on db1",
    ),
    "UnitehubSlotDown": (
        [("up" + labels(job="app", instance="127.0.0.1:3009", **SLOT), "0x15")],
        [("up" + labels(job="app", instance="127.0.0.1:3009", **SLOT), "1x15")],
        {"job": "app", "instance": "127.0.0.1:3009", **SLOT, "severity": "critical"},
        "Slot green (v2) on lb1 is down",
    ),
    "CertificateExpiresSoon": (
        # At 10 minutes in, time() is 600 s: 600 + 5 days of validity is left, then 600 + 30 days.
        [("probe_ssl_earliest_cert_expiry" + labels(job="blackbox", instance="https://127.0.0.1:8443/"), "432600x15")],
        [("probe_ssl_earliest_cert_expiry" + labels(job="blackbox", instance="https://127.0.0.1:8443/"), "2592600x15")],
        {"job": "blackbox", "instance": "https://127.0.0.1:8443/", "severity": "warning"},
        "The certificate of https://127.0.0.1:8443/ expires in 5d 0h 0m 0s",
    ),
}


def run_rule_tests(tmp_path, tests):
    path = tmp_path / "rules_test.yml"
    path.write_text(json.dumps({"rule_files": [RULES_FILE], "evaluation_interval": "1m", "tests": tests}))
    return subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True, check=False)


def test_every_installed_rule_has_a_behaviour_case(converged):
    with open(RULES_FILE, encoding="utf-8") as handle:
        installed = {line.split(":", 1)[1].strip() for line in handle if line.strip().startswith("- alert:")}
    assert installed == set(RULE_CASES)


@pytest.mark.parametrize("alert", sorted(RULE_CASES))
def test_the_rule_fires_on_its_condition_and_stays_quiet_without_it(converged, tmp_path, alert):
    firing, quiet, alert_labels, summary = RULE_CASES[alert]
    tests = [alert_case(alert, firing, [{"exp_labels": alert_labels, "exp_annotations": {"summary": summary}}]),
             alert_case(alert, quiet, [])]
    result = run_rule_tests(tmp_path, tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_condition_shorter_than_the_for_duration_does_not_fire(converged, tmp_path):
    # Down at one evaluation only: pending then, resolved at the next, never firing.
    blip = [("up" + labels(job="app", instance="127.0.0.1:3009", **SLOT), "1 0 1 1 1")]
    result = run_rule_tests(tmp_path, [alert_case("UnitehubSlotDown", blip, [], eval_time="1m"),
                                       alert_case("UnitehubSlotDown", blip, [], eval_time="3m")])
    assert result.returncode == 0, result.stdout + result.stderr
