# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fakes and helpers for the pool modules' tests; conftest.py runs the modules."""

from __future__ import annotations

from ansible_collections.unitehub.platform.plugins.module_utils import postgres_client as pgbouncer
from ansible_collections.unitehub.platform.tests.unit.plugins.module_utils import pgbouncer_fakes as fakes


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
