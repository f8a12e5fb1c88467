"""Unique URLs without name= fold into one overflow row per method past max_entries: memory stays bounded."""

from __future__ import annotations

import logging
import tracemalloc

import pytest

from horde.clock import FakeClock
from horde.stats import OVERFLOW_ENTRY, RequestStats


def test_names_past_the_limit_fold_into_one_row_per_method_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stats = RequestStats(FakeClock(), max_entries=10)
    with caplog.at_level(logging.WARNING):
        for i in range(50):
            stats.record("GET", f"/items/{i}", 1.0, 0)
        stats.record("POST", "/items/999", 1.0, 0, RuntimeError("boom"))
    assert len(stats.entries) == 12  # 10 names, then one overflow row for GET and one for POST
    assert stats.get(OVERFLOW_ENTRY, "GET").num_requests == 40
    assert stats.get(OVERFLOW_ENTRY, "POST").num_failures == 1
    assert stats.total.num_requests == 51  # nothing is lost, only grouped
    assert stats.overflowed_names == 41
    warnings = [r for r in caplog.records if "distinct request names" in r.message]
    assert len(warnings) == 1 and "name=" in warnings[0].message


def test_a_known_name_keeps_its_own_row_after_the_limit() -> None:
    stats = RequestStats(FakeClock(), max_entries=2)
    stats.record("GET", "/a", 1.0, 0)
    stats.record("GET", "/b", 1.0, 0)
    stats.record("GET", "/c", 1.0, 0)
    stats.record("GET", "/a", 1.0, 0)
    assert stats.get("/a", "GET").num_requests == 2


def test_a_worker_report_merged_on_a_master_folds_the_same_way() -> None:
    worker = RequestStats(FakeClock(), use_response_times_cache=False, max_entries=None)
    for i in range(30):
        worker.record("GET", f"/u/{i}", 1.0, 0)
    master = RequestStats(FakeClock(), max_entries=5)
    master.merge(worker.serialize())
    assert len(master.entries) == 6 and master.total.num_requests == 30


@pytest.mark.slow  # 100k requests under tracemalloc
def test_100k_unique_urls_stay_within_a_few_megabytes() -> None:
    stats = RequestStats(FakeClock())
    tracemalloc.start()
    try:
        for i in range(100_000):
            stats.record("GET", f"/items/{i}", 1.0, 10)
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(stats.entries) == 1001
    assert current < 8 * 1024 * 1024, f"{current / 1e6:.1f} MB held for 100k unique URLs"


def test_current_rps_is_not_zero_in_the_first_seconds_while_requests_flow() -> None:
    clock = FakeClock(1000.0)
    stats = RequestStats(clock)
    stats.reset_all()
    for _ in range(3):  # 10 requests per second for 1.5 s: younger than the 2-s lag window
        for _ in range(5):
            stats.record("GET", "/", 1.0, 0)
        clock.advance(0.5)
    stats.record("GET", "/", 1.0, 0)
    assert stats.total.current_rps == pytest.approx(16 / 1.5)


def test_aborted_requests_are_counted_apart_and_merge_on_a_master() -> None:
    worker = RequestStats(FakeClock(), use_response_times_cache=False)
    worker.log_aborted("GET", "/slow")
    worker.log_aborted("GET", "/slow")
    master = RequestStats(FakeClock())
    master.merge(worker.serialize())
    assert master.num_aborted == 2 and master.aborted == {("GET", "/slow"): 2}
    assert master.total.num_requests == 0 and master.total.num_failures == 0  # neither answered nor failed
    master.reset_all()
    assert master.num_aborted == 0
