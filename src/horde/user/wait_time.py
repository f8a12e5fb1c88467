"""Wait-time helpers: each returns a function the task loop calls (with the user or task set) after a task.

>>> class Shop(User):
...     wait_time = between(1, 3)
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from horde.clock import SYSTEM_CLOCK, Clock
from horde.exceptions import ConfigurationError

WaitTime = Callable[[Any], float]


def _clock_of(obj: Any) -> Clock:
    user = getattr(obj, "user", obj)
    env = getattr(user, "environment", None)
    return getattr(env, "clock", SYSTEM_CLOCK)


def _seconds(call: str, value: Any) -> float:
    """A wait must be a finite number >= 0: a NaN wait would silently mean "no wait at all"."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigurationError(f"{call}: waits must be finite numbers of seconds >= 0, got {value!r}")
    return float(value)


def between(min_wait: float, max_wait: float) -> WaitTime:
    """Wait a uniformly random time in ``[min_wait, max_wait]`` seconds."""
    call = f"between({min_wait!r}, {max_wait!r})"
    min_wait, max_wait = _seconds(call, min_wait), _seconds(call, max_wait)
    if max_wait < min_wait:
        raise ConfigurationError(f"{call}: need min_wait <= max_wait")

    def wait_time(self: Any) -> float:
        return min_wait + random.random() * (max_wait - min_wait)

    return wait_time


def constant(wait: float) -> WaitTime:
    """Always wait ``wait`` seconds."""
    wait = _seconds(f"constant({wait!r})", wait)
    return lambda self: wait


def constant_pacing(wait: float) -> WaitTime:
    """Start a task every ``wait`` seconds: the wait is ``wait`` minus the time the last task took.

    A task that takes longer than ``wait`` is followed by no wait at all (the pace is then missed, not
    made up later).
    """
    wait = _seconds(f"constant_pacing({wait!r})", wait)

    def wait_time(self: Any) -> float:
        started = getattr(self, "_task_started_at", None)
        if started is None:
            return wait
        return max(0.0, wait - (_clock_of(self).monotonic() - started))

    return wait_time


def constant_throughput(task_runs_per_second: float) -> WaitTime:
    """Run at most ``task_runs_per_second`` tasks per second per user (the inverse of constant_pacing)."""
    rate = _seconds(f"constant_throughput({task_runs_per_second!r})", task_runs_per_second)
    if rate <= 0:
        raise ConfigurationError(f"constant_throughput({task_runs_per_second!r}): rate must be > 0")
    return constant_pacing(1.0 / rate)
