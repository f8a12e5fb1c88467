"""The fast path for well-formed horde entries agrees with the general parser, and hands it everything odd."""

from __future__ import annotations

from typing import Any

import pytest

from horde.stats import RequestStats
from horde.stats.wire import _parse_entry, _parse_horde_entry


def _entry() -> dict[str, Any]:
    stats = RequestStats()
    for ms in (1.0, 2.5, 40.0):
        stats.record("GET", "/a", ms, 10, None)
    entry: dict[str, Any] = stats.serialize()["stats"][0]
    return entry


def test_a_well_formed_entry_reads_the_same_on_both_paths() -> None:
    entry = _entry()
    assert _parse_horde_entry(entry) == _parse_entry(entry)


@pytest.mark.parametrize(
    "change",
    [
        {"num_requests": True},
        {"num_requests": 1.0},
        {"num_failures": -1},
        {"num_none_requests": 99},
        {"min_response_time_us": 10**9},
        {"start_time": True},
        {"name": 3},
        {"histogram": {1: True}},
        {"histogram": {1: 0}},
        {"histogram": {-1: 2}},
        {"histogram": {"1": 2}},
        {"histogram": {1.5: 2}},
        {"histogram": [1, 2]},
        {"num_reqs_per_sec": {1: -3}},
        {"num_fail_per_sec": {1: 2.0}},
    ],
)
def test_anything_odd_goes_to_the_general_parser(change: dict[str, Any]) -> None:
    assert _parse_horde_entry({**_entry(), **change}) is None


def test_a_missing_field_goes_to_the_general_parser() -> None:
    entry = _entry()
    del entry["num_fail_per_sec"]
    assert _parse_horde_entry(entry) is None
