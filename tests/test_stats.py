"""RequestStats / StatsEntry / StatsError: recording, percentiles, rates, windows, errors, resets, merging."""

from __future__ import annotations

import math
import random
from typing import Any

import msgpack
import pytest

from horde.clock import FakeClock
from horde.stats import (
    MAX_RELATIVE_ERROR,
    PERCENTILES_TO_REPORT,
    RequestStats,
    StatsEntry,
    StatsError,
    StatsPayloadError,
)
from horde.stats.entries import OVERFLOW_ERROR
from horde.stats.errors import error_text
from horde.stats.histogram import Histogram, bucket_index

START = 1_000.0
ALL_PERCENTILES = (0.0, 0.01, 0.1, *PERCENTILES_TO_REPORT)


def new_stats(start: float = START, **kwargs: Any) -> tuple[FakeClock, RequestStats]:
    clock = FakeClock(start=start)
    return clock, RequestStats(clock, **kwargs)


def nearest_rank(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(q * len(ordered) - 1e-9)) - 1]


def within_bound(value: float, exact: float) -> bool:
    return abs(value - exact) <= MAX_RELATIVE_ERROR * exact + 1e-9


def wire(payload: dict[str, Any]) -> dict[str, Any]:
    """What the master receives: the payload after a msgpack round trip."""
    result: dict[str, Any] = msgpack.unpackb(msgpack.packb(payload), strict_map_key=False)
    return result


# -- recording and percentiles ------------------------------------------------------------------------


def test_record_counts_on_entry_and_total() -> None:
    _, stats = new_stats()
    stats.record("GET", "/a", 12.5, 100)
    stats.record("GET", "/a", 7.25, 50)
    stats.record("POST", "/a", 30.0, 0, error="boom")
    entry = stats.get("/a", "GET")
    assert entry.num_requests == 2
    assert entry.total_response_time == pytest.approx(19.75)
    assert entry.min_response_time == 7.25
    assert entry.max_response_time == 12.5
    assert entry.avg_response_time == pytest.approx(9.875)
    assert entry.total_content_length == 150
    assert entry.avg_content_length == 75
    assert entry.last_request_timestamp == START
    assert stats.total.name == "Aggregated" and stats.total.method == ""
    assert stats.num_requests == 3
    assert stats.num_failures == 1
    assert stats.fail_ratio == pytest.approx(1 / 3)
    assert set(stats.entries) == {("/a", "GET"), ("/a", "POST")}


def test_locust_median_examples() -> None:
    _, stats = new_stats()
    for rt in (100, 800, 700):
        stats.record("GET", "/", rt, 0)
    assert within_bound(stats.get("/", "GET").median_response_time, 700)

    _, stats = new_stats()
    for timed in (0, 800, 700, None, None, None, None):
        stats.record("GET", "/", timed, 0)
    entry = stats.get("/", "GET")
    assert entry.num_requests == 7
    assert entry.num_none_requests == 4
    assert entry.avg_response_time == 500.0
    assert within_bound(entry.median_response_time, 700)
    assert entry.get_response_time_percentile(0.0) == 0.0
    assert entry.get_response_time_percentile(1.0) == 800.0


def test_none_only_samples_give_zeros() -> None:
    _, stats = new_stats()
    for _ in range(3):
        stats.record("GET", "/", None, 0)
    entry = stats.get("/", "GET")
    assert entry.num_requests == 3 and entry.num_none_requests == 3
    assert entry.median_response_time == 0.0
    assert entry.avg_response_time == 0.0
    assert entry.min_response_time is None
    assert entry.max_response_time == 0.0
    assert entry.get_response_time_percentiles(PERCENTILES_TO_REPORT) == [0.0] * len(PERCENTILES_TO_REPORT)


def test_single_sample_is_every_percentile() -> None:
    _, stats = new_stats()
    stats.record("GET", "/", 1234.567, 0)
    entry = stats.get("/", "GET")
    assert entry.get_response_time_percentiles(ALL_PERCENTILES) == [1234.567] * len(ALL_PERCENTILES)


def test_percentiles_against_exact_nearest_rank() -> None:
    rng = random.Random(3)
    samples = [round(rng.lognormvariate(3, 1.2), 3) for _ in range(7_000)]
    _, stats = new_stats()
    for rt in samples:
        stats.record("GET", "/", rt, 0)
    entry = stats.get("/", "GET")
    got = entry.get_response_time_percentiles(ALL_PERCENTILES)
    for q, value in zip(ALL_PERCENTILES, got, strict=True):
        assert within_bound(value, nearest_rank(samples, q)), q
        assert min(samples) <= value <= max(samples)
    assert got[0] == min(samples)
    assert got[-1] == max(samples)  # p100 is the max exactly
    assert entry.get_response_time_percentile(0.95) == got[ALL_PERCENTILES.index(0.95)]


def test_percentiles_never_exceed_max() -> None:
    # 147 ms would become 150 with Locust's buckets; here p99 and p100 stay at or below the max.
    _, stats = new_stats()
    for rt in (10, 20, 147):
        stats.record("GET", "/", rt, 0)
    entry = stats.get("/", "GET")
    assert entry.get_response_time_percentile(1.0) == 147
    assert entry.get_response_time_percentile(0.99) == 147
    assert all(v <= 147 for v in entry.get_response_time_percentiles(ALL_PERCENTILES))


def test_inlined_bucketing_matches_histogram() -> None:
    rng = random.Random(9)
    values = [-3.0, 0.0, 0.0004, 0.0005, 0.127, 0.128, 0.1285, 1.0, 65.535, 3_600_000.0]
    values += [rng.uniform(0, 100_000) for _ in range(2000)]
    _, stats = new_stats()
    expected = Histogram()
    for rt in values:
        stats.record("GET", "/", rt, 0)
        expected.record(max(0, int(rt * 1000 + 0.5)))
    assert stats.get("/", "GET").histogram == expected
    assert stats.total.histogram == expected
    assert stats.get("/", "GET").min_response_time == 0.0


def test_record_equals_log_request_plus_log_error_and_entry_log() -> None:
    rng = random.Random(4)
    clock_a, a = new_stats()
    clock_b, b = new_stats()
    standalone_clock = FakeClock(START)
    c = RequestStats(standalone_clock)
    for _ in range(500):
        rt = rng.choice([None, rng.uniform(0, 3000)])
        name = rng.choice(["/x", "/y"])
        err = ConnectionError("nope") if rng.random() < 0.2 else None
        a.record("GET", name, rt, 10, err)
        b.log_request("GET", name, rt, 10)
        if err is not None:
            b.log_error("GET", name, err)
        entry = c.get(name, "GET")
        entry.log(rt, 10)
        c.total.log(rt, 10)
        if err is not None:
            entry.log_error(err)
            c.total.log_error(err)
        for clock in (clock_a, clock_b, standalone_clock):
            clock.advance(0.37)
    assert a.serialize() == b.serialize()
    without_errors = a.serialize()
    without_errors["errors"] = {}
    assert c.serialize() == without_errors


def test_error_without_request_counts_as_failure_only() -> None:
    _, stats = new_stats()
    stats.log_error("GET", "/down", ConnectionRefusedError(111, "Connection refused"))
    entry = stats.get("/down", "GET")
    assert entry.num_requests == 0
    assert entry.num_failures == 1
    assert entry.fail_ratio == 1.0
    assert stats.fail_ratio == 1.0
    assert entry.num_fail_per_sec == {int(START): 1}


# -- rates --------------------------------------------------------------------------------------------


def run_steady(
    stats: RequestStats, clock: FakeClock, seconds: int, per_second: int, fail_every: int = 0
) -> None:
    step = 1 / per_second  # per_second is a power of two, so the clock stays exact
    n = 0
    for _ in range(seconds * per_second):
        clock.advance(step)
        n += 1
        stats.record("GET", "/", 5.0, 0, error="x" if fail_every and n % fail_every == 0 else None)


def test_current_rps_and_fail_per_sec_are_the_recent_rate() -> None:
    clock, stats = new_stats()
    run_steady(stats, clock, seconds=30, per_second=8, fail_every=4)
    entry = stats.get("/", "GET")
    assert entry.current_rps == 8.0
    assert entry.current_fail_per_sec == 2.0
    assert stats.total.current_rps == 8.0
    assert entry.total_rps == pytest.approx(240 / 30)
    assert entry.total_fail_per_sec == pytest.approx(60 / 30)
    # A faster phase shows up in current_rps but only partly in total_rps.
    run_steady(stats, clock, seconds=15, per_second=32)
    assert entry.current_rps == 32.0
    assert entry.total_rps == pytest.approx((240 + 480) / 45)


def test_current_rps_does_not_understate_the_first_seconds() -> None:
    clock, stats = new_stats(start=START + 0.5)
    run_steady(stats, clock, seconds=5, per_second=8)  # last request at START + 5.5
    # Whole seconds 1000..1002 are in the window, but only 2.5 s of them were part of the run.
    assert stats.total.current_rps == pytest.approx(19 / 2.5)


def test_current_rps_lag_is_configurable() -> None:
    clock, stats = new_stats(current_rps_lag=0)
    run_steady(stats, clock, seconds=12, per_second=8)
    clock.advance(0.5)
    stats.record("GET", "/", 1.0, 0)
    # With no lag the partial newest second is left out (end = int(last)), the 10 before it are in.
    assert stats.total.current_rps == 8.0


def test_rates_are_zero_without_requests() -> None:
    _, stats = new_stats()
    entry = stats.get("/", "GET")
    for value in (entry.current_rps, entry.current_fail_per_sec, entry.total_rps, entry.total_fail_per_sec):
        assert value == 0.0
    assert stats.fail_ratio == 0.0
    assert StatsEntry(None, "/", "GET").total_rps == 0.0


def test_per_second_counters_are_pruned_but_keep_the_recent_seconds() -> None:
    clock, stats = new_stats(per_second_retention=20)
    run_steady(stats, clock, seconds=300, per_second=2, fail_every=2)
    entry = stats.get("/", "GET")
    now = int(clock.time())
    assert len(entry.num_reqs_per_sec) <= 4 * 20 + 1
    assert all(entry.num_reqs_per_sec[s] == 2 for s in range(now - 20, now))
    assert all(entry.num_fail_per_sec[s] == 1 for s in range(now - 20, now))
    assert entry.num_requests == 600
    with pytest.raises(ValueError):
        RequestStats(per_second_retention=5)


# -- current (windowed) percentiles ---------------------------------------------------------------------


def worker_payload(clock: FakeClock, samples: list[float]) -> dict[str, Any]:
    worker = RequestStats(clock, use_response_times_cache=False)
    for rt in samples:
        worker.record("GET", "/", rt, 0)
    return wire(worker.serialize_and_reset())


def test_current_percentiles_on_master_follow_reports() -> None:
    """Locust's scenario: reports at ~2 s and ~3 s, read at ~7 s; a new report 10.1 s later."""
    clock, master = new_stats()
    clock.advance(2.0)
    master.merge(worker_payload(clock, [100, 800]))
    clock.advance(1.0)
    master.merge(worker_payload(clock, [400]))
    clock.advance(4.0)
    entry = master.get("/", "GET")
    assert within_bound(entry.get_current_response_time_percentile(0.5) or 0, 400)
    assert within_bound(entry.get_current_response_time_percentile(0.95) or 0, 800)
    clock.advance(10.1)
    master.merge(worker_payload(clock, [20, 30, 3000]))
    assert within_bound(entry.get_current_response_time_percentile(0.5) or 0, 30)
    assert within_bound(entry.get_current_response_time_percentile(0.95) or 0, 3000)
    assert within_bound(master.total.get_current_response_time_percentile(0.5) or 0, 30)


def test_current_window_is_the_last_ten_seconds_exactly() -> None:
    clock, stats = new_stats()
    for second in range(30):
        for _ in range(4):
            clock.advance(0.25)
            stats.record("GET", "/", float(second + 1), 0)  # response time = its second, 1..30 ms
    entry = stats.get("/", "GET")
    # now = START + 30; the window holds the seconds START+20 .. START+30. Samples recorded in second
    # START+k are: one k ms (recorded at k.0) and three (k+1) ms.
    expected = Histogram()
    expected.record(20_000, 1)
    for ms in range(21, 31):
        expected.record(ms * 1000, 4)
    assert entry.current_histogram() == expected
    assert within_bound(entry.get_current_response_time_percentile(0.0) or 0, 20.0)
    assert entry.get_current_response_time_percentile(1.0) == 30.0  # clamped to the max
    # An idle period empties the window; cumulative numbers stay.
    clock.advance(11)
    assert entry.get_current_response_time_percentile(0.5) is None
    assert entry.get_current_response_time_percentiles(PERCENTILES_TO_REPORT) is None
    assert entry.median_response_time > 0


def test_current_window_survives_sparse_traffic() -> None:
    # Locust's snapshot search goes blank when no snapshot is ~10 s old; the delta window does not.
    clock, stats = new_stats()
    stats.record("GET", "/", 50.0, 0)
    clock.advance(9.5)
    stats.record("GET", "/", 70.0, 0)
    entry = stats.get("/", "GET")
    assert entry.get_current_response_time_percentile(1.0) == 70.0
    assert entry.get_current_response_time_percentile(0.0) == 50.0
    clock.advance(1.5)  # now START + 11: the 50 ms sample (second START) leaves the window
    assert entry.get_current_response_time_percentile(0.0) == 70.0


def test_workers_keep_no_window() -> None:
    clock = FakeClock(START)
    worker = RequestStats(clock, use_response_times_cache=False)
    worker.record("GET", "/", 5.0, 0)
    with pytest.raises(ValueError):
        worker.get("/", "GET").get_current_response_time_percentile(0.5)


# -- errors ---------------------------------------------------------------------------------------------


class Boom(Exception):
    pass


def test_error_text_is_readable_and_masks_addresses() -> None:
    assert error_text(ConnectionRefusedError(111, "Connection refused")) == (
        "ConnectionRefusedError(111, 'Connection refused')"
    )
    assert error_text("500 Server Error") == "500 Server Error"
    a = error_text(Boom(f"lost {object()!r}"))
    b = error_text(Boom(f"lost {object()!r}"))
    assert a == b == "Boom('lost <object object at 0x...>')"
    assert error_text("bad byte 0x1f") == "bad byte 0x1f"  # short hex values are data, not addresses
    assert error_text("ptr 0x7f3a2c1b4d90") == "ptr 0x..."


def test_same_error_from_different_objects_is_one_row() -> None:
    clock, stats = new_stats()
    stats.record("GET", "/", 1.0, 0, error=Boom(f"lost {object()!r}"))
    clock.advance(5)
    stats.record("GET", "/", 1.0, 0, error=Boom(f"lost {object()!r}"))
    stats.record("POST", "/", 1.0, 0, error=Boom(f"lost {object()!r}"))  # other method: other row
    assert len(stats.errors) == 2
    row = stats.errors[StatsError.create_key("GET", "/", Boom(f"lost {object()!r}"))]
    assert row.occurrences == 2
    assert (row.first_seen, row.last_seen) == (START, START + 5)
    assert row.to_name() == "GET /: Boom('lost <object object at 0x...>')"


def test_error_table_is_capped() -> None:
    _, stats = new_stats(max_errors=3)
    for i in range(10):
        stats.record("GET", "/", 1.0, 0, error=f"error {i}")
    assert len(stats.errors) == 4
    overflow = [row for row in stats.errors.values() if row.error == OVERFLOW_ERROR]
    assert len(overflow) == 1 and overflow[0].occurrences == 7
    assert sum(row.occurrences for row in stats.errors.values()) == stats.num_failures == 10


# -- resets ---------------------------------------------------------------------------------------------


def test_reset_all_zeroes_in_place() -> None:
    clock, stats = new_stats()
    stats.record("GET", "/a", 10.0, 5, error="x")
    stats.record("GET", "/b", 10.0, 5)
    entry = stats.get("/a", "GET")
    total = stats.total
    clock.advance(3)
    stats.reset_all()
    assert stats.get("/a", "GET") is entry and stats.total is total
    assert set(stats.entries) == {("/a", "GET"), ("/b", "GET")}
    for e in (entry, total):
        assert (e.num_requests, e.num_failures, e.total_content_length) == (0, 0, 0)
        assert e.histogram.count == 0 and e.num_reqs_per_sec == {} and e.num_fail_per_sec == {}
        assert e.start_time == START + 3 and e.last_request_timestamp is None
        assert e.min_response_time is None and e.max_response_time == 0.0
        assert e.get_current_response_time_percentile(0.5) is None
    assert stats.errors == {}
    assert stats.start_time == START + 3
    stats.record("GET", "/a", 20.0, 5)
    assert entry.num_requests == 1 and entry.get_current_response_time_percentile(0.5) == 20.0


def test_clear_all_forgets_everything() -> None:
    clock, stats = new_stats()
    stats.record("GET", "/a", 10.0, 5, error="x")
    old_total = stats.total
    clock.advance(3)
    stats.clear_all()
    assert stats.entries == {} and stats.errors == {}
    assert stats.total is not old_total and stats.total.name == "Aggregated"
    assert stats.num_requests == 0 and stats.start_time == START + 3
    stats.record("GET", "/a", 10.0, 5)
    assert stats.get("/a", "GET").num_requests == 1
    assert stats.serialize()["stats"][0]["num_requests"] == 1


# -- serialise / merge ----------------------------------------------------------------------------------

Event = tuple[float, int, str, str, float | None, int, object]


def random_events(seed: int, n: int = 4_000, workers: int = 3) -> list[Event]:
    rng = random.Random(seed)
    names = [f"/item/{i}" for i in range(6)]
    events: list[Event] = []
    for _ in range(n):
        error: object = None
        roll = rng.random()
        if roll < 0.04:
            error = Boom(f"failed with {object()!r}")  # a different address each time
        elif roll < 0.08:
            error = ConnectionRefusedError(111, "Connection refused")
        rt = None if rng.random() < 0.02 else round(rng.lognormvariate(3, 1.5), 3)
        events.append(
            (
                rng.expovariate(150),
                rng.randrange(workers),
                rng.choice(["GET", "POST"]),
                rng.choice(names),
                rt,
                rng.randrange(0, 5000),
                error,
            )
        )
    return events


def assert_same_entry(a: StatsEntry, b: StatsEntry) -> None:
    for attr in (
        "name",
        "method",
        "num_requests",
        "num_none_requests",
        "num_failures",
        "total_response_time",
        "min_response_time",
        "max_response_time",
        "avg_response_time",
        "total_content_length",
        "last_request_timestamp",
        "start_time",
        "num_reqs_per_sec",
        "num_fail_per_sec",
    ):
        assert getattr(a, attr) == getattr(b, attr), (a, attr)
    assert a.histogram == b.histogram
    assert a.get_response_time_percentiles(ALL_PERCENTILES) == b.get_response_time_percentiles(
        ALL_PERCENTILES
    )


def assert_same_stats(a: RequestStats, b: RequestStats) -> None:
    assert set(a.entries) == set(b.entries)
    for key in a.entries:
        assert_same_entry(a.entries[key], b.entries[key])
    assert_same_entry(a.total, b.total)
    assert {k: e.serialize() for k, e in a.errors.items()} == {k: e.serialize() for k, e in b.errors.items()}


def test_merging_two_serialised_stats_equals_stats_of_the_union() -> None:
    clock = FakeClock(START)
    union = RequestStats(clock)
    parts = [RequestStats(clock, use_response_times_cache=False) for _ in range(2)]
    master = RequestStats(clock)
    for dt, worker, method, name, rt, length, error in random_events(seed=1, workers=2):
        clock.advance(dt)
        union.record(method, name, rt, length, error)
        parts[worker].record(method, name, rt, length, error)
    for part in parts:
        master.merge(wire(part.serialize()))
    assert_same_stats(master, union)
    assert master.serialize()["stats_total"] == union.serialize()["stats_total"]


def test_periodic_worker_deltas_add_up_to_the_union() -> None:
    clock = FakeClock(START)
    union = RequestStats(clock)
    workers = [RequestStats(clock, use_response_times_cache=False) for _ in range(3)]
    master = RequestStats(clock)
    next_report = START + 3
    for dt, worker, method, name, rt, length, error in random_events(seed=2):
        clock.advance(dt)
        if clock.time() >= next_report:
            for w in workers:
                master.merge(wire(w.serialize_and_reset()))
            next_report += 3
        union.record(method, name, rt, length, error)
        workers[worker].record(method, name, rt, length, error)
    for w in workers:
        master.merge(wire(w.serialize_and_reset()))
        assert w.num_requests == 0 and w.errors == {}
    assert_same_stats(master, union)


def test_serialize_includes_only_entries_with_data() -> None:
    _, stats = new_stats()
    stats.get("/idle", "GET")
    stats.record("GET", "/busy", 1.0, 0)
    stats.log_error("GET", "/broken", "x")
    names = sorted(e["name"] for e in stats.serialize()["stats"])
    assert names == ["/broken", "/busy"]


def test_extend_with_a_live_entry_and_unserialize() -> None:
    _, stats = new_stats()
    for rt in (5.0, 9.0, None):
        stats.record("GET", "/", rt, 1)
    entry = stats.get("/", "GET")
    copy = StatsEntry.unserialize(entry.serialize())
    assert_same_entry(copy, entry)
    doubled = StatsEntry(None, "/", "GET")
    doubled.extend(entry)
    doubled.extend(entry)
    assert doubled.num_requests == 6 and doubled.histogram.count == 4
    assert doubled.min_response_time == 5.0 and doubled.max_response_time == 9.0


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"stats": "nope"},
        {"stats": [{"name": "/", "method": "GET", "num_requests": -1, "histogram": {}}]},
        {"stats": [{"name": "/", "method": "GET", "num_requests": 1, "histogram": {"x": 1}}]},
        {"stats": [{"name": 3, "method": "GET"}]},
        {
            "stats": [
                {"name": "/", "method": "GET", "num_requests": 1, "num_none_requests": 2, "histogram": {}}
            ]
        },
        {"stats": [], "errors": {"k": {"method": "GET", "name": "/", "error": "e", "occurrences": "many"}}},
        {"stats": [], "errors": []},
        {"stats": [], "histogram_scheme": "locust-2-digits"},
    ],
)
def test_malformed_payload_raises_and_changes_nothing(payload: Any) -> None:
    clock = FakeClock(START)
    master = RequestStats(clock)
    master.record("GET", "/", 5.0, 0)
    before = master.serialize()
    good_entry = {"name": "/", "method": "GET", "num_requests": 1, "histogram": {}}
    if isinstance(payload, dict) and payload.get("stats") == []:
        payload = {**payload, "stats": [good_entry]}  # a valid part must not be merged either
    with pytest.raises(StatsPayloadError):
        master.merge(payload)
    assert master.serialize() == before


def test_merges_locust_formatted_entries() -> None:
    _, master = new_stats()
    locust_entry = {
        "name": "/legacy",
        "method": "GET",
        "last_request_timestamp": START,
        "start_time": START - 3,
        "num_requests": 3,
        "num_none_requests": 0,
        "num_failures": 1,
        "total_response_time": 1100,
        "max_response_time": 800,
        "min_response_time": 100,
        "total_content_length": 30,
        "response_times": {100: 1, 200: 1, 800: 1},
        "num_reqs_per_sec": {int(START): 3},
        "num_fail_per_sec": {int(START): 1},
    }
    master.merge(
        {"stats": [locust_entry], "stats_total": {**locust_entry, "name": "Aggregated", "method": ""}}
    )
    entry = master.get("/legacy", "GET")
    assert entry.num_requests == 3 and entry.num_failures == 1
    assert entry.max_response_time == 800 and entry.min_response_time == 100
    assert within_bound(entry.median_response_time, 200)
    assert master.total.num_requests == 3
    assert entry.histogram.count == 3
    assert bucket_index(200_000) in entry.histogram.counts


def test_merged_errors_keep_first_and_last_seen() -> None:
    clock = FakeClock(START)
    w1 = RequestStats(clock, use_response_times_cache=False)
    w2 = RequestStats(clock, use_response_times_cache=False)
    w1.record("GET", "/", 1.0, 0, error="e")
    clock.advance(10)
    w2.record("GET", "/", 1.0, 0, error="e")
    w2.record("GET", "/", 1.0, 0, error="other")
    master = RequestStats(clock)
    master.merge(wire(w2.serialize()))
    master.merge(wire(w1.serialize()))
    row = master.errors[StatsError.create_key("GET", "/", "e")]
    assert (row.occurrences, row.first_seen, row.last_seen) == (2, START, START + 10)
    assert len(master.errors) == 2
