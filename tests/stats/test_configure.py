"""RequestStats.configure changes settings in place (runners call it instead of replacing env.stats)."""

from __future__ import annotations

import pytest

from horde.clock import FakeClock
from horde.stats import RequestStats


def test_configure_changes_the_rate_lag_in_place() -> None:
    clock = FakeClock(1000.0)
    stats = RequestStats(clock)
    for _ in range(20):
        for _ in range(10):
            stats.record("GET", "/", 1.0, 0)
        clock.advance(1)
    stats.record("GET", "/", 1.0, 0)
    before = stats.total.current_rps
    entry = stats.get("/", "GET")
    stats.configure(current_rps_lag=4)
    assert stats.current_rps_lag == 4 and stats.get("/", "GET") is entry
    assert stats.total.current_rps == pytest.approx(before) == pytest.approx(10.0)
    assert stats.total.num_requests == 201
    stats.configure()  # nothing given: nothing changes
    assert stats.current_rps_lag == 4
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="current_rps_lag"):
            stats.configure(current_rps_lag=bad)  # type: ignore[arg-type]


def test_configure_toggles_the_response_time_cache() -> None:
    clock = FakeClock(1000.0)
    stats = RequestStats(clock)
    stats.record("GET", "/", 5.0, 0)
    stats.configure(use_response_times_cache=False)
    entry = stats.get("/", "GET")
    assert not entry.use_response_times_cache and not stats.total.use_response_times_cache
    with pytest.raises(ValueError, match="use_response_times_cache"):
        entry.get_current_response_time_percentile(0.5)
    assert stats.get("/new", "GET").use_response_times_cache is False
    assert entry.num_requests == 1 and entry.max_response_time == 5.0
    stats.configure(use_response_times_cache=True)
    assert entry.get_current_response_time_percentile(0.5) is None  # the window restarts empty
    clock.advance(1)
    stats.record("GET", "/", 7.0, 0)
    clock.advance(1)
    stats.record("GET", "/", 9.0, 0)
    assert entry.get_current_response_time_percentiles([0.0, 1.0]) == pytest.approx([7.0, 9.0], rel=1 / 128)
    assert entry.get_response_time_percentile(1.0) == 9.0
