"""The runner state machine shared by every role, and what runs on every role: stats intake, the
usage monitor, user-exception collection, custom messages, and starting load models (``start_load``).

What a load model means lives in :mod:`horde.load`; a runner validates it, plans it and hands each
payload to the plan kind's applier, so no runner changes when a model is added."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import traceback
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from horde.event import RequestRecorder
from horde.exceptions import ConfigurationError, StopTest
from horde.load import ClosedUsers, LoadModel, PlanContext, ShapeModel
from horde.load.registry import REGISTRY, Applier, Registry
from horde.load.shape import SHAPE_ENDED, ShapeTicker
from horde.monitor import UsageMonitor
from horde.rpc.protocol import Message
from horde.runners.status import WorkerStatus
from horde.runners.user_group import UserGroup

if TYPE_CHECKING:
    from horde.env import Environment
    from horde.stats import RequestStats

logger = logging.getLogger(__name__)

MAX_EXCEPTION_ROWS = 1000
#: The stop reason when user code ends the test with ``runner.quit()`` (a planned end: the user's choice).
QUIT_BY_USER_CODE = "runner.quit() was called by user code"
LOCAL_NODE_ID = "local"  # the id of the one row a process running its own users reports


class RunnerState(StrEnum):
    """Runner states; each compares equal to its string value (``runner.state == "running"``)."""

    READY = "ready"
    SPAWNING = "spawning"
    RUNNING = "running"
    CLEANUP = "cleanup"
    STOPPING = "stopping"
    STOPPED = "stopped"
    MISSING = "missing"


STATE_INIT, STATE_SPAWNING, STATE_RUNNING = RunnerState.READY, RunnerState.SPAWNING, RunnerState.RUNNING
STATE_CLEANUP, STATE_STOPPING, STATE_STOPPED = RunnerState.CLEANUP, RunnerState.STOPPING, RunnerState.STOPPED
STATE_MISSING = RunnerState.MISSING


class Runner:
    """Base of LocalRunner, MasterRunner and WorkerRunner.

    ``start_load`` (and its shorthands ``start`` and ``start_shape``), ``stop`` and ``quit`` return at once
    with an awaitable, so user code may call ``self.environment.runner.quit()`` from a task or a listener
    without deadlocking.
    """

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.state: RunnerState = RunnerState.READY
        self.target_user_count = 0
        self.target_user_classes_count: dict[str, int] = {}
        self.final_user_classes_count: dict[str, int] = {}
        self.spawn_rate: float = 0.0
        self.exceptions: dict[str, dict[str, Any]] = {}
        self.custom_messages: dict[str, tuple[Callable[..., Any], bool]] = {}
        self._serial_handlers: asyncio.Task[Any] | None = None  # the last non-concurrent message handler
        self.monitor = UsageMonitor(environment)
        self.stop_reason: str | None = None
        self.test_started_at: float | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._background_started = False
        self._stop_task: asyncio.Task[None] | None = None
        self._quit_task: asyncio.Task[None] | None = None
        self._shape_task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        events = environment.events
        # positional, and called directly by the fast client when it is the only request listener (no
        # keyword call, no context dict per request); env.stats is made once, with the environment
        events.request.add_listener(RequestRecorder(environment.stats.record))
        events.user_error.add_listener(self._on_user_error)
        events.spawning_complete.add_listener(self._on_spawning_complete)

    # ---- views -------------------------------------------------------------------------------------
    @property
    def stats(self) -> RequestStats:
        return self.environment.stats

    @property
    def errors(self) -> dict[str, Any]:
        return self.stats.errors

    @property
    def user_count(self) -> int:
        return sum(self.user_classes_count.values())

    @property
    def user_classes_count(self) -> dict[str, int]:
        return {}

    def final_user_classes_total(self) -> int:
        """Users running when the test was last stopped (or now, if it is still running)."""
        counts = (
            self.final_user_classes_count if self.state == RunnerState.STOPPED else self.user_classes_count
        )
        return sum(counts.values())

    @property
    def cpu_warning_emitted(self) -> bool:
        return self.monitor.cpu_warning_emitted

    @property
    def worker_count(self) -> int:
        """Processes generating load (1 here; the master counts its active workers)."""
        return 1

    def worker_statuses(self) -> list[WorkerStatus]:
        """One row per load-generating process (none in the base; see UserRunner and the master)."""
        return []

    @property
    def distributed(self) -> bool:
        """True for a runner whose users run in other processes (a master): front ends show workers then."""
        return not isinstance(self, UserRunner)

    def summary_warnings(self) -> list[str]:
        """Warnings to repeat in the final summary: a saturated generator, and what subclasses add."""
        return self.monitor.summary_warnings()

    async def wait_for_workers(self, count: int, max_wait: float | None = None) -> bool:
        """Wait until ``count`` workers are ready; a runner without workers is ready at once."""
        return True

    def hurry(self) -> None:
        """Second Ctrl-C: stop without waiting for running tasks (a stop under way stops them now)."""
        self.environment.stop_timeout = 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} state={self.state.value} users={self.user_count}>"

    # ---- listeners on the hot path ------------------------------------------------------------------

    def _on_user_error(self, user_instance: Any, exception: BaseException, tb: Any, **_: Any) -> None:
        text = "".join(traceback.format_exception(type(exception), exception, tb))
        self.log_exception("local", repr(exception), text)

    def log_exception(self, node_id: str, msg: str, formatted_tb: str, count: int = 1) -> None:
        """Group user exceptions by traceback text: one row per distinct failure, with a count."""
        key = hashlib.sha1(formatted_tb.encode(), usedforsecurity=False).hexdigest()
        row = self.exceptions.get(key)
        if row is None:
            if len(self.exceptions) >= MAX_EXCEPTION_ROWS:
                key = "__overflow__"
                row = self.exceptions.setdefault(
                    key,
                    {
                        "count": 0,
                        "msg": "(more distinct exceptions than shown)",
                        "traceback": "",
                        "nodes": set(),
                    },
                )
            else:
                row = self.exceptions[key] = {
                    "count": 0,
                    "msg": msg,
                    "traceback": formatted_tb,
                    "nodes": set(),
                }
        row["count"] += count
        row["nodes"].add(node_id)

    def _on_spawning_complete(self, user_count: int, **_: Any) -> None:
        if self.state in (RunnerState.SPAWNING, RunnerState.READY):
            self.state = RunnerState.RUNNING
        if self.environment.reset_stats:
            logger.info("Resetting stats")
            self.stats.reset_all()

    # ---- background tasks ---------------------------------------------------------------------------
    def spawn_background(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start a task the runner owns: it is cancelled and awaited by ``quit``; a crash is logged."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background_done)
        return task

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.environment.events.unhandled_errors += 1
            logger.error("runner task %s crashed", task.get_name(), exc_info=task.exception())

    def start_background(self) -> None:
        """Start the loops every role runs (idempotent; needs a running event loop)."""
        if self._background_started:
            return
        self._background_started = True
        self.spawn_background(self.monitor.run(), "usage-monitor")

    # ---- lifecycle ----------------------------------------------------------------------------------
    async def _begin_test(self) -> None:
        """Fresh-test actions: clear results, re-apply tags, fire test_start before any user exists."""
        env = self.environment
        env.stats.clear_all()
        self.exceptions.clear()
        self.monitor.reset_warnings()
        self.stop_reason = None
        self._stopped.clear()
        prepare_run = getattr(env, "prepare_run", None)
        if prepare_run is not None:
            prepare_run()  # this run's task selection; user classes are never modified
        else:  # an Environment from before prepare_run existed
            env.apply_tag_filter()
        self.test_started_at = env.clock.time()
        await env.events.test_start.fire_async(environment=env)

    def stop(self) -> asyncio.Future[None]:
        """Stop every user (honouring stop_timeout); returns an awaitable that ends when they have.

        The awaitable is shielded: a user task that awaits its own runner's stop and is cancelled by
        it does not cancel the stop.
        """
        return asyncio.shield(self._request_stop(_caller()))

    def _request_stop(self, caller: asyncio.Task[Any] | None) -> asyncio.Task[None]:
        if self._stop_task is None or self._stop_task.done():
            self._stop_task = asyncio.get_running_loop().create_task(self._stop(caller), name="runner-stop")
        return self._stop_task

    async def _stop(self, caller: asyncio.Task[Any] | None) -> None:
        raise NotImplementedError

    def quit(self) -> asyncio.Future[None]:
        """Stop the test and end the runner's background work; returns a shielded awaitable (see stop)."""
        if self._quit_task is None:
            caller = _caller()
            if caller is not None and caller.get_name().startswith("user:"):
                # say who ended the test: not the run time, not a signal, but the locustfile itself
                logger.info("runner.quit() called by a %s user: stopping the test", caller.get_name()[5:])
                self.stop_reason = self.stop_reason or QUIT_BY_USER_CODE
            self._quit_task = asyncio.get_running_loop().create_task(self._quit(caller), name="runner-quit")
        return asyncio.shield(self._quit_task)

    async def _quit(self, caller: asyncio.Task[Any] | None) -> None:
        await self._request_stop(caller)
        await self._cancel_background()

    async def _cancel_background(self) -> None:
        tasks = [t for t in self._background if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop_test(self, reason: str) -> None:
        """End the test from inside it (StopTest in a task, a shape ending): stop, remember why."""
        self.stop_reason = reason
        self._request_stop(_caller())

    async def wait_stopped(self) -> None:
        """Wait until the current test has stopped (set again by each fresh test)."""
        await self._stopped.wait()

    # ---- custom messages ---------------------------------------------------------------------------
    def register_message(self, msg_type: str, handler: Callable[..., Any], concurrent: bool = False) -> None:
        if msg_type in self.custom_messages:
            raise ValueError(f"a handler for message type {msg_type!r} is already registered")
        self.custom_messages[msg_type] = (handler, concurrent)

    def _handle_custom(self, msg: Message) -> bool:
        entry = self.custom_messages.get(msg.type)
        if entry is None:
            return False
        handler, concurrent = entry
        try:
            result = handler(environment=self.environment, msg=msg)
            if asyncio.iscoroutine(result):
                if concurrent:  # register_message(..., concurrent=True): each message runs at once
                    self.spawn_background(result, f"message:{msg.type}")
                else:  # one at a time, in the order the messages arrived (Locust's default)
                    previous = self._serial_handlers
                    self._serial_handlers = self.spawn_background(
                        _after(previous, result), f"message:{msg.type}"
                    )
        except Exception:
            logger.exception("handler for custom message %r failed", msg.type)
        return True

    # ---- load models ---------------------------------------------------------------------------------
    def plan_context(self) -> PlanContext:
        """What every planner this runner creates is given: the clock and the environment's choices."""
        env = self.environment
        return PlanContext(
            clock=env.clock, user_classes=env.user_classes, dispatcher_class=env.dispatcher_class
        )

    def start_load(self, model: LoadModel) -> asyncio.Future[None]:
        """Run ``model`` (a fresh test, or a re-target of the running one); returns at once.

        Raises ConfigurationError listing every problem ``model.validate()`` finds. The returned awaitable
        resolves when the plan first reaches its target (or is superseded, or the test stops).

        >>> await runner.start_load(ClosedUsers(env.user_classes, 100, spawn_rate=10))
        """
        problems = model.validate()
        if problems:
            raise ConfigurationError(f"cannot start {model.kind!r} load: " + " ".join(problems))
        return self._start_model(model)

    def start(
        self, user_count: int, spawn_rate: float, user_classes: list[Any] | None = None
    ) -> asyncio.Future[None]:
        """Ramp to ``user_count`` at ``spawn_rate``; returns at once with an awaitable for the ramp."""
        raise NotImplementedError

    def start_shape(self) -> None:
        """Let the environment's LoadTestShape drive the user count, one tick per second."""
        env = self.environment
        assert env.shape_class is not None, "start_shape needs environment.shape_class"
        self.start_load(ShapeModel(env.shape_class, env.user_classes, dispatcher_class=env.dispatcher_class))

    def _start_model(self, model: LoadModel) -> asyncio.Future[None]:
        """How this runner runs a validated model. Runners that drive planners themselves (LocalRunner)
        override this; the default maps the two built-in models onto :meth:`start` (the master, until it
        paces planners with the StepDriver)."""
        if isinstance(model, ClosedUsers):
            return self.start(model.user_count, model.spawn_rate, model.classes)
        if isinstance(model, ShapeModel):
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            if self._shape_task is not None and not self._shape_task.done():
                logger.info("A shape test is already running; ignoring the new start")
                return done
            self.state = RunnerState.READY
            ticker = ShapeTicker(model.shape, self.environment.clock)
            self._shape_task = asyncio.get_running_loop().create_task(self._tick_shape(ticker), name="shape")
            return done
        raise ConfigurationError(f"{type(self).__name__} cannot run plan kind {model.kind!r}")

    async def _tick_shape(self, ticker: ShapeTicker) -> None:
        # transitional: a shape driving start() (for runners not pacing planners themselves)
        clock = self.environment.clock
        while True:
            change = ticker.tick(clock.monotonic())
            if ticker.ended:
                self._shape_task = None
                self.stop_test(SHAPE_ENDED)
                return
            if change is not None:
                self.start(int(change.user_count), float(change.spawn_rate), user_classes=change.classes)
            assert ticker.next_at is not None
            await clock.sleep(ticker.next_at - clock.monotonic())

    async def _cancel_shape(self, caller: asyncio.Task[Any] | None) -> None:
        task, self._shape_task = self._shape_task, None
        if task is not None and task is not caller and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _check_tasks_defined(self) -> None:
        """A class without tasks ends the test at its start with a clear reason (StopTest)."""
        env = self.environment
        tasks_for = getattr(env, "tasks_for", None)
        for cls in env.user_classes:
            tasks = tasks_for(cls) if tasks_for is not None else cls.tasks
            if not tasks:
                raise StopTest(
                    f"{cls.__name__} has no tasks: decorate async methods with @task or set `tasks = [...]`"
                    + (
                        " (or the --tags/--exclude-tags selection removed them all)"
                        if env.tags or env.exclude_tags
                        else ""
                    )
                )


class UserRunner(Runner):
    """A runner that runs users in this process (local and worker); the master runs none."""

    #: where plan kinds find their applier (the process-wide registry unless a test swaps it)
    load_registry: Registry = REGISTRY

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.users = UserGroup(environment)
        self._appliers: dict[str, Applier] = {}

    async def _begin_test(self) -> None:
        self.users.force_stopped = 0  # the summary counts this test's interrupted users only
        await super()._begin_test()

    async def apply_payload(self, kind: str, payload: Any) -> None:
        """Apply one payload of plan kind ``kind`` to this process (a spawn message, a local plan step).

        The kind's applier is made on first use from :attr:`load_registry` and kept until the test stops;
        an unknown kind raises UnknownPlanKind.
        """
        applier = self._appliers.get(kind)
        if applier is None:
            applier = self._appliers[kind] = self.load_registry.applier_factory(kind)(self)
        await applier.apply(payload)

    async def _stop_appliers(self) -> None:
        """End what the appliers run of their own (before the users are stopped); called at each stop."""
        appliers, self._appliers = list(self._appliers.values()), {}
        for applier in appliers:
            try:
                await applier.stop()
            except Exception:
                self.environment.events.unhandled_errors += 1
                logger.exception("stopping the %s applier failed", type(applier).__name__)

    @property
    def user_classes_count(self) -> dict[str, int]:
        return self.users.counts()

    @property
    def user_count(self) -> int:
        return self.users.count

    @property
    def node_id(self) -> str:
        """The id of this process's row in :meth:`worker_statuses` and of its user exceptions."""
        return LOCAL_NODE_ID

    @property
    def clients(self) -> tuple[str, ...]:
        """Ids of the processes generating load: just this one."""
        return (self.node_id,)

    def worker_statuses(self) -> list[WorkerStatus]:
        sample = self.monitor.latest
        return [
            WorkerStatus(
                id=self.node_id,
                index=0,
                state=self.state.value,
                user_count=self.user_count,
                user_classes_count=self.user_classes_count,
                cpu_percent=sample.cpu_percent,
                memory_rss=sample.memory_rss,
                loop_lag=sample.loop_lag,
                last_heartbeat=None,
            )
        ]

    def summary_warnings(self) -> list[str]:
        lines = super().summary_warnings()
        if self.users.force_stopped:
            lines.append(
                f"{self.users.force_stopped} user(s) were still in a task at the stop deadline and were "
                "interrupted; raise --stop-timeout to let tasks finish"
            )
        return lines

    def hurry(self) -> None:
        """Stop at once: no stop_timeout any more, and every user of this process is cancelled now."""
        super().hurry()
        if self.users.running_tasks:
            self.spawn_background(self.users.kill_all(), "kill-users")


async def _after(previous: asyncio.Task[Any] | None, coro: Coroutine[Any, Any, Any]) -> None:
    """Run ``coro`` once ``previous`` (the handler of the message before) has ended, whatever its outcome."""
    if previous is not None and not previous.done():
        await asyncio.gather(previous, return_exceptions=True)
    try:
        await coro
    except Exception:
        logger.exception("a custom message handler failed")


def _caller() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None
