"""The user model: task choice and weights, task sets, interrupts, wait-time helpers, lifecycle hooks."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from collections.abc import Coroutine
from typing import Any

import pytest

from horde import (
    RescheduleTask,
    SequentialTaskSet,
    StopUser,
    TaskSet,
    User,
    between,
    constant,
    constant_pacing,
    constant_throughput,
    tag,
    task,
)
from horde.clock import FakeClock
from horde.env import Environment
from horde.event import Events
from horde.user.task import DefaultTaskSet, select_tasks_by_tags


def make_env(*classes: type[User], **kwargs) -> Environment:
    return Environment(user_classes=list(classes), **kwargs)


async def run_user_for(user: User, seconds: float) -> None:
    t = asyncio.create_task(user.run())
    await asyncio.sleep(seconds)
    t.cancel()
    await asyncio.gather(t, return_exceptions=True)


def test_task_weights_pick_in_proportion() -> None:
    class Weighted(User):
        @task(1)
        async def light(self): ...

        @task(3)
        async def heavy(self): ...

    random.seed(7)
    user = Weighted(make_env(Weighted))
    picks = Counter(DefaultTaskSet(user).get_next_task().__name__ for _ in range(8000))
    assert picks["heavy"] / picks["light"] == pytest.approx(3.0, rel=0.1)


def test_tasks_as_list_and_dict_and_inheritance() -> None:
    async def a(user): ...

    async def b(user): ...

    class ListUser(User):
        tasks = [a, b]

    class DictUser(User):
        tasks = {a: 2, b: 1}

    class Child(DictUser):
        @task
        async def c(self): ...

    assert ListUser.tasks == [a, b]
    assert Counter(DictUser.tasks) == {a: 2, b: 1}
    assert Counter(t.__name__ for t in Child.tasks) == {"a": 2, "b": 1, "c": 1}


def test_task_weight_must_be_a_non_negative_int() -> None:
    with pytest.raises(ValueError, match="weight"):
        task(-1)


async def test_taskset_nesting_and_interrupt_with_reschedule() -> None:
    log: list[str] = []

    class Inner(TaskSet):
        async def on_start(self):
            log.append("inner.on_start")

        @task
        async def work(self):
            log.append("inner.work")
            if log.count("inner.work") % 2 == 0:
                self.interrupt()

        async def on_stop(self):
            log.append("inner.on_stop")

    class Outer(User):
        tasks = [Inner]

    user = Outer(make_env(Outer))
    await run_user_for(user, 0.05)
    # each Inner run: on_start, two tasks, interrupt -> on_stop; the parent then starts a new Inner
    first = log[:4]
    assert first == ["inner.on_start", "inner.work", "inner.work", "inner.on_stop"]
    assert log.count("inner.on_start") >= 2


async def test_interrupt_without_reschedule_waits_in_parent() -> None:
    clock = FakeClock()
    calls: list[str] = []

    class Inner(TaskSet):
        @task
        async def leave(self):
            calls.append("leave")
            self.interrupt(reschedule=False)

    class Outer(User):
        wait_time = constant(10)
        tasks = [Inner]

    user = Outer(make_env(Outer, clock=clock))
    t = asyncio.create_task(user.run())
    for _ in range(10):
        await asyncio.sleep(0)
    assert calls == ["leave"]  # the parent now waits its wait_time before the next task
    clock.advance(10)
    for _ in range(10):
        await asyncio.sleep(0)
    assert calls == ["leave", "leave"]
    t.cancel()
    await asyncio.gather(t, return_exceptions=True)


async def test_sequential_taskset_runs_in_order() -> None:
    seen: list[str] = []

    class Steps(SequentialTaskSet):
        @task
        async def one(self):
            seen.append("one")

        @task
        async def two(self):
            seen.append("two")

        async def three(self):
            seen.append("three")

        tasks = [three]

    class Walker(User):
        tasks = [Steps]

    await run_user_for(Walker(make_env(Walker)), 0.02)
    # the explicit list comes first, then the decorated methods, in declaration order
    assert seen[:6] == ["three", "one", "two", "three", "one", "two"]


async def test_on_start_then_tasks_then_on_stop_and_stop_user() -> None:
    log: list[str] = []

    class Once(User):
        async def on_start(self):
            log.append("start")

        @task
        async def work(self):
            log.append("work")
            raise StopUser()

        async def on_stop(self):
            log.append("stop")

    await Once(make_env(Once)).run()
    assert log == ["start", "work", "stop"]


async def test_reschedule_task_and_no_wait_time_means_zero_wait() -> None:
    count = 0

    class Busy(User):
        @task
        async def work(self):
            nonlocal count
            count += 1
            if count >= 50:
                raise StopUser()
            raise RescheduleTask()

    await asyncio.wait_for(Busy(make_env(Busy)).run(), 1)
    assert count == 50


async def test_task_exception_is_reported_and_user_continues() -> None:
    env_errors: list[BaseException] = []
    count = 0

    class Flaky(User):
        @task
        async def work(self):
            nonlocal count
            count += 1
            if count == 3:
                raise StopUser()
            raise KeyError("missing")

    env = make_env(Flaky)
    env.events.user_error.add_listener(lambda user_instance, exception, tb: env_errors.append(exception))
    await asyncio.wait_for(Flaky(env).run(), 1)
    assert count == 3 and len(env_errors) == 2


async def test_on_start_failure_ends_user_without_on_stop() -> None:
    log: list[str] = []

    class Broken(User):
        async def on_start(self):
            raise RuntimeError("cannot log in")

        @task
        async def work(self):
            log.append("work")

        async def on_stop(self):
            log.append("stop")

    await Broken(make_env(Broken)).run()
    assert log == []


def test_between_and_constant() -> None:
    random.seed(1)
    fn = between(1, 3)
    values = [fn(None) for _ in range(1000)]
    assert 1 <= min(values) < 1.1 and 2.9 < max(values) <= 3
    assert constant(2.5)(None) == 2.5
    with pytest.raises(ValueError):
        between(3, 1)


def test_constant_pacing_and_throughput_with_injected_clock() -> None:
    clock = FakeClock()

    class Paced(User):
        wait_time = constant_pacing(10)

        @task
        async def t(self): ...

    user = Paced(make_env(Paced, clock=clock))
    assert Paced.wait_time(user) == 10  # no task has run yet
    user._task_started_at = clock.monotonic()
    clock.advance(3)
    assert Paced.wait_time(user) == pytest.approx(7)
    clock.advance(20)
    assert Paced.wait_time(user) == 0  # a slow task is followed by no wait
    user._task_started_at = clock.monotonic()
    clock.advance(0.5)
    assert constant_throughput(0.25)(user) == pytest.approx(3.5)


async def test_constant_pacing_drives_the_task_loop() -> None:
    clock = FakeClock()
    starts: list[float] = []

    class Paced(User):
        wait_time = constant_pacing(5)

        @task
        async def t(self):
            starts.append(clock.monotonic())
            await clock.sleep(2)

    t = asyncio.create_task(Paced(make_env(Paced, clock=clock)).run())
    await clock.run_for(16, step=0.5)
    t.cancel()
    await asyncio.gather(t, return_exceptions=True)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps and all(g == pytest.approx(5) for g in gaps)


def test_tags_select_and_exclude() -> None:
    class Tagged(User):
        @tag("a")
        @task
        async def only_a(self): ...

        @tag("b")
        @task
        async def only_b(self): ...

        @task
        async def untagged(self): ...

    assert [t.__name__ for t in select_tasks_by_tags(Tagged, {"a"}, None)[Tagged]] == ["only_a"]
    kept = select_tasks_by_tags(Tagged, None, {"a"})[Tagged]
    assert sorted(t.__name__ for t in kept) == ["only_b", "untagged"]
    assert len(select_tasks_by_tags(Tagged, None, None)[Tagged]) == 3
    assert len(Tagged.tasks) == 3  # selecting never changes the class


def test_tags_apply_inside_tasksets() -> None:
    class Nested(TaskSet):
        @tag("x")
        @task
        async def tagged(self): ...

        @task
        async def other(self): ...

    class Outer(User):
        tasks = [Nested]

    selection = select_tasks_by_tags(Outer, {"x"}, None)
    assert selection[Outer] == [Nested]
    assert [t.__name__ for t in selection[Nested]] == ["tagged"]
    assert len(Nested.tasks) == 2  # the class keeps every task; only this selection is narrowed


def test_a_tag_selection_applies_to_instances_not_classes() -> None:
    class Nested(TaskSet):
        @tag("x")
        @task
        async def tagged(self): ...

        @task
        async def other(self): ...

    class Outer(User):
        tasks = [Nested]

    env = Environment(user_classes=[Outer], tags=["x"], events=Events())
    env.prepare_run()
    user = Outer(env)
    assert user.tasks == [Nested]
    assert [t.__name__ for t in Nested(user).tasks] == ["tagged"]
    assert len(Nested.tasks) == 2 and Outer.tasks == [Nested]
    plain = Environment(user_classes=[Outer], events=Events())
    plain.prepare_run()
    assert len(Nested(Outer(plain)).tasks) == 2


async def loop_turns_while(coro: Coroutine[Any, Any, Any]) -> int:
    """How many turns the event loop gave another task while ``coro`` ran."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    t = asyncio.create_task(ticker())
    await coro
    t.cancel()
    return ticks


async def test_a_no_wait_task_that_awaits_nothing_still_lets_the_loop_run() -> None:
    class Spinner(User):
        @task
        async def spin(self):
            pass  # awaits nothing: the task loop itself must hand the loop over

    assert await loop_turns_while(run_user_for(Spinner(make_env(Spinner)), 0.05)) > 10


async def test_a_turn_taken_by_the_task_skips_the_no_wait_sleep() -> None:
    """What a client does after awaiting the network: flag the turn; the loop then has no sleep(0)."""
    runs = 0

    class Client(User):
        @task
        async def request(self):
            nonlocal runs
            runs += 1
            await asyncio.sleep(0)  # the request's turn of the loop
            self._loop_turned = True

    ticks = await loop_turns_while(run_user_for(Client(make_env(Client)), 0.05))
    # one turn of the loop per task, not two (with the sleep(0) the ticker would run twice per task)
    assert runs > 10 and ticks < 1.5 * runs


async def test_overridden_execute_task_and_wait_are_still_called() -> None:
    calls: list[str] = []

    class Custom(TaskSet):
        @task
        async def work(self):
            calls.append("work")
            if len(calls) >= 6:
                raise StopUser()

        async def execute_task(self, task_fn):
            calls.append("execute")
            await super().execute_task(task_fn)

        async def wait(self):
            calls.append("wait")
            await super().wait()

    class Owner(User):
        tasks = [Custom]

    await asyncio.wait_for(Owner(make_env(Owner)).run(), 1)
    assert calls[:6] == ["execute", "work", "wait", "execute", "work", "wait"]
