"""The seams, proven end to end: a test-only Output and a test-only LoadModel, each defined only here, run
through the run session (the front ends' only entry point) on a local runner and on a master with two
workers over the in-memory transport, all on a FakeClock, without any runner knowing about either."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from horde.clock import FakeClock
from horde.env import Environment
from horde.event import Events
from horde.load import register_kind, unregister_kind
from horde.session import RunResult, StartRequest, TestRun
from horde.stats.snapshot import StatsSnapshot
from tests.runners.cluster import Fired, MemoryCluster, counting_users
from tests.runners.test_load_plugin import KIND, PerWorker, PerWorkerApplier


class TickCounter:
    """An Output no part of horde knows: it only implements start / on_tick / stop."""

    def __init__(self) -> None:
        self.started = 0
        self.ticks: list[StatsSnapshot] = []
        self.result: RunResult | None = None

    def start(self, run: Any) -> None:
        self.started += 1

    def on_tick(self, snapshot: StatsSnapshot) -> None:
        self.ticks.append(snapshot)

    def stop(self, result: RunResult) -> None:
        self.result = result


@pytest.fixture
def per_worker_kind() -> Any:
    register_kind(KIND, PerWorkerApplier)
    PerWorkerApplier.applied, PerWorkerApplier.stopped = [], []
    yield
    unregister_kind(KIND)


@pytest.fixture
async def cluster(per_worker_kind: Any) -> AsyncIterator[MemoryCluster]:
    c = MemoryCluster()
    c.new_master()
    yield c
    await c.close()


async def test_a_test_only_output_and_model_run_locally(per_worker_kind: Any) -> None:
    clock = FakeClock()
    classes = counting_users(Fired())
    env = Environment(user_classes=classes, events=Events(), clock=clock)
    env.create_local_runner()
    out = TickCounter()
    run = TestRun(env, outputs=[out])
    await run.open()
    run.start(StartRequest(model=PerWorker(classes[0], users=3), run_time=5))
    for _ in range(120):
        clock.advance(0.05)
        await asyncio.sleep(0)
    await run.close()
    assert out.started == 1 and len(out.ticks) >= 4
    assert [w for w, _ in PerWorkerApplier.applied] == ["local"]
    assert out.result is not None and out.result.stop_reason == "the run time limit was reached"
    assert run.status().load == "3 Alpha users on every worker"


async def test_a_test_only_output_and_model_run_on_a_master_with_two_workers(cluster: MemoryCluster) -> None:
    first = await cluster.add_worker()
    second = await cluster.add_worker()
    out = TickCounter()
    run = TestRun(cluster.master.environment, outputs=[out], tick_interval=1.0)
    await run.open()
    classes = cluster.master.environment.user_classes
    run.start(StartRequest(model=PerWorker(classes[0], users=3)))
    await cluster.advance(4.0)
    assert sorted(w for w, _ in PerWorkerApplier.applied) == sorted([first.client_id, second.client_id])
    assert run.status().distributed and len(run.status().workers) == 2
    assert len(out.ticks) >= 3  # the master ticks its merged stats like a local run
    await cluster.until(run.stop())
    result = await cluster.until(run.close())
    assert out.result is result and {w.id for w in result.workers} == {first.client_id, second.client_id}


async def test_a_cluster_that_loses_its_last_worker_ends_early_and_does_not_pass(
    cluster: MemoryCluster,
) -> None:
    worker = await cluster.add_worker()
    run = TestRun(cluster.master.environment)
    await run.open()
    run.start(StartRequest(user_count=2, spawn_rate=100, run_time=60))
    await cluster.advance(4.0)
    assert run.env.stats.total.num_requests > 0
    cluster.network.partition(worker.client_id)  # the worker's machine is gone: silence from now on
    await cluster.advance(5.0)  # past the liveness window (3 s)
    await cluster.until(run.wait())
    result = await cluster.until(run.close())
    assert result.stop_reason == "the last worker is gone"
    assert result.exit_code == 1
    assert result.warnings[0] == "The test ended early: the last worker is gone"
