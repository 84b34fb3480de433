# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Circuit-breaker state of the running app, through its admin API.

The app (each slot, on its own port) answers

- ``GET  /api/admin/breakers`` with ``{"slot", "version", "breakers": {name: {state, failures, ...}}}``
- ``POST /api/admin/breakers/<name>/reset`` and ``.../open`` (404 for an unknown breaker),

each only with ``Authorization: Bearer <APP_ADMIN_TOKEN>`` (401 without it).

Every endpoint's answer, or its failure, is data: nothing here raises on an HTTP
error or an unreachable slot. The admin token never appears in a message.
"""

from __future__ import annotations

import json
from http.client import HTTPException
from urllib.parse import quote, urlsplit

from ansible_collections.unitehub.platform.plugins.module_utils.direct_http import request, url_host

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORTS = (3008, 3009)
BREAKER_STATES = ("CLOSED", "OPEN", "HALF_OPEN")
ACTIONS = ("reset", "open")
LIST_PATH = "/api/admin/breakers"
TOKEN_REFUSED = "the app refused the admin token (401): check APP_ADMIN_TOKEN / app_admin_token"


def admin_api_argument_spec():
    """The options that say where the slots' admin API answers, to merge into a module's
    argument_spec. Documented by the doc fragment ``unitehub.platform.app_admin``."""
    return dict(
        endpoints=dict(type="list", elements="str"),
        host=dict(type="str", default=DEFAULT_HOST),
        ports=dict(type="list", elements="int"),
        request_timeout=dict(type="float", default=5.0, aliases=["timeout"],
                             deprecated_aliases=[dict(name="timeout", version="2.0.0",
                                                      collection_name="unitehub.platform")]),
        validate_certs=dict(type="bool", default=True),
    )


class BreakerError(Exception):
    """One request failed. ``reachable`` is False when no HTTP answer came back."""

    def __init__(self, message, status=None, reachable=True):
        super().__init__(message)
        self.status = status
        self.reachable = reachable


def build_endpoints(endpoints=None, host=None, ports=None):
    """Base URLs to query: ``endpoints`` as given, or ``http://<host>:<port>`` per port."""
    if endpoints:
        urls = []
        for url in endpoints:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise BreakerError("endpoint %r is not an http(s) base URL such as http://127.0.0.1:3008" % (url,))
            urls.append(url.rstrip("/"))
        return urls
    host = url_host(host or DEFAULT_HOST)
    urls = []
    for port in ports or DEFAULT_PORTS:
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise BreakerError("port %r is not a TCP port (1-65535)" % (port,))
        urls.append("http://%s:%d" % (host, port))
    return urls


def _scrub(text, token):
    return text.replace(token, "********") if token else text


def request_json(url, method="GET", token=None, timeout=5.0, validate_certs=True):
    """(status, headers, decoded JSON body) of one request. Raises BreakerError
    with an operator-facing message for every failure; never shows the token."""
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = "Bearer %s" % token
    try:
        status, response_headers, raw = request(url, method=method, headers=headers, timeout=timeout,
                                                validate_certs=validate_certs, body=b"" if method == "POST" else None,
                                                agent="unitehub.platform.breaker")
    except (HTTPException, OSError, ValueError) as exc:
        raise BreakerError(_scrub("cannot reach %s: %s" % (url, exc), token), reachable=False)
    if status == 401:
        raise BreakerError(TOKEN_REFUSED, status=401)
    if not 200 <= status < 300:
        detail = _scrub(raw.decode("utf-8", "replace").strip()[:200], token)
        raise BreakerError("%s %s answered HTTP %d%s" % (method, url, status, ": " + detail if detail else ""),
                           status=status)
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except ValueError:
        raise BreakerError("%s %s answered HTTP %d with a body that is not JSON" % (method, url, status), status=status)
    return status, response_headers, body


def _contract_problem(body):
    if not isinstance(body, dict) or not isinstance(body.get("breakers"), dict):
        return "the body has no 'breakers' object"
    for name, breaker in body["breakers"].items():
        if not isinstance(breaker, dict) or breaker.get("state") not in BREAKER_STATES:
            return "breaker %r has no state among %s" % (name, ", ".join(BREAKER_STATES))
    return None


def fetch_endpoint(base_url, token=None, timeout=5.0, validate_certs=True):
    """The breakers of one slot: ``{url, slot, version, reachable, error, breakers}``."""
    result = {"url": base_url, "slot": None, "version": None, "reachable": False, "error": None, "breakers": {}}
    url = base_url + LIST_PATH
    try:
        _status, headers, body = request_json(url, token=token, timeout=timeout, validate_certs=validate_certs)
    except BreakerError as exc:
        result["reachable"] = exc.reachable
        result["error"] = str(exc)
        if exc.status == 404:
            result["error"] += " (is this the app's admin API? check the endpoint and port)"
        return result
    result["reachable"] = True
    result["slot"] = headers.get("X-App-Slot")
    result["version"] = headers.get("X-App-Version")
    problem = _contract_problem(body)
    if problem:
        result["error"] = "GET %s does not follow the breaker contract: %s" % (url, problem)
        return result
    result["slot"] = body.get("slot") or result["slot"]
    result["version"] = body.get("version") or result["version"]
    result["breakers"] = body["breakers"]
    return result


def summarize(results):
    """``open``: every breaker not CLOSED as ``slot:name``; ``unreachable_endpoints``:
    the URLs that did not answer (not ``unreachable``, a key Ansible reserves for hosts); ``all_closed``: every endpoint answered the
    contract and every breaker is CLOSED."""
    opened = []
    for item in results:
        label = item["slot"] or item["url"]
        for name in sorted(item["breakers"]):
            if item["breakers"][name].get("state") != "CLOSED":
                opened.append("%s:%s" % (label, name))
    unreachable = [item["url"] for item in results if not item["reachable"]]
    all_closed = bool(results) and not opened and not any(item["error"] for item in results)
    return {"open": opened, "unreachable_endpoints": unreachable, "all_closed": all_closed}


def needs_change(breaker, action):
    """Whether ``action`` would change ``breaker``: a reset changes a breaker that is
    not CLOSED or has counted failures; an open changes one that is not OPEN."""
    if action == "reset":
        return breaker.get("state") != "CLOSED" or bool(breaker.get("failures"))
    return breaker.get("state") != "OPEN"


def _predicted(breaker, action):
    if action == "reset":
        return dict(breaker, state="CLOSED", failures=0, successes=0, opened_at=None)
    return dict(breaker, state="OPEN")


def set_breaker(base_url, name, action, token, timeout=5.0, validate_certs=True, check_mode=False):
    """Reset or open breaker ``name`` on one slot, only if that changes it.

    Returns ``{url, slot, version, reachable, changed, before, after, error}``.
    """
    if action not in ACTIONS:
        raise BreakerError("state %r is not one of %s" % (action, ", ".join(ACTIONS)))
    current = fetch_endpoint(base_url, token=token, timeout=timeout, validate_certs=validate_certs)
    result = {key: current[key] for key in ("url", "slot", "version", "reachable", "error")}
    result.update(changed=False, before=None, after=None)
    if current["error"]:
        return result
    if name not in current["breakers"]:
        known = ", ".join(sorted(current["breakers"])) or "none"
        result["error"] = "breaker %r is not known to the app at %s; it has: %s" % (name, base_url, known)
        return result
    before = current["breakers"][name]
    result["before"] = before
    if not needs_change(before, action):
        result["after"] = before
        return result
    result["changed"] = True
    if check_mode:
        result["after"] = _predicted(before, action)
        return result
    url = "%s%s/%s/%s" % (base_url, LIST_PATH, quote(name, safe=""), action)
    try:
        request_json(url, method="POST", token=token, timeout=timeout, validate_certs=validate_certs)
    except BreakerError as exc:
        result["changed"] = False
        result["error"] = str(exc)
        if exc.status == 404:
            result["error"] = "breaker %r is not known to the app at %s (404)" % (name, base_url)
        return result
    after = fetch_endpoint(base_url, token=token, timeout=timeout, validate_certs=validate_certs)
    result["after"] = after["breakers"].get(name) if not after["error"] else None
    if after["error"]:
        result["error"] = "the %s was sent, but reading the breaker back failed: %s" % (action, after["error"])
    return result


def read_breakers(params):
    """What breaker_info returns: every endpoint's breakers and their summary."""
    urls = build_endpoints(params["endpoints"], params["host"], params["ports"])
    results = [fetch_endpoint(url, token=params["token"], timeout=params["request_timeout"],
                              validate_certs=params["validate_certs"]) for url in urls]
    return dict(changed=False, endpoints=results, **summarize(results))


def change_breakers(params, check_mode=False):
    """What the breaker module returns: ``name`` reset or opened on every endpoint that
    needs it, the before/after states as ``diff``, the endpoints that failed as
    ``errors`` and those skipped for not answering as ``skipped``."""
    if not params["token"].strip():
        raise BreakerError("token is empty: set app_admin_token to the app's APP_ADMIN_TOKEN")
    if not params["name"].strip():
        raise BreakerError("name is empty: give the breaker's name, for example redis or database")
    urls = build_endpoints(params["endpoints"], params["host"], params["ports"])
    results = [set_breaker(url, params["name"], params["state"], params["token"], timeout=params["request_timeout"],
                           validate_certs=params["validate_certs"], check_mode=check_mode) for url in urls]
    return {
        "changed": any(item["changed"] for item in results),
        "endpoints": results,
        "diff": {
            "before": {item["slot"] or item["url"]: (item["before"] or {}).get("state") for item in results},
            "after": {item["slot"] or item["url"]: (item["after"] or {}).get("state") for item in results},
        },
        "errors": [item["error"] for item in results
                   if item["error"] and (item["reachable"] or not params["skip_unreachable"])],
        "skipped": [item["url"] for item in results if not item["reachable"]],
    }
