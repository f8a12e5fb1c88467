"""Typed hooks that user code and horde's own pieces listen on, with Locust's names and arguments.

A listener that raises is logged and counted as an unhandled error (which turns the exit code to 2),
and the remaining listeners still run. ``fire`` is synchronous and sits on hot paths (``request``);
a coroutine listener attached to it is scheduled as a task. ``fire_async`` awaits coroutine
listeners in order and is what the runners use for lifecycle events.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from horde.env import Environment
    from horde.runners.base import Runner
    from horde.stats.snapshot import StatsSnapshot

logger = logging.getLogger(__name__)


L = TypeVar("L", bound=Callable[..., Any])


class EventHook(Generic[L]):
    """A list of listeners fired with keyword arguments.

    ``EventHook[L]`` is generic over the listener's signature (a Protocol below), so a listener with the
    wrong parameter names fails the type check instead of failing at run time.

    >>> hook = EventHook("demo")
    >>> hook.add_listener(lambda **kw: print(kw["n"]))  # doctest: +ELLIPSIS
    <function ...>
    >>> hook.fire(n=1)
    1
    """

    __slots__ = ("_events", "_handlers", "name")

    def __init__(self, name: str = "", events: Events | None = None) -> None:
        self.name = name
        self._handlers: list[Callable[..., Any]] = []
        self._events = events

    def add_listener(self, handler: L) -> L:
        self._handlers.append(handler)
        return handler

    def remove_listener(self, handler: Callable[..., Any]) -> None:
        self._handlers.remove(handler)

    @property
    def listeners(self) -> tuple[Callable[..., Any], ...]:
        return tuple(self._handlers)

    @property
    def handlers(self) -> list[Callable[..., Any]]:
        """The live listener list, for hot paths that call listeners directly instead of through
        ``fire`` (saving the keyword-dict round trip); such callers must route an exception to
        :meth:`listener_failed` and an awaitable result to :meth:`schedule_result`, as ``fire`` does."""
        return self._handlers

    def listener_failed(self, handler: Callable[..., Any]) -> None:
        """Log a listener's exception and count it as an unhandled error (exit code 2)."""
        self._failed(handler)

    def schedule_result(self, handler: Callable[..., Any], awaitable: Any) -> None:
        """Run a coroutine listener's result as a tracked task (its failure is logged and counted)."""
        self._schedule(handler, awaitable)

    def _failed(self, handler: Callable[..., Any]) -> None:
        logger.exception("Uncaught exception in %s event listener %r", self.name, handler)
        if self._events is not None:
            self._events.unhandled_errors += 1

    def fire(self, *, reverse: bool = False, **kwargs: Any) -> None:
        """Call every listener now; coroutine listeners are started as tasks and not waited for."""
        handlers = reversed(self._handlers) if reverse else self._handlers
        for handler in handlers:
            try:
                result = handler(**kwargs)
            except Exception:
                self._failed(handler)
                continue
            if result is not None and inspect.isawaitable(result):
                self._schedule(handler, result)

    def _schedule(self, handler: Callable[..., Any], awaitable: Any) -> None:
        async def guarded() -> None:
            try:
                await awaitable
            except Exception:
                self._failed(handler)

        try:
            task = asyncio.get_running_loop().create_task(guarded())
        except RuntimeError:  # no running loop: run the coroutine to completion here
            asyncio.run(guarded())
            return
        if self._events is not None:
            self._events.track(task)

    async def fire_async(self, *, reverse: bool = False, **kwargs: Any) -> None:
        """Call every listener in order, awaiting coroutine listeners before the next one runs."""
        handlers = list(reversed(self._handlers) if reverse else self._handlers)
        for handler in handlers:
            try:
                result = handler(**kwargs)
                if result is not None and inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                self._failed(handler)


class RequestRecorder:
    """A ``request`` listener that needs only the five figures the statistics count, positionally.

    Fired like any listener, it passes ``request_type, name, response_time, response_length, exception``
    on to ``record``. When it is the only ``request`` listener (``len(hook.handlers) == 1 and
    type(hook.handlers[0]) is RequestRecorder``), a client may call ``record`` directly instead, with the
    same handling of what it raises: that skips the nine-keyword call, and the context dict built for
    it, on every request. Keep a reference to remove it again.

    >>> recorder = env.events.request.add_listener(RequestRecorder(env.stats.record))
    """

    __slots__ = ("record",)

    def __init__(self, record: Callable[[str, str, float | None, int, Any], Any]) -> None:
        self.record = record

    def __call__(
        self,
        *,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int,
        exception: BaseException | str | None = None,
        **_: Any,
    ) -> Any:
        return self.record(request_type, name, response_time, response_length, exception)

    def __repr__(self) -> str:
        return f"RequestRecorder({self.record!r})"


# ---- listener signatures --------------------------------------------------------------------------------
# Each Protocol is what a listener of that hook must accept; ``**kwargs`` keeps listeners forward compatible
# (new arguments may be added), exactly as Locust recommends.


class InitListener(Protocol):
    def __call__(self, *, environment: Environment, runner: Runner, web_ui: Any, **kwargs: Any) -> Any: ...


class EnvironmentListener(Protocol):
    """``test_start``, ``test_stopping``, ``test_stop`` and ``quitting``."""

    def __call__(self, *, environment: Environment, **kwargs: Any) -> Any: ...


class RequestListener(Protocol):
    def __call__(
        self,
        *,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int,
        exception: BaseException | str | None,
        **kwargs: Any,
    ) -> Any: ...


class UserErrorListener(Protocol):
    def __call__(self, *, user_instance: Any, exception: BaseException, tb: Any, **kwargs: Any) -> Any: ...


class UserCountListener(Protocol):
    """``spawning_complete`` and ``rebalanced``."""

    def __call__(self, *, user_count: int, **kwargs: Any) -> Any: ...


class QuitListener(Protocol):
    def __call__(self, *, exit_code: int, **kwargs: Any) -> Any: ...


class UsageListener(Protocol):
    def __call__(
        self, *, environment: Environment, cpu_usage: float, memory_usage: int, **kwargs: Any
    ) -> Any: ...


class CpuWarningListener(Protocol):
    def __call__(self, *, environment: Environment, cpu_usage: float, message: str, **kwargs: Any) -> Any: ...


class ReportListener(Protocol):
    """``report_to_master`` and ``worker_report``."""

    def __call__(self, *, client_id: str, data: dict[str, Any], **kwargs: Any) -> Any: ...


class ClientListener(Protocol):
    def __call__(self, *, client_id: str, **kwargs: Any) -> Any: ...


class HeartbeatListener(Protocol):
    def __call__(self, *, client_id: str, timestamp: float, **kwargs: Any) -> Any: ...


class StatsTickListener(Protocol):
    def __call__(self, *, environment: Environment, snapshot: StatsSnapshot, **kwargs: Any) -> Any: ...


class AnyListener(Protocol):
    def __call__(self, **kwargs: Any) -> Any: ...


class Events:
    """All event hooks of one Environment.

    Arguments each hook is fired with (listeners should accept ``**kwargs`` for forward compatibility):

    - ``init(environment, runner, web_ui)`` — the environment and its runner exist.
    - ``init_command_line_parser(parser)`` — add your own flags (fired by the CLI).
    - ``test_start(environment)`` / ``test_stopping(environment)`` / ``test_stop(environment)``.
    - ``request(request_type, name, response_time, response_length, response, context, exception,
      start_time, url)`` — one per request; ``exception`` is None for a success.
    - ``user_error(user_instance, exception, tb)`` — a task raised.
    - ``spawning_complete(user_count)`` — a ramp reached its target.
    - ``stats_tick(environment, snapshot)`` — once per second while a test runs, with the
      :class:`~horde.stats.snapshot.StatsSnapshot` every output receives (merged cluster-wide on a master).
    - ``quitting(environment)`` — the process is about to exit; ``quit(exit_code)`` right before.
    - ``usage_monitor(environment, cpu_usage, memory_usage)`` — every monitor sample (Locust's arguments;
      the loop lag of the sample is ``environment.runner.monitor.latest.loop_lag``).
    - ``cpu_warning(environment, cpu_usage, message)`` — the generator may be saturated.
    - ``report_to_master(client_id, data)`` / ``worker_report(client_id, data)`` — distributed stats.
    - ``reset_stats()`` — stats were reset from the UI or API.
    - ``worker_connect(client_id)``, ``heartbeat_sent(client_id, timestamp)``,
      ``heartbeat_received(client_id, timestamp)``, ``rebalanced(user_count)`` — distribution.
    """

    HOOKS = (
        "init",
        "init_command_line_parser",
        "test_start",
        "test_stopping",
        "test_stop",
        "request",
        "user_error",
        "spawning_complete",
        "stats_tick",
        "quitting",
        "quit",
        "usage_monitor",
        "cpu_warning",
        "report_to_master",
        "worker_report",
        "reset_stats",
        "worker_connect",
        "heartbeat_sent",
        "heartbeat_received",
        "rebalanced",
    )

    init: EventHook[InitListener]
    init_command_line_parser: EventHook[AnyListener]
    test_start: EventHook[EnvironmentListener]
    test_stopping: EventHook[EnvironmentListener]
    test_stop: EventHook[EnvironmentListener]
    request: EventHook[RequestListener]
    user_error: EventHook[UserErrorListener]
    spawning_complete: EventHook[UserCountListener]
    stats_tick: EventHook[StatsTickListener]
    quitting: EventHook[EnvironmentListener]
    quit: EventHook[QuitListener]
    usage_monitor: EventHook[UsageListener]
    cpu_warning: EventHook[CpuWarningListener]
    report_to_master: EventHook[ReportListener]
    worker_report: EventHook[ReportListener]
    reset_stats: EventHook[AnyListener]
    worker_connect: EventHook[ClientListener]
    heartbeat_sent: EventHook[HeartbeatListener]
    heartbeat_received: EventHook[HeartbeatListener]
    rebalanced: EventHook[UserCountListener]

    def __init__(self) -> None:
        self.unhandled_errors = 0
        self._pending: set[asyncio.Task[None]] = set()
        for name in self.HOOKS:
            setattr(self, name, EventHook(name, self))

    def track(self, task: asyncio.Task[None]) -> None:
        """Keep a listener task alive until it ends (asyncio only holds weak references)."""
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for coroutine listeners started by ``fire``; used before exit so none is lost."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)


#: The process-wide hooks, as in Locust (``from horde import events``): an Environment built without
#: ``events=`` uses these, so a listener a locustfile attaches here is never silently ignored.
events = Events()
