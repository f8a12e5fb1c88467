"""Porting mistakes are found when the locustfile loads: one line each, with file, class, method and fix."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import pytest

from horde import TaskSet, User, between, constant, task
from horde.exceptions import ConfigurationError
from horde.user.checks import porting_problems


def test_plain_def_tasks_and_hooks_are_named_with_the_fix() -> None:
    class Ported(User):
        def on_start(self) -> None: ...

        @task
        def browse(self) -> None: ...

        @task
        async def fine(self) -> None: ...

    problems = porting_problems(Ported)
    assert len(problems) == 2
    assert any(
        "Ported.on_start (User Ported) is a plain def" in p and "async def on_start" in p for p in problems
    )
    assert any("Ported.browse" in p and "test_porting_checks.py:" in p for p in problems)


def test_task_sets_and_module_level_tasks_are_checked_too() -> None:
    def module_task(user: Any) -> None: ...

    class Browse(TaskSet):
        @task
        def look(self) -> None: ...

        def on_stop(self) -> None: ...

    class Shop(User):
        tasks = [Browse, module_task]

    problems = porting_problems(Shop)
    assert len(problems) == 3
    assert any("module_task" in p for p in problems)
    assert any("Browse.look (TaskSet Browse)" in p for p in problems)
    assert any("Browse.on_stop" in p for p in problems)


def test_a_sync_context_manager_decorator_around_an_async_task_is_caught() -> None:
    @contextlib.contextmanager
    def timed() -> Iterator[None]:
        yield

    class Shop(User):
        @task
        @timed()
        async def buy(self) -> None: ...

    [problem] = porting_problems(Shop)
    assert "wrapped by a synchronous decorator" in problem


def test_a_clean_class_has_no_problems() -> None:
    class Clean(User):
        async def on_start(self) -> None: ...

        @task
        async def go(self) -> None: ...

    assert porting_problems(Clean) == []


@pytest.mark.parametrize("bad", [math.nan, -1, math.inf, "1"])
def test_waits_are_validated_when_the_class_is_defined(bad: Any) -> None:
    with pytest.raises(ConfigurationError):
        between(0, bad)
    with pytest.raises(ConfigurationError):
        constant(bad)


@pytest.mark.parametrize("bad", [math.nan, -2, "3"])
def test_weights_are_validated_when_the_class_is_defined(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"Heavy\.weight"):

        class Heavy(User):
            weight = bad

            @task
            async def go(self) -> None: ...
