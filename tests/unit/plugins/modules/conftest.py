"""Shared set-up for module tests: a module run in-process as Ansible runs it, and
the fakes that several modules' tests put in place of the Docker daemon and PgBouncer.

A module runs in a process of its own, where no controller code is loaded. Once
controller code is imported (ansible.errors, any filter or callback plugin),
ansible-core's module_utils switch to controller behaviour for the rest of the
process: ``AnsibleModule.warn`` then prints the warning instead of returning it in
the result. So these tests run in a pytest process without controller code, as
``ansible-test units`` runs module and module_utils tests apart from controller
tests; ``make unit`` does the same. A session that also holds controller tests is
refused with that advice, rather than reporting wrong warnings.
"""

import json
import os
import sys
from typing import NamedTuple

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.unitehub.platform.plugins.module_utils import docker_client
from ansible_collections.unitehub.platform.tests.support.result_keys import misused_keys
from ansible_collections.unitehub.platform.tests.unit.plugins.module_utils.docker_fakes import FakeDockerAPI
from ansible_collections.unitehub.platform.tests.unit.plugins.modules.pool_harness import fake_servers


MODULE_TESTS = os.path.dirname(os.path.abspath(__file__))
# Every controller import loads this package, and loading it is what switches module_utils.
CONTROLLER_PACKAGE = "ansible._internal"
SEPARATE_RUN = ("module tests need a pytest process without controller code (see tests/unit/plugins/modules/"
                "conftest.py): run them apart from the controller and app tests, as `make unit` does:\n"
                "  pytest tests/unit/plugins/modules tests/unit/plugins/module_utils\n"
                "  pytest tests/unit tests/app --ignore=tests/unit/plugins/modules --ignore=tests/unit/plugins/module_utils")


def controller_code_loaded():
    return CONTROLLER_PACKAGE in sys.modules


def pytest_collection_modifyitems(items):
    if controller_code_loaded() and any(str(item.path).startswith(MODULE_TESTS + os.sep) for item in items):
        raise pytest.UsageError(SEPARATE_RUN)


@pytest.fixture(autouse=True)
def module_process():
    """Fails a module test once a test before it imported controller code."""
    if controller_code_loaded():
        pytest.fail(SEPARATE_RUN)


class ModuleRun(NamedTuple):
    """One run of a module: its exit code, the JSON result it printed, and that
    output as text (to show that no secret was printed)."""

    rc: int
    result: dict
    out: str


@pytest.fixture
def run_module(capsys):
    """``run_module(module, args, check_mode=False, diff=False)`` runs ``module.main()``
    as Ansible runs a module: ``args`` in, a ModuleRun out. ``check_mode`` and ``diff``
    set ``_ansible_check_mode`` and ``_ansible_diff`` (``args`` may carry them too).
    The exit code must agree with the result's ``failed``."""

    def run(module, args, check_mode=False, diff=False):
        args = dict(args)
        if check_mode:
            args["_ansible_check_mode"] = True
        if diff:
            args["_ansible_diff"] = True
        with patch_module_args(args), pytest.raises(SystemExit) as exit_info:
            module.main()
        out = capsys.readouterr().out
        result = json.loads(out)
        assert (exit_info.value.code != 0) == bool(result.get("failed")), (
            "exit code %r does not match failed=%r" % (exit_info.value.code, result.get("failed")))
        assert not misused_keys(result), "%s returned keys Ansible reserves: %s" % (
            module.__name__, misused_keys(result))
        return ModuleRun(exit_info.value.code, result, out)

    return run


@pytest.fixture
def fake_docker(monkeypatch):
    """``fake_docker(module, *images)`` gives a Docker module an in-memory daemon holding
    ``images``, in place of the client its options name; returns that FakeDockerAPI."""

    def install(module, *images):
        fake = FakeDockerAPI()
        for ref in images:
            fake.add_image(ref)
        monkeypatch.setattr(docker_client, "docker_api_client", lambda host, request_timeout: fake)
        return fake

    return install


@pytest.fixture
def servers(monkeypatch):
    """PgBouncer's admin console on 6432 and PostgreSQL on 5432, faked in module_utils/pgbouncer.py."""
    return fake_servers(monkeypatch)
