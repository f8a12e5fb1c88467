"""Concurrent requests inside one task with a gevent pool (Locust's documented recipe)."""

import asyncio
from horde import HttpUser, between, task


class Fanout(HttpUser):
    wait_time = between(0.01, 0.02)

    @task
    async def fan_out(self):
        async def concurrent_request(url):
            await self.client.get(url)

        async with asyncio.TaskGroup() as pool:
            urls = ["/ok", "/echo", "/ok?page=2"]
            for url in urls:
                pool.create_task(concurrent_request(url))
        await self.client.get("/ok", name="after")
