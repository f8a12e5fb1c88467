"""Locust imports from every module a locustfile usually touches."""

import horde
from horde import HttpUser, between, events, task
from horde import FastHttpUser
from horde.env import Environment
from horde.exceptions import HordeError as LocustError, RescheduleTask, StopUser
from horde.user.wait_time import constant


class Web(HttpUser):
    wait_time = between(0.01, 0.02)

    @task
    async def index(self):
        await self.client.get("/ok")


class Api(FastHttpUser):
    wait_time = constant(0.01)

    @horde.task
    async def echo(self):
        await self.client.post("/echo", json={"ok": True})


ALL = [Environment, events, LocustError, RescheduleTask, StopUser, horde.events]
