"""The ``Aggregated`` total reads as if every request had been counted on it, at any moment, through every
public attribute: the sum of the entries, untouched by samples logged on an entry directly."""

from __future__ import annotations

import random
from typing import Any

from horde.clock import FakeClock
from horde.stats import RequestStats, StatsEntry

START = 1_000.0
QS = (0.0, 0.5, 0.9, 0.99, 1.0)


def entry_view(e: StatsEntry) -> dict[str, Any]:
    """Everything an entry shows that does not depend on when it was created."""
    return {
        "num_requests": e.num_requests,
        "num_none_requests": e.num_none_requests,
        "num_failures": e.num_failures,
        "total_content_length": e.total_content_length,
        "total_response_time": e.total_response_time,
        "min_response_time": e.min_response_time,
        "max_response_time": e.max_response_time,
        "avg_response_time": e.avg_response_time,
        "fail_ratio": e.fail_ratio,
        "last_request_timestamp": e.last_request_timestamp,
        "histogram": dict(e.histogram.counts),
        "num_reqs_per_sec": dict(e.num_reqs_per_sec),
        "num_fail_per_sec": dict(e.num_fail_per_sec),
        "percentiles": e.get_response_time_percentiles(QS),
        "current": e.get_current_response_time_percentiles(QS),
        "current_histogram": dict(e.current_histogram().counts),
    }


def random_sample(rng: random.Random) -> tuple[str, str, float | None, int, object]:
    name = f"/n{rng.randrange(12)}"
    method = rng.choice(("GET", "POST"))
    rt = None if rng.random() < 0.05 else round(rng.lognormvariate(2.0, 1.2), 3)
    error = "boom" if rng.random() < 0.1 else None
    return method, name, rt, rng.randrange(0, 5000), error


def test_the_total_reads_as_an_entry_that_counted_every_request_at_any_moment() -> None:
    # ``every`` counts each request on a single entry, which is what the total used to do itself
    rng = random.Random(7)
    clock = FakeClock(start=START)
    stats = RequestStats(clock)
    reference = RequestStats(clock)
    for step in range(6000):
        method, name, rt, length, error = random_sample(rng)
        if rng.random() < 0.03:
            stats.log_error(method, name, "no request")
            reference.log_error("ALL", "every", "no request")
        else:
            stats.record(method, name, rt, length, error)
            reference.record("ALL", "every", rt, length, error)
        clock.advance(rng.choice((0.0, 0.0, 0.001, 0.01, 0.2, 0.7)))
        if rng.random() < 0.02 or step == 5999:  # reads between requests, within and across seconds
            assert entry_view(stats.total) == entry_view(reference.get("every", "ALL"))
            assert stats.total.current_rps == reference.total.current_rps
            assert stats.num_requests == reference.num_requests


def test_the_total_is_the_sum_of_the_entries() -> None:
    rng = random.Random(3)
    clock = FakeClock(start=START)
    stats = RequestStats(clock)
    for _ in range(3000):
        stats.record(*random_sample(rng))
        clock.advance(rng.choice((0.0, 0.003, 0.4)))
    entries = list(stats.entries.values())
    total = stats.total
    assert total.num_requests == sum(e.num_requests for e in entries)
    assert total.num_failures == sum(e.num_failures for e in entries)
    assert total._total_us == sum(e._total_us for e in entries)
    assert total.max_response_time == max(e.max_response_time for e in entries)
    summed: dict[int, int] = {}
    for e in entries:
        for idx, n in e.histogram.counts.items():
            summed[idx] = summed.get(idx, 0) + n
    assert total.histogram.counts == summed
    assert total.start_time == START


def test_resetting_one_entry_leaves_the_total_as_it_was() -> None:
    clock = FakeClock(start=START)
    stats = RequestStats(clock)
    stats.record("GET", "/a", 10.0, 1)
    stats.record("GET", "/b", 20.0, 1)
    stats.get("/a", "GET").reset()
    stats.record("GET", "/a", 30.0, 1)
    assert stats.total.num_requests == 3
    assert stats.total.max_response_time == 30.0
    assert stats.total.histogram.count == 3
    assert stats.get("/a", "GET").num_requests == 1


def test_resetting_the_total_alone_starts_it_from_zero() -> None:
    clock = FakeClock(start=START)
    stats = RequestStats(clock)
    stats.record("GET", "/a", 10.0, 1)
    clock.advance(1.5)
    stats.total.reset()
    assert stats.total.num_requests == 0 and stats.total.start_time == START + 1.5
    stats.record("GET", "/a", 5.0, 1)
    assert stats.total.num_requests == 1
    assert stats.total.max_response_time == 5.0
    assert stats.total.histogram.count == 1
    assert stats.total.num_reqs_per_sec == {int(START + 1.5): 1}
    assert stats.get("/a", "GET").num_requests == 2


def test_a_worker_report_carries_the_total_and_resets_it() -> None:
    clock = FakeClock(start=START)
    worker = RequestStats(clock, use_response_times_cache=False)
    worker.record("GET", "/a", 10.0, 100)
    worker.record("POST", "/b", 30.0, 50, "boom")
    clock.advance(0.5)
    payload = worker.serialize_and_reset()
    assert payload["stats_total"]["num_requests"] == 2
    assert payload["stats_total"]["num_failures"] == 1
    assert payload["stats_total"]["total_content_length"] == 150
    assert payload["stats_total"]["start_time"] == START  # the reset time, not the first request's
    assert worker.total.num_requests == 0 and worker.total.start_time == START + 0.5
    worker.record("GET", "/a", 1.0, 1)
    assert worker.serialize()["stats_total"]["num_requests"] == 1

    master = RequestStats(clock)
    master.merge(payload)
    assert master.total.num_requests == 2 and master.total.max_response_time == 30.0


def test_merged_reports_and_recorded_requests_add_up_once() -> None:
    clock = FakeClock(start=START)
    worker = RequestStats(clock, use_response_times_cache=False)
    worker.record("GET", "/a", 10.0, 1)
    worker.record("GET", "/a", 12.0, 1)
    stats = RequestStats(clock)
    stats.record("GET", "/a", 40.0, 1)  # /a now counts recorded requests, then merged ones too
    stats.merge(worker.serialize())
    stats.record("GET", "/a", 50.0, 1)
    assert stats.get("/a", "GET").num_requests == 4
    assert stats.total.num_requests == 4
    assert stats.total.histogram.count == 4
    assert stats.total.max_response_time == 50.0


def test_samples_logged_on_an_entry_directly_stay_out_of_the_total() -> None:
    # Locust's StatsEntry.log / extend count on the entry alone, as they always did here
    clock = FakeClock(start=START)
    stats = RequestStats(clock)
    stats.record("GET", "/a", 10.0, 1)
    entry = stats.get("/a", "GET")
    entry.log(99.0, 1)
    entry.log_error("x")
    other = StatsEntry(None, "/a", "GET")
    other.log(7.0, 1)
    entry.extend(other)
    stats.record("GET", "/a", 20.0, 1)
    assert entry.num_requests == 4 and entry.num_failures == 1
    assert stats.total.num_requests == 2 and stats.total.num_failures == 0
    assert stats.total.histogram.count == 2


def test_clear_all_and_reset_all_leave_nothing_behind() -> None:
    clock = FakeClock(start=START)
    stats = RequestStats(clock)
    stats.record("GET", "/a", 10.0, 1)
    stats.reset_all()
    assert stats.total.num_requests == 0 and stats.total.histogram.count == 0
    stats.record("GET", "/a", 10.0, 1)
    stats.clear_all()
    assert stats.total.num_requests == 0
    stats.record("GET", "/b", 10.0, 1)
    assert stats.total.num_requests == 1 and list(stats.entries) == [("/b", "GET")]
