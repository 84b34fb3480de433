# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The APM settings rules of module_utils/apm.py."""

from __future__ import annotations

import os
import sys

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import apm

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))))
APP_DIR = os.path.join(REPO_ROOT, "examples", "app")

API_KEY = "0123456789abcdef0123456789abcdef"

GOOD = {
    "enabled": True,
    "provider": "datadog",
    "service_name": "unite-hub",
    "sample_rate": 0.5,
    "flush_interval_ms": 10000,
    "dd_api_key": API_KEY,
    "dd_site": "datadoghq.eu",
    "dd_service": "unite-hub-web",
    "dd_env": "staging",
    "otlp_endpoint": "http://127.0.0.1:4318",
}


def with_(**changes):
    settings = dict(GOOD)
    settings.update(changes)
    return settings


# (settings, the setting the single error must start with, words the message must carry)
BAD = [
    pytest.param(with_(enabled="maybe"), "enabled (ENABLE_APM)", ["'maybe'", "not a boolean", "true or false"],
                 id="enabled-not-boolean"),
    pytest.param(with_(enabled=2), "enabled (ENABLE_APM)", ["2", "not a boolean"], id="enabled-number"),
    pytest.param(with_(provider="newrelic"), "provider (APM_PROVIDER)",
                 ["'newrelic'", "not one of datadog, opentelemetry, custom"], id="provider-unknown"),
    pytest.param(with_(provider="OpenTelemetry"), "provider (APM_PROVIDER)",
                 ["'OpenTelemetry'", "did you mean 'opentelemetry'?", "lowercase"], id="provider-capitals"),
    pytest.param(with_(provider=""), "provider (APM_PROVIDER)", ["''", "not one of"], id="provider-empty"),
    pytest.param(with_(service_name=""), "service_name (APM_SERVICE_NAME)", ["is empty", "unite-hub"],
                 id="service-name-empty"),
    pytest.param(with_(service_name="unite hub"), "service_name (APM_SERVICE_NAME)",
                 ["'unite hub'", "not a usable name", "letters, digits"], id="service-name-space"),
    pytest.param(with_(service_name="-hub"), "service_name (APM_SERVICE_NAME)", ["starting with a letter or digit"],
                 id="service-name-leading-dash"),
    pytest.param(with_(service_name="x" * 129), "service_name (APM_SERVICE_NAME)", ["1 to 128"],
                 id="service-name-too-long"),
    pytest.param(with_(service_name=42), "service_name (APM_SERVICE_NAME)", ["42 (int), not text"],
                 id="service-name-not-text"),
    pytest.param(with_(sample_rate=1.5), "sample_rate (APM_SAMPLE_RATE)", ["is 1.5, outside 0..1", "0.1"],
                 id="sample-rate-above-1"),
    pytest.param(with_(sample_rate=-0.1), "sample_rate (APM_SAMPLE_RATE)", ["-0.1, outside 0..1"],
                 id="sample-rate-negative"),
    pytest.param(with_(sample_rate="half"), "sample_rate (APM_SAMPLE_RATE)", ["'half', not a number"],
                 id="sample-rate-text"),
    pytest.param(with_(sample_rate=float("nan")), "sample_rate (APM_SAMPLE_RATE)", ["nan, outside 0..1"],
                 id="sample-rate-nan"),
    pytest.param(with_(sample_rate="inf"), "sample_rate (APM_SAMPLE_RATE)", ["inf, outside 0..1"],
                 id="sample-rate-inf"),
    pytest.param(with_(sample_rate=True), "sample_rate (APM_SAMPLE_RATE)", ["the boolean True, not a number"],
                 id="sample-rate-boolean"),
    pytest.param(with_(sample_rate=[1]), "sample_rate (APM_SAMPLE_RATE)", ["(list), not a number"],
                 id="sample-rate-list"),
    pytest.param(with_(flush_interval_ms=0), "flush_interval_ms (APM_FLUSH_INTERVAL)",
                 ["is 0: spans would never be sent", "100 to 3600000"], id="flush-zero"),
    pytest.param(with_(flush_interval_ms=-500), "flush_interval_ms (APM_FLUSH_INTERVAL)",
                 ["is -500: spans would never be sent"], id="flush-negative"),
    pytest.param(with_(flush_interval_ms=10), "flush_interval_ms (APM_FLUSH_INTERVAL)",
                 ["is 10 ms, outside 100..3600000"], id="flush-below-app-minimum"),
    pytest.param(with_(flush_interval_ms=3600001), "flush_interval_ms (APM_FLUSH_INTERVAL)",
                 ["3600001 ms, outside 100..3600000"], id="flush-above-app-maximum"),
    pytest.param(with_(flush_interval_ms=1500.5), "flush_interval_ms (APM_FLUSH_INTERVAL)",
                 ["1500.5, not a whole number of milliseconds"], id="flush-fraction"),
    pytest.param(with_(flush_interval_ms="10s"), "flush_interval_ms (APM_FLUSH_INTERVAL)",
                 ["'10s', not a whole number of milliseconds", "10000 for 10 seconds"], id="flush-with-unit"),
    pytest.param(with_(flush_interval_ms=False), "flush_interval_ms (APM_FLUSH_INTERVAL)",
                 ["the boolean False"], id="flush-boolean"),
    pytest.param(with_(dd_api_key=""), "dd_api_key (DD_API_KEY)",
                 ["is empty, but APM is enabled with the datadog provider", "opentelemetry or custom"],
                 id="datadog-without-api-key"),
    pytest.param(with_(dd_api_key=API_KEY + "\n"), "dd_api_key (DD_API_KEY)",
                 ["whitespace or a control character (value hidden)"], id="api-key-with-newline"),
    pytest.param(with_(dd_api_key=12345), "dd_api_key (DD_API_KEY)", ["is not text (int)"], id="api-key-number"),
    pytest.param(with_(dd_site="datadoghq.org"), "dd_site (DD_SITE)",
                 ["'datadoghq.org', not a known Datadog site", "datadoghq.eu", "us2.ddog-gov.com"],
                 id="site-unknown"),
    pytest.param(with_(dd_site="app.datadoghq.com"), "dd_site (DD_SITE)", ["did you mean 'datadoghq.com'?"],
                 id="site-web-host"),
    pytest.param(with_(dd_site="https://app.datadoghq.eu/"), "dd_site (DD_SITE)",
                 ["give the site parameter, not a URL: 'datadoghq.eu'"], id="site-url"),
    pytest.param(with_(dd_site=""), "dd_site (DD_SITE)", ["'', not a known Datadog site"], id="site-empty"),
    pytest.param(with_(dd_service="web service"), "dd_service (DD_SERVICE)", ["'web service'", "not a usable name"],
                 id="dd-service-space"),
    pytest.param(with_(dd_env=""), "dd_env (DD_ENV)", ["is empty", "production"], id="dd-env-empty"),
    pytest.param(with_(dd_env="prod/eu"), "dd_env (DD_ENV)", ["'prod/eu'", "not a usable name"],
                 id="dd-env-slash"),
    pytest.param(with_(otlp_endpoint=""), "otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)",
                 ["is empty", "http://127.0.0.1:4318"], id="otlp-empty"),
    pytest.param(with_(otlp_endpoint="grpc://127.0.0.1:4317"), "otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)",
                 ["scheme is 'grpc'", "http:// or https://"], id="otlp-scheme"),
    pytest.param(with_(otlp_endpoint="127.0.0.1:4318"), "otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)",
                 ["'127.0.0.1:4318'", "http:// or https://"], id="otlp-no-scheme"),
    pytest.param(with_(otlp_endpoint="http:///v1"), "otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)",
                 ["has no host"], id="otlp-no-host"),
    pytest.param(with_(otlp_endpoint="http://127.0.0.1:4318?token=x"), "otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)",
                 ["has a query string", "remove it"], id="otlp-query"),
    pytest.param(with_(otlp_endpoint="http://127.0.0.1:4318/?"), "otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)",
                 ["has a query string"], id="otlp-empty-query"),
    pytest.param(with_(otlp_endpoint="http://127.0.0.1:4318/#top"), "otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)",
                 ["has a fragment"], id="otlp-fragment"),
    pytest.param(with_(otlp_endpoint="http://127.0.0.1:99999"), "otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)",
                 ["not a valid URL", "out of range"], id="otlp-port-out-of-range"),
    pytest.param(with_(otlp_endpoint="http://127.0.0.1:43x8"), "otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)",
                 ["not a valid URL"], id="otlp-port-not-a-number"),
    pytest.param(with_(otlp_endpoint="http://127.0.0.1:0"), "otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)",
                 ["port 0"], id="otlp-port-zero"),
    pytest.param(with_(otlp_endpoint="http://[::1"), "otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)",
                 ["not a valid URL"], id="otlp-bad-ipv6"),
    pytest.param(with_(otlp_endpoint="http://collector :4318"), "otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)",
                 ["whitespace"], id="otlp-space"),
    pytest.param(with_(otlp_endpoint="http://127.0.0.1:4318/v1/traces"), "otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)",
                 ["ends in /v1/traces", "appends /v1/traces itself", "'http://127.0.0.1:4318'"],
                 id="otlp-signal-path"),
    pytest.param(with_(otlp_endpoint=4318), "otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)", ["4318 (int), not a URL"],
                 id="otlp-not-text"),
    pytest.param(with_(sample_rat=0.5), "sample_rat is not an APM setting", ["did you mean sample_rate?"],
                 id="unknown-key-typo"),
    pytest.param(with_(colour="blue"), "colour is not an APM setting", ["the settings are enabled, provider"],
                 id="unknown-key"),
]


def test_good_settings_have_no_errors():
    assert apm.validate(GOOD) == []


def test_empty_settings_take_the_seed_defaults_and_are_good():
    assert apm.validate({}) == [] and apm.validate(None) == []
    values, errors = apm.normalise({})
    assert errors == []
    assert values == {
        "enabled": False, "provider": "datadog", "service_name": "unite-hub", "sample_rate": 1.0,
        "flush_interval_ms": 10000, "dd_api_key": "", "dd_site": "datadoghq.com", "dd_service": "",
        "dd_env": "production", "otlp_endpoint": "http://localhost:4318",
    }


@pytest.mark.parametrize("settings, starts, words", BAD)
def test_each_bad_setting_is_one_error_naming_the_setting_the_variable_and_the_fix(settings, starts, words):
    errors = apm.validate(settings)
    assert len(errors) == 1, errors
    assert errors[0].startswith(starts), errors[0]
    for word in words:
        assert word in errors[0], (word, errors[0])


@pytest.mark.parametrize("settings, starts, words", BAD)
def test_every_error_carries_the_prefix(settings, starts, words):
    [error] = apm.validate(settings, "app_apm_")
    assert error.startswith("app_apm_" + starts)


def test_not_a_mapping():
    assert apm.validate(["enabled"]) == [
        "the APM settings must be a mapping of setting names (enabled, provider, service_name, sample_rate, "
        "flush_interval_ms, dd_api_key, dd_site, dd_service, dd_env, otlp_endpoint) to values, got list"
    ]


def test_every_problem_is_reported_at_once():
    errors = apm.validate({"provider": "x", "sample_rate": 2, "flush_interval_ms": 0, "dd_site": "x",
                           "otlp_endpoint": "ftp://x", "service_name": "", "dd_env": "", "extra": 1})
    assert [e.split(" ")[0] for e in errors] == [
        "extra", "provider", "service_name", "sample_rate", "flush_interval_ms", "dd_site", "dd_env", "otlp_endpoint",
    ]


def test_api_key_is_only_required_when_datadog_is_enabled():
    assert apm.validate(with_(dd_api_key="", enabled=False)) == []
    assert apm.validate(with_(dd_api_key="", provider="opentelemetry")) == []
    assert apm.validate(with_(dd_api_key="", provider="custom")) == []
    assert apm.validate(with_(dd_api_key=None)) != []  # None takes the default, "", which datadog refuses


def test_a_bad_provider_does_not_also_ask_for_the_api_key():
    assert len(apm.validate(with_(provider="dd", dd_api_key=""))) == 1


def test_the_secret_and_the_endpoint_password_never_appear_in_a_message():
    key = "k3y with space"
    errors = apm.validate(with_(dd_api_key=key, otlp_endpoint="ftp://user:s3cretpw@collector:4318/v1/traces",
                                dd_site="https://u:s3cretpw@datadoghq.eu"))
    assert len(errors) == 3
    text = " ".join(errors)
    assert key not in text and "s3cretpw" not in text
    assert "ftp://user:****@collector:4318/v1/traces" in text


def test_numbers_may_come_as_text_like_extra_vars_pass_them():
    values, errors = apm.normalise(with_(enabled="true", sample_rate="0.25", flush_interval_ms=" 500 "))
    assert errors == []
    assert (values["enabled"], values["sample_rate"], values["flush_interval_ms"]) == (True, 0.25, 500)
    values, errors = apm.normalise(with_(enabled="off", flush_interval_ms=2000.0))
    assert errors == [] and values["enabled"] is False and values["flush_interval_ms"] == 2000


@pytest.mark.parametrize("site", apm.DATADOG_SITES)
def test_every_known_datadog_site_is_accepted(site):
    assert apm.validate(with_(dd_site=site)) == []


@pytest.mark.parametrize("endpoint, expected", [
    ("http://127.0.0.1:4318/", "http://127.0.0.1:4318"),
    ("https://otel.example.com", "https://otel.example.com"),
    ("http://[::1]:4318", "http://[::1]:4318"),
    ("https://collector.example.com:443/otlp/", "https://collector.example.com:443/otlp"),
])
def test_good_endpoints_lose_their_trailing_slash(endpoint, expected):
    assert apm.apm_env(with_(otlp_endpoint=endpoint))["env"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == expected


def test_apm_env_for_datadog():
    result = apm.apm_env(GOOD)
    assert result == {
        "env": {
            "ENABLE_APM": "true",
            "APM_PROVIDER": "datadog",
            "APM_SERVICE_NAME": "unite-hub",
            "APM_SAMPLE_RATE": "0.5",
            "APM_FLUSH_INTERVAL": "10000",
            "DD_SITE": "datadoghq.eu",
            "DD_SERVICE": "unite-hub-web",
            "DD_ENV": "staging",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        },
        "secret_env": {"DD_API_KEY": API_KEY},
    }
    assert API_KEY not in repr(result["env"])


def test_apm_env_defaults_and_dd_service_falls_back_to_service_name():
    env = apm.apm_env({"service_name": "shop"})
    assert env["secret_env"] == {}
    assert env["env"]["ENABLE_APM"] == "false"
    assert env["env"]["DD_SERVICE"] == "shop"
    assert env["env"]["APM_SAMPLE_RATE"] == "1.0"
    assert env["env"]["APM_FLUSH_INTERVAL"] == "10000"


@pytest.mark.parametrize("changes", [{"enabled": False}, {"provider": "opentelemetry"}, {"provider": "custom"}])
def test_the_api_key_is_handed_over_only_when_datadog_is_on(changes):
    assert "DD_API_KEY" not in apm.apm_env(with_(**changes))["secret_env"]


def test_an_endpoint_with_a_password_travels_as_a_secret():
    result = apm.apm_env(with_(provider="opentelemetry", otlp_endpoint="https://tenant:p4ss@otel.example.com/"))
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in result["env"]
    assert result["secret_env"] == {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://tenant:p4ss@otel.example.com"}


def test_every_env_value_is_a_string_the_app_reads_back():
    result = apm.apm_env(with_(sample_rate=1, flush_interval_ms="250"))
    assert all(isinstance(v, str) for v in list(result["env"].values()) + list(result["secret_env"].values()))
    assert result["env"]["APM_SAMPLE_RATE"] == "1.0" and result["env"]["APM_FLUSH_INTERVAL"] == "250"


def test_apm_env_raises_with_every_problem():
    with pytest.raises(apm.ApmSettingsError) as info:
        apm.apm_env(with_(sample_rate=3, dd_site="x"), "app_apm_")
    assert [e.split(" ")[0] for e in info.value.errors] == ["app_apm_sample_rate", "app_apm_dd_site"]
    assert str(info.value) == "; ".join(info.value.errors)


def test_hide_password():
    assert apm.hide_password("https://u:pw@h:1/p") == "https://u:****@h:1/p"
    assert apm.hide_password("http://h:4318") == "http://h:4318"
    assert apm.hide_password("http://u:pw@h:99999") == "http://u:****@h:99999"


@pytest.mark.parametrize("settings", [
    GOOD,
    {},
    with_(provider="opentelemetry", sample_rate=0, flush_interval_ms=100, otlp_endpoint="https://u:p@otel.example.com"),
    with_(provider="custom", sample_rate=1, flush_interval_ms=3600000, dd_service=""),
])
def test_the_reference_app_accepts_every_environment_apm_env_produces(settings):
    """The role's rules never let through what the app would refuse at start."""
    if APP_DIR not in sys.path:
        sys.path.insert(0, APP_DIR)
    from unitehub_app.config import load_config

    result = apm.apm_env(settings)
    environ = dict(result["env"], **result["secret_env"])
    config = load_config(environ)
    values = apm.normalise(settings)[0]
    assert config.enable_apm is values["enabled"]
    assert config.apm_provider == values["provider"]
    assert config.apm_sample_rate == values["sample_rate"]
    assert config.apm_flush_interval_ms == values["flush_interval_ms"]
    assert config.dd_site == values["dd_site"]
    assert config.otel_exporter_otlp_endpoint == values["otlp_endpoint"]
