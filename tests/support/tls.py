# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A throwaway CA and an HTTPS server on 127.0.0.1 for tests of TLS clients.

    ca = make_ca(tmp_path)                     # ca.ca_path, ca.cert_path, ca.key_path
    with serve_https(Handler, ca) as base_url:  # https://127.0.0.1:<free port>
        ...

The server's certificate is for IP 127.0.0.1, signed by the CA; the CA's own
certificate is what a client trusts with ``ca_path``.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import ssl
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.unitehub.platform.tests.support.loopback import HOST, HttpServer


class TestCA(NamedTuple):
    ca_path: str
    cert_path: str
    key_path: str


def _write(path, data):
    with open(path, "wb") as handle:
        handle.write(data)
    return str(path)


def make_ca(directory):
    """A CA and a server certificate for 127.0.0.1 it signed, as PEM files in ``directory``."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unitehub test CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return TestCA(_write(os.path.join(directory, "ca.crt"), ca_cert.public_bytes(pem)),
                  _write(os.path.join(directory, "server.crt"), cert.public_bytes(pem)),
                  _write(os.path.join(directory, "server.key"), key_pem))


@contextlib.contextmanager
def serve_https(handler, ca):
    """Serve ``handler`` over TLS with ``ca``'s server certificate on a free port; yields the base URL."""
    server = HttpServer(handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(ca.cert_path, ca.key_path)
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    try:
        yield "https://%s:%d" % (HOST, server.port)
    finally:
        server.close()
