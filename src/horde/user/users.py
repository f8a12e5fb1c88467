"""The User: one simulated person, running ``on_start``, then weighted tasks with waits, then ``on_stop``.

The runner owns each user's asyncio task. Stopping is cooperative first (a running user finishes its
current task, a waiting user is cancelled at once) and forced at the stop_timeout deadline; ``on_stop``
runs in every case except when ``on_start`` itself failed.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from horde.exceptions import ConfigurationError, StopTest, StopUser
from horde.user.task import DefaultTaskSet, TaskSetMeta

if TYPE_CHECKING:
    from horde.env import Environment

logger = logging.getLogger(__name__)

RUNNING, WAITING, STOPPING = "running", "waiting", "stopping"


class UserMeta(TaskSetMeta):
    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> UserMeta:
        # a class is abstract only if it says so itself; subclasses are concrete by default
        namespace.setdefault("abstract", False)
        for attr, check in (("weight", _weight_problem), ("fixed_count", _fixed_count_problem)):
            if attr in namespace and (problem := check(namespace[attr])):
                raise ConfigurationError(f"{name}.{attr} {problem}")
        return super().__new__(mcs, name, bases, namespace)  # type: ignore[return-value]


def _weight_problem(value: Any) -> str | None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        return f"must be a finite number >= 0, got {value!r}"
    return None


def _fixed_count_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return f"must be a whole number >= 0, got {value!r}"
    return None


class User(metaclass=UserMeta):
    """Subclass this to describe how one user behaves.

    >>> class Reader(User):
    ...     wait_time = constant(1)
    ...     @task
    ...     async def read(self):
    ...         ...
    """

    host: ClassVar[str | None] = None
    weight: ClassVar[float] = 1
    fixed_count: ClassVar[int] = 0
    wait_time: ClassVar[Callable[..., float] | None] = None
    tasks: ClassVar[list[Any]] = []
    abstract: ClassVar[bool] = True
    # set by a client once a request has awaited the network: with no wait time the task loop then
    # skips its sleep(0), since the loop has had its turn (a class default: no per-user storage until set)
    _loop_turned: bool = False

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        # the run's choices live on the environment and apply to this instance; the class is never changed
        if environment.host:
            self.host = environment.host  # type: ignore[misc]
        selection = environment.task_selection
        if selection:
            self.tasks = selection.get(type(self), type(self).tasks)  # type: ignore[misc]
        self._state = RUNNING
        self._task: asyncio.Task[None] | None = None
        self._task_started_at: float | None = None
        self._taskset = DefaultTaskSet(self)

    @property
    def user(self) -> User:
        return self

    async def on_start(self) -> None:
        """Runs once before the first task (log in, load fixtures, …)."""

    async def on_stop(self) -> None:
        """Runs once when the user stops, whatever the reason."""

    def context(self) -> dict[str, Any]:
        """Extra data attached to every request this user makes (the ``context`` of the request event)."""
        return {}

    async def teardown(self) -> None:
        """Release what the user holds (client sessions); runs after ``on_stop``."""

    def _check_stop_condition(self) -> None:
        if self._state == STOPPING:
            raise StopUser()

    def _task_failed(self, e: Exception) -> None:
        env = self.environment
        env.events.user_error.fire(user_instance=self, exception=e, tb=e.__traceback__)
        if not env.catch_exceptions:
            raise e
        env.user_error_log.record(type(self).__name__, e)

    async def run(self) -> None:
        """The user's whole life; the runner starts it as a task."""
        self._state = RUNNING
        try:
            try:
                await self.on_start()
            except (StopUser, StopTest, asyncio.CancelledError):
                raise
            except Exception as e:
                logger.error("on_start of %s failed; the user ends: %r", type(self).__name__, e)
                self.environment.events.user_error.fire(user_instance=self, exception=e, tb=e.__traceback__)
                return
            await self._taskset.run()
        except StopTest as e:
            runner = self.environment.runner
            if runner is not None:
                runner.stop_test(str(e))
            await self._run_on_stop()
        except StopUser:
            await self._run_on_stop()
        except asyncio.CancelledError:
            await self._run_on_stop()
            raise
        except Exception as e:
            # only reached with catch_exceptions=False: the exception ends this user
            logger.error("%s ended by %r", type(self).__name__, e)
            await self._run_on_stop()
        finally:
            try:
                await self.teardown()
            except Exception:
                logger.exception("teardown of %s failed", type(self).__name__)

    async def _run_on_stop(self) -> None:
        self._state = STOPPING
        try:
            await self.on_stop()
        except asyncio.CancelledError:
            pass
        except Exception as e:
            logger.error("on_stop of %s failed: %r", type(self).__name__, e)

    def start(self, task_factory: Callable[[Any], asyncio.Task[None]]) -> asyncio.Task[None]:
        self._task = task_factory(self.run())
        return self._task

    def stop(self, force: bool = False) -> bool:
        """Ask this user to stop; returns True if it was cancelled at once.

        A waiting user (or ``force``) is cancelled now; a running one finishes its current task first.
        """
        if self._task is None or self._task.done():
            return True
        if force or self._state == WAITING:
            self._task.cancel()
            return True
        self._state = STOPPING
        return False
