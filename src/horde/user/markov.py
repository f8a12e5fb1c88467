"""MarkovTaskSet: tasks that follow a Markov chain, as in Locust (``@transition``, ``@transitions``).

The first decorated task (in class order) is where each user starts; after a task runs, the next one is
drawn from its weighted transitions. The chain is checked when the class is defined: every transition must
name a task of the class that has transitions of its own, tags are refused (they could cut the chain), and
unreachable tasks are warned about.

    class Shop(MarkovTaskSet):
        @transition("browse")
        async def index(self):
            await self.client.get("/")

        @transitions({"index": 1, "browse": 3})
        async def browse(self):
            await self.client.get("/items")
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any, TypeVar

from horde.exceptions import ConfigurationError
from horde.user.task import TaskSet, TaskSetMeta

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class MarkovTaskSetError(ConfigurationError):
    """A Markov chain that cannot run (Locust's LocustError subclasses keep their names below)."""


class NoMarkovTasksError(MarkovTaskSetError):
    """The class defines no task with ``@transition``/``@transitions``."""


class InvalidTransitionError(MarkovTaskSetError):
    """A transition names something the class does not have."""


class NonMarkovTaskTransitionError(MarkovTaskSetError):
    """A transition leads to a task that has no transitions of its own (the chain would stop there)."""


class MarkovTaskTagError(MarkovTaskSetError):
    """Tags on Markov tasks are refused: a tag selection could cut the chain."""


def _add_transitions(fn: F, weights: dict[str, int]) -> F:
    existing: dict[str, int] = dict(getattr(fn, "markov_transitions", {}))
    for name, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            raise MarkovTaskSetError(
                f"transition weight to {name!r} must be a whole number >= 1, got {weight!r}"
            )
        existing[name] = weight
    fn.markov_transitions = existing  # type: ignore[attr-defined]
    return fn


def transition(func_name: str, weight: int = 1) -> Callable[[F], F]:
    """After this task, go to ``func_name`` with this relative ``weight``."""
    return lambda fn: _add_transitions(fn, {func_name: weight})


def transitions(weights: dict[str, int] | list[tuple[str, int] | str]) -> Callable[[F], F]:
    """Several transitions at once: ``{"a": 2, "b": 1}`` or ``[("a", 2), "b"]`` (weight 1)."""
    if isinstance(weights, dict):
        table = dict(weights)
    else:
        table = dict(item if isinstance(item, tuple) else (item, 1) for item in weights)
    return lambda fn: _add_transitions(fn, table)


def _markov_tasks(namespace: dict[str, Any]) -> list[Any]:
    return [v for v in namespace.values() if callable(v) and hasattr(v, "markov_transitions")]


def _check_chain(name: str, namespace: dict[str, Any], tasks: list[Any]) -> None:
    if not tasks:
        raise NoMarkovTasksError(
            f"{name} defines no Markov task: decorate tasks with @transition or @transitions"
        )
    for task in tasks:
        tags = getattr(task, "locust_tag_set", None)
        if tags:
            raise MarkovTaskTagError(
                f"{name}.{task.__name__} has tags {sorted(tags)}: tags are not supported on Markov tasks"
            )
        if task.__name__ == "run":
            raise MarkovTaskSetError(f"{name}.run is the task set's own loop and cannot be a Markov task")
        for dest in task.markov_transitions:
            target = namespace.get(dest)
            if target is None:
                raise InvalidTransitionError(
                    f"{name}.{task.__name__} has a transition to {dest!r}, which {name} does not define"
                )
            if not hasattr(target, "markov_transitions"):
                raise NonMarkovTaskTransitionError(
                    f"{name}.{dest} is the target of a transition from {task.__name__} but has no transitions of "
                    "its own: add @transition to it"
                )
    reached: set[str] = set()
    todo = [tasks[0].__name__]
    while todo:
        current = todo.pop()
        if current in reached:
            continue
        reached.add(current)
        todo.extend(namespace[current].markov_transitions)
    unreachable = sorted({t.__name__ for t in tasks} - reached)
    if unreachable:
        logger.warning(
            "%s: these Markov tasks can never run (no transition leads to them): %s",
            name,
            ", ".join(unreachable),
        )


class MarkovTaskSetMeta(TaskSetMeta):
    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> MarkovTaskSetMeta:
        cls = super().__new__(mcs, name, bases, namespace)
        if not namespace.get("abstract", False):
            tasks = _markov_tasks(namespace)
            _check_chain(name, namespace, tasks)
            cls.markov_start = tasks[0]  # type: ignore[attr-defined]
            cls.markov_table = {  # type: ignore[attr-defined]
                t.__name__: [dest for dest, w in t.markov_transitions.items() for _ in range(w)]
                for t in tasks
            }
            cls.tasks = list(tasks)  # type: ignore[attr-defined]  # what ratios and checks see
        return cls  # type: ignore[return-value]


class MarkovTaskSet(TaskSet, metaclass=MarkovTaskSetMeta):
    """Tasks chosen by a Markov chain instead of by weight (see the module docstring)."""

    abstract = True
    markov_start: Any
    markov_table: dict[str, list[str]]

    def __init__(self, parent: Any) -> None:
        super().__init__(parent)
        self._current: Any = type(self).markov_start

    def get_next_task(self) -> Any:
        task = self._current
        following = random.choice(type(self).markov_table[task.__name__])
        self._current = _lookup(type(self), following)
        return task


def _lookup(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    raise InvalidTransitionError(f"{cls.__name__} has no task {name!r}")
