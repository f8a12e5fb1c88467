"""A real run against a target that stalls: the closed model hides the stall, the open model shows it.

The target answers ``/items`` at once, except during a stall window when every request waits for the
window's end (a GC pause, a lock, a failover). Closed users are each stuck in one request during the stall
and so contribute one slow sample each; an arrival rate keeps starting iterations on schedule, and their
latency from the intended start covers the whole stall. ``python -m tests.test_arrival_stall 5`` prints the
figures of ``docs/open-model.md`` (a 5 s stall).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from horde import FastHttpUser, constant, task
from horde.env import Environment
from horde.event import Events
from horde.load.arrival import ConstantArrivalRate
from horde.load.arrival_pool import INTENDED_SUFFIX, arrival_stats


@dataclass
class Stall:
    start: float = float("inf")  # time.monotonic() of the stall's start
    length: float = 1.0

    def remaining(self) -> float:
        now = time.monotonic()
        return self.start + self.length - now if self.start <= now < self.start + self.length else 0.0


async def stalling_target(stall: Stall) -> tuple[web.AppRunner, str]:
    async def items(request: web.Request) -> web.Response:
        wait = stall.remaining()
        if wait > 0:
            await asyncio.sleep(wait)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/items", items)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def user_class(host: str) -> type[FastHttpUser]:
    class Shopper(FastHttpUser):
        wait_time = constant(0.02)

        @task
        async def items(self) -> None:
            await self.client.get("/items")

    Shopper.host = host
    return Shopper


def percentiles(entry: Any) -> dict[str, float]:
    return {f"p{int(q * 100)}": entry.get_response_time_percentile(q) for q in (0.5, 0.9, 0.95, 0.99)} | {
        "max": entry.max_response_time,
        "requests": entry.num_requests,
    }


async def measure(stall_s: float, run_s: float, stall_at: float, users: int, rate: float) -> dict[str, Any]:
    """Run the closed model, then the open model, each for ``run_s`` with a stall at ``stall_at``."""
    stall = Stall(length=stall_s)
    server, url = await stalling_target(stall)
    try:
        env = Environment(events=Events(), user_classes=[user_class(url)])
        runner = env.create_local_runner()
        stall.start = time.monotonic() + stall_at
        await runner.start(users, spawn_rate=1000)
        await asyncio.sleep(run_s)
        await runner.stop()
        closed = percentiles(env.stats.get("/items", "GET"))
        await runner.quit()

        env = Environment(events=Events(), user_classes=[user_class(url)])
        runner = env.create_local_runner()
        model = ConstantArrivalRate(
            rate, duration=run_s, pre_allocated=users, max_users=int(rate * (stall_s + 1))
        )
        stall.start = time.monotonic() + stall_at
        await runner.start_load(model)
        await asyncio.wait_for(runner.wait_stopped(), run_s + stall_s + 10)
        open_service = percentiles(env.stats.get("/items", "GET"))
        open_intended = percentiles(env.stats.get("/items" + INTENDED_SUFFIX, "GET"))
        figures = arrival_stats(env).figures()
        await runner.quit()
    finally:
        await server.cleanup()
    return {
        "closed": closed,
        "open_service": open_service,
        "open_intended": open_intended,
        "arrival": figures,
    }


@pytest.mark.slow
async def test_a_one_second_stall_hides_in_the_closed_p99_and_shows_in_the_open_one() -> None:
    result = await measure(stall_s=1.0, run_s=6.0, stall_at=2.0, users=5, rate=100)
    closed, intended = result["closed"], result["open_intended"]
    # closed: 5 users each see the stall once among ~1,000+ requests -> p99 stays at a few ms
    assert closed["requests"] > 800
    assert closed["p99"] < 100 and closed["max"] >= 900
    # open: ~100 arrivals fall in the stall, each timed from when it should have started
    assert intended["requests"] == pytest.approx(600, abs=6)
    assert intended["p99"] >= 800 and intended["p95"] >= 400
    assert result["arrival"]["dropped_iterations"] == 0
    assert result["arrival"]["scheduling_lag_ms"]["p99"] < 50


if __name__ == "__main__":
    stall_s = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    out = asyncio.run(measure(stall_s=stall_s, run_s=30.0, stall_at=10.0, users=10, rate=100))
    for key in ("closed", "open_service", "open_intended"):
        print(key, {k: round(v, 1) for k, v in out[key].items()})
    print("arrival", {k: v for k, v in out["arrival"].items() if k != "workers"})
