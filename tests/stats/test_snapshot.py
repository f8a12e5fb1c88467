"""take_snapshot: one frozen, JSON-ready picture of RequestStats per tick."""

from __future__ import annotations

import json
import random

import pytest

import horde.stats
from horde.clock import FakeClock
from horde.stats import PERCENTILES_TO_REPORT, Histogram, RequestStats, take_snapshot
from horde.stats.histogram import bucket_index

T0 = 1_700_000_000.0


def busy_stats() -> tuple[FakeClock, RequestStats]:
    clock = FakeClock(T0)
    stats = RequestStats(clock)
    for i in range(1, 201):
        clock.advance(0.05)
        stats.record("GET", "/b", float(i), 10)
        if i % 4 == 0:
            stats.record("POST", "/a", 2.0 * i, 0, error=ValueError("bad"))
    stats.log_error("GET", "/down", "refused")
    stats.get("/idle", "GET")
    return clock, stats


def test_snapshot_matches_the_live_entries() -> None:
    clock, stats = busy_stats()
    snap = take_snapshot(stats, user_count=7, user_classes_count={"Web": 7})
    assert snap.time == clock.time() and snap.user_count == 7 and snap.user_classes_count == {"Web": 7}
    assert [(e.name, e.method) for e in snap.entries] == sorted(stats.entries)
    assert (snap.total.name, snap.total.method) == ("Aggregated", "")
    assert snap.rows[-1] is snap.total and snap.rows[:-1] == snap.entries
    for e in snap.rows:
        live = stats.total if e.name == "Aggregated" else stats.get(e.name, e.method)
        assert e.num_requests == live.num_requests and e.num_failures == live.num_failures
        assert e.avg_response_time == live.avg_response_time
        assert e.min_response_time == (live.min_response_time or 0.0)
        assert e.max_response_time == live.max_response_time
        assert e.median_response_time == live.median_response_time
        assert e.current_rps == live.current_rps and e.total_rps == live.total_rps
        assert e.fail_ratio == live.fail_ratio
        assert list(e.percentiles) == list(PERCENTILES_TO_REPORT)
        assert list(e.percentiles.values()) == live.get_response_time_percentiles(PERCENTILES_TO_REPORT)
        current = live.get_current_response_time_percentiles(PERCENTILES_TO_REPORT)
        assert list(e.current_percentiles.values()) == (current or [None] * len(PERCENTILES_TO_REPORT))
    assert snap.percentiles == tuple(PERCENTILES_TO_REPORT)
    assert [(r.name, r.occurrences) for r in snap.errors] == [("/a", 50), ("/down", 1)]


def test_snapshot_is_json_ready_and_finite() -> None:
    _, stats = busy_stats()
    data = take_snapshot(stats, user_count=1).to_dict()
    text = json.dumps(data, allow_nan=False)
    back = json.loads(text)
    idle = next(e for e in back["stats"] if e["name"] == "/idle")
    assert idle["percentiles"]["0.5"] == 0.0 and idle["current_percentiles"]["0.5"] is None
    assert back["total"]["name"] == "Aggregated"
    assert set(back["total"]["percentiles"]) == {str(p) for p in PERCENTILES_TO_REPORT}


def test_an_empty_window_and_stats_without_cache_give_none() -> None:
    clock, stats = busy_stats()
    clock.advance(30)
    snap = take_snapshot(stats, user_count=0)
    assert set(snap.total.current_percentiles.values()) == {None}
    assert snap.total.percentiles[1.0] == 400.0
    worker = RequestStats(clock, use_response_times_cache=False)
    worker.record("GET", "/", 5.0, 0)
    assert set(take_snapshot(worker, user_count=1).total.current_percentiles.values()) == {None}


def test_percentiles_to_report_is_read_at_snapshot_time(monkeypatch: pytest.MonkeyPatch) -> None:
    _, stats = busy_stats()
    monkeypatch.setattr(horde.stats, "PERCENTILES_TO_REPORT", (0.5, 0.999))
    snap = take_snapshot(stats, user_count=1)
    assert snap.percentiles == (0.5, 0.999)
    assert take_snapshot(stats, user_count=1, percentiles=[0.9]).percentiles == (0.9,)


def test_a_masters_merged_snapshot_equals_the_local_one() -> None:
    """Same requests, recorded locally or by two workers and merged each second: same snapshot."""
    clock = FakeClock(T0)
    local = RequestStats(clock)
    master = RequestStats(clock, current_rps_lag=2)
    workers = [RequestStats(clock, use_response_times_cache=False) for _ in range(2)]
    rnd = random.Random(5)
    for second in range(25):
        for i in range(40):
            clock.advance(0.02)
            rt = rnd.lognormvariate(3, 1)
            name = f"/p{i % 3}"
            error = "boom" if i % 9 == 0 else None
            local.record("GET", name, rt, 10, error=error)
            workers[i % 2].record("GET", name, rt, 10, error=error)
        clock.advance(0.1)  # still within the second: the master merges what the workers report
        for w in workers:
            master.merge(w.serialize_and_reset())
        clock.advance(0.1)
        a = take_snapshot(local, user_count=3).to_dict()
        b = take_snapshot(master, user_count=3).to_dict()
        for row in (*a["stats"], a["total"], *b["stats"], b["total"]):
            row.pop("start_time")  # a merged entry starts when its first report arrived
        assert a == b, second


def test_fast_current_window_equals_a_brute_force_window() -> None:
    """The incremental window (forward updates, rebuilds after gaps) is exactly the recorded seconds."""
    rnd = random.Random(11)
    clock = FakeClock(T0)
    stats = RequestStats(clock)
    samples: list[tuple[int, int]] = []
    qs = PERCENTILES_TO_REPORT
    entry = stats.get("/", "GET")
    for step in range(600):
        gap = rnd.choice([0.01, 0.3, 1.0, 2.5, 25.0]) if step % 7 == 0 else 0.05
        clock.advance(gap)
        if rnd.random() < 0.8:
            rt = rnd.lognormvariate(2, 1.5)
            stats.record("GET", "/", rt, 0)
            samples.append((int(clock.time()), int(rt * 1000.0 + 0.5)))
        if step % 3 == 0:
            since = int(clock.time()) - 10
            window = Histogram()
            for sec, us in samples:
                if sec >= since:
                    window.counts[bucket_index(us)] = window.counts.get(bucket_index(us), 0) + 1
            got = entry.get_current_response_time_percentiles(qs)
            if not window:
                assert got is None
                continue
            low = min(us for _, us in samples)
            high = max(us for _, us in samples)
            assert got == [min(max(v, low), high) / 1000 for v in window.percentiles(qs)], step
            assert entry.current_histogram() == window
