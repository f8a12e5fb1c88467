"""Requests in flight when their user is cancelled are counted as aborted (issue 15 item 1, client side).

The clients call ``environment.stats.log_aborted(method, name)`` (when the stats have it) and fire no
request event: an aborted request is neither a request the target answered nor a failure of it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from horde import task
from horde.env import Environment
from tests.clients.conftest import Made, Target


class AbortLog:
    def __init__(self, env: Environment) -> None:
        self.rows: list[tuple[str, str]] = []
        env.stats.log_aborted = self.log  # type: ignore[attr-defined]  # the seam the lead adds to RequestStats

    def log(self, method: str, name: str) -> None:
        self.rows.append((method, name))


async def test_a_cancelled_request_is_aborted_not_dropped_or_failed(made: Made) -> None:
    log = AbortLog(made.env)
    c = made.user.client
    plain = asyncio.ensure_future(c.get("/slow?s=5", name="slow"))
    caught = asyncio.ensure_future(_catching(c))
    await asyncio.sleep(0.3)
    plain.cancel()
    caught.cancel()
    for t in (plain, caught):
        try:
            await t
        except asyncio.CancelledError:
            pass
    assert sorted(log.rows) == [("GET", "slow"), ("POST", "/slow?s=5")]
    assert made.rec.events == []  # no request event: the stats count it apart
    assert made.env.stats.total.num_requests == 0 and made.env.stats.total.num_failures == 0
    assert (await c.get("/echo")).ok  # the user's client is still usable


async def _catching(c: Any) -> None:
    async with c.post("/slow?s=5", b"x", catch_response=True):
        pass


async def test_a_user_stopped_mid_request_by_the_runner_counts_it_aborted(
    user_base: type, target: Target
) -> None:
    started = asyncio.Event()

    class U(user_base):  # type: ignore[misc, valid-type]
        host = target.url

        @task
        async def t(self) -> None:
            started.set()
            await self.client.get("/slow?s=10", name="hung")

    env = Environment(user_classes=[U], stop_timeout=0.2)
    runner = env.create_local_runner()
    log = AbortLog(env)
    await runner.start(1, 100)
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.sleep(0.1)
    await asyncio.wait_for(runner.stop(), 5)
    assert log.rows == [("GET", "hung")]
    assert env.stats.total.num_requests == 0


async def test_without_log_aborted_nothing_breaks(made: Made) -> None:
    t = asyncio.ensure_future(made.user.client.get("/slow?s=5"))
    await asyncio.sleep(0.2)
    t.cancel()
    try:
        await t
    except asyncio.CancelledError:
        pass
    assert made.rec.events == []
