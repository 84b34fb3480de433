# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""APM settings of the app: validation rules and the environment they become.

Pure functions, no I/O. The ``apm_errors`` and ``apm_env`` filters and the
``app`` role go through ``validate``, so a bad setting is refused with the same
words wherever it is caught, before anything on a host changes.

Settings (every key optional; a missing key or None takes the default)::

    key                 variable the app reads              default
    enabled             ENABLE_APM                          False
    provider            APM_PROVIDER                        datadog
    service_name        APM_SERVICE_NAME                    unite-hub
    sample_rate         APM_SAMPLE_RATE                     1.0
    flush_interval_ms   APM_FLUSH_INTERVAL                  10000
    dd_api_key          DD_API_KEY (secret)                 ""
    dd_site             DD_SITE                             datadoghq.com
    dd_service          DD_SERVICE                          "" (= service_name)
    dd_env              DD_ENV                              production
    otlp_endpoint       OTEL_EXPORTER_OTLP_ENDPOINT         http://localhost:4318

Every message starts with the name of the setting (with the caller's prefix,
for example ``app_apm_``), names the environment variable it becomes, and says
how to fix it. The Datadog API key is never repeated, nor the password of an
endpoint URL.

Sources for the rules:

* The collection's contract with the app: the ten APM variables and their
  defaults (ENABLE_APM=false, APM_PROVIDER=datadog, APM_SERVICE_NAME=unite-hub,
  APM_SAMPLE_RATE=1.0, APM_FLUSH_INTERVAL=10000, DD_SITE=datadoghq.com,
  DD_ENV=production, OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318) and the
  three providers datadog, opentelemetry and custom.
* The reference app (examples/app/unitehub_app/config.py): the name pattern of
  APM_SERVICE_NAME, DD_SERVICE and DD_ENV, and APM_FLUSH_INTERVAL from 100 to
  3,600,000 ms. A value the app would refuse at start is refused here first.
* Datadog's list of sites, "Getting Started with Datadog Sites"
  (https://docs.datadoghq.com/getting_started/site/).
* The OpenTelemetry protocol exporter specification: OTEL_EXPORTER_OTLP_ENDPOINT
  is a base URL to which the exporter appends ``/v1/traces``, ``/v1/metrics``.
"""

from __future__ import annotations

import difflib
import math
import re
from urllib.parse import urlsplit, urlunsplit

from ansible.module_utils.parsing.convert_bool import boolean

PROVIDERS = ("datadog", "opentelemetry", "custom")

# The site parameters of https://docs.datadoghq.com/getting_started/site/.
DATADOG_SITES = (
    "datadoghq.com",      # US1
    "us3.datadoghq.com",  # US3
    "us5.datadoghq.com",  # US5
    "datadoghq.eu",       # EU1
    "ap1.datadoghq.com",  # AP1
    "ap2.datadoghq.com",  # AP2
    "ddog-gov.com",       # US1-FED
    "us2.ddog-gov.com",   # US2-FED
)

# The reference app's bounds for APM_FLUSH_INTERVAL, in milliseconds.
FLUSH_INTERVAL_MIN_MS = 100
FLUSH_INTERVAL_MAX_MS = 3600000

# The reference app's pattern for service and environment names.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")
NAME_RULE = "1 to 128 letters, digits, '.', '_', '+' or '-', starting with a letter or digit"

# Signal paths an OTLP/HTTP exporter appends to the base URL.
OTLP_SIGNAL_PATHS = ("/v1/traces", "/v1/metrics", "/v1/logs")

# Setting -> the environment variable it becomes.
ENV_NAMES = {
    "enabled": "ENABLE_APM",
    "provider": "APM_PROVIDER",
    "service_name": "APM_SERVICE_NAME",
    "sample_rate": "APM_SAMPLE_RATE",
    "flush_interval_ms": "APM_FLUSH_INTERVAL",
    "dd_api_key": "DD_API_KEY",
    "dd_site": "DD_SITE",
    "dd_service": "DD_SERVICE",
    "dd_env": "DD_ENV",
    "otlp_endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
}

# The collection's defaults. An empty dd_service means "the same as service_name".
DEFAULTS = {
    "enabled": False,
    "provider": "datadog",
    "service_name": "unite-hub",
    "sample_rate": 1.0,
    "flush_interval_ms": 10000,
    "dd_api_key": "",
    "dd_site": "datadoghq.com",
    "dd_service": "",
    "dd_env": "production",
    "otlp_endpoint": "http://localhost:4318",
}


class ApmSettingsError(ValueError):
    """The settings have one or more problems; ``errors`` lists them."""

    def __init__(self, errors):
        self.errors = list(errors)
        super(ApmSettingsError, self).__init__("; ".join(self.errors))


def _is_text(value):
    return isinstance(value, str)


def _has_space_or_control(text):
    return any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text)


def hide_password(url):
    """``url`` with the password of its user info replaced by ``****``, fit for a message."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        password = None
        parts = None
    if parts is None or password is None:
        # Unparsable or no password: still never show what follows "user:" before "@".
        return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1****@", url)
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0] + ":****"
    return urlunsplit((parts.scheme, userinfo + "@" + netloc[1], parts.path, parts.query, parts.fragment))


class _Checker(object):
    def __init__(self, prefix):
        self.prefix = prefix
        self.errors = []

    def name(self, key):
        return "%s%s (%s)" % (self.prefix, key, ENV_NAMES[key])

    def error(self, key, message):
        self.errors.append("%s %s" % (self.name(key), message))

    # -- one setting each ---------------------------------------------------

    def boolean(self, key, value):
        if isinstance(value, bool) or _is_text(value):
            try:
                return boolean(value.strip() if _is_text(value) else value, strict=True)
            except TypeError:
                pass
        self.error(key, "is %r, not a boolean: use true or false" % (value,))
        return None

    def provider(self, key, value):
        if _is_text(value) and value in PROVIDERS:
            return value
        hint = ""
        if _is_text(value):
            close = difflib.get_close_matches(value.strip().lower(), PROVIDERS, n=1, cutoff=0.6)
            hint = " (did you mean %r?)" % close[0] if close else ""
        self.error(key, "is %r, not one of %s%s: set it to one of those, in lowercase"
                   % (value, ", ".join(PROVIDERS), hint))
        return None

    def name_token(self, key, value, example, allow_empty=False):
        if not _is_text(value):
            self.error(key, "is %r (%s), not text: write a name such as %s" % (value, type(value).__name__, example))
            return None
        if value == "":
            if allow_empty:
                return value
            self.error(key, "is empty: name it, for example %s" % example)
            return None
        if not NAME_PATTERN.fullmatch(value):
            self.error(key, "is %r, which is not a usable name: use %s, for example %s" % (value, NAME_RULE, example))
            return None
        return value

    def sample_rate(self, key, value):
        fix = "use a number from 0 (trace no request) to 1 (trace every request), for example 0.1 for one in ten"
        number = None
        if isinstance(value, bool):
            self.error(key, "is the boolean %r, not a number: %s" % (value, fix))
            return None
        if isinstance(value, (int, float)):
            number = float(value)
        elif _is_text(value):
            try:
                number = float(value.strip())
            except ValueError:
                self.error(key, "is %r, not a number: %s" % (value, fix))
                return None
        else:
            self.error(key, "is %r (%s), not a number: %s" % (value, type(value).__name__, fix))
            return None
        if math.isnan(number) or not 0.0 <= number <= 1.0:
            self.error(key, "is %s, outside 0..1: %s" % (value, fix))
            return None
        return number

    def flush_interval(self, key, value):
        fix = ("use a whole number of milliseconds from %d to %d, for example 10000 for 10 seconds"
               % (FLUSH_INTERVAL_MIN_MS, FLUSH_INTERVAL_MAX_MS))
        if isinstance(value, bool):
            self.error(key, "is the boolean %r, not a number of milliseconds: %s" % (value, fix))
            return None
        if isinstance(value, float):
            if math.isnan(value) or math.isinf(value) or not value.is_integer():
                self.error(key, "is %r, not a whole number of milliseconds: %s" % (value, fix))
                return None
            number = int(value)
        elif isinstance(value, int):
            number = value
        elif _is_text(value) and re.match(r"^\s*[+-]?\d+\s*$", value):
            number = int(value.strip())
        else:
            self.error(key, "is %r, not a whole number of milliseconds: %s" % (value, fix))
            return None
        if number <= 0:
            self.error(key, "is %d: spans would never be sent; %s" % (number, fix))
            return None
        if not FLUSH_INTERVAL_MIN_MS <= number <= FLUSH_INTERVAL_MAX_MS:
            self.error(key, "is %d ms, outside %d..%d: %s"
                       % (number, FLUSH_INTERVAL_MIN_MS, FLUSH_INTERVAL_MAX_MS, fix))
            return None
        return number

    def api_key(self, key, value):
        if not _is_text(value):
            self.error(key, "is not text (%s): give the Datadog API key as a string, from a vault"
                       % type(value).__name__)
            return None
        if _has_space_or_control(value):
            self.error(key, "contains whitespace or a control character (value hidden): "
                       "paste the key alone, without spaces or line breaks")
            return None
        return value

    def datadog_site(self, key, value):
        if _is_text(value) and value in DATADOG_SITES:
            return value
        hint = ""
        if _is_text(value):
            guess = _site_guess(value)
            if guess:
                hint = " (did you mean %r?)" % guess
            if "/" in value:
                hint = " (give the site parameter, not a URL%s)" % (": %r" % guess if guess else "")
        self.error(key, "is %r, not a known Datadog site%s: use the site of your Datadog account, one of %s "
                   "(https://docs.datadoghq.com/getting_started/site/)"
                   % (hide_password(value) if _is_text(value) else value, hint, ", ".join(DATADOG_SITES)))
        return None

    def otlp_endpoint(self, key, value):
        example = "http://127.0.0.1:4318"
        if not _is_text(value):
            self.error(key, "is %r (%s), not a URL: give the base URL of the OTLP/HTTP receiver, for example %s"
                       % (value, type(value).__name__, example))
            return None
        shown = hide_password(value)
        fix = "give the base URL of the OTLP/HTTP receiver, for example %s" % example
        if value == "":
            self.error(key, "is empty: %s" % fix)
            return None
        if _has_space_or_control(value):
            self.error(key, "is %r, which contains whitespace or a control character: %s" % (shown, fix))
            return None
        try:
            parts = urlsplit(value)
            port = parts.port  # raises ValueError on a port that is not a number or out of range
        except ValueError as exc:
            self.error(key, "is %r, not a valid URL (%s): %s" % (shown, exc, fix))
            return None
        if parts.scheme not in ("http", "https"):
            self.error(key, "is %r, whose scheme is %r: OTLP/HTTP needs http:// or https://; %s"
                       % (shown, parts.scheme, fix))
            return None
        if not parts.hostname:
            self.error(key, "is %r, which has no host: %s" % (shown, fix))
            return None
        if port == 0:
            self.error(key, "is %r, whose port 0 cannot be connected to: %s" % (shown, fix))
            return None
        if parts.query or value.rstrip().endswith("?"):
            self.error(key, "is %r, which has a query string: the app appends /v1/traces to the URL, so a query "
                       "would end up in the middle of the path; remove it" % shown)
            return None
        if parts.fragment or "#" in value:
            self.error(key, "is %r, which has a fragment: remove the '#...' part" % shown)
            return None
        path = parts.path.rstrip("/")
        for signal in OTLP_SIGNAL_PATHS:
            if path.endswith(signal):
                base = value.rstrip("/")[:-len(signal)] or example
                self.error(key, "is %r, which ends in %s: give the base URL (the app appends /v1/traces itself), "
                           "for example %r" % (shown, signal, hide_password(base)))
                return None
        return value.rstrip("/")


def _site_guess(value):
    """The Datadog site a mistyped ``value`` most likely means, or None.

    Catches the usual slips: a URL (``https://app.datadoghq.eu/``), the web
    app's host (``app.datadoghq.com``), capitals and typos.
    """
    text = value.strip().lower()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0].split("@")[-1].split(":")[0]
    for candidate in (text, text[len("app."):] if text.startswith("app.") else None,
                      text[len("api."):] if text.startswith("api.") else None):
        if candidate in DATADOG_SITES:
            return candidate
    close = difflib.get_close_matches(text, DATADOG_SITES, n=1, cutoff=0.8)
    return close[0] if close else None


def normalise(settings, prefix=""):
    """Type-check every setting over the defaults. Returns (values, errors).

    ``values`` holds every key of ``DEFAULTS``; a setting with an error is None.
    """
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        return dict((k, None) for k in DEFAULTS), [
            "the APM settings must be a mapping of setting names (%s) to values, got %s"
            % (", ".join(prefix + k for k in DEFAULTS), type(settings).__name__)]
    check = _Checker(prefix)
    for key in sorted(settings, key=str):
        if key not in DEFAULTS:
            close = difflib.get_close_matches(str(key), list(DEFAULTS), n=1)
            hint = "did you mean %s%s? " % (prefix, close[0]) if close else ""
            check.errors.append("%s%s is not an APM setting: %sthe settings are %s" % (
                prefix, key, hint, ", ".join(prefix + k for k in DEFAULTS)))
    given = dict(DEFAULTS)
    given.update(dict((k, v) for k, v in settings.items() if k in DEFAULTS and v is not None))

    values = {
        "enabled": check.boolean("enabled", given["enabled"]),
        "provider": check.provider("provider", given["provider"]),
        "service_name": check.name_token("service_name", given["service_name"], "unite-hub"),
        "sample_rate": check.sample_rate("sample_rate", given["sample_rate"]),
        "flush_interval_ms": check.flush_interval("flush_interval_ms", given["flush_interval_ms"]),
        "dd_api_key": check.api_key("dd_api_key", given["dd_api_key"]),
        "dd_site": check.datadog_site("dd_site", given["dd_site"]),
        "dd_service": check.name_token("dd_service", given["dd_service"], "unite-hub", allow_empty=True),
        "dd_env": check.name_token("dd_env", given["dd_env"], "production"),
        "otlp_endpoint": check.otlp_endpoint("otlp_endpoint", given["otlp_endpoint"]),
    }

    # Rules across settings, once the settings they read are valid on their own.
    if values["enabled"] and values["provider"] == "datadog" and values["dd_api_key"] == "":
        check.error("dd_api_key", "is empty, but APM is enabled with the datadog provider, which needs it: set "
                    "%sdd_api_key to the Datadog API key (from a vault), or choose %sprovider opentelemetry or custom"
                    % (prefix, prefix))
    return values, check.errors


def validate(settings, prefix=""):
    """Every problem with the settings; an empty list means they are good."""
    return normalise(settings, prefix)[1]


def _sample_rate_text(rate):
    return repr(float(rate))


def apm_env(settings, prefix=""):
    """The app's environment for these settings.

    Returns ``{"env": {...}, "secret_env": {...}}``, every value a string:

    * ``env`` holds ENABLE_APM, APM_PROVIDER, APM_SERVICE_NAME, APM_SAMPLE_RATE,
      APM_FLUSH_INTERVAL, DD_SITE, DD_SERVICE, DD_ENV and, unless it carries a
      password, OTEL_EXPORTER_OTLP_ENDPOINT. They are handed over whether APM is
      on or not, so the container's environment always says what it would do.
    * ``secret_env`` holds DD_API_KEY, only when APM is on with the datadog
      provider (the only one that sends anything to Datadog), and the OTLP
      endpoint when its URL carries a password.

    Raises :class:`ApmSettingsError` listing every problem when the settings are bad.
    """
    values, errors = normalise(settings, prefix)
    if errors:
        raise ApmSettingsError(errors)
    env = {
        "ENABLE_APM": "true" if values["enabled"] else "false",
        "APM_PROVIDER": values["provider"],
        "APM_SERVICE_NAME": values["service_name"],
        "APM_SAMPLE_RATE": _sample_rate_text(values["sample_rate"]),
        "APM_FLUSH_INTERVAL": str(values["flush_interval_ms"]),
        "DD_SITE": values["dd_site"],
        "DD_SERVICE": values["dd_service"] or values["service_name"],
        "DD_ENV": values["dd_env"],
    }
    secret_env = {}
    endpoint = values["otlp_endpoint"]
    if urlsplit(endpoint).password is not None:
        secret_env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    else:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    if values["enabled"] and values["provider"] == "datadog":
        secret_env["DD_API_KEY"] = values["dd_api_key"]
    return {"env": env, "secret_env": secret_env}
