"""Porting mistakes found when the locustfile loads, before any load is sent.

A Locust task ported without ``async`` (``def browse(self)``) would run, return ``None`` and record
nothing — a silent, empty test. These checks find every such method of a user class and the task sets it
reaches and say, one line each, where it is and how to fix it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from horde.user.task import TaskSet, is_taskset_class
from horde.user.users import User

_LIFECYCLE = ("on_start", "on_stop")


def porting_problems(cls: type[User]) -> list[str]:
    """Every plain-``def`` task or hook of ``cls`` (and of the task sets it reaches), one line each."""
    problems: list[str] = []
    seen: set[Any] = set()
    for owner, name, fn in _callables(cls, set()):
        if fn in seen or _is_async(fn):
            continue
        seen.add(fn)
        problems.append(_describe(owner, name, fn))
    return problems


def _callables(owner: type, visited: set[type]) -> Iterator[tuple[type, str, Any]]:
    if owner in visited:
        return
    visited.add(owner)
    for hook in _LIFECYCLE:
        fn = getattr(owner, hook, None)
        if fn is not None and _defined_outside_horde(fn):
            yield owner, hook, fn
    for task in getattr(owner, "tasks", None) or []:
        if is_taskset_class(task):
            yield from _callables(task, visited)
        elif callable(task):
            yield owner, getattr(task, "__name__", repr(task)), task


def _defined_outside_horde(fn: Any) -> bool:
    """horde's own default hooks (``async def on_start(self): pass``) are fine; only look at the user's."""
    module = getattr(fn, "__module__", "") or ""
    return not module.startswith("horde.")


def _is_async(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)


def _describe(owner: type, name: str, fn: Any) -> str:
    where = _location(fn)
    kind = "TaskSet" if issubclass(owner, TaskSet) else "User"
    what = f"{owner.__name__}.{name}" if name in _LIFECYCLE or _is_method_of(owner, name) else name
    unwrapped = inspect.unwrap(fn)
    if unwrapped is not fn and _is_async(unwrapped):
        return (
            f"{where}: {what} ({kind} {owner.__name__}) is an async function wrapped by a synchronous "
            "decorator: the wrapper (a sync context manager, say) ends before the task runs. Use an async "
            "decorator (async with inside the task, or contextlib.asynccontextmanager)."
        )
    return f"{where}: {what} ({kind} {owner.__name__}) is a plain def: make it `async def {name}(...)`."


def _is_method_of(owner: type, name: str) -> bool:
    return any(name in vars(klass) for klass in owner.__mro__)


def _location(fn: Any) -> str:
    target = inspect.unwrap(fn)
    code = getattr(target, "__code__", None)
    if code is None:
        return "<unknown>"
    return f"{Path(code.co_filename).name}:{code.co_firstlineno}"
