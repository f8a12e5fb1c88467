"""StatsHistory: per-tick points for the whole run, in bounded memory."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
import tracemalloc

import pytest

from horde.clock import FakeClock
from horde.stats import PERCENTILES_TO_REPORT, RequestStats, StatsHistory, StatsSnapshot, take_snapshot
from horde.stats.history import ENTRY_INTERVAL

T0 = 1_700_000_000.0
#: The documented bound for a 24-hour run with 100 entries (see horde.stats.history).
BOUND_24H_100_ENTRIES_MB = 24


def run(
    seconds: int, history: StatsHistory, *, entries: int = 3, stats: RequestStats | None = None
) -> RequestStats:
    clock = history.clock
    assert isinstance(clock, FakeClock)
    stats = stats or RequestStats(clock)
    rnd = random.Random(3)
    for s in range(seconds):
        for i in range(10):
            clock.advance(0.1)
            stats.record("GET", f"/e{i % entries}", rnd.uniform(1, 50), 5, error="x" if i == 9 else None)
        history.append(take_snapshot(stats, user_count=s))
    return stats


def test_rows_are_in_csv_order_with_entries_every_interval() -> None:
    clock = FakeClock(T0)
    history = StatsHistory(clock)
    stats = run(25, history)
    assert len(history) == 25
    rows = history.rows()
    totals = [r for r in rows if r.name == "Aggregated"]
    assert [r.user_count for r in totals] == list(range(25))
    entry_times = sorted({r.time for r in rows if r.name != "Aggregated"})
    assert entry_times == [totals[0].time, totals[10].time, totals[20].time]  # every ENTRY_INTERVAL s
    assert ENTRY_INTERVAL == 10.0
    at = [r for r in rows if r.time == entry_times[-1]]
    assert [(r.method, r.name) for r in at] == [
        ("GET", "/e0"),
        ("GET", "/e1"),
        ("GET", "/e2"),
        ("", "Aggregated"),
    ]
    last = totals[-1]
    assert last.num_requests == stats.total.num_requests and last.num_failures == stats.total.num_failures
    assert last.max_response_time == pytest.approx(stats.total.max_response_time, abs=1e-3)
    assert last.current_rps == stats.total.current_rps
    p95 = stats.total.get_current_response_time_percentile(0.95)
    assert last.current_percentiles[history.percentiles.index(0.95)] == pytest.approx(p95, abs=1e-3)
    assert history.rows(since=totals[20].time) == [r for r in rows if r.time >= totals[20].time]
    assert history.rows(entries=False) == totals == history.total_rows()
    assert [r.time for r in history.entry_rows("/e1", "GET")] == entry_times
    assert history.entry_rows("/none", "GET") == []


def test_stale_snapshots_are_ignored_and_clear_forgets() -> None:
    clock = FakeClock(T0)
    history = StatsHistory(clock)
    stats = run(3, history)
    snap = take_snapshot(stats, user_count=9)  # same instant as the last tick
    history.append(snap)
    history.append(dataclasses.replace(snap, time=snap.time - 5))
    assert len(history) == 3 and history.last_time == clock.time()
    history.clear()
    assert len(history) == 0 and history.rows() == [] and history.last_time is None
    history.append(take_snapshot(stats, user_count=1, percentiles=[0.5]))
    assert history.percentiles == (0.5,)
    history.append(take_snapshot(stats, user_count=1, now=clock.time() + 1))  # other percentiles
    assert history.percentiles == tuple(PERCENTILES_TO_REPORT) and len(history) == 1


def test_empty_windows_read_back_as_none_and_to_dict_is_json() -> None:
    clock = FakeClock(T0)
    history = StatsHistory(clock)
    stats = run(2, history)
    clock.advance(60)
    history.append(take_snapshot(stats, user_count=0))
    last = history.total_rows()[-1]
    assert set(last.current_percentiles) == {None}
    data = json.loads(json.dumps(history.to_dict(), allow_nan=False))
    assert data["percentiles"][0] == "0.5"
    assert data["total"]["user_count"] == [0, 1, 0]
    assert data["total"]["current_percentiles"]["0.5"][-1] is None
    assert [e["name"] for e in data["entries"]] == ["/e0", "/e1", "/e2"]
    assert len(data["entries"][0]["time"]) == 2  # one per ENTRY_INTERVAL slot that had a tick


def test_thinning_keeps_recent_points_and_bounds_the_older_tier() -> None:
    clock = FakeClock(T0)
    history = StatsHistory(
        clock, entry_interval=1.0, total_recent=50, total_older=20, entry_recent=10, entry_older=4
    )
    stats = RequestStats(clock)
    stats.record("GET", "/", 1.0, 0)
    snap = take_snapshot(stats, user_count=0)
    for i in range(5000):
        history.append(dataclasses.replace(snap, time=T0 + i, user_count=i))
        assert len(history) <= 50 + 50 // 16 + 20
    times = [r.time for r in history.total_rows()]
    assert times == sorted(set(times))
    assert times[-50:] == [T0 + i for i in range(4950, 5000)]  # the recent tier at full resolution
    recent_start = max(i for i in range(1, len(times)) if times[i] - times[i - 1] > 1)
    assert len(times) - recent_start <= 50 + 50 // 16
    older = times[:recent_start]
    assert 10 <= len(older) <= 20
    gaps = {b - a for a, b in itertools.pairwise(older)}
    assert max(gaps) <= 512 and min(gaps) >= 128  # thinned to one point every 2**k s
    assert older[0] < T0 + 1000  # the older tier still reaches back to the start
    entry = history.entry_rows("/", "GET")
    assert len(entry) <= 10 + 1 + 4 and entry[-1].time == T0 + 4999
    assert [r.user_count for r in history.total_rows()][-1] == 4999


def test_history_on_a_master_equals_the_local_history() -> None:
    """Built from snapshots only: merged worker reports give the same rows as local recording."""
    clock = FakeClock(T0)
    local, master = RequestStats(clock), RequestStats(clock)
    workers = [RequestStats(clock, use_response_times_cache=False) for _ in range(3)]
    h_local, h_master = StatsHistory(clock), StatsHistory(clock)
    rnd = random.Random(9)
    for s in range(30):
        for i in range(30):
            clock.advance(T0 + s + 0.01 + 0.03 * i - clock.time())  # inside second s; merged in it too
            rt = rnd.expovariate(0.05)
            local.record("GET", f"/x{i % 4}", rt, 1)
            workers[i % 3].record("GET", f"/x{i % 4}", rt, 1)
        for w in workers:
            master.merge(w.serialize_and_reset())
        h_local.append(take_snapshot(local, user_count=s))
        h_master.append(take_snapshot(master, user_count=s))
    assert h_local.rows() == h_master.rows()
    assert len(h_local.rows()) == 30 + 3 * 4


def test_float32_storage_reads_back_to_the_microsecond() -> None:
    clock = FakeClock(T0)
    history = StatsHistory(clock)
    stats = RequestStats(clock)
    stats.record("GET", "/", 1234.567, 10)
    stats.record("GET", "/", 0.013, 10)
    history.append(take_snapshot(stats, user_count=1))
    row = history.total_rows()[0]
    assert row.max_response_time == 1234.567 and row.min_response_time == 0.013
    assert not any(isinstance(v, float) and math.isnan(v) for v in row.current_percentiles)


@pytest.mark.slow
def test_a_24_hour_run_with_100_entries_stays_under_the_bound() -> None:
    clock = FakeClock(T0)
    stats = RequestStats(clock)
    rnd = random.Random(1)
    for i in range(20_000):
        clock.advance(0.001)
        stats.record("GET", f"/endpoint/{i % 100}", rnd.lognormvariate(3, 1), 100)
    base: StatsSnapshot = take_snapshot(stats, user_count=100)
    assert len(base.entries) == 100
    # One snapshot per simulated second (86,400 of them, built before tracing so only the history counts).
    snaps = [dataclasses.replace(base, time=T0 + s, user_count=s % 1000) for s in range(86_400)]
    history = StatsHistory(clock)
    tracemalloc.start()
    try:
        for snap in snaps:
            history.append(snap)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(history) == 86_400  # the Aggregated row at full resolution for 24 h
    assert peak < BOUND_24H_100_ENTRIES_MB * 1e6, peak
    assert history.nbytes() <= current
    entry = history.entry_rows("/endpoint/7", "GET")
    assert entry[-1].time == T0 + 86_390 and len(entry) <= 360 + 22 + 360
