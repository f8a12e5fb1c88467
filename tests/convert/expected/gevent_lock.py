"""gevent locks and events shared between users."""

import asyncio
from horde import HttpUser, between, events, task

one_at_a_time = asyncio.Semaphore()
two_at_a_time = asyncio.BoundedSemaphore(2)
ready = asyncio.Event()


@events.test_start.add_listener
def open_gate(environment, **kwargs):
    ready.set()


class Locked(HttpUser):
    wait_time = between(0.01, 0.02)

    async def on_start(self):
        await ready.wait()

    @task
    async def critical(self):
        async with one_at_a_time:
            await self.client.get("/ok", name="one")

    @task
    async def bounded(self):
        await two_at_a_time.acquire()
        try:
            await self.client.get("/ok", name="two")
        finally:
            two_at_a_time.release()
