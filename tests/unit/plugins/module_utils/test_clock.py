"""Unit tests of the timestamps and ages of the deploy files."""

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils.clock import format_age, format_ts, parse_ts


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (59.9, "59s"), (312, "5m12s"), (11040, "3h04m"), (190800, "2d05h")])
def test_format_age(seconds, text):
    assert format_age(seconds) == text


def test_timestamps_round_trip_in_utc_with_a_z():
    assert format_ts(0) == "1970-01-01T00:00:00Z"
    assert format_ts(1.5, precision="milliseconds") == "1970-01-01T00:00:01.500Z"
    assert parse_ts(format_ts(1767225600)) == 1767225600
    assert parse_ts("2026-01-01T00:00:00") == 1767225600, "a naive timestamp is read as UTC"


@pytest.mark.parametrize("text", [None, 42, "", "yesterday", "2026-13-01T00:00:00Z"])
def test_parse_ts_gives_none_for_what_is_not_a_timestamp(text):
    assert parse_ts(text) is None
