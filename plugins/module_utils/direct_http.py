# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One HTTP request straight to the host a URL names.

Probes, switch verification and the breaker admin API must reach the very
instance they name, so there is no proxy and no redirect to honour. That is all
``http.client`` does. ``ansible.module_utils.urls.open_url`` would add about
0.15 s of imports to every module run and build a TLS context (loading the CA
store, some 30 ms) for every request, plain HTTP included; on a deploy's
critical path that is paid on every probe. The TLS context here is built only
for https URLs, once per process.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.parse
from collections import namedtuple

Response = namedtuple("Response", "status headers body")

_CONTEXTS = {}


def _tls_context(validate_certs, ca_path=None):
    """The TLS context of a client: the system's CAs, or only those of ``ca_path`` (a PEM file)."""
    key = (bool(validate_certs), ca_path)
    if key not in _CONTEXTS:
        context = ssl.create_default_context(cafile=ca_path)
        if not validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        _CONTEXTS[key] = context
    return _CONTEXTS[key]


def url_host(host):
    """``host`` as the host part of a URL or ``host:port`` wants it: an IPv6 literal in brackets."""
    return "[%s]" % host if ":" in host and not host.startswith("[") else host


def request(url, method="GET", headers=None, body=None, timeout=5.0, validate_certs=True, max_bytes=None,
            agent="unitehub.platform", ca_path=None):
    """Send one request and return ``Response(status, headers, body)`` whatever the status.

    The body is read up to ``max_bytes + 1`` bytes when ``max_bytes`` is given, so a
    caller can tell an oversized body without reading all of it. An https URL's
    certificate is checked against the system's CAs, or against ``ca_path`` only
    (a PEM file, such as a private CA's certificate). Raises ValueError
    for a URL that is not http(s)://host[:port]/..., and OSError, ssl.SSLError or
    http.client.HTTPException when the exchange fails.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("the scheme must be http or https, not %r" % (parts.scheme,))
    if not parts.hostname:
        raise ValueError("there is no host")
    port = parts.port  # raises ValueError for a bad port
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname, port, timeout=timeout,
                                                 context=_tls_context(validate_certs, ca_path))
    else:
        connection = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    sent = {"User-Agent": agent, "Connection": "close"}
    sent.update(headers or {})
    try:
        connection.request(method, target, body=body, headers=sent)
        response = connection.getresponse()
        data = response.read() if max_bytes is None else read_at_most(response, max_bytes + 1)
        return Response(response.status, response.headers, data)
    finally:
        connection.close()


def read_at_most(stream, limit):
    """At most ``limit`` bytes of ``stream``, however it splits its reads."""
    chunks = []
    while limit > 0:
        chunk = stream.read(limit)
        if not chunk:
            break
        chunks.append(chunk)
        limit -= len(chunk)
    return b"".join(chunks)
