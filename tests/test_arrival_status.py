"""The open model's rate split is visible per worker, in RunStatus and in the console's workers table."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from horde.load import ConstantArrivalRate
from horde.reports.console import workers_table
from horde.session import StartRequest, TestRun
from tests.runners.cluster import MemoryCluster


@pytest.fixture
async def cluster() -> AsyncIterator[MemoryCluster]:
    c = MemoryCluster()
    c.new_master()
    yield c
    await c.close()


async def test_each_worker_shows_its_share_of_the_rate(cluster: MemoryCluster) -> None:
    await cluster.add_worker()
    await cluster.add_worker()
    run = TestRun(cluster.master.environment)
    await run.open()
    run.start(StartRequest(model=ConstantArrivalRate(20, max_users=10)))
    await cluster.advance(4.0)  # past the workers' first stats report
    rows = run.status().workers
    assert len(rows) == 2
    for w in rows:  # 20/s over two workers: 10/s each, and max_users 10 split to 5 each
        assert w.load is not None and w.load.startswith("10/s, pool ") and w.load.endswith(" of 5"), w.load
    table = workers_table(rows)
    assert "share" in table.splitlines()[0] and "10/s" in table
    await cluster.until(run.stop())
    await cluster.until(run.close())
