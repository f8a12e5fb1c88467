"""The in-memory cluster most master/worker tests start from."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.runners.cluster import MemoryCluster


@pytest.fixture
async def cluster() -> AsyncIterator[MemoryCluster]:
    """A master (stop_timeout 0.5 s) on the in-memory network; add workers with ``add_worker()``."""
    c = MemoryCluster()
    c.new_master(stop_timeout=0.5)
    yield c
    await c.close()
