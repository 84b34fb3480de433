"""Integration tests: real services on loopback, driven through ansible-playbook.

Each test module marks itself ``pytestmark = pytest.mark.integration``. Shared
helpers are plain modules beside this file: ``ansible_runner`` (run playbooks,
parse the PLAY RECAP, run one module) and ``docker_helpers`` (dockerd). Import
them through the collection path, e.g.
``from ansible_collections.unitehub.platform.tests.integration.ansible_runner import run_playbook``.
"""

import fcntl

import pytest

STACK_LOCK = "/tmp/unitehub-stack.lock"


@pytest.fixture(scope="session", autouse=True)
def exclusive_stack():
    """The integration tests share one stack (nginx, Redis, PostgreSQL, PgBouncer,
    dockerd) and stop and restart parts of it: two runs at once would break each
    other. Hold an exclusive lock for the whole session."""
    with open(STACK_LOCK, "w", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
        fcntl.flock(handle, fcntl.LOCK_UN)
