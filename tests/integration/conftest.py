"""Integration tests: real services on loopback, driven through ansible-playbook.

Each test module marks itself ``pytestmark = pytest.mark.integration``. Shared
helpers are plain modules beside this file: ``ansible_runner`` (run playbooks,
parse the PLAY RECAP, run one module), ``deploy_helpers`` (deploy, state, audit
log), ``stack_helpers`` (dependencies down, throwaway app containers) and
``docker_helpers`` (dockerd); tests/support holds what the unit and app tests
share too (ports, waits, the OTLP receiver). Import them through the collection
path, e.g.
``from ansible_collections.unitehub.platform.tests.integration.ansible_runner import run_playbook``.
"""

import fcntl
import os

import pytest

from ansible_collections.unitehub.platform.tests.integration.ansible_runner import REPO_ROOT, run_playbook
from ansible_collections.unitehub.platform.tests.integration.fleet_helpers import INVENTORY, STATE_DIR, fleet

STACK_LOCK = "/tmp/unitehub-stack.lock"
# These modules start from deploy_helpers.BASE_RELEASE live and leave it live (the breaker
# tests after redeploying it with the default settings); run back to back, each finds it
# live and ensure_live need not deploy it again. test_deploy, which ends on another
# release, comes last of them.
RELEASE_ORDER = ("test_breakers_stack.py", "test_health_stack.py", "test_site.py", "test_deploy.py")
# Last, in this order: the harness brings a fleet up and down on its own; the site tests and the
# deploy tests then share one fleet provisioned once (fleet_site), which the session takes down.
FLEET_ORDER = ("test_fleet_harness.py", "test_fleet_site.py", "test_fleet_deploy.py")


def pytest_collection_modifyitems(items):
    """The modules of RELEASE_ORDER first, in that order; those of FLEET_ORDER last; the rest
    as collected."""
    def rank(item):
        name = os.path.basename(str(item.path))
        if name in RELEASE_ORDER:
            return RELEASE_ORDER.index(name)
        if name in FLEET_ORDER:
            return len(RELEASE_ORDER) + 1 + FLEET_ORDER.index(name)
        return len(RELEASE_ORDER)

    items[:] = sorted(items, key=rank)  # stable: a module's tests keep their order


@pytest.fixture(scope="session", autouse=True)
def exclusive_stack():
    """The integration tests share one stack (nginx, Redis, PostgreSQL, PgBouncer,
    dockerd) and stop and restart parts of it: two runs at once would break each
    other. Hold an exclusive lock for the whole session."""
    with open(STACK_LOCK, "w", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
        fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def fleet_site():
    """The local fleet from nothing, provisioned by site.yml once for every module that uses
    it (the result of that first run); taken down at the end of the session."""
    assert not os.path.exists(STATE_DIR), "a fleet is already up: take it down first (make fleet-down)"
    try:
        started = fleet("up")
        assert started.returncode == 0, started.stderr
        yield run_playbook(os.path.join(REPO_ROOT, "playbooks", "site.yml"), inventory=INVENTORY, timeout=1200)
    finally:
        fleet("down")
