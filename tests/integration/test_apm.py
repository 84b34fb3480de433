# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""APM end to end: the reference app exporting spans and metrics through the OpenTelemetry
SDK to a real OTLP/HTTP receiver, a collector outage that costs requests nothing and is
logged once, /metrics that moves with traffic, and the app role handing validated APM
settings to a container.

The receiver is a small ``http.server`` on loopback that accepts OTLP/HTTP on
``/v1/traces`` and ``/v1/metrics`` and decodes the app's protobuf exports with
opentelemetry-proto. The app runs as a subprocess
(``python -m unitehub_app``) on a free loopback port and is stopped by its PID.
Every wait is bounded.
"""

from __future__ import annotations

import http.client
import json
import os
import stat
import subprocess
import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.unitehub.platform.tests.app.conftest import stop_pid
from ansible_collections.unitehub.platform.tests.integration.ansible_runner import REPO_ROOT, role_play, run_plays
from ansible_collections.unitehub.platform.tests.integration.docker_helpers import throwaway_app
from ansible_collections.unitehub.platform.tests.support.loopback import free_port
from ansible_collections.unitehub.platform.tests.support.otlp import OtlpReceiver
from ansible_collections.unitehub.platform.tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

APP_DIR = os.path.join(REPO_ROOT, "examples", "app")
SERVICE_NAME = "unite-hub-apm-it"
FLUSH_MS = 200
APP_ROLE = "unitehub.platform.app"


# -- helpers ---------------------------------------------------------------------------


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100)
    return ordered[int(rank) - 1]


class App:
    """The reference app as a subprocess on a free loopback port."""

    def __init__(self, workdir, env: dict):
        self.port = free_port()
        self.stdout_path = os.path.join(str(workdir), "app-%d.out" % self.port)
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": APP_DIR,
            "PYTHONDONTWRITEBYTECODE": "1",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "APP_SLOT": "blue",
            "APP_VERSION": "v9.9.9-apm",
            "TMPDIR": str(workdir),
        }
        environment.update(env)
        with open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "unitehub_app"], cwd=APP_DIR, env=environment,
                                         stdout=out, stderr=subprocess.STDOUT)
        wait_until(self._serving, 15, what="the app to serve /api/health/live")

    def _serving(self):
        if self.proc.poll() is not None:
            raise AssertionError("the app exited with %s:\n%s" % (self.proc.returncode, self.output()))
        try:
            return self.get("/api/health/live")[0] == 200
        except OSError:
            return False

    def get(self, path):
        """(status, body, seconds), one connection per request.

        A fresh connection per request, as nginx opens them without upstream keepalive: on a
        reused connection this app's response pays a delayed-ACK stall (headers and body go out
        in two writes without TCP_NODELAY) that would drown what is measured here."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            start = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            return response.status, body, time.perf_counter() - start
        finally:
            conn.close()

    def latencies(self, path, count):
        out = []
        for _unused in range(count):
            status, _body, elapsed = self.get(path)
            assert status == 200
            out.append(elapsed)
        return out

    def metrics(self):
        """{(sample name, sorted labels): value} from /metrics, parsed by prometheus_client."""
        status, body, _unused = self.get("/metrics")
        assert status == 200
        samples = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def output(self):
        with open(self.stdout_path, encoding="utf-8") as handle:
            return handle.read()

    def events(self, name):
        records = [json.loads(line) for line in self.output().splitlines() if line.strip()]
        return [r for r in records if r.get("event") == name]

    def stop(self):
        stop_pid(self.proc, timeout=15)


@pytest.fixture
def start_app(tmp_path):
    started = []

    def start(env):
        app = App(tmp_path, env)
        started.append(app)
        return app

    yield start
    for app in started:
        app.stop()


def apm_env(endpoint, **extra):
    env = {
        "ENABLE_APM": "true",
        "APM_PROVIDER": "opentelemetry",
        "APM_SERVICE_NAME": SERVICE_NAME,
        "APM_SAMPLE_RATE": "1.0",
        "APM_FLUSH_INTERVAL": str(FLUSH_MS),
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
    }
    env.update(extra)
    return env


def attributes(items):
    return {a["key"]: next(iter(a["value"].values())) for a in items}


REQUESTS = ("unitehub_http_requests_total", (("method", "GET"), ("route", "/api/version"), ("status", "200")))
DURATION_COUNT = ("unitehub_http_request_duration_seconds_count", REQUESTS[1])


def spans_counter(samples, outcome):
    return samples[("unitehub_apm_spans_total", (("outcome", outcome),))]


# -- the app against a real receiver -----------------------------------------------------


def test_spans_arrive_with_service_name_route_and_status(otlp_receiver, start_app):
    app = start_app(apm_env(otlp_receiver.endpoint, DD_ENV="it"))
    for _unused in range(5):
        assert app.get("/api/version")[0] == 200
    assert app.get("/api/admin/breakers/redis/reset")[0] == 401  # a templated route, no admin token
    assert app.get("/no/such/page")[0] == 404

    wait_until(lambda: {"GET /api/version", "GET /api/admin/breakers/{name}/{action}", "GET unmatched"}
               <= {s["name"] for s in otlp_receiver.spans()}, 5, what="the spans at the receiver")

    assert otlp_receiver.rejected == []
    resource = attributes(otlp_receiver.resource_spans()[0]["resource"]["attributes"])
    assert resource["service.name"] == SERVICE_NAME
    assert resource["service.version"] == "v9.9.9-apm"
    assert resource["deployment.environment"] == "it"
    by_name = {}
    for span in otlp_receiver.spans():
        by_name.setdefault(span["name"], []).append(span)
    assert len(by_name["GET /api/version"]) == 5
    version = attributes(by_name["GET /api/version"][0]["attributes"])
    assert version == {"http.request.method": "GET", "http.route": "/api/version", "http.response.status_code": "200"}
    templated = attributes(by_name["GET /api/admin/breakers/{name}/{action}"][0]["attributes"])
    assert templated["http.route"] == "/api/admin/breakers/{name}/{action}"  # the route, not the raw path
    assert templated["http.response.status_code"] == "401"
    unmatched = attributes(by_name["GET unmatched"][0]["attributes"])
    assert unmatched["http.route"] == "unmatched" and unmatched["http.response.status_code"] == "404"
    for span in otlp_receiver.spans():
        assert len(span["traceId"]) == 32 and len(span["spanId"]) == 16
        assert int(span["endTimeUnixNano"]) >= int(span["startTimeUnixNano"])
        assert span["kind"] == 2  # SERVER

    # The request-duration histogram leaves through the same SDK, every flush interval.
    def version_requests():
        for metric in otlp_receiver.metrics():
            if metric["name"] == "http.server.request.duration":
                for point in metric["histogram"]["dataPoints"]:
                    if attributes(point["attributes"])["http.route"] == "/api/version":
                        return int(point["count"])
        return None

    assert wait_until(lambda: version_requests() == 5, 5, what="http.server.request.duration at the receiver")


def test_a_receiver_outage_costs_requests_nothing_and_is_logged_once(otlp_receiver, start_app):
    app = start_app(apm_env(otlp_receiver.endpoint))
    app.latencies("/api/version", 50)  # warm up
    up = app.latencies("/api/version", 300)
    wait_until(lambda: sum(1 for s in otlp_receiver.spans() if s["name"] == "GET /api/version") >= 350, 10,
               what="the receiver-up spans to be exported")
    assert app.events("apm_export_failed") == []

    port = otlp_receiver.port
    otlp_receiver.close()  # the collector goes away: connections to its port are refused

    def failed_at_least(floor):
        value = spans_counter(app.metrics(), "failed")
        return value if value >= floor else None

    down = []
    rounds = [spans_counter(app.metrics(), "failed")]
    for _unused in range(3):  # three bursts, each exported (and failing) in its own flush round
        down += app.latencies("/api/version", 100)
        rounds.append(wait_until(lambda: failed_at_least(rounds[-1] + 100), 10, what="a failed export round"))

    up_p50, up_p99 = percentile(up, 50), percentile(up, 99)
    down_p50, down_p99 = percentile(down, 50), percentile(down, 99)
    print("\nreceiver up:   p50 %.3f ms  p99 %.3f ms\nreceiver down: p50 %.3f ms  p99 %.3f ms"
          % (up_p50 * 1e3, up_p99 * 1e3, down_p50 * 1e3, down_p99 * 1e3))
    assert down_p99 <= 3 * up_p99 + 0.005, (up_p99, down_p99)
    assert down_p50 <= 2 * up_p50 + 0.002, (up_p50, down_p50)

    # Spans failed in three separate rounds, but the outage was logged once.
    assert rounds[0] < rounds[1] < rounds[2] < rounds[3]
    failed = app.events("apm_export_failed")
    assert len(failed) == 1, failed
    assert failed[0]["level"] == "warning"
    # Spans and metrics leave on the same interval: the outage is reported by whichever failed first.
    assert failed[0]["endpoint"] in ["http://127.0.0.1:%d/v1/%s" % (port, s) for s in ("traces", "metrics")]
    assert "ConnectionRefusedError" in failed[0]["error"]
    assert app.events("apm_export_recovered") == []

    # The collector comes back on the same port: one recovery line, spans flow again.
    back = OtlpReceiver(port)
    try:
        for _unused in range(5):
            app.get("/api/version")
        wait_until(lambda: app.events("apm_export_recovered"), 10, what="the recovery log line")
        wait_until(lambda: any(s["name"] == "GET /api/version" for s in back.spans()), 10, what="spans after recovery")
    finally:
        back.close()
    assert len(app.events("apm_export_recovered")) == 1
    assert len(app.events("apm_export_failed")) == 1


def test_metrics_parse_and_move_with_traffic(otlp_receiver, start_app):
    app = start_app(apm_env(otlp_receiver.endpoint))
    before = app.metrics()
    for _unused in range(40):
        assert app.get("/api/version")[0] == 200
    for _unused in range(3):
        assert app.get("/missing")[0] == 404
    missing = ("unitehub_http_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "404")))

    # The app records a request once its response is out, so a scrape right after the
    # last response may be a moment early: wait (bounded) for the counts to arrive.
    def settled():
        samples = app.metrics()
        if samples[REQUESTS] - before.get(REQUESTS, 0) >= 40 and samples.get(missing, 0) >= 3:
            return samples
        return None

    after = wait_until(settled, 5, what="the request counters to catch up")
    assert after[REQUESTS] - before.get(REQUESTS, 0) == 40  # no more than were sent either
    assert after[DURATION_COUNT] - before.get(DURATION_COUNT, 0) == 40
    assert after[missing] == 3
    scrape = ("unitehub_http_requests_total", (("method", "GET"), ("route", "/metrics"), ("status", "200")))
    assert after[scrape] >= before.get(scrape, 0) + 1  # earlier scrapes are counted by later ones
    assert after[("unitehub_http_requests_in_flight", ())] >= 1  # the scrape itself

    # Histogram buckets are cumulative and end at the count.
    buckets = sorted((float(dict(labels)["le"]), value) for (name, labels), value in after.items()
                     if name == "unitehub_http_request_duration_seconds_bucket"
                     and dict(labels)["route"] == "/api/version")
    assert [v for _unused, v in buckets] == sorted(v for _unused, v in buckets)
    assert buckets[-1] == (float("inf"), after[DURATION_COUNT])

    # The exported-span counter agrees with what the receiver got (each scrape adds a span
    # of its own, exported at the next flush, so compare between flushes).
    wait_until(lambda: spans_counter(app.metrics(), "exported") >= 44, 10, what="the exported counter")
    wait_until(lambda: spans_counter(app.metrics(), "exported") == len(otlp_receiver.spans()), 10,
               what="the exported counter to match the receiver")
    assert spans_counter(after, "failed") == 0 and spans_counter(after, "dropped") == 0


def test_without_apm_no_span_leaves_the_app(otlp_receiver, start_app):
    app = start_app(apm_env(otlp_receiver.endpoint, ENABLE_APM="false"))
    for _unused in range(20):
        assert app.get("/api/version")[0] == 200
    time.sleep(3 * FLUSH_MS / 1000)
    assert otlp_receiver.received == []

    def counted():
        samples = app.metrics()
        return samples if samples.get(REQUESTS, 0) >= 20 else None

    samples = wait_until(counted, 5, what="the 20 requests on /metrics")  # recorded with APM off too
    assert samples[REQUESTS] == 20
    assert spans_counter(samples, "exported") == 0


# -- the app role: validated settings into the container ------------------------------------


@pytest.fixture
def role_app(tmp_path):
    """(docker client, role variables) of a throwaway app; removed afterwards."""
    with throwaway_app(tmp_path, "uhapm") as app:
        yield app


def test_role_refuses_bad_apm_settings_before_anything_changes(tmp_path, role_app):
    client, variables = role_app
    bad = dict(variables, app_apm_enabled=True, app_apm_provider="datadog", app_apm_sample_rate=1.5,
               app_apm_flush_interval_ms=0, app_apm_dd_site="app.datadoghq.com",
               app_apm_otlp_endpoint="http://127.0.0.1:4318/v1/traces?x=1")
    proc = run_plays(tmp_path, role_play(APP_ROLE, variables=bad))
    assert proc.counts()["failed"] == 1 and proc.counts()["changed"] == 0, proc.stdout
    for message in (
        "app_apm_sample_rate (APM_SAMPLE_RATE) is 1.5, outside 0..1",
        "app_apm_flush_interval_ms (APM_FLUSH_INTERVAL) is 0",
        "app_apm_dd_site (DD_SITE) is 'app.datadoghq.com', not a known Datadog site (did you mean 'datadoghq.com'?)",
        "app_apm_otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT) is 'http://127.0.0.1:4318/v1/traces?x=1', which has a "
        "query string",
        "app_apm_dd_api_key (DD_API_KEY) is empty, but APM is enabled with the datadog provider",
    ):
        assert message in proc.stdout, message
    assert client.containers.list(all=True, filters={"label": "io.unitehub.app=%s" % variables["app_name"]}) == []
    assert client.images.list(name=variables["app_image"]) == []
    assert not os.path.exists(variables["app_secrets_dir"])


def test_the_validate_entry_point_checks_apm_settings_and_changes_nothing(tmp_path):
    """What a deploy's preflight runs before it takes the lock."""

    def play(**apm):
        return [{"name": "Validate", "hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "Validate the app inputs", "ansible.builtin.include_role": {
                "name": "unitehub.platform.app", "tasks_from": "validate"}, "vars": apm}]}]

    good = run_plays(tmp_path, play(app_apm_enabled=True, app_apm_provider="opentelemetry",
                                    app_apm_otlp_endpoint="https://otel.example.com:4318"))
    assert good.counts()["failed"] == 0 and good.counts()["changed"] == 0, good.stdout
    key = "k3y with a space"
    bad = run_plays(tmp_path, play(app_apm_enabled=True, app_apm_dd_api_key=key, app_apm_dd_env="prod env"))
    assert bad.counts()["failed"] == 1 and bad.counts()["changed"] == 0, bad.stdout
    assert "app_apm_dd_api_key (DD_API_KEY) contains whitespace or a control character (value hidden)" in bad.stdout
    assert "app_apm_dd_env (DD_ENV) is 'prod env', which is not a usable name" in bad.stdout
    assert key not in bad.stdout


def test_role_hands_the_apm_environment_to_the_container_and_hides_the_key(tmp_path, role_app):
    client, variables = role_app
    key = "5f2c0e9d8b7a6f5e4d3c2b1a0f9e8d7c"
    good = dict(variables, app_apm_enabled=True, app_apm_provider="datadog", app_apm_dd_api_key=key,
                app_apm_dd_site="datadoghq.eu", app_apm_sample_rate=0.25, app_apm_service_name="shop")
    first = run_plays(tmp_path, role_play(APP_ROLE, variables=good), verbosity=1, diff=True)
    assert first.counts()["failed"] == 0, first.stdout
    assert key not in first.stdout + first.stderr

    container = client.containers.get(variables["app_name"] + "-green")
    env = dict(item.partition("=")[::2] for item in container.attrs["Config"]["Env"])
    assert env["ENABLE_APM"] == "true" and env["APM_PROVIDER"] == "datadog"
    assert env["APM_SERVICE_NAME"] == "shop" and env["DD_SERVICE"] == "shop"
    assert env["APM_SAMPLE_RATE"] == "0.25" and env["APM_FLUSH_INTERVAL"] == "10000"
    assert env["DD_SITE"] == "datadoghq.eu" and env["DD_ENV"] == "production"
    # The key is a file the app reads (DD_API_KEY_FILE), never a value in the environment.
    assert env["DD_API_KEY_FILE"] == "/run/secrets/DD_API_KEY" and "DD_API_KEY" not in env
    assert key not in str(container.attrs)

    secrets = os.path.join(variables["app_secrets_dir"], variables["app_name"] + "-green")
    record = os.path.join(secrets, "DD_API_KEY")
    assert stat.S_IMODE(os.stat(record).st_mode) == 0o400
    with open(record, encoding="utf-8") as handle:
        assert handle.read() == key
    assert "DD_API_KEY" in os.listdir(secrets) and "ENABLE_APM" not in os.listdir(secrets)  # the secret part only

    again = run_plays(tmp_path, role_play(APP_ROLE, variables=good), check=True, diff=True)
    assert again.counts()["changed"] == 0 and again.counts()["failed"] == 0, again.stdout
    assert key not in again.stdout

    # Switching the provider takes the key out of the container and the record.
    otel = dict(good, app_apm_provider="opentelemetry", app_apm_otlp_endpoint="http://127.0.0.1:4318")
    switched = run_plays(tmp_path, role_play(APP_ROLE, variables=otel), diff=True)
    assert switched.counts()["failed"] == 0, switched.stdout
    assert key not in switched.stdout
    env = dict(item.partition("=")[::2] for item in
               client.containers.get(variables["app_name"] + "-green").attrs["Config"]["Env"])
    assert "DD_API_KEY" not in env and "DD_API_KEY_FILE" not in env and env["APM_PROVIDER"] == "opentelemetry"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"
    assert "DD_API_KEY" not in os.listdir(secrets)

    removed = run_plays(tmp_path, role_play(APP_ROLE, variables=dict(otel, app_state="absent")))
    assert removed.counts()["failed"] == 0, removed.stdout
    assert not os.path.exists(secrets)
