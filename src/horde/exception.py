"""``locust.exception`` under horde's name: every exception a locustfile may import from Locust's module.

horde's own module is :mod:`horde.exceptions`; this one re-exports it with Locust's extra names, so an
``from locust.exception import ...`` line ports one for one.
"""

from horde.exceptions import (
    CatchResponseError,
    ConfigurationError,
    HordeError,
    InterruptTaskSet,
    LocustfileError,
    RescheduleTask,
    RescheduleTaskImmediately,
    ResponseError,
    RunnerAlreadyExistsError,
    StopTest,
    StopUser,
)

#: Locust's base class name.
LocustError = HordeError


class MissingWaitTimeError(HordeError):
    """Locust raises this for a user without ``wait_time``; horde never does (no wait_time means no wait),
    and keeps the name only so that imports of it keep working."""


__all__ = [
    "CatchResponseError",
    "ConfigurationError",
    "HordeError",
    "InterruptTaskSet",
    "LocustError",
    "LocustfileError",
    "MissingWaitTimeError",
    "RescheduleTask",
    "RescheduleTaskImmediately",
    "ResponseError",
    "RunnerAlreadyExistsError",
    "StopTest",
    "StopUser",
]
