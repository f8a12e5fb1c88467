"""LocalRunner: one process runs every user, planned by the UsersDispatcher with one pseudo-worker."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from horde.exceptions import StopTest
from horde.rpc.protocol import Message
from horde.runners.base import RunnerState, UserRunner

logger = logging.getLogger(__name__)

LOCAL_NODE_ID = "local"


@dataclass(frozen=True)
class LocalNode:
    """The one pseudo-worker the local runner plans for."""

    id: str = LOCAL_NODE_ID


class LocalRunner(UserRunner):
    """Runs users in this process.

    >>> runner = env.create_local_runner()
    >>> runner.start(100, spawn_rate=10)   # returns at once; the ramp runs in the background
    >>> await runner.quit()
    """

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._dispatcher: Any = None
        self._ramp_task: asyncio.Task[None] | None = None

    def start(
        self, user_count: int, spawn_rate: float, user_classes: list[Any] | None = None
    ) -> asyncio.Task[None]:
        """Ramp (up or down) to ``user_count`` at ``spawn_rate`` users/s; cancels an unfinished ramp."""
        if user_count < 0:
            raise ValueError(f"user count must be >= 0, got {user_count}")
        if spawn_rate <= 0:
            raise ValueError(f"spawn rate must be > 0, got {spawn_rate}")
        if spawn_rate > 100:
            logger.warning(
                "Your selected spawn rate is very high (>100): users may start in bursts and the first "
                "seconds of the test may not reflect steady load"
            )
        self.start_background()
        self.target_user_count = user_count
        self.spawn_rate = spawn_rate
        previous = self._ramp_task
        if previous is not None and not previous.done():
            previous.cancel()
        self._ramp_task = asyncio.get_running_loop().create_task(
            self._ramp(previous, user_count, spawn_rate, user_classes), name="ramp"
        )
        return self._ramp_task

    async def _ramp(
        self,
        previous: asyncio.Task[None] | None,
        user_count: int,
        spawn_rate: float,
        user_classes: list[Any] | None,
    ) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        if self._stop_task is not None and not self._stop_task.done():
            await self._stop_task
        env = self.environment
        try:
            if self.state not in (RunnerState.SPAWNING, RunnerState.RUNNING):
                await self._begin_test()
                self._check_tasks_defined()
            env.apply_host()
            self.state = RunnerState.SPAWNING
            if self._dispatcher is None:
                self._dispatcher = env.dispatcher_class([LocalNode()], env.user_classes)
            self._dispatcher.new_dispatch(user_count, spawn_rate, user_classes)
            clock = env.clock
            classes = env.user_classes_by_name()
            last: float | None = None
            for step in self._dispatcher:
                if last is not None:
                    await clock.sleep(step.delay - (clock.monotonic() - last))
                last = clock.monotonic()
                await self.users.apply(step.users.get(LOCAL_NODE_ID, {}), classes, env.stop_timeout)
            self.target_user_classes_count = self.users.counts()
            logger.info(
                "Ramp complete: %s (%d total users)",
                _fmt_counts(self.target_user_classes_count),
                self.user_count,
            )
            await env.events.spawning_complete.fire_async(user_count=self.user_count)
        except asyncio.CancelledError:
            raise
        except StopTest as e:
            logger.error("%s", e)
            self.stop_test(str(e))
        except Exception as e:
            env.events.unhandled_errors += 1
            logger.exception("the ramp failed: %s", e)
            self.stop_test(f"the ramp failed: {e!r}")

    def _check_tasks_defined(self) -> None:
        for cls in self.environment.user_classes:
            if not cls.tasks:
                raise StopTest(
                    f"{cls.__name__} has no tasks: decorate async methods with @task or set `tasks = [...]`"
                    + (
                        " (or the --tags/--exclude-tags selection removed them all)"
                        if self.environment.tags or self.environment.exclude_tags
                        else ""
                    )
                )

    async def _stop(self, caller: asyncio.Task[Any] | None) -> None:
        idle = self._ramp_task is None and self._shape_task is None and self.users.running_tasks == 0
        if self.state == RunnerState.STOPPED or (self.state == RunnerState.READY and idle):
            return  # nothing to stop; a never-started runner fires no stop events (Locust's does)
        env = self.environment
        await env.events.test_stopping.fire_async(environment=env)
        self.final_user_classes_count = self.users.counts()
        self.state = RunnerState.CLEANUP
        ramp, self._ramp_task = self._ramp_task, None
        if ramp is not None and not ramp.done():
            ramp.cancel()
            if ramp is not caller:
                await asyncio.gather(ramp, return_exceptions=True)
        await self._cancel_shape(caller)
        await self.users.stop_all(env.stop_timeout, caller)
        self._dispatcher = None
        self.state = RunnerState.STOPPED
        for line in self.monitor.summary_warnings():
            logger.warning(line)
        self._stopped.set()
        await env.events.test_stop.fire_async(environment=env)

    def send_message(self, msg_type: str, data: Any = None, client_id: str | None = None) -> None:
        """Deliver a custom message to this process's own handler (as a worker would receive it)."""
        if not self._handle_custom(Message(msg_type, data, LOCAL_NODE_ID)):
            logger.warning("Unknown message type received: %r", msg_type)


def _fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}: {n}" for name, n in sorted(counts.items())) or "no users"
