"""A plain User with its own client: its calls are not horde's and stay as they are."""

import time

from locust import User, events, task


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


class EchoUser(User):
    def __init__(self, environment):
        super().__init__(environment)
        self.client = EchoClient(environment.events.request)

    @task
    def hello(self):
        self.client.get("hello")
        time.sleep(0.01)
