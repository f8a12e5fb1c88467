"""Issue 12 hardening on the in-memory cluster (FakeClock): reported counts reconciled with targets, the
host and options a master overrides logged on the worker, reports resent to a master that lost the worker,
heartbeats that follow a reset link, and a worker that stops by itself past its run time."""

from __future__ import annotations

import argparse
import logging

import pytest

from horde.rpc.protocol import Message
from tests.runners.cluster import HB, LIVENESS, MemoryCluster

WINDOW = HB * LIVENESS


async def test_a_report_of_more_users_than_sent_is_logged_not_adopted(
    cluster: MemoryCluster, caplog: pytest.LogCaptureFixture
) -> None:
    worker = await cluster.add_worker()
    await cluster.until(cluster.master.start(4, 1000))
    await cluster.advance(1)
    inflated = {
        "seq": worker._stats_seq + 50,
        "stats": {"entries": [], "errors": {}},
        "user_classes_count": {"Alpha": 400, "Beta": 2},
        "exceptions": [],
        "logs": [],
    }
    server = cluster.network.server
    assert server is not None
    with caplog.at_level(logging.WARNING, logger="horde.runners.master"):
        server.inject(worker.client_id, Message("stats", inflated, worker.client_id).serialize())
        await cluster.settle()
    assert cluster.master.user_count == 4
    assert cluster.master.user_classes_count == {"Alpha": 2, "Beta": 2}
    assert any("reports 400 Alpha, more than the 2 Alpha" in r.getMessage() for r in caplog.records)


async def test_the_worker_logs_the_host_and_options_its_master_overrides(
    cluster: MemoryCluster, caplog: pytest.LogCaptureFixture
) -> None:
    worker = cluster.new_worker()
    worker.environment.host = "http://mine.example"
    worker.environment.tags = {"smoke"}
    await worker.connect()
    cluster.master.environment.host = "http://elsewhere.example"
    cluster.master.environment.parsed_options = argparse.Namespace(
        tags=["full"], exclude_tags=None, reset_stats=False
    )
    with caplog.at_level(logging.INFO, logger="horde.runners.worker"):
        await cluster.until(cluster.master.start(2, 1000))
    lines = [r.getMessage() for r in caplog.records if r.name == "horde.runners.worker"]
    assert (
        "The master overrides the host: http://elsewhere.example (this worker had http://mine.example)"
        in lines
    )
    assert any(line.startswith("The master sets tags to ['full'] (was {'smoke'})") for line in lines), lines
    assert worker.environment.host == "http://elsewhere.example"


async def test_a_report_the_master_did_not_take_is_resent_after_re_registration(
    cluster: MemoryCluster,
) -> None:
    worker = await cluster.add_worker()
    await cluster.until(cluster.master.start(4, 1000))
    await cluster.advance(4)  # one report merged
    cluster.master.nodes.remove(worker.client_id)  # the master forgot it (e.g. missing for too long)
    await worker._report()  # a report reaches a master that does not know the worker: "reregister"
    await cluster.settle()
    assert worker.client_id in cluster.master.nodes  # re-registered, and the report went again
    assert worker._resend_from is None  # resent
    await cluster.until(cluster.master.stop())
    await cluster.advance(1)
    assert cluster.master.environment.stats.total.num_requests == cluster.fired.count > 0


async def test_heartbeats_move_to_the_new_link_after_a_reset(cluster: MemoryCluster) -> None:
    worker = await cluster.add_worker()
    opened: list[int] = []
    original = worker.transport.open_heartbeat

    def tracking():  # type: ignore[no-untyped-def]
        opened.append(worker.transport.generation)
        return original()

    worker.transport.open_heartbeat = tracking  # type: ignore[method-assign]
    worker.transport.reset()
    await cluster.advance(2 * HB)
    assert opened == [1]


async def test_a_worker_whose_master_is_gone_stops_after_its_run_time(cluster: MemoryCluster) -> None:
    cluster.master.environment.parsed_options = argparse.Namespace(run_time=20)
    worker = await cluster.add_worker(master_timeout=10_000)  # only the run time can end it
    await cluster.until(cluster.master.start(2, 1000))
    cluster.network.partition(worker.client_id)  # the master is gone for good
    await cluster.advance(40)
    assert worker.user_count == 2  # within run time (20 s) + stop_timeout + the 30 s margin
    await cluster.advance(15)
    assert worker.user_count == 0 and worker.exit_code == 1


def test_the_normal_ends_a_worker_may_report_are_the_sessions() -> None:
    from horde.runners.master.handlers import NORMAL_ENDS
    from horde.session import NORMAL_ENDS as SESSION_NORMAL_ENDS

    assert NORMAL_ENDS == SESSION_NORMAL_ENDS
