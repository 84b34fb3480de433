"""Shared set-up for module tests: a module run in-process as Ansible runs it, and
the fakes that several modules' tests put in place of the Docker daemon and PgBouncer."""

import json
from typing import NamedTuple

import pytest
from ansible.module_utils import _internal
from ansible.module_utils.testing import patch_module_args

from ansible_collections.unitehub.platform.tests.unit.plugins.module_utils.docker_fakes import FakeDockerAPI
from ansible_collections.unitehub.platform.tests.unit.plugins.modules.pool_harness import fake_servers


@pytest.fixture(autouse=True)
def module_process(monkeypatch):
    """A module process is not the controller. Once any test imported controller
    code (filters, callbacks), ansible would print module warnings instead of
    returning them; keep them in the result as they are in a real module run."""
    monkeypatch.setattr(_internal, "is_controller", False)


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
        monkeypatch.setattr(module, "docker_api_client", lambda host, timeout: fake)
        return fake

    return install


@pytest.fixture
def servers(monkeypatch):
    """PgBouncer's admin console on 6432 and PostgreSQL on 5432, faked in module_utils/pgbouncer.py."""
    return fake_servers(monkeypatch)
