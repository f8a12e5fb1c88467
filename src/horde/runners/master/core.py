"""The master's shared state and the few helpers every part of it uses (time, sending, counting drops).

The master is one object split by job into mixins over this core: :mod:`.controller` (the loop, ramps and
timers), :mod:`.handlers` (what each worker message does, workers joining, leaving and returning),
:mod:`.stopping` (the stop/quit handshake) and :mod:`.runner` (the public runner API and the reader).
Methods one part calls on another are declared here, so each module reads (and type-checks) alone.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter, deque
from typing import TYPE_CHECKING, Any

from horde.clock import Clock
from horde.rpc.protocol import Message
from horde.rpc.transport import RPCError, ServerTransport
from horde.runners.base import Runner, RunnerState
from horde.runners.master.merger import AUTO_MIN_WORKERS, StatsMerger, merger_mode, usable_cpus
from horde.runners.nodes import WorkerNode, WorkerNodes

if TYPE_CHECKING:
    from horde.load import StepDriver
    from horde.runners.master.stopping import Pending

logger = logging.getLogger("horde.runners.master")

STOP_MARGIN = 5.0  # seconds a worker gets beyond stop_timeout to send its final stats
RAMP_ACK_TIMEOUT = 5.0  # seconds the master waits for workers to confirm the last ramp step
MISSING_FORGET_AFTER = 60.0  # seconds after which a missing worker is forgotten
DROP_LOG_INTERVAL = 5.0


class MasterCore(Runner):
    """State shared by the master's parts; see :class:`horde.runners.master.MasterRunner`."""

    def __init__(
        self,
        environment: Any,
        transport: ServerTransport,
        heartbeat_interval: float,
        heartbeat_liveness: int,
    ) -> None:
        super().__init__(environment)
        self.transport = transport
        self.nodes = WorkerNodes()
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_liveness = heartbeat_liveness
        self.epoch = uuid.uuid4().hex
        # one reply object for every heartbeat echo: the transport encodes it once, not once per echo
        self._heartbeat_reply = Message("heartbeat", {"epoch": self.epoch})
        self.dropped_messages: Counter[str] = Counter()
        self._clock: Clock = environment.clock
        # the real clock waits with asyncio's own timers; any other clock (a FakeClock) by sleeping on it
        self._real_time = type(self._clock) is Clock
        self._last_drop_log = float("-inf")
        self._inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.inbox_full_pauses = 0  # times the reader waited for the controller to catch up (a full inbox)
        # commands (start, stop, quit, timers) go ahead of worker messages: thousands of queued reports
        # must not hold back a stop, or the master could not be stopped while its workers talk
        self._commands: deque[tuple[Any, ...]] = deque()
        self._timers_first = (
            True  # due timers run before the next queued message (a backlog can't starve them)
        )
        self._driver: StepDriver | None = None  # the running plan (None between tests)
        self._spawn_seq = 0
        self._ramp_waiters: list[asyncio.Future[None]] = []
        self._ramp_acks_deadline: float | None = None
        self._rebalancing = False
        self._pending: Pending | None = None
        self._pending_was_testing = False
        self._hurried = False  # hurry() was called: stops from now on tell workers to stop at once
        self._unconfirmed: set[str] = set()  # workers that have not yet applied their latest spawn
        self._stats_generation = 0  # bumped at each --reset-stats reset; older worker reports are dropped
        # the workers as they were when the test was stopped (they may have quit since)
        self._final_nodes: list[WorkerNode] = []
        self._controller_task: asyncio.Task[Any] | None = None
        self._next_liveness_check = 0.0
        # the last time the reader had read every frame that had arrived: silence before it is the worker's,
        # silence after it may be the master's own backlog (a master behind on reading declares no one missing)
        self._caught_up = self._now()
        self._last_read = self._caught_up  # when the reader last took a frame (caught up or not)
        self._options_sent: set[str] = set()
        self.worker_state_changes = 0  # bumped on every worker state change (the console reprints its table)
        self._nodes_changed = asyncio.Event()
        self.bundle: Any = None  # the locustfile bundle shipped to workers without one (horde.rpc.bundle)
        self.bundle_problem: str | None = None  # why there is none to ship
        # the child process that adds reports up once there are many workers (horde.runners.master.merger)
        self._merger: StatsMerger | None = None
        self._merger_mode = merger_mode()

    # ---- shared helpers ------------------------------------------------------------------------------
    def _now(self) -> float:
        return self._clock.monotonic()

    def _changed(self) -> None:
        """A worker joined, left or changed state: bump the counter and wake wait_for_workers."""
        self.worker_state_changes += 1
        self._nodes_changed.set()

    async def _send(self, node_id: str, msg: Message) -> None:
        try:
            await self.transport.send(node_id, msg)
        except RPCError as e:
            logger.warning("%s", e)

    def _command(self, item: tuple[Any, ...]) -> None:
        """Queue a command for the controller, ahead of every worker message still queued."""
        self._commands.append(item)
        self._inbox.put_nowait(("wake",))  # wakes an idle controller; ignored when it comes up later

    def _drop(self, reason: str, detail: str) -> None:
        self.dropped_messages[reason] += 1
        now = self._now()
        if now - self._last_drop_log >= DROP_LOG_INTERVAL:
            self._last_drop_log = now
            total = sum(self.dropped_messages.values())
            logger.warning("Ignored a bad message (%s); %d ignored so far", detail, total)

    def _use_merger(self) -> None:
        """Start the stats merger when the mode asks for it: always, or (auto) once there are many workers
        and a second CPU for it (on one, the child would only take turns with the master's loop)."""
        if self._merger is not None or self._merger_mode == "off":
            return
        if self._merger_mode == "auto" and (len(self.nodes) < AUTO_MIN_WORKERS or usable_cpus() < 2):
            return
        self._merger = StatsMerger(self.environment.stats, self._merger_refused, on_lost=self._merger_lost)
        self._merger.start()

    def _merger_refused(self, node_id: str, reason: str) -> None:
        self._drop("invalid", f"stats from {node_id}: {reason}")

    def _merger_lost(self, count: int) -> None:
        """Reports died with the merger: the run's numbers are incomplete, so it must not pass (exit 2)."""
        self.environment.events.unhandled_errors += 1

    def _reset_merged(self, **_: Any) -> None:
        """The master's stats were reset: the merger drops what it holds (and any sum on its way)."""
        if self._merger is not None:
            self._merger.reset()

    def _testing(self) -> bool:
        return self.state in (RunnerState.SPAWNING, RunnerState.RUNNING)

    # ---- implemented by the other parts (declared here so each part type-checks alone) ---------------
    async def _on_timers(self) -> None:
        raise NotImplementedError  # controller

    async def _rebalance(self) -> None:
        raise NotImplementedError  # controller

    async def _check_ramp_acks(self) -> None:
        raise NotImplementedError  # controller

    async def _check_liveness(self, now: float) -> None:
        raise NotImplementedError  # handlers

    async def _on_message(self, msg: Message, link: str | None = None) -> None:
        raise NotImplementedError  # handlers

    def _on_heartbeat(self, node: WorkerNode, data: dict[str, Any]) -> None:
        raise NotImplementedError  # handlers

    async def _begin_stop(self, kind: str, fut: asyncio.Future[None]) -> None:
        raise NotImplementedError  # stopping

    async def _finish_pending(self) -> None:
        raise NotImplementedError  # stopping

    def _acknowledged(self, node_id: str) -> None:
        raise NotImplementedError  # stopping
