"""Wait-time helpers: each returns a function the task loop calls (with the user or task set) after a task.

>>> class Shop(User):
...     wait_time = between(1, 3)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from horde.clock import SYSTEM_CLOCK, Clock

WaitTime = Callable[[Any], float]


def _clock_of(obj: Any) -> Clock:
    user = getattr(obj, "user", obj)
    env = getattr(user, "environment", None)
    return getattr(env, "clock", SYSTEM_CLOCK)


def between(min_wait: float, max_wait: float) -> WaitTime:
    """Wait a uniformly random time in ``[min_wait, max_wait]`` seconds."""
    if min_wait < 0 or max_wait < min_wait:
        raise ValueError(f"between({min_wait}, {max_wait}): need 0 <= min_wait <= max_wait")

    def wait_time(self: Any) -> float:
        return min_wait + random.random() * (max_wait - min_wait)

    return wait_time


def constant(wait: float) -> WaitTime:
    """Always wait ``wait`` seconds."""
    if wait < 0:
        raise ValueError(f"constant({wait}): wait must be >= 0")
    return lambda self: wait


def constant_pacing(wait: float) -> WaitTime:
    """Start a task every ``wait`` seconds: the wait is ``wait`` minus the time the last task took.

    A task that takes longer than ``wait`` is followed by no wait at all (the pace is then missed, not
    made up later).
    """
    if wait < 0:
        raise ValueError(f"constant_pacing({wait}): wait must be >= 0")

    def wait_time(self: Any) -> float:
        started = getattr(self, "_task_started_at", None)
        if started is None:
            return wait
        return max(0.0, wait - (_clock_of(self).monotonic() - started))

    return wait_time


def constant_throughput(task_runs_per_second: float) -> WaitTime:
    """Run at most ``task_runs_per_second`` tasks per second per user (the inverse of constant_pacing)."""
    if task_runs_per_second <= 0:
        raise ValueError(f"constant_throughput({task_runs_per_second}): rate must be > 0")
    return constant_pacing(1.0 / task_runs_per_second)
