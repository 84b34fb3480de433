"""Make ``ansible_collections.unitehub.platform`` importable from a checkout."""

import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS_ROOT = os.path.join(REPO_ROOT, "collections")
if COLLECTIONS_ROOT not in sys.path:
    sys.path.insert(0, COLLECTIONS_ROOT)


import pytest  # noqa: E402  (after the path set-up above)


@pytest.fixture(scope="module")
def health_endpoint():
    """http://127.0.0.1:<port> of an in-process server of the app's health contract
    (tests/support/health_endpoints.py), for the probe tests of every level."""
    from ansible_collections.unitehub.platform.tests.support.health_endpoints import HealthHandler
    from ansible_collections.unitehub.platform.tests.support.loopback import serve_http

    with serve_http(HealthHandler) as url:
        yield url


@pytest.fixture
def hanging_port():
    """A port on 127.0.0.1 that accepts connections and never answers."""
    from ansible_collections.unitehub.platform.tests.support.health_endpoints import hanging_listener

    with hanging_listener() as port:
        yield port


@pytest.fixture
def otlp_receiver():
    """An OTLP/HTTP receiver on a free loopback port (tests/support/otlp.py), closed after the test."""
    from ansible_collections.unitehub.platform.tests.support.otlp import OtlpReceiver

    receiver = OtlpReceiver()
    yield receiver
    receiver.close()
