"""Exceptions a locustfile can raise or catch, named as Locust names them."""

from __future__ import annotations


class HordeError(Exception):
    """Base class of horde's own errors."""


class StopUser(Exception):
    """Raised inside a task to end this user (its ``on_stop`` still runs)."""


class StopTest(Exception):
    """Raised to end the whole test (for example when a class lacks a host)."""


class RescheduleTask(Exception):
    """Raised inside a task to skip the wait and pick the next task at once."""


class RescheduleTaskImmediately(RescheduleTask):
    """Alias kept for locustfiles ported from Locust."""


class InterruptTaskSet(Exception):
    """Raised by ``TaskSet.interrupt()`` to return control to the parent."""

    def __init__(self, reschedule: bool = True) -> None:
        super().__init__(reschedule)
        self.reschedule = reschedule


class MissingWaitTimeError(HordeError):
    """Kept for API parity; horde users without ``wait_time`` wait 0 s."""


class RunnerAlreadyExistsError(HordeError):
    """An Environment holds at most one runner."""


class CatchResponseError(HordeError):
    """Raised by ``response.failure()`` outside a ``catch_response`` block."""


class ResponseError(HordeError):
    """A response marked failed (status >= 400) by ``raise_for_status()``."""


class LocustfileError(HordeError):
    """A locustfile that is missing, fails to import, or defines no User."""
