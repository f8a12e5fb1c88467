"""WorkerRunner: runs the users a master assigns, and reports back.

The receive loop only decodes and queues; a command task applies spawn/stop/quit in order, so a slow
``test_start`` listener or a long stop_timeout never stops the worker from hearing the master.

Heartbeats go out on the transport's heartbeat channel. On the real clock they are sent from a thread:
a task that blocks the event loop (CPU-bound code, a synchronous sleep) delays the users, not the proof
that the worker is alive, and the heartbeat carries the measured loop lag so the master can show "busy"
rather than declaring the worker dead. On any other clock (a FakeClock in tests) a thread cannot follow
time, so an async loop on that clock sends them instead (``heartbeat_thread=`` chooses explicitly).
Everything else that is timed — the watchdog, stats reports, registration retries — runs on the
environment's clock.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import socket
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import psutil

from horde._version import PROTOCOL_VERSION, __version__
from horde.clock import Clock
from horde.exceptions import ConfigurationError, HordeError, StopTest
from horde.load.closed import KIND as USERS
from horde.rpc.protocol import Message
from horde.rpc.transport import BadFrame, ClientTransport, HeartbeatSender, RPCError
from horde.runners.base import RunnerState, UserRunner
from horde.stats.compact import encode_and_reset, pack_report

if TYPE_CHECKING:
    from horde.rpc.keys import ClientKeys

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_FORWARDED_LOG_LINES = 50  # per report; the rest is counted, not sent
MAX_EXCEPTION_ROWS_PER_REPORT = 100
READ_ERROR_PAUSE = 0.5  # seconds the receiver waits after a transport failure
FIRST_RETRY, MAX_RETRY = 0.2, 5.0  # registration back-off, seconds
RUN_TIME_MARGIN = 30.0  # seconds past its run time (and stop_timeout) a worker without master stops itself
UNCONNECTED_SEND_TIMEOUT = 2.0  # seconds a send may wait for a link while not registered
KEPT_REPORTS = 20  # stats reports kept to resend to a master that did not know this worker


def _being_cancelled() -> bool:
    """True when our own task is being cancelled (not merely a socket operation under it)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class WorkerRefusedError(HordeError, ConnectionError):
    """The master refused this worker (incompatible protocol)."""


class _WarningBuffer(logging.Handler):
    """Collects warning-level log lines of this process so the master can show them."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.lines: list[str] = []
        self.skipped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("horde.runners"):
            return  # runner chatter (and lines the master logs for other workers) would echo forever
        if len(self.lines) < MAX_FORWARDED_LOG_LINES:
            self.lines.append(f"{record.levelname}: {record.getMessage()}")
        else:
            self.skipped += 1

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        if self.skipped:
            lines.append(f"... {self.skipped} more warning lines not forwarded")
            self.skipped = 0
        return lines


def heartbeat_payload(
    runner: WorkerRunner, process: psutil.Process, cpu: float, lag: float
) -> dict[str, Any]:
    """What a heartbeat says: state, CPU, memory, loop lag and users."""
    return {
        "state": runner.worker_state,
        "current_cpu_usage": cpu,
        "current_memory_usage": process.memory_info().rss,
        "loop_lag": lag,
        "user_count": runner.users.running_tasks,
    }


class HeartbeatThread(threading.Thread):
    """Sends heartbeats every ``interval`` seconds (real time) whatever the event loop is doing."""

    def __init__(self, runner: WorkerRunner, interval: float) -> None:
        super().__init__(name="horde-heartbeat", daemon=True)
        self.runner = runner
        self.interval = interval
        self._stop_event = threading.Event()
        self._lag = 0.0
        self._probe_sent: float | None = None

    def stop(self) -> None:
        self._stop_event.set()

    def _probe_done(self) -> None:
        sent = self._probe_sent
        if sent is not None:
            self._lag = time.perf_counter() - sent
            self._probe_sent = None

    def _probe(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Measure loop lag: how long a callback scheduled now waits before the loop runs it."""
        if self._probe_sent is not None:
            self._lag = max(self._lag, time.perf_counter() - self._probe_sent)
            return True
        self._probe_sent = time.perf_counter()
        try:
            loop.call_soon_threadsafe(self._probe_done)
        except RuntimeError:
            return False  # the loop is closed
        return True

    def run(self) -> None:
        runner = self.runner
        loop = runner.loop
        assert loop is not None, "the heartbeat thread starts after the worker's event loop is known"
        transport = runner.transport
        generation = transport.generation
        channel = transport.open_heartbeat()  # opened here: only this thread touches it
        process = psutil.Process()
        process.cpu_percent()
        try:
            while not self._stop_event.is_set():
                if not self._probe(loop):
                    return
                if transport.generation != generation:
                    # the link was reset (the master may have moved): beat on the new one
                    generation = transport.generation
                    channel.close()
                    channel = transport.open_heartbeat()
                self._beat(channel, process)
                self._stop_event.wait(self.interval)
        finally:
            channel.close()

    def _beat(self, channel: HeartbeatSender, process: psutil.Process) -> None:
        runner = self.runner
        try:
            payload = heartbeat_payload(
                runner, process, process.cpu_percent(), self._lag
            )  # CPU since the last beat
            if runner.connected.is_set():
                channel.send(Message("heartbeat", payload, runner.client_id))
        except Exception:  # a read racing the event loop must not end the heartbeats
            logger.debug("heartbeat skipped", exc_info=True)


class WorkerRunner(UserRunner):
    """Connects to a master and runs the users it is told to run.

    >>> worker = env.create_worker_runner("127.0.0.1", 5557)
    >>> await worker.connect()
    >>> await worker.wait_quit()

    ``connect`` makes the transport from this worker's identity (default: ZeroMQ to
    ``master_host:master_port``; tests pass ``MemoryNetwork().connect``).
    """

    def __init__(
        self,
        environment: Any,
        master_host: str,
        master_port: int,
        heartbeat_interval: float = 1.0,
        heartbeat_liveness: int = 3,
        stats_report_interval: float = 3.0,
        master_timeout: float = 60.0,
        protocol_version: int = PROTOCOL_VERSION,
        connect: Callable[[str], ClientTransport] | None = None,
        heartbeat_thread: bool | None = None,
        keys: ClientKeys | None = None,
    ) -> None:
        environment.stats.configure(use_response_times_cache=False)
        super().__init__(environment)
        self.master_host = master_host
        self.master_port = master_port
        self.client_id = f"{socket.gethostname()}_{uuid.uuid4().hex}"
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_liveness = heartbeat_liveness
        self.stats_report_interval = stats_report_interval
        self.master_timeout = master_timeout
        self.protocol_version = protocol_version
        self._clock: Clock = environment.clock
        self._real_time = type(self._clock) is Clock
        self.heartbeat_thread = self._real_time if heartbeat_thread is None else heartbeat_thread
        if connect is None:
            from horde.rpc.zmq import ZmqClient  # pyzmq loads only when a real worker is made

            self.transport: ClientTransport = ZmqClient(master_host, master_port, self.client_id, keys=keys)
        else:
            self.transport = connect(self.client_id)
        # proves, at every re-registration, that a new link is this worker and not another peer using its id
        self.session = secrets.token_hex(16)
        self.worker_state = "ready"
        self.worker_index: int | None = None
        self.master_epoch: str | None = None
        self.connected = asyncio.Event()
        self.exit_code: int | None = None
        self.refusal: str | None = None
        self._quit_event = asyncio.Event()
        self._commands: asyncio.Queue[Message] = asyncio.Queue()
        self._apply_task: asyncio.Task[None] | None = None
        self._last_spawn_seq = -1
        self._target: dict[str, int] = {}
        self._stats_seq = 0
        self._stats_generation = 0
        self._exceptions: dict[str, dict[str, Any]] = {}
        self._logs = _WarningBuffer()
        self._last_master_contact = self._clock.monotonic()
        self._heartbeat: HeartbeatThread | None = None
        # (master epoch, monotonic time sent, report): resent when a master says it did not take them, or
        # after a reset drops what was queued on the old link (the master drops the ones it already has)
        self._sent_reports: deque[tuple[str | None, float, Message]] = deque(maxlen=KEPT_REPORTS)
        self._resend_from: int | None = None  # a master that did not know us dropped reports from this seq
        self._run_deadline: float | None = None  # monotonic time past which no master means: stop
        self.loop: asyncio.AbstractEventLoop | None = None  # set when the background work starts

    @property
    def client(self) -> ClientTransport:
        """The transport (the name before the seam)."""
        return self.transport

    @property
    def node_id(self) -> str:
        return self.client_id

    def start(
        self, user_count: int, spawn_rate: float, user_classes: list[Any] | None = None
    ) -> asyncio.Task[None]:
        raise NotImplementedError("a worker runs what its master tells it; start the test on the master")

    # ---- connection --------------------------------------------------------------------------------
    def start_background(self) -> None:
        if self._background_started:
            return
        super().start_background()
        self.loop = asyncio.get_running_loop()
        logging.getLogger().addHandler(self._logs)
        self.spawn_background(self._receiver(), "worker-receiver")
        self.spawn_background(self._command_loop(), "worker-commands")
        self.spawn_background(self._reporter(), "worker-stats")
        self.spawn_background(self._watchdog(), "worker-watchdog")
        self.start_heartbeats()

    def start_heartbeats(self) -> None:
        """Start sending heartbeats (a thread on the real clock, else a task on the clock)."""
        if self.heartbeat_thread:
            self._heartbeat = HeartbeatThread(self, self.heartbeat_interval)
            self._heartbeat.start()
        else:
            self.spawn_background(self._heartbeat_loop(), "worker-heartbeat")

    async def _heartbeat_loop(self) -> None:
        """Heartbeats on the environment's clock. CPU and loop lag are the usage monitor's latest sample:
        measuring them between beats means nothing when the clock is not real time."""
        generation = self.transport.generation
        channel = self.transport.open_heartbeat()
        process = psutil.Process()
        try:
            while True:
                if self.transport.generation != generation:
                    generation = self.transport.generation
                    channel.close()
                    channel = self.transport.open_heartbeat()
                if self.connected.is_set():
                    sample = self.monitor.latest
                    payload = heartbeat_payload(self, process, sample.cpu_percent, sample.loop_lag)
                    channel.send(Message("heartbeat", payload, self.client_id))
                await self._clock.sleep(self.heartbeat_interval)
        finally:
            channel.close()

    async def connect(self, timeout: float | None = None) -> None:
        """Introduce this worker to the master, retrying with back-off until it answers.

        Raises TimeoutError after ``timeout`` seconds of the clock, WorkerRefusedError if refused.
        """
        self.start_background()
        await self._timeout(self._register(), timeout)

    async def _register(self) -> None:
        self.connected.clear()
        delay = FIRST_RETRY
        while not self.connected.is_set():
            await self._send(self._ready_message())
            if not await self._within(self.connected.wait(), delay):
                if self.refusal is not None:
                    raise WorkerRefusedError(self.refusal)
                delay = min(delay * 2, MAX_RETRY) * random.uniform(0.8, 1.2)
                logger.debug("No answer from master %s:%s yet; retrying", self.master_host, self.master_port)
            if self.refusal is not None:
                raise WorkerRefusedError(self.refusal)

    def _ready_message(self) -> Message:
        data = {
            "version": __version__,
            "protocol": self.protocol_version,
            "user_classes_count": self.user_classes_count,
            "session": self.session,
        }
        return Message("client_ready", data, self.client_id)

    async def _send(self, msg: Message) -> None:
        try:
            if self.connected.is_set():
                await self.transport.send(msg)
            elif not await self._within(self.transport.send(msg), UNCONNECTED_SEND_TIMEOUT):
                # no link to a master (it is away, or refuses our key): do not wait for one for ever
                logger.debug("a %r message could not be sent: no link to the master", msg.type)
        except asyncio.CancelledError:
            if _being_cancelled():
                raise
            logger.debug("a %r message was dropped by a socket reset", msg.type)
        except RPCError as e:
            logger.warning("%s", e)

    # ---- time --------------------------------------------------------------------------------------
    async def _within(self, aw: Awaitable[Any], delay: float) -> bool:
        """Await ``aw`` for at most ``delay`` seconds of the clock; True if it finished."""
        try:
            await self._timeout(aw, delay)
        except TimeoutError:
            return False
        return True

    async def _timeout(self, aw: Awaitable[T], delay: float | None) -> T:
        """``aw``'s result, or TimeoutError once ``delay`` seconds of the clock pass (None: no limit)."""
        if delay is None:
            return await aw
        if self._real_time:
            async with asyncio.timeout(max(0.0, delay)):
                return await aw
        task = asyncio.ensure_future(aw)
        sleeper = asyncio.ensure_future(self._clock.sleep(delay))
        try:
            await asyncio.wait((task, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if task.cancelled():
            raise TimeoutError
        return task.result()

    # ---- receiving -----------------------------------------------------------------------------------
    async def _receiver(self) -> None:
        while True:
            try:
                msg = await self.transport.recv()
            except asyncio.CancelledError:
                if _being_cancelled():
                    raise
                continue  # the link was reset under us (reconnecting): read from the new one
            except RPCError as e:
                logger.warning("%s", e)
                await self._clock.sleep(READ_ERROR_PAUSE)
                continue
            if isinstance(msg, BadFrame):
                logger.warning("Ignored an undecodable message from the master: %s", msg.detail)
                continue
            self._last_master_contact = self._clock.monotonic()
            self._on_master_message(msg)

    def _on_master_message(self, msg: Message) -> None:
        data = msg.data if isinstance(msg.data, dict) else {}
        if msg.type == "ack":
            self._on_ack(data)
        elif msg.type == "refuse":
            self.refusal = str(data.get("reason", "refused by the master"))
            logger.error("The master refused this worker: %s", self.refusal)
            self.exit_code = 1
            self._quit_event.set()
        elif msg.type == "heartbeat":
            self.environment.events.heartbeat_received.fire(
                client_id=self.client_id, timestamp=self._clock.time()
            )
        else:
            if msg.type in ("stop", "quit") and data.get("now"):
                # the master's user pressed Ctrl-C twice: do not let running tasks finish
                self.environment.stop_timeout = 0
                self.spawn_background(self.users.kill_all(), "worker-kill-users")
            self._commands.put_nowait(msg)

    def _on_ack(self, data: dict[str, Any]) -> None:
        self.worker_index = data.get("index")
        epoch = data.get("epoch")
        if epoch != self.master_epoch:
            self._last_spawn_seq = -1  # a new master numbers its spawns from scratch
        self.master_epoch = epoch
        self.connected.set()
        logger.info("Connected to master %s:%s as %s", self.master_host, self.master_port, self.client_id)
        self._resend_reports()

    def _resend_reports(self) -> None:
        """Reports a master dropped because it did not know us go again, to that same master only."""
        start, self._resend_from = self._resend_from, None
        if start is None:
            return
        again = [
            m for epoch, _, m in self._sent_reports if epoch == self.master_epoch and m.data["seq"] >= start
        ]
        if again:
            logger.info("Resending %d stats report(s) the master had not taken", len(again))
        for msg in again:
            self.spawn_background(self._send(msg), "worker-resend-stats")

    async def _watchdog(self) -> None:
        """Re-register when the master goes quiet (it may have restarted); give up after master_timeout."""
        window = self.heartbeat_interval * self.heartbeat_liveness
        while True:
            await self._clock.sleep(self.heartbeat_interval)
            silent = self._clock.monotonic() - self._last_master_contact
            if not self.connected.is_set():
                deadline = self._run_deadline
                if deadline is not None and self._clock.monotonic() > deadline and self.users.running_tasks:
                    logger.error(
                        "No master for %.0f s and the test's run time is over; stopping the users", silent
                    )
                    self.exit_code = 1
                    self._run_deadline = None
                    self.spawn_background(self._stop_users_and_report(), "worker-run-time-stop")
                if silent > self.master_timeout:
                    logger.error("No master for %.0f s; quitting", silent)
                    self.exit_code = 1
                    self._quit_event.set()
                    return
                continue
            if silent > window:
                logger.warning("Master silent for %.1f s; reconnecting", silent)
                self._resend_after_reset()
                self.transport.reset()
                self.connected.clear()
                self.spawn_background(self._reregister(), "worker-reregister")

    def _resend_after_reset(self) -> None:
        """Reports sent since the master last spoke may be lost with the old link: resend them once
        registered again (to the same master; it drops any it already merged, by sequence number)."""
        since = self._last_master_contact - self.heartbeat_interval
        unsure = [m.data["seq"] for _, sent, m in self._sent_reports if sent >= since]
        if unsure and (self._resend_from is None or unsure[0] < self._resend_from):
            self._resend_from = unsure[0]

    async def _reregister(self) -> None:
        try:
            await self._register()
        except WorkerRefusedError:
            self._quit_event.set()

    async def _command_loop(self) -> None:
        while True:
            msg = await self._commands.get()
            try:
                await self._on_command(msg)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.environment.events.unhandled_errors += 1
                logger.exception("worker failed to handle %r", msg.type)

    async def _on_command(self, msg: Message) -> None:
        data = msg.data if isinstance(msg.data, dict) else {}
        if msg.type == "spawn":
            await self._on_spawn(data)
        elif msg.type == "spawning_complete":
            generation = data.get("stats_generation")
            if isinstance(generation, int) and generation != self._stats_generation:
                # the master reset its stats: what this worker measured so far belongs to before it
                self._stats_generation = generation
                self.environment.stats.reset_all()
            await self.environment.events.spawning_complete.fire_async(
                user_count=int(data.get("user_count", 0))
            )
        elif msg.type == "stop":
            await self._stop_users_and_report()
            await self._send(Message("client_stopped", {"stats_seq": self._stats_seq}, self.client_id))
        elif msg.type == "quit":
            logger.info("The master asked this worker to quit")
            self.quit()
        elif msg.type == "reregister":
            seq = data.get("stats_seq")
            if isinstance(seq, int) and (self._resend_from is None or seq < self._resend_from):
                self._resend_from = seq
            if self.connected.is_set():
                self.connected.clear()
                self.spawn_background(self._reregister(), "worker-reregister")
        elif not self._handle_custom(msg):
            logger.warning("Unknown message type received from the master: %r", msg.type)

    async def _on_spawn(self, data: dict[str, Any]) -> None:
        seq = int(data.get("seq", 0))
        await self._send(Message("spawning", {"seq": seq}, self.client_id))
        if seq <= self._last_spawn_seq:
            logger.debug("Discarded an outdated spawn message (%d <= %d)", seq, self._last_spawn_seq)
            return
        self._last_spawn_seq = seq
        self._take_settings(data)
        if self.worker_state not in ("spawning", "running"):
            self._exceptions.clear()
            await self._begin_test()
        self.worker_state = "spawning"
        self.state = RunnerState.SPAWNING
        kind = str(data.get("kind", USERS))
        payload = (
            self._users_payload(data) if kind == USERS and "payload" not in data else data.get("payload")
        )
        previous = self._apply_task
        if previous is not None and not previous.done():
            previous.cancel()
            await asyncio.gather(previous, return_exceptions=True)
        if data.get("fence"):
            await self._stop_appliers()  # whatever plan kind ran here, nothing of it may go on
        self._apply_task = asyncio.get_running_loop().create_task(
            self._apply(seq, kind, payload), name="worker-apply"
        )
        if data.get("fence"):
            # a fence (after this worker was missing) is applied in full before the next command,
            # so users the master re-placed elsewhere never run twice
            await asyncio.shield(self._apply_task)

    def _take_settings(self, data: dict[str, Any]) -> None:
        """The host, stop_timeout and (once per test) options the master's spawn messages carry.

        Every value the master changes is logged (a warning when it replaces one this worker was
        started with), so a master that sends a worker's traffic elsewhere never does it silently.
        """
        env = self.environment
        host = str(data["host"]) if data.get("host") else None
        if host is not None and host != env.host:
            if env.host:
                logger.warning("The master overrides the host: %s (this worker had %s)", host, env.host)
            else:
                logger.info("The master sets the host: %s", host)
            env.host = host
        stop_timeout = float(data.get("stop_timeout") or 0.0)
        if stop_timeout != env.stop_timeout:
            logger.info("The master sets stop_timeout to %g s (was %g s)", stop_timeout, env.stop_timeout)
        env.stop_timeout = stop_timeout
        options = data.get("options")
        if isinstance(options, dict):
            self._take_options(options)

    def _take_options(self, options: dict[str, Any]) -> None:
        """The master's selection of tasks and its reset policy apply to the whole cluster; its run time
        bounds how long this worker keeps loading without a master."""
        env = self.environment
        for key in ("tags", "exclude_tags"):
            if key in options:
                value = set(options[key]) if options[key] else None
                if value != getattr(env, key):
                    self._overridden(key, getattr(env, key), value)
                setattr(env, key, value)
        if "reset_stats" in options:
            reset = bool(options["reset_stats"])
            if reset != env.reset_stats:
                self._overridden("reset_stats", env.reset_stats, reset)
            env.reset_stats = reset
        run_time = options.get("run_time")
        if isinstance(run_time, (int, float)) and not isinstance(run_time, bool) and run_time > 0:
            self._run_deadline = self._clock.monotonic() + run_time + env.stop_timeout + RUN_TIME_MARGIN
        else:
            self._run_deadline = None

    def _overridden(self, key: str, old: Any, new: Any) -> None:
        mine = old not in (None, False, set())
        log = logger.warning if mine else logger.info
        log(
            "The master sets %s to %r%s",
            key,
            sorted(new) if isinstance(new, set) else new,
            f" (was {old!r})" if mine else "",
        )

    def _users_payload(self, data: dict[str, Any]) -> dict[str, int]:
        """The ``"users"`` kind arrives as per-class changes: fold them into this worker's absolute target."""
        known = self.environment.user_classes_by_name()
        for name, count in dict(data.get("user_classes_count", {})).items():
            if name in known:
                self._target[name] = int(count)
            else:
                logger.error("The master asked for unknown user class %r; is the locustfile the same?", name)
        return dict(self._target)

    async def _apply(self, seq: int, kind: str, payload: Any) -> None:
        try:
            await self.apply_payload(kind, payload)  # the plan kind's applier, from the load registry
        except StopTest as e:
            logger.error("%s", e)
            self.stop_test(str(e))
        except ConfigurationError as e:  # a plan kind this worker does not know (UnknownPlanKind)
            logger.error("%s", e)
            self.stop_test(f"a worker cannot apply the plan: {e}")
        except Exception as e:
            # a user that cannot even be created (a data file missing on this machine, say)
            self.environment.events.unhandled_errors += 1
            logger.exception("could not start users: %s", e)
            self.stop_test(f"a worker could not start users: {e!r}")
        self.worker_state = "running"
        self.state = RunnerState.RUNNING
        await self._send(
            Message(
                "spawning_complete",
                {"seq": seq, "user_classes_count": self.user_classes_count},
                self.client_id,
            )
        )

    async def _stop_users_and_report(self) -> None:
        """Stop every user (honouring stop_timeout), then send the final stats of this test."""
        env = self.environment
        testing = self.worker_state != "ready" or self.users.running_tasks > 0
        if testing:
            await env.events.test_stopping.fire_async(environment=env)
        self.state = RunnerState.CLEANUP
        task = self._apply_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._stop_appliers()
        await self.users.stop_all(env.stop_timeout)
        self._target = {}
        self._run_deadline = None
        self.worker_state = "ready"
        self.state = RunnerState.STOPPED
        await self._report()
        if testing:
            self._stopped.set()
            await env.events.test_stop.fire_async(environment=env)

    def stop_test(self, reason: str) -> None:
        """A worker cannot end the test alone: ask the master to stop the whole cluster."""
        self.stop_reason = reason
        self.spawn_background(
            self._send(Message("stop_test", {"reason": reason}, self.client_id)), "worker-stop-test"
        )

    # ---- reports -------------------------------------------------------------------------------------
    def _on_user_error(self, user_instance: Any, exception: BaseException, tb: Any, **_: Any) -> None:
        text = "".join(traceback.format_exception(type(exception), exception, tb))
        row = self._exceptions.get(text)
        if row is None:
            if len(self._exceptions) >= MAX_EXCEPTION_ROWS_PER_REPORT:
                text = "(more distinct exceptions in this report than forwarded)"
                row = self._exceptions.setdefault(text, {"msg": text, "traceback": text, "count": 0})
            else:
                row = self._exceptions[text] = {"msg": repr(exception), "traceback": text, "count": 0}
        row["count"] += 1

    async def _reporter(self) -> None:
        while True:
            await self._clock.sleep(self.stats_report_interval)
            if self.connected.is_set():
                await self._report()

    async def _report(self) -> None:
        """Send what happened since the last report; each report has the next sequence number."""
        self._stats_seq += 1
        exceptions = list(self._exceptions.values())
        self._exceptions = {}
        data: dict[str, Any] = {
            "seq": self._stats_seq,
            "stats": encode_and_reset(self.environment.stats),
            "user_classes_count": self.user_classes_count,
            "user_count": self.user_count,
            "exceptions": exceptions,
            "logs": self._logs.take(),
            "stats_generation": self._stats_generation,
        }
        self.environment.events.report_to_master.fire(client_id=self.client_id, data=data)
        # packed: a master with a stats merger hands it on without decoding it (horde.stats.compact)
        data["stats"] = pack_report(data["stats"])
        msg = Message("stats", data, self.client_id)
        self._sent_reports.append(
            (self.master_epoch, self._clock.monotonic(), msg)
        )  # kept: a master that lost us asks again
        await self._send(msg)

    # ---- quitting ------------------------------------------------------------------------------------
    async def wait_quit(self) -> None:
        """Wait until the master says quit, refuses us, or goes away for good."""
        await self._quit_event.wait()

    async def _stop(self, caller: asyncio.Task[Any] | None) -> None:
        await self._stop_users_and_report()

    async def _quit(self, caller: asyncio.Task[Any] | None) -> None:
        await self._stop_users_and_report()
        await self._send(Message("quit", {"stats_seq": self._stats_seq}, self.client_id))
        if self._heartbeat is not None:
            self._heartbeat.stop()
        await self._cancel_background()
        logging.getLogger().removeHandler(self._logs)
        self.transport.close(linger=2.0)  # the final stats and quit must still reach the master
        self._quit_event.set()

    def send_message(self, msg_type: str, data: Any = None, client_id: str | None = None) -> None:
        """Send a custom message to the master (in a task the runner owns)."""
        self.spawn_background(self._send(Message(msg_type, data, self.client_id)), f"send:{msg_type}")
