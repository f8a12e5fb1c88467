"""The master's view of its workers: one WorkerNode each, in a WorkerNodes registry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from horde.runners import gc_policy
from horde.runners.base import RunnerState


@dataclass
class WorkerNode:
    """What the master knows of one worker (``id`` is its transport identity)."""

    id: str
    index: int = 0
    state: RunnerState = RunnerState.READY
    user_classes_count: dict[str, int] = field(default_factory=dict)
    cpu_usage: float = 0.0
    memory_usage: int = 0
    loop_lag: float = 0.0
    last_seen: float = 0.0  # clock.monotonic() of its last message (liveness)
    last_heartbeat: float | None = None  # clock.time() of its last heartbeat (shown in status rows)
    missing_since: float | None = None
    cpu_warning_emitted: bool = False
    stats_seq: int = -1  # highest stats report merged; a report at or below it is a retry and is dropped
    spawn_seq_sent: int = 0  # the newest spawn message sent to this worker
    spawn_seq_done: int = 0  # the newest spawn the worker confirmed as applied
    target: dict[str, int] = field(default_factory=dict)  # what the master last told it to run
    connection: str = ""  # the transport link accepted for it (empty: the transport has one per worker)
    session: str | None = None  # the secret it registered with; a new link must prove it
    count_mismatches: int = 0  # reports of more users than it was sent (logged, not adopted)

    @property
    def user_count(self) -> int:
        return sum(self.user_classes_count.values())

    @property
    def host(self) -> str:
        return self.id.split("_", 1)[0]


class WorkerNodes:
    """id → WorkerNode, with the filtered views the master needs; iteration is over a snapshot."""

    def __init__(self) -> None:
        self._nodes: dict[str, WorkerNode] = {}
        self._indexes: dict[str, int] = {}

    def add(self, node_id: str, now: float) -> WorkerNode:
        index = self._indexes.setdefault(node_id, len(self._indexes))
        node = WorkerNode(id=node_id, index=index, last_seen=now)
        self._nodes[node_id] = node
        # a master's workers are long-lived, like a generator's users: keep full collections from walking
        # them (and everything else long-lived) again and again. At 5,000 workers those collections paused
        # the master's loop for up to 95 ms, which went straight into heartbeat echoes and status answers
        gc_policy.settle()
        return node

    def get(self, node_id: str) -> WorkerNode | None:
        return self._nodes.get(node_id)

    def remove(self, node_id: str) -> WorkerNode | None:
        node = self._nodes.pop(node_id, None)
        if node is not None:
            gc_policy.release(len(self._nodes))  # its objects may be frozen (see add)
        return node

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[WorkerNode]:
        return iter(list(self._nodes.values()))

    def _in(self, *states: RunnerState) -> list[WorkerNode]:
        return [n for n in self._nodes.values() if n.state in states]

    @property
    def all(self) -> list[WorkerNode]:
        return list(self._nodes.values())

    @property
    def ready(self) -> list[WorkerNode]:
        return self._in(RunnerState.READY)

    @property
    def spawning(self) -> list[WorkerNode]:
        return self._in(RunnerState.SPAWNING)

    @property
    def running(self) -> list[WorkerNode]:
        return self._in(RunnerState.RUNNING)

    @property
    def missing(self) -> list[WorkerNode]:
        return self._in(RunnerState.MISSING)

    @property
    def active(self) -> list[WorkerNode]:
        """Workers that can run users: ready, spawning or running (not missing, not stopping)."""
        return self._in(RunnerState.READY, RunnerState.SPAWNING, RunnerState.RUNNING)
