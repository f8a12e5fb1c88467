"""The compact report (entries as arrays) merges to exactly what the map form merges to, and refuses
malformed reports whole."""

from __future__ import annotations

import copy
import struct
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horde.clock import FakeClock
from horde.stats import RequestStats, StatsPayloadError
from horde.stats.compact import (
    ENTRY_FORMAT,
    encode_and_reset,
    encode_report,
    merge_report,
    pack_report,
    parse_row,
    unpack_report,
)

T0 = 1_700_000_000.0


def wire(payload: dict[str, Any]) -> dict[str, Any]:
    """What the master receives: the payload after a msgpack round trip."""
    result: dict[str, Any] = msgpack.unpackb(msgpack.packb(payload, use_bin_type=True), strict_map_key=False)
    return result


def worker_stats(clock: FakeClock) -> RequestStats:
    stats = RequestStats(clock=clock)
    for i in range(30):
        clock.advance(0.1)
        stats.record("GET", f"/item/{i % 4}", 1.0 + i * 3.7, 100 + i, None)
    stats.record("POST", "/cart", 12.5, 0, ValueError("out of stock"))
    stats.record("POST", "/cart", None, 0, None)  # a request without a response time
    stats.log_aborted("GET", "/slow")
    return stats


def merged(payload: dict[str, Any], clock: FakeClock, compact: bool) -> dict[str, Any]:
    master = RequestStats(clock=clock)
    if compact:
        merge_report(master, wire(payload))
    else:
        master.merge(wire(payload))
    return master.serialize()


def test_compact_and_map_forms_merge_to_the_same_numbers() -> None:
    clock = FakeClock(T0)
    stats = worker_stats(clock)
    as_map = copy.deepcopy(stats.serialize())
    compact = encode_report(stats)
    assert compact["entry_format"] == ENTRY_FORMAT
    assert all(type(row) is list for row in compact["stats"])
    assert merged(compact, clock, compact=True) == merged(as_map, clock, compact=False)


def test_the_map_form_still_merges_through_merge_report() -> None:
    clock = FakeClock(T0)
    as_map = worker_stats(clock).serialize()
    assert merged(as_map, clock, compact=True) == merged(as_map, clock, compact=False)


def test_encode_and_reset_leaves_the_worker_empty() -> None:
    clock = FakeClock(T0)
    stats = worker_stats(clock)
    payload = encode_and_reset(stats)
    assert payload["stats_total"][4] == 32
    assert stats.num_requests == 0 and not stats.errors and not stats.aborted
    assert encode_report(stats)["stats"] == []


def test_errors_and_aborted_rows_travel_with_the_compact_form() -> None:
    clock = FakeClock(T0)
    master = RequestStats(clock=clock)
    merge_report(master, wire(encode_report(worker_stats(clock))))
    assert [(row.method, row.name, row.occurrences) for row in master.errors.values()] == [
        ("POST", "/cart", 1)
    ]
    assert master.aborted == {("GET", "/slow"): 1}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["GET", "POST"]),
            st.sampled_from(["/a", "/b", "/c"]),
            st.one_of(st.none(), st.floats(min_value=0, max_value=120_000, allow_nan=False)),
            st.booleans(),
            st.floats(min_value=0, max_value=3),
        ),
        max_size=40,
    )
)
def test_any_recorded_sequence_merges_identically(
    records: list[tuple[str, str, float | None, bool, float]],
) -> None:
    clock = FakeClock(T0)
    stats = RequestStats(clock=clock)
    for method, name, rt, failed, dt in records:
        clock.advance(dt)
        stats.record(method, name, rt, 10, RuntimeError("boom") if failed else None)
    as_map = copy.deepcopy(stats.serialize())
    assert merged(encode_report(stats), clock, compact=True) == merged(as_map, clock, compact=False)


def _report() -> dict[str, Any]:
    return wire(encode_report(worker_stats(FakeClock(T0))))


def _with_row(change: dict[int, Any]) -> dict[str, Any]:
    payload = _report()
    row = payload["stats"][0]
    for index, value in change.items():
        row[index] = value
    return payload


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({4: True}, "non-negative ints"),
        ({4: 1.0}, "non-negative ints"),
        ({6: -1}, "non-negative ints"),
        ({5: 10**6}, "num_none_requests exceeds"),
        ({8: 10**12}, "min_response_time_us exceeds"),
        ({2: "yesterday"}, "must be numbers or null"),
        ({0: 7}, "string name"),
        ({11: {1: 2}}, "bytes or an array"),
        ({11: b"\x01\x02\x03"}, "pairs of 32-bit integers"),
        ({11: struct.pack("<2I", 5, 0)}, "zero count"),
        ({11: [1, 2, 3]}, "even length"),
        ({11: [5, 0]}, "zero count"),
        ({11: [5, -2]}, "non-negative ints"),
        ({12: [1.5, 2]}, "non-negative ints"),
    ],
)
def test_a_malformed_row_is_refused_and_nothing_is_merged(change: dict[int, Any], why: str) -> None:
    master = RequestStats(clock=FakeClock(T0))
    with pytest.raises(StatsPayloadError, match=why):
        merge_report(master, _with_row(change))
    assert master.num_requests == 0 and not master.entries


def test_counts_too_large_for_32_bits_travel_as_flat_arrays_and_merge_the_same() -> None:
    clock = FakeClock(T0)
    stats = worker_stats(clock)
    entry = stats.get("/item/0", "GET")
    index = next(iter(entry._hist))
    entry._hist[index] += 2**33  # more than a 32-bit count holds
    as_map = copy.deepcopy(stats.serialize())
    compact = encode_report(stats)
    row = next(r for r in compact["stats"] if r[0] == "/item/0")
    assert type(row[11]) is list and type(row[12]) is bytes
    assert merged(compact, clock, compact=True) == merged(as_map, clock, compact=False)


def test_counter_maps_are_packed_as_little_endian_uint32_keys_then_counts() -> None:
    clock = FakeClock(T0)
    stats = RequestStats(clock=clock)
    stats.record("GET", "/a", 0.05, 1, None)  # 50 µs: bucket 50
    stats.record("GET", "/a", 0.05, 1, None)
    row = encode_report(stats)["stats"][0]
    assert row[11] == struct.pack("<2I", 50, 2)
    assert row[12] == struct.pack("<2I", int(T0), 2) and row[13] == b""


def test_a_row_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(StatsPayloadError, match="array of 14 fields, got an array of 3"):
        parse_row(["GET", "/a", None])
    with pytest.raises(StatsPayloadError, match="got dict"):
        parse_row({"name": "/a"})


def test_a_bad_error_row_after_good_entries_changes_nothing() -> None:
    master = RequestStats(clock=FakeClock(T0))
    payload = _report()
    payload["errors"] = {"x": {"method": "GET"}}
    with pytest.raises(StatsPayloadError):
        merge_report(master, payload)
    payload = _report()
    payload["aborted"] = [["GET", "/slow", -1]]
    with pytest.raises(StatsPayloadError, match="aborted"):
        merge_report(master, payload)
    assert master.num_requests == 0 and not master.entries and not master.errors and not master.aborted


def test_an_unknown_entry_format_or_scheme_is_refused() -> None:
    master = RequestStats(clock=FakeClock(T0))
    with pytest.raises(StatsPayloadError, match="entry format 'array-9'"):
        merge_report(master, {**_report(), "entry_format": "array-9"})
    with pytest.raises(StatsPayloadError, match="histogram scheme"):
        merge_report(master, {**_report(), "histogram_scheme": "linear-ms"})
    with pytest.raises(StatsPayloadError, match="mapping"):
        merge_report(master, [1, 2])
    assert master.num_requests == 0


def test_a_packed_report_merges_like_the_decoded_one_and_garbage_is_refused() -> None:
    clock = FakeClock(T0)
    report = encode_report(worker_stats(clock))
    assert unpack_report(pack_report(report)) == wire(report)
    master = RequestStats(clock=clock)
    merge_report(master, pack_report(report))
    assert master.serialize() == merged(report, clock, compact=True)
    with pytest.raises(StatsPayloadError, match="undecodable stats report"):
        merge_report(master, b"\xc1 not msgpack")
