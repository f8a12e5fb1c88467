"""MasterRunner: plans users over workers and merges their numbers; runs no users itself.

Three tasks, each with one job:
- the *reader* turns frames into validated messages and queues them; it never waits on anything else,
  so a slow listener or a long ramp cannot stop the master from hearing its workers;
- the *controller* owns the state machine, the worker registry and the dispatcher; it takes commands
  (start, stop, quit) and worker messages from one ordered queue, and paces ramps and checks
  heartbeats with timers instead of sleeping;
- the usage monitor, as on every runner.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from horde._version import PROTOCOL_VERSION, __version__
from horde.rpc.protocol import Message, validate_worker_message
from horde.rpc.zmq import RPCError, Server
from horde.runners.base import Runner, RunnerState
from horde.runners.nodes import WorkerNode, WorkerNodes
from horde.stats import RequestStats, StatsPayloadError

logger = logging.getLogger(__name__)

HEARTBEAT_SUFFIX = "|hb"
STOP_MARGIN = 5.0  # seconds a worker gets beyond stop_timeout to send its final stats
RAMP_ACK_TIMEOUT = 5.0  # seconds the master waits for workers to confirm the last ramp step
MISSING_FORGET_AFTER = 60.0  # seconds after which a missing worker is forgotten
DROP_LOG_INTERVAL = 5.0


@dataclass
class _Pending:
    """A stop or quit waiting for workers' acknowledgements."""

    kind: str
    waiting: set[str]
    deadline: float
    futures: list[asyncio.Future[None]] = field(default_factory=list)


class MasterRunner(Runner):
    """Coordinates workers over ZeroMQ.

    >>> master = env.create_master_runner("*", 5557)
    >>> await master.start(1000, spawn_rate=100)   # resolves when every worker confirmed the ramp
    >>> await master.quit()                       # resolves once every worker sent its final stats
    """

    def __init__(
        self,
        environment: Any,
        master_bind_host: str = "*",
        master_bind_port: int = 5557,
        heartbeat_interval: float = 1.0,
        heartbeat_liveness: int = 3,
    ) -> None:
        # reports arrive every few seconds: leave the newest seconds out of the live rate until they do
        environment.stats = RequestStats(clock=environment.clock, current_rps_lag=4)
        super().__init__(environment)
        self.server = Server(master_bind_host, master_bind_port)
        self.clients = WorkerNodes()
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_liveness = heartbeat_liveness
        self.epoch = uuid.uuid4().hex
        self.dropped_messages: Counter[str] = Counter()
        self._last_drop_log = 0.0
        self._inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._dispatcher: Any = None
        self._steps: Iterator[Any] | None = None
        self._next_step: Any = None
        self._next_step_at = 0.0
        self._last_step_at: float | None = None
        self._spawn_seq = 0
        self._ramp_waiters: list[asyncio.Future[None]] = []
        self._ramp_acks_deadline: float | None = None
        self._rebalancing = False
        self._pending: _Pending | None = None
        self._pending_was_testing = False
        self._unconfirmed: set[str] = set()  # workers that have not yet applied their latest spawn
        self._stats_generation = 0  # bumped at each --reset-stats reset; older worker reports are dropped
        # the workers as they were when the test was stopped (they may have quit since)
        self._final_nodes: list[WorkerNode] = []
        self._controller_task: asyncio.Task[Any] | None = None
        self._next_liveness_check = 0.0
        self._options_sent: set[str] = set()
        self.worker_state_changes = 0  # bumped on every worker state change (the console reprints its table)

    # ---- views ---------------------------------------------------------------------------------------
    @property
    def user_classes_count(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for node in self.clients:
            total.update(node.user_classes_count)
        return {k: v for k, v in total.items() if v}

    @property
    def worker_count(self) -> int:
        return len(self.clients.active)

    def _now(self) -> float:
        return time.monotonic()

    # ---- lifecycle -----------------------------------------------------------------------------------
    def start_background(self) -> None:
        if self._background_started:
            return
        super().start_background()
        self.spawn_background(self._reader(), "master-reader")
        self._controller_task = self.spawn_background(self._controller(), "master-controller")

    def start(
        self, user_count: int, spawn_rate: float, user_classes: list[Any] | None = None
    ) -> asyncio.Future[None]:
        """Ramp the whole cluster to ``user_count``; the future resolves when workers confirm it."""
        if user_count < 0:
            raise ValueError(f"user count must be >= 0, got {user_count}")
        if spawn_rate <= 0:
            raise ValueError(f"spawn rate must be > 0, got {spawn_rate}")
        self.start_background()
        self.target_user_count = user_count
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait(("start", user_count, spawn_rate, user_classes, fut))
        return fut

    def stop(self) -> asyncio.Future[None]:
        return self._unless_controller(super().stop())

    def quit(self) -> asyncio.Future[None]:
        return self._unless_controller(super().quit())

    def _unless_controller(self, fut: asyncio.Future[None]) -> asyncio.Future[None]:
        """A listener running inside the controller (test_start, spawning_complete, …) that awaits
        stop or quit would wait for the very task it blocks: hand it a finished future instead; the
        request is queued and carried out as soon as the listener returns."""
        if self._controller_task is not None and asyncio.current_task() is self._controller_task:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        return fut

    async def _stop(self, caller: asyncio.Task[Any] | None) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait(("stop", fut))
        await fut

    async def _quit(self, caller: asyncio.Task[Any] | None) -> None:
        self.start_background()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait(("quit", fut))
        try:
            await fut
        finally:
            await self._cancel_background()
            self.server.close()

    async def wait_for_workers(self, count: int, max_wait: float | None = None) -> bool:
        """Wait until ``count`` workers are ready; False if ``max_wait`` seconds pass first."""
        self.start_background()
        began = self._now()
        last_log = began
        while len(self.clients.ready) < count:
            now = self._now()
            if max_wait and now - began >= max_wait:
                return False
            if now - last_log >= 5:
                logger.info(
                    "Waiting for workers to be ready, %d of %d connected", len(self.clients.ready), count
                )
                last_log = now
            await asyncio.sleep(0.05)
        return True

    # ---- the reader --------------------------------------------------------------------------------
    async def _reader(self) -> None:
        while True:
            try:
                frames = await self.server.recv_frames()
            except RPCError as e:
                logger.error("master socket error: %s", e)
                await asyncio.sleep(1)
                continue
            self._read_frames(frames)

    def _read_frames(self, frames: list[bytes]) -> None:
        if len(frames) != 2:
            self._drop("frame count", f"expected 2 frames, got {len(frames)}")
            return
        try:
            sender = frames[0].decode()
        except UnicodeDecodeError:
            self._drop("identity", "undecodable sender identity")
            return
        try:
            msg = Message.unserialize(frames[1])
        except ValueError as e:
            self._drop("undecodable", f"from {sender}: {e}")
            return
        error = validate_worker_message(msg, self.custom_messages)
        if error is not None:
            self._drop("invalid", f"{msg.type!r} from {sender}: {error}")
            return
        if sender.endswith(HEARTBEAT_SUFFIX):
            if msg.type != "heartbeat":
                self._drop("invalid", f"{msg.type!r} on the heartbeat channel of {sender}")
                return
            sender = sender[: -len(HEARTBEAT_SUFFIX)]
        node = self.clients.get(sender)
        if node is not None:
            # hearing from a worker proves it alive even while the controller is busy (a slow
            # test_start listener, a long ramp step): liveness never waits for the controller
            node.last_seen = self._now()
            if msg.type == "heartbeat" and node.state != RunnerState.MISSING:
                self._on_heartbeat(node, msg.data)
                return
        # the transport identity says who sent it, whatever the payload claims
        self._inbox.put_nowait(("msg", Message(msg.type, msg.data, sender)))

    def _drop(self, reason: str, detail: str) -> None:
        self.dropped_messages[reason] += 1
        now = self._now()
        if now - self._last_drop_log >= DROP_LOG_INTERVAL:
            self._last_drop_log = now
            total = sum(self.dropped_messages.values())
            logger.warning("Ignored a bad message (%s); %d ignored so far", detail, total)

    # ---- the controller ----------------------------------------------------------------------------
    async def _controller(self) -> None:
        while True:
            item: tuple[Any, ...] | None
            try:
                item = self._inbox.get_nowait()
            except asyncio.QueueEmpty:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can return an item and swallow our
                # cancellation, leaving quit waiting for this task for ever
                try:
                    async with asyncio.timeout(max(0.0, self._next_timer() - self._now())):
                        item = await self._inbox.get()
                except TimeoutError:
                    item = None
            try:
                if item is None:
                    await self._on_timers()
                elif item[0] == "msg":
                    await self._on_message(item[1])
                else:
                    await self._on_command(item)
                    await self._on_timers()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if item is not None and item[0] == "msg":
                    self._drop("handler error", f"{item[1].type!r} from {item[1].node_id}: {e!r}")
                else:
                    self.environment.events.unhandled_errors += 1
                    logger.exception("master controller failed to handle %r", item[:2] if item else "a timer")

    def _next_timer(self) -> float:
        timers = [self._next_liveness_check]
        if self._next_step is not None:
            timers.append(self._next_step_at)
        if self._ramp_acks_deadline is not None:
            timers.append(self._ramp_acks_deadline)
        if self._pending is not None:
            timers.append(self._pending.deadline)
        return min(timers)

    async def _on_timers(self) -> None:
        now = self._now()
        if now >= self._next_liveness_check:
            await self._check_liveness(now)
        while self._next_step is not None and self._now() >= self._next_step_at:
            await self._apply_step()
        if self._ramp_acks_deadline is not None and self._now() >= self._ramp_acks_deadline:
            missing = sorted(self._unconfirmed)
            logger.warning(
                "Ramp complete, but %d worker(s) had not confirmed it: %s", len(missing), ", ".join(missing)
            )
            await self._ramp_complete()
        if self._pending is not None and self._now() >= self._pending.deadline:
            logger.error(
                "No final stats from %d worker(s) after the stop deadline: %s",
                len(self._pending.waiting),
                ", ".join(sorted(self._pending.waiting)),
            )
            await self._finish_pending()

    async def _on_command(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "start":
            _, count, rate, classes, fut = item
            await self._start(count, rate, classes, fut)
        elif kind == "stop":
            await self._begin_stop("stop", item[1])
        elif kind == "quit":
            await self._begin_stop("quit", item[1])

    # ---- ramps ---------------------------------------------------------------------------------------
    async def _start(
        self, count: int, rate: float, classes: list[Any] | None, fut: asyncio.Future[None]
    ) -> None:
        if self._pending is not None:
            fut.set_exception(RuntimeError("the master is stopping; start again once it has stopped"))
            return
        active = sorted(self.clients.active, key=lambda n: n.id)
        if not active:
            logger.warning("You can't start a distributed test before at least one worker is connected")
            fut.set_result(None)
            return
        env = self.environment
        if self.state not in (RunnerState.SPAWNING, RunnerState.RUNNING):
            await self._begin_test()
            self._options_sent.clear()
        env.apply_host()
        self.target_user_count = count
        self.spawn_rate = rate
        if rate / len(active) > 100:
            logger.warning("Spawn rate per worker is above 100 users/s; the ramp may be bursty")
        if self._dispatcher is None:
            self._dispatcher = env.dispatcher_class(active, env.user_classes)
        self._dispatcher.new_dispatch(count, rate, classes)
        self.state = RunnerState.SPAWNING
        self._ramp_waiters.append(fut)
        self._rebalancing = False
        self._begin_steps()
        await self._on_timers()

    def _begin_steps(self) -> None:
        self._steps = iter(self._dispatcher)
        self._ramp_acks_deadline = None
        self._fetch_next_step(first=True)

    def _fetch_next_step(self, first: bool = False) -> None:
        assert self._steps is not None
        step = next(self._steps, None)
        self._next_step = step
        if step is None:
            return
        base = self._now() if first or self._last_step_at is None else self._last_step_at
        self._next_step_at = base + (0.0 if first else step.delay)

    async def _apply_step(self) -> None:
        step = self._next_step
        self._last_step_at = self._now()
        await self._send_targets(step.users)
        self._fetch_next_step()
        if self._next_step is None:
            self._steps = None
            self.target_user_classes_count = _sum_maps(step.users)
            self._ramp_acks_deadline = self._now() + RAMP_ACK_TIMEOUT
            await self._check_ramp_acks()

    async def _send_targets(self, users: dict[str, dict[str, int]]) -> None:
        """Send each worker only the classes whose target changed; unchanged workers get nothing."""
        env = self.environment
        for worker_id, target in users.items():
            node = self.clients.get(worker_id)
            if node is None or node.state == RunnerState.MISSING:
                continue
            changed = {name: n for name, n in target.items() if node.target.get(name, 0) != n}
            first = worker_id not in self._options_sent
            if not changed and not first:
                continue
            node.target = {k: v for k, v in target.items() if v}
            self._next_spawn_seq(node)
            data: dict[str, Any] = {
                "seq": self._spawn_seq,
                "user_classes_count": changed,
                "host": env.host or "",
                "stop_timeout": env.stop_timeout,
            }
            if first:
                self._options_sent.add(worker_id)
                data["options"] = _plain_options(env.parsed_options)
            await self._send(worker_id, Message("spawn", data))

    def _next_spawn_seq(self, node: WorkerNode) -> None:
        """Number the next spawn message to ``node``; it stays unconfirmed until the worker applies it."""
        self._spawn_seq += 1
        node.spawn_seq_sent = self._spawn_seq
        self._unconfirmed.add(node.id)

    async def _check_ramp_acks(self) -> None:
        # a set of workers yet to confirm, not a scan of all workers per acknowledgement (O(N²) a ramp)
        if self._ramp_acks_deadline is not None and not self._unconfirmed:
            await self._ramp_complete()

    async def _ramp_complete(self) -> None:
        self._ramp_acks_deadline = None
        env = self.environment
        count = sum(self.target_user_classes_count.values())
        if self._rebalancing:
            self._rebalancing = False
            logger.info("Rebalance complete: %d users over %d workers", count, self.worker_count)
            await env.events.rebalanced.fire_async(user_count=count)
        else:
            logger.info("All users spawned: %s (%d total users)", _fmt(self.target_user_classes_count), count)
            if env.reset_stats:
                # reports measured before the workers hear of this reset must not be merged after it
                self._stats_generation += 1
            await env.events.spawning_complete.fire_async(user_count=count)
            for node in self.clients.active:
                data = {"user_count": count, "stats_generation": self._stats_generation}
                await self._send(node.id, Message("spawning_complete", data))
        waiters, self._ramp_waiters = self._ramp_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def _rebalance(self) -> None:
        """Re-place users after a worker joined or left, paced by the current spawn rate."""
        if self._dispatcher is None or self.state not in (RunnerState.SPAWNING, RunnerState.RUNNING):
            return
        if self._steps is not None:
            return  # a ramp is in progress: its next steps already account for the change
        # the dispatcher knows workers changed: iterating it again yields the re-placing steps
        self._rebalancing = self.state == RunnerState.RUNNING
        self._begin_steps()
        await self._on_timers()

    # ---- stop and quit -------------------------------------------------------------------------------
    async def _begin_stop(self, kind: str, fut: asyncio.Future[None]) -> None:
        if self._pending is not None:
            if kind == "quit" and self._pending.kind == "stop":
                self._pending.kind = "quit"  # the stop turns into a quit once workers acknowledge it
            self._pending.futures.append(fut)
            return
        if self.state in (RunnerState.READY, RunnerState.STOPPED) and kind == "stop":
            fut.set_result(None)
            return
        env = self.environment
        was_testing = self.state not in (RunnerState.READY, RunnerState.STOPPED)
        if was_testing:
            await env.events.test_stopping.fire_async(environment=env)
            self.final_user_classes_count = self.user_classes_count
            self._final_nodes = [replace(n) for n in self.clients]
        self.state = RunnerState.STOPPING
        await self._cancel_shape(None)
        self._steps = self._next_step = None
        self._ramp_acks_deadline = None
        for waiter in self._ramp_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._ramp_waiters = []
        self._dispatcher = None
        reachable = [n for n in self.clients if n.state != RunnerState.MISSING]
        self._pending = _Pending(
            kind=kind,
            waiting={n.id for n in reachable},
            deadline=self._now() + env.stop_timeout + STOP_MARGIN,
            futures=[fut],
        )
        self._pending_was_testing = was_testing
        for node in reachable:
            await self._send(node.id, Message(kind, {}))
        for node in self.clients.missing:
            await self._send(node.id, Message(kind, {}))  # in case it is alive after all
        if not self._pending.waiting:
            await self._finish_pending()

    async def _finish_pending(self) -> None:
        pending, self._pending = self._pending, None
        assert pending is not None
        if pending.kind == "quit":
            for node in self.clients:
                self.clients.remove(node.id)
        self.state = RunnerState.STOPPED
        if self._pending_was_testing:
            for line in self.monitor.summary_warnings():
                logger.warning(line)
            self._stopped.set()
            await self.environment.events.test_stop.fire_async(environment=self.environment)
        for fut in pending.futures:
            if not fut.done():
                fut.set_result(None)

    def hurry(self) -> None:
        """Stop without waiting for running tasks: workers kill their users and report at once."""
        self.environment.stop_timeout = 0
        pending = self._pending
        if pending is None:
            return
        pending.deadline = min(pending.deadline, self._now() + 1.0)
        for node_id in pending.waiting:
            self.server.send_nowait(node_id, Message(pending.kind, {"now": True}))

    def _acknowledged(self, node_id: str) -> None:
        if self._pending is not None:
            self._pending.waiting.discard(node_id)

    # ---- worker messages -----------------------------------------------------------------------------
    async def _on_message(self, msg: Message) -> None:
        node_id = msg.node_id
        assert node_id is not None
        node = self.clients.get(node_id)
        if msg.type == "client_ready":
            await self._on_client_ready(node_id, node, msg.data)
            return
        if node is None:
            if msg.type not in ("quit", "client_stopped"):
                # a worker of an earlier master (or one we forgot): ask it to introduce itself again,
                # unless this master is on its way out
                reply = "quit" if self._quitting() else "reregister"
                await self._send(node_id, Message(reply, {"epoch": self.epoch}))
            return
        node.last_seen = self._now()
        if node.state == RunnerState.MISSING and msg.type not in ("quit",):
            await self._worker_returned(node)
        handler = getattr(self, f"_msg_{msg.type}", None)
        if handler is not None:
            await handler(node, msg.data)
        else:
            self._handle_custom(msg)

    def _quitting(self) -> bool:
        return self._quit_task is not None

    async def _on_client_ready(self, node_id: str, node: WorkerNode | None, data: dict[str, Any]) -> None:
        if self._quitting() and node is None:
            await self._send(node_id, Message("quit", {}))
            return
        if data["protocol"] != PROTOCOL_VERSION:
            reason = (
                f"protocol mismatch: this master speaks horde protocol {PROTOCOL_VERSION} (horde {__version__}), "
                f"the worker speaks protocol {data['protocol']} (horde {data['version']})"
            )
            logger.error("Refused worker %s: %s", node_id, reason)
            await self._send(
                node_id,
                Message(
                    "refuse",
                    {"reason": reason, "master_version": __version__, "master_protocol": PROTOCOL_VERSION},
                ),
            )
            return
        running = {k: v for k, v in data["user_classes_count"].items() if v}
        if node is not None:
            await self._known_worker_ready(node, running)
            return
        node = self.clients.add(node_id, self._now())
        node.user_classes_count = running
        await self._send(node_id, Message("ack", {"index": node.index, "epoch": self.epoch}))
        self.worker_state_changes += 1
        logger.info("Worker %s connected (%d workers)", node_id, self.worker_count)
        self.environment.events.worker_connect.fire(client_id=node_id)
        if self.state in (RunnerState.SPAWNING, RunnerState.RUNNING) and self._dispatcher is not None:
            if running:
                logger.info("Adopting worker %s and its %d running users", node_id, node.user_count)
                node.target = dict(running)  # the next targets are sent as changes against what it runs
            self._dispatcher.add_worker(node)
            await self._rebalance()
        elif running:
            # users left over from a test this master does not run: they must stop
            logger.info(
                "Worker %s still runs %d users of an earlier test; stopping them", node_id, node.user_count
            )
            await self._send(node_id, Message("stop", {}))

    async def _known_worker_ready(self, node: WorkerNode, running: dict[str, int]) -> None:
        """A worker we know introduced itself again (it reconnected): keep its slot, re-assert its target."""
        node.last_seen = self._now()
        await self._send(node.id, Message("ack", {"index": node.index, "epoch": self.epoch}))
        if node.state == RunnerState.MISSING:
            await self._worker_returned(node)
            return
        node.user_classes_count = running
        if running != node.target:
            await self._send_full_target(node, node.target)

    async def _send_full_target(self, node: WorkerNode, target: dict[str, int]) -> None:
        """Tell a worker its whole target (every class), e.g. to fence a worker that was missing."""
        self._next_spawn_seq(node)
        node.target = {k: v for k, v in target.items() if v}
        counts = {cls.__name__: target.get(cls.__name__, 0) for cls in self.environment.user_classes}
        data = {
            "seq": self._spawn_seq,
            "user_classes_count": counts,
            "host": self.environment.host or "",
            "stop_timeout": self.environment.stop_timeout,
            "fence": True,  # apply completely before any later spawn: no users beyond this target
        }
        await self._send(node.id, Message("spawn", data))

    async def _msg_heartbeat(self, node: WorkerNode, data: dict[str, Any]) -> None:
        self._on_heartbeat(node, data)

    def _on_heartbeat(self, node: WorkerNode, data: dict[str, Any]) -> None:
        """Record a heartbeat and echo it at once (called from the reader)."""
        state = data["state"]
        if node.state != RunnerState.MISSING and state in ("ready", "spawning", "running"):
            if node.state != state:
                self.worker_state_changes += 1
            node.state = RunnerState(state)
        node.cpu_usage = float(data["current_cpu_usage"])
        node.memory_usage = int(data["current_memory_usage"])
        node.loop_lag = float(data["loop_lag"])
        if node.cpu_usage > 90 and not node.cpu_warning_emitted:
            node.cpu_warning_emitted = True
            logger.warning(
                "Worker %s exceeded the CPU threshold (%.0f%%); its numbers may be distorted",
                node.id,
                node.cpu_usage,
            )
        self.environment.events.heartbeat_sent.fire(client_id=node.id, timestamp=time.time())
        self.server.send_nowait(node.id, Message("heartbeat", {"epoch": self.epoch}))

    async def _msg_stop_test(self, node: WorkerNode, data: dict[str, Any]) -> None:
        reason = data["reason"]
        logger.error("Worker %s stopped the test: %s", node.id, reason)
        if self.state in (RunnerState.SPAWNING, RunnerState.RUNNING):
            self.stop_test(reason)

    async def _msg_spawning(self, node: WorkerNode, data: dict[str, Any]) -> None:
        if node.state != RunnerState.SPAWNING:
            self.worker_state_changes += 1
        node.state = RunnerState.SPAWNING

    async def _msg_spawning_complete(self, node: WorkerNode, data: dict[str, Any]) -> None:
        if node.state != RunnerState.RUNNING:
            self.worker_state_changes += 1
        node.state = RunnerState.RUNNING
        node.user_classes_count = dict(data["user_classes_count"])
        node.spawn_seq_done = max(node.spawn_seq_done, data["seq"])
        if node.spawn_seq_done >= node.spawn_seq_sent:
            self._unconfirmed.discard(node.id)
        await self._check_ramp_acks()

    async def _msg_stats(self, node: WorkerNode, data: dict[str, Any]) -> None:
        if data["seq"] <= node.stats_seq:
            self.dropped_messages["duplicate stats"] += 1
            return
        if data["seq"] > node.stats_seq + 1 and node.stats_seq >= 0:
            logger.warning(
                "Stats reports %d..%d of worker %s never arrived",
                node.stats_seq + 1,
                data["seq"] - 1,
                node.id,
            )
        node.stats_seq = data["seq"]
        if data.get("stats_generation", self._stats_generation) < self._stats_generation:
            self.dropped_messages["stats from before a reset"] += 1
            node.user_classes_count = dict(data["user_classes_count"])
            return
        try:
            self.environment.stats.merge(data["stats"])
        except StatsPayloadError as e:
            self._drop("invalid", f"stats from {node.id}: {e}")
            return
        node.user_classes_count = dict(data["user_classes_count"])
        for row in data["exceptions"]:
            if isinstance(row, dict) and isinstance(row.get("traceback"), str):
                self.log_exception(
                    node.id, str(row.get("msg", "")), row["traceback"], int(row.get("count", 1))
                )
        if data["logs"]:
            lines = [str(line) for line in data["logs"]]
            self.environment.worker_logs.setdefault(node.id, []).extend(lines)
            for line in lines:
                logger.warning("[%s] %s", node.id, line)
        self.environment.events.worker_report.fire(client_id=node.id, data=data)

    def _check_final_report(self, node: WorkerNode, data: dict[str, Any]) -> None:
        if data["stats_seq"] > node.stats_seq:
            logger.warning(
                "Worker %s sent %d stats reports that never arrived; their numbers are missing",
                node.id,
                data["stats_seq"] - node.stats_seq,
            )

    async def _msg_client_stopped(self, node: WorkerNode, data: dict[str, Any]) -> None:
        self._check_final_report(node, data)
        node.user_classes_count = {}
        node.target = {}
        if node.state != RunnerState.READY:
            self.worker_state_changes += 1
        node.state = RunnerState.READY
        self._acknowledged(node.id)
        if self._pending is not None and not self._pending.waiting:
            await self._finish_pending()

    async def _msg_quit(self, node: WorkerNode, data: dict[str, Any]) -> None:
        self._check_final_report(node, data)
        self.clients.remove(node.id)
        self.worker_state_changes += 1
        self._forget_from_dispatcher(node.id)
        logger.info("Worker %s quit (%d workers left)", node.id, self.worker_count)
        if self._pending is not None:
            self._acknowledged(node.id)
            if not self._pending.waiting:
                await self._finish_pending()
            return
        await self._after_worker_left()

    async def _after_worker_left(self) -> None:
        if self.state in (RunnerState.SPAWNING, RunnerState.RUNNING):
            if not self.clients.active:
                logger.warning("The last worker is gone; stopping the test")
                self.stop_test("the last worker is gone")
                return
            await self._rebalance()

    def _forget_from_dispatcher(self, node_id: str) -> None:
        self._unconfirmed.discard(node_id)  # a worker that left confirms nothing
        if self._dispatcher is not None:
            self._dispatcher.remove_worker(node_id)

    # ---- liveness ------------------------------------------------------------------------------------
    async def _check_liveness(self, now: float) -> None:
        """Mark every worker silent for longer than the liveness window missing, then re-place once.

        All losses found in one check are handled together: one rebalance, not one per worker, so a
        rack going down does not keep the master from answering the others. The next check is due when
        the next worker's window would run out (at most one heartbeat interval away).
        """
        window = self.heartbeat_interval * self.heartbeat_liveness
        lost: list[WorkerNode] = []
        next_due = now + self.heartbeat_interval
        for node in self.clients:
            if node.state == RunnerState.MISSING:
                if node.missing_since is not None and now - node.missing_since > MISSING_FORGET_AFTER:
                    logger.info(
                        "Forgetting worker %s (missing for %.0f s)", node.id, now - node.missing_since
                    )
                    self.clients.remove(node.id)
                continue
            deadline = node.last_seen + window
            if now > deadline:
                lost.append(node)
            elif deadline < next_due:
                next_due = deadline
        self._next_liveness_check = max(now + 0.01, next_due + 0.001)
        if lost:
            await self._workers_lost(lost, now)

    async def _workers_lost(self, nodes: list[WorkerNode], now: float) -> None:
        for node in nodes:
            logger.warning(
                "Worker %s missing: silent for %.1f s; re-placing its %d users",
                node.id,
                now - node.last_seen,
                node.user_count,
            )
            node.state = RunnerState.MISSING
            node.missing_since = now
            node.user_classes_count = {}
            node.target = {}
            self.worker_state_changes += 1
            self._forget_from_dispatcher(node.id)
            self._acknowledged(node.id)
        if self._pending is not None:
            if not self._pending.waiting:
                await self._finish_pending()
            return
        await self._after_worker_left()

    async def _worker_returned(self, node: WorkerNode) -> None:
        """A missing worker spoke again: fence it first (it may not run users it was not given)."""
        logger.info("Worker %s is back; telling it its target before it may run users again", node.id)
        node.state = RunnerState.READY
        node.missing_since = None
        self.worker_state_changes += 1
        testing = self.state in (RunnerState.SPAWNING, RunnerState.RUNNING) and self._dispatcher is not None
        if not testing:
            await self._send(node.id, Message("stop", {}))
            return
        await self._send_full_target(node, {})
        self._dispatcher.add_worker(node)
        await self._rebalance()

    # ---- sending -------------------------------------------------------------------------------------
    async def _send(self, node_id: str, msg: Message) -> None:
        try:
            await self.server.send_to(node_id, msg)
        except RPCError as e:
            logger.warning("%s", e)

    def send_message(self, msg_type: str, data: Any = None, client_id: str | None = None) -> None:
        """Send a custom message to one worker, or to every known worker when ``client_id`` is None."""
        targets = [client_id] if client_id is not None else [n.id for n in self.clients]
        for target in targets:
            asyncio.get_running_loop().create_task(self._send(target, Message(msg_type, data)))

    def workers_table(self, final: bool = False) -> str:
        """One row per worker: id, state, users, CPU and loop lag (printed on every change).

        ``final`` shows the workers as they were when the test was stopped (they may have quit since).
        """
        nodes = self._final_nodes if final and self._final_nodes else self.clients.all
        rows = [f" {'worker':<44} {'state':<9} {'users':>6} {'cpu %':>6} {'lag ms':>7}"]
        for node in sorted(nodes, key=lambda n: n.index):
            rows.append(
                f" {node.id[:44]:<44} {node.state.value:<9} {node.user_count:>6} "
                f"{node.cpu_usage:>6.0f} {node.loop_lag * 1000:>7.0f}"
            )
        return "\n".join(rows)


def _sum_maps(users: dict[str, dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for counts in users.values():
        total.update(counts)
    return {k: v for k, v in total.items() if v}


def _fmt(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no users"


def _plain_options(options: Any) -> dict[str, Any]:
    """The master's options that are plain values (they travel to workers once per test)."""
    if options is None:
        return {}
    plain = (str, int, float, bool, type(None))
    out: dict[str, Any] = {}
    for key, value in vars(options).items():
        if isinstance(value, plain) or (isinstance(value, list) and all(isinstance(v, plain) for v in value)):
            out[key] = value
    return out
