# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The monitoring role's PgBouncer exporter: what it renders from SHOW POOLS and SHOW STATS.

The rendering is pure; the output is read back with prometheus_client's own parser, so a
line Prometheus would refuse fails here. The exporter against a real PgBouncer is covered
by tests/integration/test_monitoring.py.
"""

from __future__ import annotations

import decimal
import importlib.util
import os

import pytest
from prometheus_client.parser import text_string_to_metric_families

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO_ROOT, "roles", "monitoring", "files", "pgbouncer_exporter.py")


@pytest.fixture(scope="module")
def exporter():
    spec = importlib.util.spec_from_file_location("pgbouncer_exporter", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def samples(text):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


POOLS = ("pgbouncer_pools", ("database", "user"), ["database", "user", "cl_active", "cl_waiting", "maxwait", "pool_mode"],
         [("unitehub", "unitehub", 4, 2, 1, "transaction"), ("pgbouncer", "pgbouncer", 1, 0, 0, "statement")])
# PgBouncer sends SHOW STATS counters as numerics, which psycopg reads as Decimal.
STATS = ("pgbouncer_stats", ("database",), ["database", "total_xact_count", "total_query_time"],
         [("unitehub", decimal.Decimal(1234), decimal.Decimal("98765432"))])


def test_every_numeric_column_becomes_a_gauge_labelled_by_its_row(exporter):
    got = samples(exporter.exposition([POOLS, STATS], up=True))
    assert got[("pgbouncer_up", ())] == 1
    assert got[("pgbouncer_pools_cl_waiting", (("database", "unitehub"), ("user", "unitehub")))] == 2
    assert got[("pgbouncer_pools_cl_active", (("database", "pgbouncer"), ("user", "pgbouncer")))] == 1
    assert got[("pgbouncer_pools_maxwait", (("database", "unitehub"), ("user", "unitehub")))] == 1
    assert got[("pgbouncer_stats_total_query_time", (("database", "unitehub"),))] == 98765432
    assert got[("pgbouncer_stats_total_xact_count", (("database", "unitehub"),))] == 1234


def test_text_columns_and_label_columns_are_not_series(exporter):
    names = {name for name, _labels in samples(exporter.exposition([POOLS, STATS], up=True))}
    assert not {"pgbouncer_pools_pool_mode", "pgbouncer_pools_database", "pgbouncer_stats_database"} & names


def test_a_failed_read_is_a_scrape_with_up_0_and_nothing_else(exporter):
    assert samples(exporter.exposition([], up=False)) == {("pgbouncer_up", ()): 0}


def test_label_values_are_escaped(exporter):
    table = ("pgbouncer_pools", ("database", "user"), ["database", "user", "cl_waiting"], [('we"ird\\db', "a\nb", 1)])
    got = samples(exporter.exposition([table], up=True))
    assert got[("pgbouncer_pools_cl_waiting", (("database", 'we"ird\\db'), ("user", "a\nb")))] == 1


def test_a_column_that_makes_no_metric_name_is_skipped(exporter):
    table = ("pgbouncer_stats", ("database",), ["database", "total-odd", "avg_wait_time"], [("db", 5, 7)])
    got = samples(exporter.exposition([table], up=True))
    assert set(got) == {("pgbouncer_up", ()), ("pgbouncer_stats_avg_wait_time", (("database", "db"),))}


def test_floats_keep_their_value_and_infinity_is_written_as_prometheus_reads_it(exporter):
    table = ("pgbouncer_stats", ("database",), ["database", "avg_wait_time", "odd"], [("db", 0.25, float("inf"))])
    got = samples(exporter.exposition([table], up=True))
    assert got[("pgbouncer_stats_avg_wait_time", (("database", "db"),))] == 0.25
    assert got[("pgbouncer_stats_odd", (("database", "db"),))] == float("inf")
