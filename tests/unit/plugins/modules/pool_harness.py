# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a pool module in-process as Ansible would: arguments in, JSON out, exit code."""

from __future__ import annotations

import contextlib
import json

import pytest

from ansible.module_utils import basic

from ansible_collections.unitehub.platform.plugins.module_utils import pgbouncer
from ansible_collections.unitehub.platform.tests.unit.plugins.module_utils import pgbouncer_fakes as fakes

try:  # ansible-core >= 2.19
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # older ansible-core: the documented _ANSIBLE_ARGS hook
    from unittest import mock

    @contextlib.contextmanager
    def patch_module_args(args):
        with mock.patch.object(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()):
            yield


def run_module(module, args, capsys):
    """Returns (exit code, the JSON result the module printed)."""
    with patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            module.main()
    return excinfo.value.code, json.loads(capsys.readouterr().out)


def fake_servers(monkeypatch, servers=None, **options):
    """Put a fake psycopg in module_utils/pgbouncer.py. By default PgBouncer's console
    answers on 6432 and PostgreSQL on 5432."""
    fake = fakes.FakePsycopg(servers or {6432: fakes.CONSOLE, 5432: fakes.POSTGRES}, **options)
    monkeypatch.setattr(pgbouncer, "psycopg", fake)
    monkeypatch.setattr(pgbouncer, "HAS_PSYCOPG", True)
    return fake


def warning_texts(result):
    """The module's warnings as text: plain strings before ansible-core 2.19, structured summaries since."""
    texts = []
    for warning in result.get("warnings", []):
        texts.append(warning["event"]["msg"] if isinstance(warning, dict) else warning)
    return texts
