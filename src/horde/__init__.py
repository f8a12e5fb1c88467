"""horde: load testing for Python people.

The public API lives here; everything else is an implementation detail.

    from horde import HttpUser, task, between

    class Shop(HttpUser):
        wait_time = between(1, 3)

        @task
        async def browse(self):
            await self.client.get("/items")
"""

from horde._version import __version__
from horde.event import EventHook, Events
from horde.exceptions import (
    InterruptTaskSet,
    RescheduleTask,
    RescheduleTaskImmediately,
    ResponseError,
    StopTest,
    StopUser,
)

#: The process-wide event hooks, as in Locust: ``@events.test_start.add_listener`` in a locustfile
#: attaches to the Environment the CLI builds. Library users may give an Environment its own Events.
events = Events()

from horde.clients.fast import FastHttpUser  # noqa: E402
from horde.clients.http import HttpUser  # noqa: E402
from horde.env import Environment  # noqa: E402
from horde.runners import LocalRunner, Runner  # noqa: E402
from horde.shape import LoadTestShape  # noqa: E402
from horde.user import (  # noqa: E402
    SequentialTaskSet,
    TaskSet,
    User,
    between,
    constant,
    constant_pacing,
    constant_throughput,
    tag,
    task,
)

__all__ = [
    "Environment",
    "EventHook",
    "Events",
    "FastHttpUser",
    "HttpUser",
    "InterruptTaskSet",
    "LoadTestShape",
    "LocalRunner",
    "RescheduleTask",
    "RescheduleTaskImmediately",
    "ResponseError",
    "Runner",
    "SequentialTaskSet",
    "StopTest",
    "StopUser",
    "TaskSet",
    "User",
    "__version__",
    "between",
    "constant",
    "constant_pacing",
    "constant_throughput",
    "events",
    "tag",
    "task",
]
