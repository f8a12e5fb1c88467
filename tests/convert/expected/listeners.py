"""Event listeners: a request listener, a test_start hook that waits, and a background checker."""

import asyncio
from horde import HttpUser, between, events, task
from horde.runners import WorkerRunner

seen = []


@events.request.add_listener
def on_request(request_type, name, response_time, response_length, exception, **kwargs):
    seen.append(name)


async def checker(environment):
    while environment.runner is not None and environment.runner.state != "stopped":
        await asyncio.sleep(0.05)
        if environment.stats.total.fail_ratio > 0.5:
            environment.runner.quit()
            return


@events.test_start.add_listener
async def on_test_start(environment, **kwargs):
    await asyncio.sleep(0.01)  # give the target a moment
    if not isinstance(environment.runner, WorkerRunner):
        # horde convert: asyncio.create_task: keep a reference and await or cancel it (a task needs an owner)
        asyncio.create_task(checker(environment))


class Listened(HttpUser):
    wait_time = between(0.01, 0.02)

    @task
    async def index(self):
        await self.client.get("/ok")
