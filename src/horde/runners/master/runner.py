"""MasterRunner: plans users over workers and merges their numbers; runs no users itself.

Three tasks, each with one job:
- the *reader* takes items from the transport, validates each message against its schema and queues it;
  it never waits on anything else, so a slow listener or a long ramp cannot stop the master from hearing
  its workers (heartbeats are answered right there);
- the *controller* (:mod:`.controller`) owns the state machine, the worker registry and the dispatcher;
  it takes commands and worker messages from one ordered queue and runs every timer on the clock;
- the usage monitor, as on every runner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from horde.load import ClosedUsers, LoadModel
from horde.rpc.protocol import Message, validate_worker_message
from horde.rpc.transport import HEARTBEAT, BadFrame, Inbound, RPCError, ServerTransport
from horde.runners.base import RunnerState
from horde.runners.master.handlers import HandlersMixin
from horde.runners.master.stopping import StoppingMixin
from horde.runners.nodes import WorkerNode
from horde.runners.status import WorkerStatus

logger = logging.getLogger("horde.runners.master")

WAIT_LOG_INTERVAL = 5.0  # seconds between "waiting for workers" lines
READ_ERROR_PAUSE = 1.0  # seconds the reader waits after a transport failure before reading again
READ_BATCH = 256  # frames the reader takes before letting the controller run
INBOX_LIMIT = 10_000  # messages queued for the controller before the reader stops reading


class MasterRunner(HandlersMixin, StoppingMixin):
    """Coordinates workers over a transport (ZeroMQ unless one is given).

    >>> master = env.create_master_runner("*", 5557)
    >>> await master.start(1000, spawn_rate=100)   # resolves when every worker confirmed the ramp
    >>> await master.quit()                       # resolves once every worker sent its final stats

    Tests pass ``transport=MemoryNetwork().listen()`` (``horde.rpc.memory``) and a FakeClock environment.
    """

    def __init__(
        self,
        environment: Any,
        master_bind_host: str = "*",
        master_bind_port: int = 5557,
        heartbeat_interval: float = 1.0,
        heartbeat_liveness: int = 3,
        transport: ServerTransport | None = None,
    ) -> None:
        # reports arrive every few seconds: leave the newest seconds out of the live rate until they do
        environment.stats.configure(current_rps_lag=4)
        options = getattr(environment, "parsed_options", None)
        if transport is None:
            from horde.rpc.keys import server_keys
            from horde.rpc.zmq import ZmqServer  # pyzmq loads only when a real master is made

            keys = server_keys(
                getattr(options, "keys", None),
                getattr(options, "master_key", None),
                getattr(options, "authorized_workers", None),
            )  # KeyFileError (one line) for a missing or bad key file
            transport = ZmqServer(master_bind_host, master_bind_port, keys=keys)
        super().__init__(environment, transport, heartbeat_interval, heartbeat_liveness)
        self._read_bundle(getattr(options, "locustfile", None))

    def _read_bundle(self, spec: Any) -> None:
        """Read the locustfile(s) to ship once, now: what workers without ``-f`` will get."""
        from horde.rpc.bundle import BundleError, build

        if not isinstance(spec, str) or spec in ("", "-"):
            self.bundle_problem = "this master has no locustfile to ship (start it with -f)"
            return
        try:
            self.bundle = build(spec)
        except BundleError as e:
            self.bundle_problem = str(e)
            logger.warning("Workers without -f cannot get the locustfile: %s", e)
            return
        if self.bundle.left_out:
            from horde.rpc.bundle import MAX_BUNDLE_BYTES

            logger.warning(
                "The folder of %s is over %d MiB: workers without -f get only the locustfile and its imported "
                "modules, not its data files",
                spec,
                MAX_BUNDLE_BYTES // 2**20,
            )

    # ---- views ---------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port the transport listens on (the one picked when bound to port 0)."""
        return self.transport.port

    @property
    def server(self) -> ServerTransport:
        """The transport (the name before the seam; ``server.port`` is the bound port)."""
        return self.transport

    @property
    def clients(self) -> tuple[str, ...]:
        """Ids of every known worker (missing ones included), in the order they joined."""
        return tuple(n.id for n in sorted(self.nodes.all, key=lambda n: n.index))

    @property
    def user_classes_count(self) -> dict[str, int]:
        total: dict[str, int] = {}
        get = total.get
        for node in self.nodes:  # plain loops: Counter.update per node was most of it at 5,000 workers
            for name, count in node.user_classes_count.items():
                total[name] = get(name, 0) + count
        return {k: v for k, v in total.items() if v}

    @property
    def worker_count(self) -> int:
        """Workers that can run users (ready, spawning or running)."""
        return len(self.nodes.active)

    def worker_statuses(self, final: bool = False) -> list[WorkerStatus]:
        """One row per worker, by index.

        ``final`` (and, after a quit, the default too) gives the workers as they were when the test was
        stopped: they may have quit since.
        """
        nodes = self._final_nodes if (final or not self.nodes) and self._final_nodes else self.nodes.all
        return [_status(node) for node in sorted(nodes, key=lambda n: n.index)]

    def summary_warnings(self) -> list[str]:
        lines = super().summary_warnings()
        dropped = self.dropped_messages.total()
        if dropped:
            lines.append(f"{dropped} malformed or duplicate messages were ignored")
        return lines

    # ---- lifecycle -----------------------------------------------------------------------------------
    def start_background(self) -> None:
        if self._background_started:
            return
        super().start_background()
        self.environment.events.reset_stats.add_listener(self._reset_merged)
        self._use_merger()
        self.spawn_background(self._reader(), "master-reader")
        self._controller_task = self.spawn_background(self._controller(), "master-controller")

    def start(
        self, user_count: int, spawn_rate: float, user_classes: list[Any] | None = None
    ) -> asyncio.Future[None]:
        """Ramp the whole cluster to ``user_count``; the future resolves when workers confirm it."""
        env = self.environment
        model = ClosedUsers(
            env.user_classes, user_count, spawn_rate, user_classes, dispatcher_class=env.dispatcher_class
        )
        return self.start_load(model)

    def _start_model(self, model: LoadModel) -> asyncio.Future[None]:
        """Queue a validated model for the controller (a fresh test, or a re-target of the running one)."""
        self.start_background()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._command(("start", model, fut))
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
        self._command(("stop", fut))
        await fut

    async def _quit(self, caller: asyncio.Task[Any] | None) -> None:
        self.start_background()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._command(("quit", fut))
        try:
            await fut
        finally:
            await self._cancel_background()
            if self._merger is not None:
                await self._merger.close()
            self.transport.close()

    async def wait_for_workers(self, count: int, max_wait: float | None = None) -> bool:
        """Wait until ``count`` workers are ready; False if ``max_wait`` seconds (on the clock) pass first."""
        self.start_background()
        began = last_log = self._now()
        while len(self.nodes.ready) < count:
            now = self._now()
            if max_wait and now - began >= max_wait:
                return False
            if now - last_log >= WAIT_LOG_INTERVAL:
                logger.info(
                    "Waiting for workers to be ready, %d of %d connected", len(self.nodes.ready), count
                )
                last_log = now
            wake = last_log + WAIT_LOG_INTERVAL
            if max_wait:
                wake = min(wake, began + max_wait)
            self._nodes_changed.clear()
            await self._within(self._nodes_changed.wait(), wake - now)
        return True

    async def _within(self, aw: Awaitable[Any], delay: float) -> bool:
        """Await ``aw`` for at most ``delay`` seconds of the clock; True if it finished."""
        if self._real_time:
            try:
                async with asyncio.timeout(max(0.0, delay)):
                    await aw
                return True
            except TimeoutError:
                return False
        task = asyncio.ensure_future(aw)
        sleeper = asyncio.ensure_future(self._clock.sleep(delay))
        try:
            await asyncio.wait((task, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            if not task.done():
                task.cancel()
        return task.done() and not task.cancelled()

    # ---- the reader --------------------------------------------------------------------------------
    async def _reader(self) -> None:
        recv = self.transport.recv
        transport, now = self.transport, self._now
        read = 0
        while True:
            read += 1
            if read >= READ_BATCH:
                # a transport that always has another frame ready never makes recv wait: without this the
                # reader would keep the controller (and with it every stop and deadline) from running
                read = 0
                await asyncio.sleep(0)
                while self._inbox.qsize() >= INBOX_LIMIT:
                    # the controller is behind: leave further frames in the socket (bounded by ZeroMQ's
                    # high-water marks, outside this heap) rather than queue them here, where the backlog
                    # grew past a gigabyte and every garbage collection walked it (the 5,000-worker collapse)
                    self.inbox_full_pauses += 1
                    await asyncio.sleep(0)
            before = now()
            try:
                item = await recv()
            except RPCError as e:
                logger.error("master socket error: %s", e)
                await self._clock.sleep(READ_ERROR_PAUSE)
                continue
            self._last_read = before
            if transport.waited:  # nothing was waiting when recv was called: read up to then
                self._caught_up = before
            if isinstance(item, Inbound):
                self._read(item)
            else:
                self._bad_frame(item)

    def _bad_frame(self, item: BadFrame) -> None:
        self._drop(item.reason, item.detail)

    def _read(self, item: Inbound) -> None:
        msg, sender = item.message, item.sender
        error = validate_worker_message(msg, self.custom_messages)
        if error is not None:
            self._drop("invalid", f"{msg.type!r} from {sender}: {error}")
            return
        if item.channel == HEARTBEAT and msg.type != "heartbeat":
            self._drop("invalid", f"{msg.type!r} on the heartbeat channel of {sender}")
            return
        node = self.nodes.get(sender)
        link = item.link
        if node is not None and link != (node.connection or node.id):
            # another link claims this worker: only a re-registration proving its session may take over
            if not (msg.type == "client_ready" and item.channel != HEARTBEAT):
                self._drop("foreign connection", f"{msg.type!r} for {sender} on a link that is not its own")
                return
            self._inbox.put_nowait(("msg", Message(msg.type, msg.data, sender), link))
            return
        if node is not None:
            # hearing from a worker proves it alive even while the controller is busy (a slow
            # test_start listener, a long ramp step): liveness never waits for the controller
            node.last_seen = self._now()
            if msg.type == "heartbeat" and node.state != RunnerState.MISSING:
                self._on_heartbeat(node, msg.data)
                return
        # the transport identity says who sent it, whatever the payload claims
        self._inbox.put_nowait(("msg", Message(msg.type, msg.data, sender), link))

    # ---- sending -------------------------------------------------------------------------------------
    def send_message(self, msg_type: str, data: Any = None, client_id: str | None = None) -> None:
        """Send a custom message to one worker, or to every known worker when ``client_id`` is None."""
        targets = [client_id] if client_id is not None else [n.id for n in self.nodes]
        msg = Message(msg_type, data)
        # queued now, on the same socket as the spawn messages: a message sent in test_start reaches each
        # worker before its first spawn, in the order it was sent (as in Locust)
        for target in targets:
            self.transport.send_nowait(target, msg)


def _status(node: WorkerNode) -> WorkerStatus:
    # the master replaces a node's counts on every report and never changes them in place, so the row
    # may keep the dict instead of copying it (5,000 rows a tick: half the cost of the rows)
    return WorkerStatus.without_copy(
        node.id,
        node.index,
        node.state.value,
        node.user_count,
        node.user_classes_count,
        node.cpu_usage,
        node.memory_usage,
        node.loop_lag,
        node.last_heartbeat,
    )
