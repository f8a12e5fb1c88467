"""The users' long-lived objects are frozen out of full collections while they run, and freed after."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from horde import User, constant, task
from horde.clock import FakeClock
from horde.env import Environment
from horde.runners import gc_policy

alive: list[weakref.ref[object]] = []


class Node:
    """Half of a reference cycle: only the cyclic collector can free it."""

    other: Node | None = None


class Cyclic(User):
    wait_time = constant(600)

    async def on_start(self) -> None:
        a, b = Node(), Node()
        a.other, b.other = b, a
        self.cycle = a  # the user keeps the cycle alive while it runs
        alive.append(weakref.ref(a))

    @task
    async def nothing(self) -> None: ...


async def started(n: int) -> None:
    for _ in range(200):  # bounded: the users start within a few loop turns
        if len(alive) >= n:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{len(alive)} of {n} users started")


@pytest.fixture(autouse=True)
def clean_gc() -> Iterator[None]:
    alive.clear()
    gc.unfreeze()
    gc_policy._ended, gc_policy._frozen = 0, False
    thresholds = gc.get_threshold()
    gc.set_threshold(700, *thresholds[1:])
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()
    alive.clear()


async def test_running_users_are_frozen_and_stopped_users_are_collected() -> None:
    env = Environment(user_classes=[Cyclic], clock=FakeClock())
    runner = env.create_local_runner()
    await runner.start(50, 1000)
    await started(50)
    assert gc.get_freeze_count() > 0  # the spawn froze what the users allocated
    assert gc.get_threshold()[0] == gc_policy.YOUNG_THRESHOLD  # and young collections became rarer
    await runner.quit()
    assert gc.get_freeze_count() == 0  # stopping unfroze it: the users' cycles are collectable again
    gc.collect()
    assert [ref for ref in alive if ref() is not None] == []


async def test_ramping_down_releases_the_stopped_users() -> None:
    env = Environment(user_classes=[Cyclic], clock=FakeClock())
    runner = env.create_local_runner()
    await runner.start(20, 1000)
    await started(20)
    await runner.start(5, 1000)
    assert runner.user_count == 5
    gc.collect()
    assert sum(ref() is not None for ref in alive) == 5  # the 15 stopped users' cycles were freed
    await runner.quit()


async def test_users_ending_one_by_one_unfreeze_once_a_quarter_has_ended() -> None:
    # churn must not unfreeze at every end: each unfreeze brings back one full walk of every user
    env = Environment(user_classes=[Cyclic], clock=FakeClock())
    runner = env.create_local_runner()
    await runner.start(40, 1000)
    await started(40)
    for count in range(39, 32, -1):  # 7 users end, one at a time: 7 * 4 < 33 still running
        await runner.start(count, 1000)
        assert gc.get_freeze_count() > 0
    await runner.start(31, 1000)  # two more: the 8th end (8 * 4 >= 32 still running) unfreezes
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert sum(ref() is not None for ref in alive) == 31  # the ended users' cycles were freed
    await runner.quit()


async def test_it_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gc_policy, "ENABLED", False)
    env = Environment(user_classes=[Cyclic], clock=FakeClock())
    runner = env.create_local_runner()
    await runner.start(10, 1000)
    assert gc.get_freeze_count() == 0 and gc.get_threshold()[0] == 700
    await runner.quit()
