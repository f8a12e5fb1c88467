"""WorkerStatus: one row of "who runs what" — a worker of a master, or the one ``local`` row of a local run.

Front ends (the console's workers table, the coming web UI and REST API, the final report) read these rows
from ``runner.worker_statuses()`` instead of the runners' internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """A snapshot of one load-generating process, JSON-ready through :meth:`to_dict`.

    >>> row = WorkerStatus(id="local", index=0, state="running", user_count=3, user_classes_count={"Shop": 3})
    >>> row.to_dict()["user_classes_count"]
    {'Shop': 3}

    ``loop_lag`` is in seconds (the worst event-loop lateness of the last monitor interval), ``memory_rss``
    in bytes, ``last_heartbeat`` the epoch second the master last heard from the worker (``None`` for the
    local row and for a worker not heard from yet). ``user_classes_count`` is the row's own copy (treat it
    as read-only); rows hash by id, index, state, user count and heartbeat.
    """

    id: str
    index: int = 0
    state: str = "ready"
    user_count: int = 0
    user_classes_count: dict[str, int] = field(default_factory=dict)
    cpu_percent: float = 0.0
    memory_rss: int = 0
    loop_lag: float = 0.0
    last_heartbeat: float | None = None
    #: this worker's share of an open (arrival-rate) model, e.g. "12.5/s, pool 4 of 20" (None otherwise)
    load: str | None = None

    def __post_init__(self) -> None:
        # frozen means frozen: a caller mutating the dict it passed must not change the row
        object.__setattr__(self, "user_classes_count", dict(self.user_classes_count))
        object.__setattr__(self, "state", str(self.state))  # a RunnerState becomes its plain value

    def __hash__(self) -> int:
        return hash((self.id, self.index, self.state, self.user_count, self.last_heartbeat))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (the dict is a fresh copy)."""
        return {
            "id": self.id,
            "index": self.index,
            "state": self.state,
            "user_count": self.user_count,
            "user_classes_count": dict(self.user_classes_count),
            "cpu_percent": self.cpu_percent,
            "memory_rss": self.memory_rss,
            "loop_lag": self.loop_lag,
            "last_heartbeat": self.last_heartbeat,
            "load": self.load,
        }
