"""gevent.spawn of a helper and a module function, join, joinall and kill."""

import asyncio
from horde import HttpUser, between, task


async def ping(user, path):
    await user.client.get(path, name="ping")


class Spawner(HttpUser):
    wait_time = between(0.01, 0.02)

    async def fetch(self, path):
        await self.client.get(path)

    @task
    async def one(self):
        g = asyncio.create_task(self.fetch("/ok"))
        await g

    @task
    async def many(self):
        greenlets = [asyncio.create_task(ping(self, "/ok")), asyncio.create_task(ping(self, "/echo"))]
        await asyncio.gather(*greenlets)

    @task
    async def cancelled(self):
        g = asyncio.create_task(self.fetch("/slow?s=1"))
        g.cancel()
