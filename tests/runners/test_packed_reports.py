"""Workers send their stats report packed (one msgpack string): the master merges it, and its
``worker_report`` listeners still see the report decoded."""

from __future__ import annotations

from typing import Any

from tests.runners.cluster import MemoryCluster


async def test_a_packed_report_is_merged_and_listeners_see_it_decoded(cluster: MemoryCluster) -> None:
    seen: list[Any] = []
    cluster.master.environment.events.worker_report.add_listener(
        lambda client_id, data, **_: seen.append(data["stats"])
    )
    sent: list[Any] = []
    worker = await cluster.add_worker()
    worker.environment.events.report_to_master.add_listener(
        lambda client_id, data, **_: sent.append(type(data["stats"]))
    )
    await cluster.until(cluster.master.start(1, 1000))
    for _ in range(3):
        worker.environment.stats.record("GET", "/packed", 5.0, 10, None)
    await cluster.advance(worker.stats_report_interval + 0.5)
    assert sent and sent[0] is dict  # the worker's listeners see the dict, before it is packed
    assert cluster.master.environment.stats.get("/packed", "GET").num_requests == 3
    reports = [r for r in seen if r["stats"]]
    assert reports and all(isinstance(r, dict) for r in reports)
    assert any(row[0] == "/packed" and row[4] == 3 for r in reports for row in r["stats"])
