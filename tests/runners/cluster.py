"""A master and workers in one event loop over the in-memory transport, all on one FakeClock.

Nothing here sleeps: time moves only when a test advances the clock, and :meth:`MemoryCluster.settle`
runs the loop until every message has been handled, so "nothing happened" is a plain assertion.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from horde import User, constant, task
from horde.clock import FakeClock
from horde.env import Environment
from horde.event import Events
from horde.rpc.memory import MemoryNetwork
from horde.runners.master import MasterRunner
from horde.runners.worker import WorkerRunner

HB = 1.0  # heartbeat interval: a worker is missing after 3 silent intervals
LIVENESS = 3
REPORT = 3.0  # stats report interval of the workers


@dataclass
class Fired:
    """Counts the requests users fire, so merged totals can be checked exactly."""

    count: int = 0


def counting_users(fired: Fired, wait: float = 0.5) -> list[type[User]]:
    """Two classes whose every task fires one request and counts it in ``fired``."""

    class Alpha(User):
        wait_time = constant(wait)

        @task
        async def hit(self) -> None:
            fired.count += 1
            self.environment.events.request.fire(
                request_type="GET", name="/alpha", response_time=1.5, response_length=10, exception=None
            )

    class Beta(Alpha):
        @task
        async def hit(self) -> None:
            fired.count += 1
            self.environment.events.request.fire(
                request_type="GET", name="/beta", response_time=3.0, response_length=10, exception=None
            )

    return [Alpha, Beta]


@dataclass
class MemoryCluster:
    clock: FakeClock = field(default_factory=lambda: FakeClock(start=1000.0))
    network: MemoryNetwork = field(default_factory=MemoryNetwork)
    fired: Fired = field(default_factory=Fired)
    workers: list[WorkerRunner] = field(default_factory=list)
    master: MasterRunner = field(init=False)

    def new_master(self, classes: list[type[User]] | None = None, **env_options: Any) -> MasterRunner:
        env = Environment(
            events=Events(),
            user_classes=classes or counting_users(self.fired),
            clock=self.clock,
            **env_options,
        )
        self.master = env.create_master_runner(
            transport=self.network.listen(), heartbeat_interval=HB, heartbeat_liveness=LIVENESS
        )
        self.master.start_background()
        return self.master

    def new_worker(self, classes: list[type[User]] | None = None, **options: Any) -> WorkerRunner:
        env = Environment(
            events=Events(), user_classes=classes or counting_users(self.fired), clock=self.clock
        )
        options.setdefault("heartbeat_interval", HB)
        options.setdefault("heartbeat_liveness", LIVENESS)
        options.setdefault("stats_report_interval", REPORT)
        worker = env.create_worker_runner("memory", 0, connect=self.network.connect, **options)
        self.workers.append(worker)
        return worker

    async def add_worker(self, classes: list[type[User]] | None = None, **options: Any) -> WorkerRunner:
        """A worker, connected and known to the master."""
        worker = self.new_worker(classes, **options)
        await worker.connect()
        await self.settle()
        return worker

    async def settle(self) -> None:
        await self.network.drain()

    async def advance(self, seconds: float, step: float = 0.1) -> None:
        """Move the clock ``seconds`` forward in ``step``s, letting everything due run after each."""
        end = self.clock.monotonic() + seconds
        while self.clock.monotonic() < end - 1e-9:
            self.clock.advance(min(step, end - self.clock.monotonic()))
            await self.settle()

    async def until(self, aw: Awaitable[Any], limit: float = 30.0, step: float = 0.1) -> Any:
        """Advance the clock until ``aw`` is done (at most ``limit`` seconds of the clock)."""
        import asyncio

        fut = asyncio.ensure_future(aw)
        waited = 0.0
        await self.settle()
        while not fut.done():
            if waited >= limit:
                fut.cancel()
                raise AssertionError(f"not done after {limit} s of the fake clock")
            await self.advance(step, step)
            waited += step
        return fut.result()

    def users(self) -> list[int]:
        return [w.user_count for w in self.workers]

    async def close(self) -> None:
        for worker in self.workers:
            if worker._quit_task is None:
                await self.until(worker.quit())
        await self.until(self.master.quit())
