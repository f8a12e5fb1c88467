"""time.sleep, gevent.sleep and a bare imported sleep."""

import asyncio
import time
from horde import HttpUser, task


class Sleeper(HttpUser):
    @task
    async def nap(self):
        await self.client.get("/ok")
        await asyncio.sleep(0.01)

    @task
    async def yield_(self):
        await asyncio.sleep(0)
        await self.client.get("/ok")

    @task
    async def bare(self):
        await asyncio.sleep(0.01)
        await self.pause()

    async def pause(self):
        await asyncio.sleep(0.005)

    def stamp(self):
        return time.time()  # time stays imported for this
