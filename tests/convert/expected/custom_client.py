"""A plain User with its own client: its calls are not horde's and stay as they are."""

import asyncio
import time

from horde import User, events, task


class EchoClient:
    def __init__(self, request_event):
        self._request_event = request_event

    def get(self, name):
        start = time.perf_counter()
        self._request_event.fire(
            request_type="echo",
            name=name,
            response_time=(time.perf_counter() - start) * 1000,
            response_length=0,
            exception=None,
            context={},
        )


# horde convert: EchoUser builds its own self.client: its calls stay as they are; if they do I/O, make them async or call them with `await asyncio.to_thread(...)`
class EchoUser(User):
    def __init__(self, environment):
        super().__init__(environment)
        self.client = EchoClient(environment.events.request)

    @task
    async def hello(self):
        self.client.get("hello")
        await asyncio.sleep(0.01)
