"""Configuration, read and validated once from the environment at start.

Every setting comes from one environment variable; a secret may instead come from
the file its ``<NAME>_FILE`` variable names. An empty value counts as
unset and takes the default, so ``DD_API_KEY=`` in an env file means "no key".
Every problem is collected, then reported together by :class:`ConfigError`;
a message names the variable and the fix, and never repeats a secret's value.
"""

from __future__ import annotations

import dataclasses
import math
import re
import urllib.parse
from collections.abc import Mapping

# Names the environment:variables health check requires (names only, never values).
REQUIRED_VARIABLES = ("DATABASE_URL", "REDIS_URL")
# AI provider keys the ai:config health check looks for.
AI_KEY_VARIABLES = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")
# Variables whose values are secrets: never echoed in errors, logs or bodies.
SECRET_VARIABLES = ("DATABASE_URL", "REDIS_URL", "APP_ADMIN_TOKEN", "DD_API_KEY") + AI_KEY_VARIABLES

POOLER_MODES = ("transaction", "session")
APM_PROVIDERS = ("datadog", "opentelemetry", "custom")
FAULT_HEALTH_MODES = ("", "fail")
# The admin API's bearer token is refused below this length (unset turns the admin API off).
MIN_ADMIN_TOKEN_LENGTH = 32

_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(Exception):
    """One or more environment variables are invalid."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclasses.dataclass(frozen=True)
class Config:
    """The validated settings. Secret fields are left out of ``repr``."""

    host: str = "127.0.0.1"
    port: int = 3000
    app_name: str = "unitehub"
    slot: str = "local"
    version: str = "dev"
    release_id: str = "dev"
    database_url: str = dataclasses.field(default="", repr=False)
    enable_db_pooler: bool = False
    db_pooler_mode: str = "transaction"
    db_pool_size: int = 20
    db_idle_timeout: float = 600.0
    db_max_lifetime: float = 3600.0
    redis_url: str = dataclasses.field(default="", repr=False)
    ai_keys_present: tuple = ()
    admin_token: str = dataclasses.field(default="", repr=False)
    enable_apm: bool = False
    apm_provider: str = "datadog"
    apm_service_name: str = "unite-hub"
    apm_sample_rate: float = 1.0
    apm_flush_interval_ms: int = 10000
    dd_api_key: str = dataclasses.field(default="", repr=False)
    dd_site: str = "datadoghq.com"
    dd_service: str = "unite-hub"
    dd_env: str = "production"
    otel_exporter_otlp_endpoint: str = "http://localhost:4318"
    breaker_failure_threshold: int = 5
    breaker_reset_timeout: float = 60.0
    breaker_success_threshold: int = 2
    breaker_half_open_max_calls: int = 1
    health_check_timeout_ms: int = 800
    fault_health: str = ""
    fault_crash_after: float | None = None
    fault_error_rate: float = 0.0
    debug_routes: bool = False
    threads: int = 16
    max_connections: int = 1000
    keepalive_timeout: float = 75.0
    read_timeout: float = 10.0
    shutdown_timeout: float = 25.0
    missing_required: tuple = ()

    @property
    def health_check_timeout(self) -> float:
        """The per-check deadline in seconds."""
        return self.health_check_timeout_ms / 1000.0

    def secrets(self) -> list[str]:
        """Secret values to scrub from any text the app emits."""
        values = [self.database_url, self.redis_url, self.admin_token, self.dd_api_key]
        values += [url_password(u) for u in (self.database_url, self.redis_url, self.otel_exporter_otlp_endpoint)]
        return [v for v in values if v]


def url_password(url: str) -> str:
    """The password embedded in a URL, or ''."""
    if not url:
        return ""
    try:
        return urllib.parse.urlsplit(url).password or ""
    except ValueError:
        return ""


class _Reader:
    """Reads typed values from a mapping and collects the problems."""

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def _bad(self, name: str, value: str, why: str, fix: str, secret: bool = False) -> None:
        shown = "(value hidden)" if secret else repr(value)
        self.problems.append(f"{name}={shown} {why}; {fix}")

    def string(self, name: str, default: str, pattern: re.Pattern | None = None, what: str = "") -> str:
        value = self.raw(name)
        if value is None:
            return default
        if pattern is not None and not pattern.match(value):
            self._bad(name, value, "is not valid", f"set {name} to {what}")
            return default
        return value

    def integer(self, name: str, default: int, minimum: int, maximum: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        fix = f"set {name} to a whole number from {minimum} to {maximum}"
        try:
            number = int(value, 10)
        except ValueError:
            self._bad(name, value, "is not a whole number", fix)
            return default
        if not minimum <= number <= maximum:
            self._bad(name, value, "is out of range", fix)
            return default
        return number

    def number(self, name: str, default: float, minimum: float, maximum: float, unit: str = "") -> float:
        value = self.raw(name)
        if value is None:
            return default
        suffix = f" {unit}" if unit else ""
        fix = f"set {name} to a number from {minimum:g} to {maximum:g}{suffix}"
        try:
            number = float(value)
        except ValueError:
            self._bad(name, value, "is not a number", fix)
            return default
        if not math.isfinite(number) or not minimum <= number <= maximum:
            self._bad(name, value, "is out of range", fix)
            return default
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        self._bad(name, value, "is not a boolean", f"set {name} to true or false")
        return default

    def choice(self, name: str, default: str, choices: tuple) -> str:
        value = self.raw(name)
        if value is None:
            return default
        if value not in choices:
            listed = ", ".join(c for c in choices if c)
            self._bad(name, value, f"is not one of {listed}", f"set {name} to one of {listed}")
            return default
        return value

    def token(self, name: str, minimum: int) -> str:
        """A secret token, or '' when unset; one shorter than ``minimum`` characters is a problem."""
        value = self.raw(name)
        if value is None:
            return ""
        if len(value) < minimum:
            fix = f"set {name} to a random token of at least {minimum} characters"
            self._bad(name, value, f"is shorter than {minimum} characters", fix, secret=True)
            return ""
        return value

    def url(self, name: str, default: str, schemes: tuple, example: str, secret: bool = False) -> str:
        value = self.raw(name)
        if value is None:
            return default
        fix = f"set {name} to a URL like {example}"
        try:
            parts = urllib.parse.urlsplit(value)
            _unused = parts.port  # raises ValueError on a bad port
        except ValueError:
            self._bad(name, value, "is not a valid URL", fix, secret)
            return default
        if parts.scheme not in schemes:
            self._bad(name, value, f"does not use a {' or '.join(s + '://' for s in schemes)} scheme", fix, secret)
            return default
        if parts.scheme in ("http", "https") and not parts.hostname:
            self._bad(name, value, "has no host", fix, secret)
            return default
        return value


def read_secret_files(environ: Mapping[str, str]) -> tuple[dict, list[str]]:
    """The environment with each secret given as a file read in, and the problems found.

    ``<NAME>_FILE`` names a file holding the value of secret ``NAME`` (the convention of the
    official postgres and mysql images); the platform hands every secret over this way, so
    that ``docker inspect`` and ``/proc/<pid>/environ`` never show it. One trailing newline
    is dropped. A file that cannot be read stops the start, naming the variable.
    """
    merged = dict(environ)
    problems = []
    for name in SECRET_VARIABLES:
        pointer = f"{name}_FILE"
        path = (environ.get(pointer) or "").strip()
        if not path:
            continue
        if (environ.get(name) or "").strip():
            problems.append(f"{name} and {pointer} are both set; set only one of them")
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                value = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            problems.append(f"{pointer}={path!r} cannot be read ({why}); mount the secret file there or unset {pointer}")
            continue
        merged[name] = value[:-1] if value.endswith("\n") else value
    return merged, problems


def load_config(environ: Mapping[str, str]) -> Config:
    """Parse and validate the environment; raise :class:`ConfigError` on any bad value."""
    environ, file_problems = read_secret_files(environ)
    r = _Reader(environ)
    r.problems.extend(file_problems)
    version = r.string("APP_VERSION", "dev", _TOKEN, "a version tag such as v1.2.3 (letters, digits, . _ + -)")
    crash_after = r.number("APP_FAULT_CRASH_AFTER", -1.0, 0.0, 86400.0, "seconds")
    enable_apm = r.boolean("ENABLE_APM", False)
    apm_provider = r.choice("APM_PROVIDER", "datadog", APM_PROVIDERS)
    otel_endpoint = r.url(
        "OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318", ("http", "https"), "http://127.0.0.1:4318"
    )
    database_url = r.url(
        "DATABASE_URL", "", ("postgres", "postgresql"), "postgresql://app@127.0.0.1:6432/app", secret=True
    )
    redis_url = r.url("REDIS_URL", "", ("redis", "rediss", "unix"), "redis://127.0.0.1:6379/0", secret=True)
    config = Config(
        host=r.string("HOST", "127.0.0.1", re.compile(r"^[A-Za-z0-9.:_-]{1,255}$"), "an IP address or host name"),
        port=r.integer("PORT", 3000, 1, 65535),
        app_name=r.string("APP_NAME", "unitehub", _TOKEN, "a name (letters, digits, . _ + -)"),
        slot=r.string("APP_SLOT", "local", _TOKEN, "the slot name, for example blue or green"),
        version=version,
        release_id=r.string("RELEASE_ID", version, _TOKEN, "a release identifier (letters, digits, . _ + -)"),
        database_url=database_url,
        enable_db_pooler=r.boolean("ENABLE_DB_POOLER", False),
        db_pooler_mode=r.choice("DB_POOLER_MODE", "transaction", POOLER_MODES),
        db_pool_size=r.integer("DB_POOL_SIZE", 20, 1, 1000),
        db_idle_timeout=r.number("DB_IDLE_TIMEOUT", 600.0, 1.0, 86400.0, "seconds"),
        db_max_lifetime=r.number("DB_MAX_LIFETIME", 3600.0, 1.0, 604800.0, "seconds"),
        redis_url=redis_url,
        ai_keys_present=tuple(name for name in AI_KEY_VARIABLES if r.raw(name) is not None),
        admin_token=r.token("APP_ADMIN_TOKEN", MIN_ADMIN_TOKEN_LENGTH),
        enable_apm=enable_apm,
        apm_provider=apm_provider,
        apm_service_name=r.string("APM_SERVICE_NAME", "unite-hub", _TOKEN, "a service name"),
        apm_sample_rate=r.number("APM_SAMPLE_RATE", 1.0, 0.0, 1.0),
        apm_flush_interval_ms=r.integer("APM_FLUSH_INTERVAL", 10000, 100, 3600000),
        dd_api_key=r.raw("DD_API_KEY") or "",
        dd_site=r.string("DD_SITE", "datadoghq.com", re.compile(r"^[A-Za-z0-9.-]{1,253}$"), "a host name"),
        dd_service=r.string("DD_SERVICE", "unite-hub", _TOKEN, "a service name"),
        dd_env=r.string("DD_ENV", "production", _TOKEN, "an environment name"),
        otel_exporter_otlp_endpoint=otel_endpoint.rstrip("/"),
        breaker_failure_threshold=r.integer("BREAKER_FAILURE_THRESHOLD", 5, 1, 10000),
        breaker_reset_timeout=r.number("BREAKER_RESET_TIMEOUT", 60.0, 0.01, 86400.0, "seconds"),
        breaker_success_threshold=r.integer("BREAKER_SUCCESS_THRESHOLD", 2, 1, 10000),
        breaker_half_open_max_calls=r.integer("BREAKER_HALF_OPEN_MAX_CALLS", 1, 1, 10000),
        health_check_timeout_ms=r.integer("HEALTH_CHECK_TIMEOUT_MS", 800, 10, 60000),
        fault_health=r.choice("APP_FAULT_HEALTH", "", FAULT_HEALTH_MODES),
        fault_crash_after=None if crash_after < 0 else crash_after,
        fault_error_rate=r.number("APP_FAULT_ERROR_RATE", 0.0, 0.0, 1.0),
        debug_routes=r.boolean("APP_DEBUG_ROUTES", False),
        threads=r.integer("APP_THREADS", 16, 1, 512),
        max_connections=r.integer("APP_MAX_CONNECTIONS", 1000, 1, 100000),
        keepalive_timeout=r.number("APP_KEEPALIVE_TIMEOUT", 75.0, 1.0, 3600.0, "seconds"),
        read_timeout=r.number("APP_READ_TIMEOUT", 10.0, 0.1, 3600.0, "seconds"),
        shutdown_timeout=r.number("APP_SHUTDOWN_TIMEOUT", 25.0, 0.0, 3600.0, "seconds"),
        missing_required=tuple(name for name in REQUIRED_VARIABLES if r.raw(name) is None),
    )
    if r.problems:
        raise ConfigError(r.problems)
    return config
