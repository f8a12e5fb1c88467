"""The liveness sweep: which workers fell silent, which missing ones to forget, when to look again.

Pure: nodes and a time in, a :class:`Sweep` out; the master applies it (see ``handlers``). The next sweep
is due when the next worker's window would run out, at most one heartbeat interval away, so a worker is
declared missing within a few milliseconds of its deadline without scanning the registry every tick.

    >>> result = sweep(nodes, now=clock.monotonic(), window=3.0, interval=1.0, forget_after=60.0)
    >>> result.lost, result.forgotten, result.next_due
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from horde.runners.base import RunnerState
from horde.runners.nodes import WorkerNode

MIN_GAP = 0.01  # never sweep again sooner than this (a clock that does not move must not spin)
PAST_DEADLINE = 0.001  # look just after a deadline, so "silent for longer than the window" holds


@dataclass(frozen=True)
class Sweep:
    lost: list[WorkerNode]  # silent for longer than the window: to be marked missing
    forgotten: list[WorkerNode]  # missing for longer than forget_after: to be removed
    next_due: float  # when to sweep again


def sweep(
    nodes: Iterable[WorkerNode], now: float, window: float, interval: float, forget_after: float
) -> Sweep:
    """Find the workers whose last message is more than ``window`` seconds before ``now``."""
    lost: list[WorkerNode] = []
    forgotten: list[WorkerNode] = []
    next_due = now + interval
    for node in nodes:
        if node.state == RunnerState.MISSING:
            if node.missing_since is not None and now - node.missing_since > forget_after:
                forgotten.append(node)
            continue
        deadline = node.last_seen + window
        if now > deadline:
            lost.append(node)
        elif deadline < next_due:
            next_due = deadline
    return Sweep(lost, forgotten, max(now + MIN_GAP, next_due + PAST_DEADLINE))
