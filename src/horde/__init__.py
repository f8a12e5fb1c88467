"""horde: load testing for Python people.

The public API lives here; everything else is an implementation detail.

    from horde import HttpUser, task, between

    class Shop(HttpUser):
        wait_time = between(1, 3)

        @task
        async def browse(self):
            await self.client.get("/items")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from horde._version import __version__
from horde.clients.fast import FastHttpUser
from horde.clients.http import HttpUser
from horde.env import Environment
from horde.event import EventHook, Events, events
from horde.exceptions import (
    HordeError,
    InterruptTaskSet,
    RescheduleTask,
    RescheduleTaskImmediately,
    ResponseError,
    StopTest,
    StopUser,
)
from horde.shape import LoadTestShape
from horde.user import (
    MarkovTaskSet,
    SequentialTaskSet,
    TaskSet,
    User,
    between,
    constant,
    constant_pacing,
    constant_throughput,
    tag,
    task,
    transition,
    transitions,
)

if TYPE_CHECKING:
    from horde.debug import run_single_user
    from horde.runners import LocalRunner, Runner

# The runners pull in pyzmq (the master and worker); a locustfile that only defines users should not pay
# for it, so they load on first use.
_LAZY = {"LocalRunner": "horde.runners", "Runner": "horde.runners", "run_single_user": "horde.debug"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'horde' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Environment",
    "EventHook",
    "Events",
    "FastHttpUser",
    "HordeError",
    "HttpUser",
    "InterruptTaskSet",
    "LoadTestShape",
    "LocalRunner",
    "MarkovTaskSet",
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
    "run_single_user",
    "tag",
    "task",
    "transition",
    "transitions",
]
