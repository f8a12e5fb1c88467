"""Thresholds on a master's merged stats: what counts is the cluster, not any one worker.

The session evaluates on the master's stats (the sum of every worker's reports); these tests show the
figures thresholds read there are those of the union of the workers' samples, so a run can breach only
when merged (counts add up) and merged percentiles are the union's (not an average of the workers').
"""

from __future__ import annotations

import random

from horde.clock import FakeClock
from horde.stats import RequestStats, take_snapshot
from horde.thresholds import evaluate_all, parse_all
from tests.thresholds.fakes import T0


def cluster(seed: int = 5) -> tuple[list[RequestStats], RequestStats, FakeClock]:
    """Two workers reporting every second to a master; returns each worker's whole-run stats too."""
    clock = FakeClock(T0)
    workers = [RequestStats(clock, use_response_times_cache=False) for _ in range(2)]
    alone = [RequestStats(clock) for _ in range(2)]  # what each worker saw, never reset
    master = RequestStats(clock)
    rnd = random.Random(seed)
    for second in range(10):
        for i, worker in enumerate(workers):
            for n in range(30):
                clock.advance(0.001)
                slow = i == 1 and n % 10 == 0  # worker 1 sees the slow tail
                ms = rnd.uniform(400, 600) if slow else rnd.uniform(10, 50)
                error = "HTTP 503" if n == 0 and second % 2 else None
                worker.record("GET", "/items", ms, 0, error=error)
                alone[i].record("GET", "/items", ms, 0, error=error)
        clock.advance(1 - 0.06)
        for worker in workers:
            master.merge(worker.serialize_and_reset())
    return alone, master, clock


def test_counts_breach_only_on_the_merged_stats() -> None:
    workers, master, _ = cluster()
    thresholds, _ = parse_all(["failures<8", "requests<400"])
    for worker in workers:  # each worker alone: 5 failures, 300 requests: both would pass
        alone = evaluate_all(thresholds, take_snapshot(worker, user_count=1), stats=worker)
        assert [v.observed for v in alone] == [5.0, 300.0] and [v.ok for v in alone] == [True, True]
    merged = evaluate_all(thresholds, take_snapshot(master, user_count=2), stats=master)
    assert [v.observed for v in merged] == [10.0, 600.0]
    assert [v.ok for v in merged] == [False, False]


def test_merged_percentiles_are_those_of_the_union() -> None:
    _, master, _ = cluster()
    thresholds, _ = parse_all(["p95<300ms", "GET /items: p95<300ms", "/items: p97<300ms"])
    verdicts = evaluate_all(thresholds, take_snapshot(master, user_count=2), stats=master)
    # 3 of 60 requests a second are slow (5 %): the union's p95 sits at the edge of the slow tail,
    # p97 inside it
    assert verdicts[0].observed == verdicts[1].observed
    assert verdicts[2].observed is not None and verdicts[2].observed > 400
    assert verdicts[2].ok is False and not verdicts[2].approximate
