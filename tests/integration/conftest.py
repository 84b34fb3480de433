"""Integration tests: real services on loopback, driven through ansible-playbook.

Each test module marks itself ``pytestmark = pytest.mark.integration``. Shared
helpers are plain modules beside this file: ``ansible_runner`` (run playbooks,
parse the PLAY RECAP, run one module) and ``docker_helpers`` (dockerd). Import
them through the collection path, e.g.
``from ansible_collections.unitehub.platform.tests.integration.ansible_runner import run_playbook``.
"""
