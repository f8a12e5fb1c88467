"""Every exception horde raises or lets a locustfile raise, in one tree rooted at :class:`HordeError`.

The names are Locust's. Where a builtin meaning fits, it is a second parent (a bad locustfile is also a
``ValueError``), so code that catches by meaning keeps working. Catch ``HordeError`` to catch all of horde's.

    HordeError
    ├── StopUser, StopTest, RescheduleTask (RescheduleTaskImmediately), InterruptTaskSet   control flow
    ├── ConfigurationError (also ValueError)
    │   ├── LocustfileError
    │   └── RunnerAlreadyExistsError (also RuntimeError)
    ├── CatchResponseError (also RuntimeError)
    ├── ResponseError
    └── (rpc) RPCError, (runners) WorkerRefusedError …
"""

from __future__ import annotations


class HordeError(Exception):
    """Base class of every exception horde defines."""


class StopUser(HordeError):
    """Raised inside a task to end this user (its ``on_stop`` still runs)."""


class StopTest(HordeError):
    """Raised to end the whole test (for example when a class lacks a host)."""


class RescheduleTask(HordeError):
    """Raised inside a task to skip the wait and pick the next task at once."""


class RescheduleTaskImmediately(RescheduleTask):
    """Alias kept for locustfiles ported from Locust."""


class InterruptTaskSet(HordeError):
    """Raised by ``TaskSet.interrupt()`` to return control to the parent."""

    def __init__(self, reschedule: bool = True) -> None:
        super().__init__(reschedule)
        self.reschedule = reschedule


class ConfigurationError(HordeError, ValueError):
    """Options, user classes or a load model that cannot run; the message is one clear line."""


class LocustfileError(ConfigurationError):
    """A locustfile that is missing, fails to import, or defines no User."""


class RunnerAlreadyExistsError(ConfigurationError, RuntimeError):
    """An Environment holds at most one runner."""


class CatchResponseError(HordeError, RuntimeError):
    """Raised by ``response.failure()`` outside a ``catch_response`` block."""


class ResponseError(HordeError):
    """A response marked failed (status >= 400) by ``raise_for_status()``."""
