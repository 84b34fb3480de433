"""Environment parsing: the documented defaults, and clear errors that name the variable."""

from __future__ import annotations

import pytest
from unitehub_app.config import ConfigError, load_config, read_secret_files


def test_defaults_are_the_documented_ones():
    config = load_config({})
    assert config.enable_db_pooler is False
    assert config.db_pooler_mode == "transaction"
    assert config.db_pool_size == 20
    assert config.db_idle_timeout == 600
    assert config.db_max_lifetime == 3600
    assert config.enable_apm is False
    assert config.apm_provider == "datadog"
    assert config.apm_service_name == "unite-hub"
    assert config.apm_sample_rate == 1.0
    assert config.apm_flush_interval_ms == 10000
    assert config.dd_api_key == ""
    assert config.dd_site == "datadoghq.com"
    assert config.dd_service == "unite-hub"
    assert config.dd_env == "production"
    assert config.otel_exporter_otlp_endpoint == "http://localhost:4318"
    assert (config.breaker_failure_threshold, config.breaker_reset_timeout, config.breaker_success_threshold) == (
        5, 60.0, 2,
    )
    assert config.breaker_half_open_max_calls == 1
    assert config.health_check_timeout_ms == 800
    assert (config.host, config.port, config.app_name, config.slot, config.version) == (
        "127.0.0.1", 3000, "unitehub", "local", "dev",
    )
    assert config.release_id == "dev"
    assert config.fault_health == "" and config.fault_crash_after is None and config.debug_routes is False
    assert config.missing_required == ("DATABASE_URL", "REDIS_URL")


def test_values_are_read_and_typed():
    config = load_config(
        {
            "PORT": "3009",
            "HOST": "::1",
            "APP_SLOT": "green",
            "APP_VERSION": "v2.0.1",
            "DATABASE_URL": "postgresql://app:pw@127.0.0.1:6432/app",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "ENABLE_DB_POOLER": "true",
            "DB_POOLER_MODE": "session",
            "APM_SAMPLE_RATE": "0.25",
            "BREAKER_RESET_TIMEOUT": "1.5",
            "ANTHROPIC_API_KEY": "sk-ant-xyz",
            "APP_FAULT_CRASH_AFTER": "0",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318/",
        }
    )
    assert config.port == 3009 and config.host == "::1" and config.slot == "green"
    assert config.release_id == "v2.0.1"  # defaults to the version
    assert config.enable_db_pooler is True and config.db_pooler_mode == "session"
    assert config.apm_sample_rate == 0.25 and config.breaker_reset_timeout == 1.5
    assert config.ai_keys_present == ("ANTHROPIC_API_KEY",)
    assert config.missing_required == ()
    assert config.fault_crash_after == 0.0
    assert config.otel_exporter_otlp_endpoint == "http://127.0.0.1:4318"


def test_an_empty_value_means_the_default():
    config = load_config({"PORT": "", "DD_API_KEY": "", "APM_SAMPLE_RATE": "  "})
    assert config.port == 3000 and config.dd_api_key == "" and config.apm_sample_rate == 1.0


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("PORT", "abc", "not a whole number"),
        ("PORT", "70000", "out of range"),
        ("DB_POOL_SIZE", "0", "out of range"),
        ("DB_POOLER_MODE", "statement", "not one of transaction, session"),
        ("DB_IDLE_TIMEOUT", "soon", "not a number"),
        ("ENABLE_DB_POOLER", "maybe", "not a boolean"),
        ("ENABLE_APM", "yesplease", "not a boolean"),
        ("APM_PROVIDER", "newrelic", "not one of datadog, opentelemetry, custom"),
        ("APM_SAMPLE_RATE", "1.5", "out of range"),
        ("APM_SAMPLE_RATE", "nan", "out of range"),
        ("APM_FLUSH_INTERVAL", "10", "out of range"),
        ("BREAKER_FAILURE_THRESHOLD", "0", "out of range"),
        ("BREAKER_RESET_TIMEOUT", "-5", "out of range"),
        ("BREAKER_SUCCESS_THRESHOLD", "two", "not a whole number"),
        ("BREAKER_HALF_OPEN_MAX_CALLS", "0", "out of range"),
        ("HEALTH_CHECK_TIMEOUT_MS", "fast", "not a whole number"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector:21", "scheme"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://", "has no host"),
        ("APP_FAULT_HEALTH", "explode", "not one of fail"),
        ("APP_FAULT_CRASH_AFTER", "-1", "out of range"),
        ("APP_FAULT_ERROR_RATE", "1.5", "out of range"),
        ("APP_SLOT", "blue green", "is not valid"),
        ("APP_VERSION", "v1;rm -rf", "is not valid"),
        ("APP_DEBUG_ROUTES", "2", "not a boolean"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_fix(name, value, words):
    with pytest.raises(ConfigError) as info:
        load_config({name: value})
    assert len(info.value.problems) == 1
    problem = info.value.problems[0]
    assert problem.startswith(f"{name}=")
    assert words in problem
    assert f"set {name} to" in problem


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        load_config({"PORT": "x", "DB_POOLER_MODE": "y", "APM_SAMPLE_RATE": "z"})
    names = sorted(p.split("=")[0] for p in info.value.problems)
    assert names == ["APM_SAMPLE_RATE", "DB_POOLER_MODE", "PORT"]
    assert str(info.value).count("; set ") == 3


@pytest.mark.parametrize(
    "name, value",
    [
        ("DATABASE_URL", "mysql://app:hunter2-secret@db.example/app"),
        ("DATABASE_URL", "postgresql://app:hunter2-secret@db:notaport/app"),
        ("REDIS_URL", "http://:hunter2-secret@127.0.0.1:6379"),
    ],
)
def test_a_bad_secret_is_named_but_never_echoed(name, value):
    with pytest.raises(ConfigError) as info:
        load_config({name: value})
    message = str(info.value)
    assert message.startswith(f"{name}=(value hidden)")
    assert "hunter2" not in message


def test_secrets_stay_out_of_repr_and_are_listed_for_scrubbing():
    config = load_config(
        {
            "DATABASE_URL": "postgresql://app:db-pass-123@127.0.0.1/app",
            "REDIS_URL": "redis://:redis-pass-456@127.0.0.1:6379/0",
            "APP_ADMIN_TOKEN": "admin-token-789-0123456789abcdefghij",
            "DD_API_KEY": "dd-key-000",
        }
    )
    text = repr(config)
    for secret in ("db-pass-123", "redis-pass-456", "admin-token-789", "dd-key-000"):
        assert secret not in text
        assert any(secret in s for s in config.secrets())
    assert "db-pass-123" in config.secrets() and "redis-pass-456" in config.secrets()


@pytest.mark.parametrize("token", ["x", "hunter2-secret-but-31-character"])
def test_an_admin_token_shorter_than_32_characters_is_refused_unshown(token):
    assert len(token) < 32
    with pytest.raises(ConfigError) as info:
        load_config({"APP_ADMIN_TOKEN": token})
    assert info.value.problems == [
        "APP_ADMIN_TOKEN=(value hidden) is shorter than 32 characters; "
        "set APP_ADMIN_TOKEN to a random token of at least 32 characters"
    ]
    assert token not in str(info.value)


def test_an_admin_token_of_32_characters_is_taken_and_none_turns_the_admin_api_off():
    assert load_config({"APP_ADMIN_TOKEN": "t" * 32}).admin_token == "t" * 32
    assert load_config({}).admin_token == "" and load_config({"APP_ADMIN_TOKEN": " "}).admin_token == ""


# -- secrets as files (<NAME>_FILE) -------------------------------------------------------------

TOKEN_32 = "t" * 40


def secret_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_each_secret_is_read_from_the_file_its_file_variable_names(tmp_path):
    config = load_config({
        "DATABASE_URL_FILE": secret_file(tmp_path, "db", "postgresql://app:p%40ss@127.0.0.1:6432/app\n"),
        "REDIS_URL_FILE": secret_file(tmp_path, "redis", "redis://app:pw@127.0.0.1:6379/0"),
        "APP_ADMIN_TOKEN_FILE": secret_file(tmp_path, "token", TOKEN_32 + "\n"),
        "DD_API_KEY_FILE": secret_file(tmp_path, "dd", "ddkey\n"),
        "ANTHROPIC_API_KEY_FILE": secret_file(tmp_path, "ai", "sk-ant\n"),
    })
    # one trailing newline is dropped, as an editor or `echo` leaves it
    assert config.database_url == "postgresql://app:p%40ss@127.0.0.1:6432/app"
    assert config.redis_url == "redis://app:pw@127.0.0.1:6379/0"
    assert config.admin_token == TOKEN_32 and config.dd_api_key == "ddkey"
    assert config.ai_keys_present == ("ANTHROPIC_API_KEY",)
    assert config.missing_required == ()


def test_a_secret_file_is_validated_like_the_variable(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config({"DATABASE_URL_FILE": secret_file(tmp_path, "db", "mysql://root:hunter2@db/app\n")})
    assert "DATABASE_URL=(value hidden) does not use a postgres:// or postgresql:// scheme" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_a_missing_or_unreadable_secret_file_stops_the_start_naming_the_variable(tmp_path):
    missing = str(tmp_path / "nowhere" / "REDIS_URL")
    with pytest.raises(ConfigError) as err:
        load_config({"REDIS_URL_FILE": missing, "APP_ADMIN_TOKEN_FILE": str(tmp_path)})
    text = str(err.value)
    assert "REDIS_URL_FILE=%r cannot be read (No such file or directory)" % missing in text
    assert "APP_ADMIN_TOKEN_FILE=%r cannot be read (Is a directory)" % str(tmp_path) in text


def test_a_secret_given_both_ways_is_refused_unshown(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config({"DD_API_KEY": "in-the-env", "DD_API_KEY_FILE": secret_file(tmp_path, "dd", "in-a-file")})
    assert "DD_API_KEY and DD_API_KEY_FILE are both set; set only one of them" in str(err.value)
    assert "in-the-env" not in str(err.value) and "in-a-file" not in str(err.value)


def test_only_one_trailing_newline_is_dropped_and_other_variables_pass_through(tmp_path):
    environ, problems = read_secret_files({"DD_API_KEY_FILE": secret_file(tmp_path, "dd", "key\n\n"), "PORT": "1"})
    assert problems == [] and environ["DD_API_KEY"] == "key\n" and environ["PORT"] == "1"
