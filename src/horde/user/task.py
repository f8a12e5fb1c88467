"""Tasks, tags and task sets: how one user picks what to do next.

A task is an ``async`` function taking the user (or the task set it belongs to), or a nested
:class:`TaskSet` class. ``@task(weight)`` and ``tasks = [...]`` / ``tasks = {fn: weight}`` declare them,
as in Locust; a task set runs until a task calls ``self.interrupt()``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
import traceback
from collections.abc import Callable, Iterable
from types import CoroutineType, FunctionType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from horde.clock import Clock
from horde.exceptions import (
    InterruptTaskSet,
    RescheduleTask,
    RescheduleTaskImmediately,
    StopTest,
    StopUser,
)

if TYPE_CHECKING:
    from horde.user.users import User

logger = logging.getLogger(__name__)

_STOPPING = "stopping"  # users.STOPPING (users.py imports this module)

F = TypeVar("F", bound=Callable[..., Any])


@overload
def task(weight: F) -> F: ...
@overload
def task(weight: int = 1) -> Callable[[F], F]: ...
def task(weight: Any = 1) -> Any:
    """Mark a method as a task; ``@task(3)`` makes it three times as likely as a ``@task`` one.

    >>> class Shop(User):
    ...     @task(3)
    ...     async def browse(self): ...
    """

    def decorate(fn: F) -> F:
        fn.locust_task_weight = weight  # type: ignore[attr-defined]
        return fn

    if callable(weight):
        fn, weight = weight, 1
        return decorate(fn)
    if not isinstance(weight, int) or weight < 0:
        raise ValueError(f"@task weight must be a non-negative int, got {weight!r}")
    return decorate


def tag(*tags: str) -> Callable[[F], F]:
    """Tag a task or TaskSet so ``--tags`` / ``--exclude-tags`` can select it."""
    if not tags or not all(isinstance(t, str) for t in tags):
        raise ValueError("@tag needs one or more string tags, e.g. @tag('checkout')")

    def decorate(obj: F) -> F:
        current: set[str] = getattr(obj, "locust_tag_set", set())
        obj.locust_tag_set = set(current) | set(tags)  # type: ignore[attr-defined]
        return obj

    return decorate


def collect_tasks(cls: type, bases: Iterable[type]) -> list[Any]:
    """The weighted task list of a User or TaskSet class: repeated entries carry the weights."""
    declared = cls.__dict__.get("tasks")
    tasks: list[Any] = []
    if declared is None:
        for base in bases:
            tasks.extend(getattr(base, "tasks", None) or [])
    elif isinstance(declared, dict):
        for fn, weight in declared.items():
            tasks.extend([fn] * int(weight))
    elif isinstance(declared, (list, tuple)):
        for fn in declared:
            tasks.extend([fn] * int(getattr(fn, "locust_task_weight", 1)))
    else:
        raise ValueError(f"{cls.__name__}.tasks must be a list or a dict, got {type(declared).__name__}")
    for value in cls.__dict__.values():
        if callable(value) and hasattr(value, "locust_task_weight"):
            tasks.extend([value] * value.locust_task_weight)
    return tasks


def is_taskset_class(obj: Any) -> bool:
    return isinstance(obj, TaskSetMeta) and issubclass(obj, TaskSet)


def select_tasks_by_tags(
    root: type, tags: set[str] | None, exclude_tags: set[str] | None, out: dict[type, list[Any]] | None = None
) -> dict[type, list[Any]]:
    """The tasks each class reachable from ``root`` keeps under a tag selection, without changing any class.

    Returns ``{class: kept tasks}`` for ``root`` and every nested TaskSet. A tagged TaskSet counts as
    tagged as a whole (only ``exclude_tags`` then apply inside it); an untagged one is kept if any of its
    tasks is. A class reached twice keeps its first selection.
    """
    selected = out if out is not None else {}
    if root in selected:
        return selected
    kept: list[Any] = []
    selected[root] = kept  # before recursing: a task set that contains itself terminates
    for t in getattr(root, "tasks", None) or []:
        own: set[str] = getattr(t, "locust_tag_set", set())
        if exclude_tags and own & exclude_tags:
            continue
        if tags is None or own & tags:
            if is_taskset_class(t):
                select_tasks_by_tags(t, None, exclude_tags, selected)
            kept.append(t)
        elif is_taskset_class(t):
            select_tasks_by_tags(t, tags, exclude_tags, selected)
            if selected[t]:
                kept.append(t)
    return selected


class TaskSetMeta(type):
    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> TaskSetMeta:
        cls = super().__new__(mcs, name, bases, namespace)
        cls.tasks = collect_tasks(cls, bases)  # type: ignore[attr-defined]
        return cls


class TaskSet(metaclass=TaskSetMeta):
    """A group of tasks a user runs until one of them calls :meth:`interrupt`.

    ``self.user`` is the User, ``self.parent`` the enclosing TaskSet or User, ``self.client`` the
    user's client. ``wait_time`` defaults to the user's.
    """

    tasks: list[Any] = []
    wait_time: Callable[..., float] | None = None

    def __init__(self, parent: TaskSet | User) -> None:
        self.parent = parent
        self.user: User = parent.user if isinstance(parent, TaskSet) else parent
        self._task_queue: list[Any] = []
        self._task_started_at: float | None = None
        self._task_arg: Any = self  # what task functions receive: the task set (the user, for its own tasks)
        selection = getattr(getattr(self.user, "environment", None), "task_selection", None)
        if selection:  # a tag selection of this run: an instance attribute, the class stays untouched
            self.tasks = selection.get(type(self), type(self).tasks)

    @property
    def client(self) -> Any:
        return self.user.client  # type: ignore[attr-defined]

    @property
    def environment(self) -> Any:
        return self.user.environment

    async def on_start(self) -> None:
        """Runs when the task set starts."""

    async def on_stop(self) -> None:
        """Runs when the task set is interrupted or the user stops."""

    def interrupt(self, reschedule: bool = True) -> None:
        """Return control to the parent; with ``reschedule`` it picks its next task without waiting."""
        raise InterruptTaskSet(reschedule)

    def schedule_task(self, task_callable: Any, first: bool = False) -> None:
        if first:
            self._task_queue.insert(0, task_callable)
        else:
            self._task_queue.append(task_callable)

    def get_next_task(self) -> Any:
        if not self.tasks:
            kind = "TaskSet" if type(self) is not DefaultTaskSet else "User"
            owner = type(self).__name__ if kind == "TaskSet" else type(self.user).__name__
            raise StopTest(
                f"No tasks defined on {owner}. Use the @task decorator or set the 'tasks' attribute of the {kind}."
            )
        return random.choice(self.tasks)

    async def execute_task(self, task_fn: Any) -> None:
        # the per-task hot path: the common case (a coroutine function) is tested first
        arg = self._task_arg
        if isinstance(task_fn, TaskSetMeta):  # a nested TaskSet class (User classes are never tasks)
            await task_fn(arg).run()
            return
        result = task_fn(arg)
        if result is not None and (type(result) is CoroutineType or inspect.isawaitable(result)):
            await result

    def _wait_seconds(self) -> float:
        own: Callable[..., float] | None = type(self).wait_time
        if own is not None:
            return float(own(self))
        user_wait = type(self.user).wait_time
        return float(user_wait(self.user)) if user_wait is not None else 0.0

    async def wait(self) -> None:
        user = self.user
        user._check_stop_condition()
        seconds = self._wait_seconds()
        turned, user._loop_turned = user._loop_turned, False
        if seconds <= 0 and turned:
            return  # the task gave the loop a turn already (it awaited a request): no second one
        user._state = "waiting"
        if seconds > 0:
            clock = user.environment.clock
            # the real clock's sleep is asyncio.sleep: awaiting it directly saves a coroutine frame per
            # waiting user (memory at 100k idle users)
            await (asyncio.sleep(seconds) if type(clock) is Clock else clock.sleep(seconds))
        else:
            await asyncio.sleep(0)  # let other users run even with no wait time
        user._check_stop_condition()
        user._state = "running"

    async def run(self) -> None:
        user = self.user
        clock = user.environment.clock
        monotonic = time.monotonic if type(clock) is Clock else clock.monotonic
        # The loop below is every task's overhead. For a user's own tasks (a DefaultTaskSet whose
        # get_next_task, execute_task and wait are not overridden) it inlines the choice of a single
        # task, the call of a coroutine function, and wait() when there is no wait time and the task
        # gave the loop a turn already (a request it awaited): each call or coroutine frame saved is
        # a measurable share of a FastHttpUser request (benchmarks/throughput.py). Few locals: the
        # frame lives as long as the user does (memory per idle user).
        inline = _inlinable(type(self))
        try:
            await self.on_start()
        except InterruptTaskSet as e:
            await self._on_interrupt(e)
        while True:
            try:
                if self._task_queue:
                    task_fn = self._task_queue.pop(0)
                elif inline and len(user.tasks) == 1:
                    task_fn = user.tasks[0]
                else:
                    task_fn = self.get_next_task()
                if user._state == _STOPPING:  # _check_stop_condition, inlined
                    raise StopUser()
                budget = user.environment.iteration_budget
                if budget is not None and not budget.take():
                    raise StopUser()  # -i/--iterations spent: the test ends once the last one finishes
                self._task_started_at = user._task_started_at = monotonic()
                try:
                    # a plain function is never a TaskSet class: the isinstance on a metaclass, the
                    # slower test, is left for everything else
                    if not inline or (type(task_fn) is not FunctionType and isinstance(task_fn, TaskSetMeta)):
                        await self.execute_task(task_fn)
                    else:
                        result = task_fn(self._task_arg)
                        if result is not None and (
                            type(result) is CoroutineType or inspect.isawaitable(result)
                        ):
                            await result
                except RescheduleTaskImmediately:
                    continue
                except RescheduleTask:
                    pass
                finally:
                    if budget is not None:
                        budget.finished(user.environment)
                if inline and user._loop_turned and type(user).wait_time is None:
                    user._loop_turned = False
                    if user._state == _STOPPING:
                        raise StopUser()
                else:
                    await self.wait()
            except InterruptTaskSet as e:
                await self._on_interrupt(e)
            except (StopUser, StopTest, asyncio.CancelledError):
                raise
            except Exception as e:
                user._task_failed(e)
                await self.wait()

    async def _on_interrupt(self, e: InterruptTaskSet) -> None:
        try:
            await self.on_stop()
        except Exception as stop_error:
            self.user._task_failed(stop_error)
        if e.reschedule:
            raise RescheduleTaskImmediately() from e
        raise RescheduleTask() from e


class SequentialTaskSet(TaskSet):
    """A TaskSet that runs its tasks in declaration order, over and over (weights repeat a task)."""

    def __init__(self, parent: TaskSet | User) -> None:
        super().__init__(parent)
        self._index = 0

    def get_next_task(self) -> Any:
        if not self.tasks:
            raise StopTest(f"No tasks defined on {type(self).__name__}.")
        fn = self.tasks[self._index % len(self.tasks)]
        self._index += 1
        return fn


class DefaultTaskSet(TaskSet):
    """Runs a User's own tasks: each task function receives the user, not the task set."""

    def __init__(self, parent: TaskSet | User) -> None:
        super().__init__(parent)
        self._task_arg = self.user

    def get_next_task(self) -> Any:
        tasks = self.user.tasks
        if len(tasks) == 1:
            return tasks[0]
        if not tasks:
            return super().get_next_task()
        return random.choice(tasks)

    def _wait_seconds(self) -> float:
        user_wait = type(self.user).wait_time
        return float(user_wait(self.user)) if user_wait is not None else 0.0


def format_exception(e: BaseException) -> str:
    return "".join(traceback.format_exception(type(e), e, e.__traceback__))


def _inlinable(cls: type[TaskSet]) -> bool:
    """Whether ``TaskSet.run`` may inline the per-task steps of ``cls`` (see there)."""
    return (
        cls.get_next_task is DefaultTaskSet.get_next_task
        and cls.execute_task is TaskSet.execute_task
        and cls.wait is TaskSet.wait
        and cls._wait_seconds is DefaultTaskSet._wait_seconds
    )
