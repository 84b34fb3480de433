# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TLS at the load balancer, against the real nginx of the converged local stack.

- The stack's own CA (site.yml made it into inventories/local/.secrets/tls/) signs the
  certificate of 127.0.0.1; HTTPS answers on 127.0.0.1:8443 with HSTS and HTTP/2, and plain
  HTTP on 8080 still serves (the local inventory turns the redirect off).
- Only TLS 1.2 and 1.3: the server refuses a TLS 1.1 handshake. The client is told to
  offer it at security level 0, because OpenSSL 3 will not offer TLS 1.1 otherwise, so
  the refusal seen is the server's.
- The switch verification, the stability watch's probe and health.yml over HTTPS.
- With the redirect on (the production default), a second site converged on scratch
  ports answers plain HTTP with 301 to HTTPS.

Every request goes to 127.0.0.1; the stack is asserted as the session left it, apart
from the scratch site, which is removed again.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils.nginx import nginx_master_pid
from ansible_collections.unitehub.platform.plugins.module_utils.slots import other_slot
from ansible_collections.unitehub.platform.tests.integration.ansible_runner import (
    REPO_ROOT,
    role_play,
    run_module,
    run_playbook,
    write_playbook,
)
from ansible_collections.unitehub.platform.tests.integration.deploy_helpers import BASE_RELEASE, ensure_live, lb_version
from ansible_collections.unitehub.platform.tests.integration.stack_helpers import HEALTH_PATH, SLOT_PORTS
from ansible_collections.unitehub.platform.tests.support.loopback import free_port
from ansible_collections.unitehub.platform.tests.support.tls import make_ca

pytestmark = pytest.mark.integration

TLS_DIR = os.path.join(REPO_ROOT, "inventories", "local", ".secrets", "tls")
CA = os.path.join(TLS_DIR, "ca.crt")
HTTPS = "https://127.0.0.1:8443"
HSTS = "strict-transport-security: max-age=31536000"


def curl(*args):
    """curl's answer: (status line and headers, lowercased; body). Nothing from the environment's proxies."""
    proc = subprocess.run(["curl", "-sS", "--noproxy", "*", "--max-time", "10", "-D", "-", *args],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    head, _sep, body = proc.stdout.partition("\n\n")  # text mode turned each CRLF into LF
    return head.lower(), body


def s_client(*args):
    """openssl s_client against the stack's HTTPS port: (exit code, output)."""
    proc = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:8443", "-CAfile", CA, *args],
                          input="", capture_output=True, text=True, timeout=30, check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def live_slot():
    ensure_live(BASE_RELEASE)
    return lb_version()[0]


def test_https_answers_with_the_local_ca_hsts_and_http2(tmp_path, live_slot):
    head, _body = curl("--cacert", CA, HTTPS + "/api/version")
    assert head.startswith("http/2 200"), head  # curl negotiates HTTP/2 over TLS by default
    assert HSTS in head
    assert "x-upstream-slot: %s" % live_slot in head

    head, _body = curl("--cacert", CA, "--http2", HTTPS + "/api/admin/breakers")
    assert head.startswith("http/2 404") and HSTS in head  # admin stays off the LB; HSTS on every answer

    # Plain HTTP keeps serving locally, and HSTS is never sent over it.
    head, _body = curl("http://127.0.0.1:8080/api/version")
    assert head.startswith("http/1.1 200") and "strict-transport-security" not in head

    # The certificate is really checked: trusting another CA, curl refuses it.
    refused = subprocess.run(["curl", "-sS", "--noproxy", "*", "--max-time", "10", "-o", "/dev/null",
                              "--cacert", make_ca(tmp_path).ca_path, HTTPS + "/api/version"],
                             capture_output=True, text=True, timeout=30, check=False)
    assert refused.returncode == 60, refused.stderr  # 60: the peer's certificate cannot be authenticated


def test_the_local_ca_and_certificate_are_made_for_127_0_0_1():
    for name in ("ca.key", "server.key"):
        assert stat.S_IMODE(os.stat(os.path.join(TLS_DIR, name)).st_mode) == 0o600, name
    san = subprocess.run(["openssl", "x509", "-in", os.path.join(TLS_DIR, "server.crt"), "-noout", "-ext",
                          "subjectAltName"], capture_output=True, text=True, timeout=30, check=True).stdout
    assert "IP Address:127.0.0.1" in san
    verified = subprocess.run(["openssl", "verify", "-CAfile", CA, os.path.join(TLS_DIR, "server.crt")],
                              capture_output=True, text=True, timeout=30, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # On the load balancer, the key is root's alone.
    key = os.stat("/etc/nginx/tls/unitehub/unitehub.key")
    assert (stat.S_IMODE(key.st_mode), key.st_uid) == (0o600, 0)
    assert stat.S_IMODE(os.stat("/etc/nginx/tls/unitehub").st_mode) == 0o700


def test_only_tls_1_2_and_1_3_are_accepted():
    rc, output = s_client("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert rc != 0, output
    # The server said no with a protocol_version alert; the client did offer TLS 1.1.
    assert "alert protocol version" in output, output
    for flag, protocol in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        rc, output = s_client(flag)
        assert rc == 0, output
        assert "New, %s, Cipher is" % protocol in output and "Verify return code: 0 (ok)" in output, output


def test_switch_verification_and_stability_probe_run_over_https(tmp_path, live_slot):
    other = other_slot(live_slot)
    verify_url = HTTPS + HEALTH_PATH
    switched, run = run_module(tmp_path, "unitehub.platform.slot_switch", {
        "slot": live_slot, "servers": ["127.0.0.1:%d" % SLOT_PORTS[live_slot]],
        "backup_servers": ["127.0.0.1:%d" % SLOT_PORTS[other]],
        "verify_url": verify_url, "ca_path": CA,
    })
    assert not switched.get("failed"), run.output[-4000:]
    assert switched["verified"] == {"slot": live_slot, "error": None}

    # The stability watch's probe: every answer through the HTTPS listener from the live slot.
    watched, run = run_module(tmp_path, "unitehub.platform.health_probe", {
        "type": "http", "url": verify_url, "ca_path": CA, "expect": "pass_or_warn", "expect_slot": live_slot,
        "interval": 0.2, "consecutive_successes": 3, "timeout": 10, "max_failures": 1,
    })
    assert not watched.get("failed"), run.output[-4000:]

    # Without the CA the certificate is refused, and the message says what to set.
    refused, run = run_module(tmp_path, "unitehub.platform.health_probe", {
        "type": "http", "url": verify_url, "timeout": 0,
    })
    assert refused.get("failed"), run.output[-4000:]
    assert "TLS certificate verification failed" in refused["msg"] and "ca_path" in refused["msg"]


def test_health_playbook_probes_the_load_balancer_over_https(live_slot):
    # Only the load balancer's row is this test's; the other components have tests of their own.
    result = run_playbook(os.path.join(REPO_ROOT, "playbooks", "health.yml"))
    row = [line for line in result.stdout.splitlines() if "https://127.0.0.1:8443/api/health/system" in line]
    assert row and "nginx" in row[0] and ("pass" in row[0] or "warn" in row[0]), result.stdout[-4000:]


@pytest.fixture
def redirecting_site(live_slot):
    """A second load-balancer site with the redirect on, as production has it, on scratch
    ports in front of the live slot; removed and nginx reloaded afterwards."""
    name = "uhtls" + os.urandom(4).hex()
    site = {"name": name, "http": free_port(), "https": free_port()}
    site["vars"] = {
        "nginx_app_name": name,
        "nginx_listen_port": site["http"],
        "nginx_tls_listen_port": site["https"],
        "nginx_tls_redirect_http": True,
        # Without a live/ marker the site serves blue: the stack's live slot stands in for it.
        "nginx_upstream_initial_servers": {"blue": ["127.0.0.1:%d" % SLOT_PORTS[live_slot]],
                                           "green": ["127.0.0.1:%d" % SLOT_PORTS[other_slot(live_slot)]]},
    }
    yield site
    if os.path.exists("/etc/nginx/conf.d/%s.conf" % name):
        os.unlink("/etc/nginx/conf.d/%s.conf" % name)
    for directory in ("/etc/nginx/unitehub/%s" % name, "/etc/nginx/tls/%s" % name):
        shutil.rmtree(directory, ignore_errors=True)
    subprocess.run(["nginx", "-t"], check=True, capture_output=True, timeout=30)
    if nginx_master_pid() is not None:
        subprocess.run(["nginx", "-s", "reload"], check=True, capture_output=True, timeout=30)


def test_with_the_redirect_on_http_answers_301_to_https(tmp_path, redirecting_site):
    converged = run_playbook(write_playbook(tmp_path, role_play("unitehub.platform.nginx")),
                             extra_vars=redirecting_site["vars"])
    assert converged.rc == 0, converged.output[-6000:]
    http, https = redirecting_site["http"], redirecting_site["https"]

    head, _body = curl("http://127.0.0.1:%d/api/version?n=1" % http)
    assert head.startswith("http/1.1 301"), head
    assert "location: https://127.0.0.1:%d/api/version?n=1" % https in head
    assert "strict-transport-security" not in head
    # nginx's own liveness still answers over HTTP, for probes that speak only HTTP.
    head, body = curl("http://127.0.0.1:%d/nginx-health" % http)
    assert head.startswith("http/1.1 200") and body == "ok\n"

    # Following the redirect ends on HTTPS, over HTTP/2, with HSTS.
    followed = subprocess.run(["curl", "-sS", "--noproxy", "*", "--max-time", "10", "--cacert", CA, "-L",
                               "-o", "/dev/null", "-D", "-", "-w", "%{url_effective}",
                               "http://127.0.0.1:%d/api/version" % http],
                              capture_output=True, text=True, timeout=30, check=True).stdout.lower()
    final = followed.split("\n\n")[-2:]
    assert final[0].startswith("http/2 200") and HSTS in final[0], followed
    assert final[1] == "https://127.0.0.1:%d/api/version" % https


def test_a_missing_certificate_fails_before_anything_changes(tmp_path, redirecting_site):
    bad = dict(redirecting_site["vars"], nginx_tls_certificate_src="/nonexistent/lb.crt")
    result = run_playbook(write_playbook(tmp_path, role_play("unitehub.platform.nginx")), extra_vars=bad)
    assert result.rc != 0
    counts = result.counts()
    assert counts["failed"] == 1 and counts["changed"] == 0, result.stdout[-4000:]
    assert "nginx_tls_certificate_src='/nonexistent/lb.crt' is not a file on the controller" in result.stdout
    assert not os.path.exists("/etc/nginx/conf.d/%s.conf" % redirecting_site["name"])
    assert not os.path.exists("/etc/nginx/tls/%s" % redirecting_site["name"])
