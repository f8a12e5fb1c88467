"""WorkerStatus: one row of "who runs what" — a worker of a master, or the one ``local`` row of a local run.

Front ends (the console's workers table, the coming web UI and REST API, the final report) read these rows
from ``runner.worker_statuses()`` instead of the runners' internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self


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

    @classmethod
    def without_copy(
        cls,
        id: str,
        index: int,
        state: str,
        user_count: int,
        user_classes_count: dict[str, int],
        cpu_percent: float,
        memory_rss: int,
        loop_lag: float,
        last_heartbeat: float | None,
        load: str | None = None,
    ) -> Self:
        """A row that keeps ``user_classes_count`` as given and ``state`` as it is (a plain ``str``).

        For a caller building thousands of rows a second that never mutates the dicts it hands over (the
        master *replaces* a worker's counts on each report): at 5,000 workers the checked constructor
        (keyword binding, a frozen ``__setattr__`` per field, a dict copy) costs about 4x this one.

        >>> WorkerStatus.without_copy("w1", 0, "running", 2, {"Shop": 2}, 1.5, 0, 0.0, None).user_count
        2
        """
        row = _new(cls)
        _set_id(row, id)
        _set_index(row, index)
        _set_state(row, state)
        _set_user_count(row, user_count)
        _set_user_classes_count(row, user_classes_count)
        _set_cpu_percent(row, cpu_percent)
        _set_memory_rss(row, memory_rss)
        _set_loop_lag(row, loop_lag)
        _set_last_heartbeat(row, last_heartbeat)
        _set_load(row, load)
        return row

    def with_load(self, load: str | None) -> WorkerStatus:
        """This row with another ``load`` (an open model's share): ``dataclasses.replace`` without its
        re-validation, since every other field is already a checked row's."""
        return WorkerStatus.without_copy(
            self.id,
            self.index,
            self.state,
            self.user_count,
            self.user_classes_count,
            self.cpu_percent,
            self.memory_rss,
            self.loop_lag,
            self.last_heartbeat,
            load,
        )

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


# The slots' own setters, by field name: they bypass the frozen ``__setattr__`` (which raises) at about half
# the cost of ``object.__setattr__``, for :meth:`WorkerStatus.without_copy`.
_new = object.__new__
_SETTERS: dict[str, Any] = {name: getattr(WorkerStatus, name).__set__ for name in WorkerStatus.__slots__}
_set_id = _SETTERS["id"]
_set_index = _SETTERS["index"]
_set_state = _SETTERS["state"]
_set_user_count = _SETTERS["user_count"]
_set_user_classes_count = _SETTERS["user_classes_count"]
_set_cpu_percent = _SETTERS["cpu_percent"]
_set_memory_rss = _SETTERS["memory_rss"]
_set_loop_lag = _SETTERS["loop_lag"]
_set_last_heartbeat = _SETTERS["last_heartbeat"]
_set_load = _SETTERS["load"]
