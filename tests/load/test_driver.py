"""load.driver: the StepDriver paces any planner start to start, for timer-driven and awaiting callers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from horde.clock import FakeClock
from horde.load import ClosedUsers, LoadModel, LocalNode, Node, PlanContext, PlanStep, StepDriver


class Scripted:
    """A planner that yields a fixed script of steps, recording the clock at each ``next``."""

    kind = "scripted"
    target_user_count = 0
    spawn_rate = 0.0

    def __init__(self, clock: FakeClock, steps: list[PlanStep]) -> None:
        self.clock = clock
        self.steps = list(steps)
        self.asked_at: list[float] = []
        self.workers: list[str] = []
        self.retargets: list[Any] = []
        self.accept = True

    def add_worker(self, node: Node) -> None:
        self.workers.append(node.id)

    def remove_worker(self, worker_id: str) -> None:
        self.workers.remove(worker_id)

    def retarget(self, model: LoadModel) -> bool:
        self.retargets.append(model)
        return self.accept

    def __iter__(self) -> Iterator[PlanStep]:
        return self

    def __next__(self) -> PlanStep:
        self.asked_at.append(self.clock.monotonic())
        if not self.steps:
            raise StopIteration
        return self.steps.pop(0)


def step(n: int, delay: float = 0.0, **kw: Any) -> PlanStep:
    return PlanStep({"w": n}, delay, **kw)


def setup(*steps: PlanStep) -> tuple[FakeClock, Scripted, StepDriver]:
    clock = FakeClock(start=100.0)
    planner = Scripted(clock, list(steps))
    return clock, planner, StepDriver(planner, clock)


def test_nothing_happens_before_start() -> None:
    _clock, planner, driver = setup(step(1))
    assert not driver.started and driver.idle and driver.next_due() is None and driver.pop_due() == []
    assert planner.asked_at == []
    driver.start()
    driver.start()  # idempotent
    assert driver.started and planner.asked_at == [100.0] and driver.next_due() == 100.0


def test_steps_are_due_start_to_start() -> None:
    clock, planner, driver = setup(step(1), step(2, 1.0), step(3, 0.5))
    driver.start()
    assert driver.pop_due() == [step(1)]
    assert driver.next_due() == 101.0
    assert driver.pop_due(100.99) == []
    clock.advance(1.7)  # popped late: the next delay counts from when step 2 was really popped
    assert driver.pop_due() == [step(2, 1.0)]
    assert driver.next_due() == pytest.approx(102.2)
    clock.advance(0.5)
    assert driver.pop_due() == [step(3, 0.5)]
    assert driver.idle and driver.next_due() is None
    assert planner.asked_at == [100.0, 100.0, 101.7, 102.2]


def test_zero_delay_followers_come_in_the_same_pop_and_wakeups_are_swallowed() -> None:
    marker = PlanStep(complete=True)
    clock, _planner, driver = setup(step(1), PlanStep(delay=0.5), step(2, 0.25), marker, PlanStep(end="bye"))
    driver.start()
    assert driver.pop_due() == [step(1)]
    assert driver.next_due() == 100.5  # the wake-up is due, but pop_due never returns it
    clock.advance(0.5)
    assert driver.pop_due() == []
    assert driver.next_due() == 100.75
    clock.advance(0.25)
    assert driver.pop_due() == [step(2, 0.25), marker, PlanStep(end="bye")]


def test_a_step_due_now_is_not_missed_by_float_rounding() -> None:
    _clock, _, driver = setup(step(1), step(2, 0.1))
    driver.start()
    driver.pop_due()
    assert driver.pop_due(100.1 - 1e-12) == [step(2, 0.1)]


def test_negative_delays_count_as_zero() -> None:
    _clock, _, driver = setup(step(1), step(2, -5.0))
    driver.start()
    assert driver.pop_due() == [step(1), step(2, -5.0)]


def test_an_idle_plan_is_asked_again_when_workers_change() -> None:
    clock, planner, driver = setup(step(1))
    driver.start()
    driver.pop_due()
    assert driver.idle
    planner.steps = [step(2, 3.0)]
    clock.advance(10)
    driver.add_worker(LocalNode("w2"))
    assert planner.workers == ["w2"] and driver.next_due() == 113.0
    planner.steps = [step(3)]
    driver.add_worker(LocalNode("w3"))  # a step is pending: the plan is not asked again
    assert driver.next_due() == 113.0 and len(planner.asked_at) == 3


def test_removing_a_worker_drops_it_from_the_pending_step() -> None:
    two = PlanStep({"a": 1, "b": 2}, 1.0, rebalance=True)
    clock, planner, driver = setup(step(1), two)
    planner.workers = ["a", "b"]
    driver.start()
    driver.pop_due()
    driver.remove_worker("b")
    clock.advance(1)
    (popped,) = driver.pop_due()
    assert dict(popped.payloads) == {"a": 1} and popped.rebalance and popped.delay == 1.0


def test_removing_many_workers_at_once_trims_the_pending_step_once() -> None:
    four = PlanStep({"a": 1, "b": 2, "c": 3, "d": 4}, 1.0, rebalance=True)
    clock, planner, driver = setup(step(1), four)
    planner.workers = ["a", "b", "c", "d"]
    driver.start()
    driver.pop_due()
    driver.remove_workers(["b", "d"])
    assert planner.workers == ["a", "c"]
    clock.advance(1)
    (popped,) = driver.pop_due()
    assert dict(popped.payloads) == {"a": 1, "c": 3} and popped.rebalance and popped.delay == 1.0


def test_retarget_replaces_the_pending_step() -> None:
    clock, planner, driver = setup(step(1), step(2, 5.0), step(3, 5.0))
    model = ClosedUsers([], 1, 1)
    assert driver.retarget(model)  # before start: handed over, nothing fetched
    assert planner.asked_at == []
    driver.start()
    driver.pop_due()
    clock.advance(1)
    assert driver.retarget(model)
    assert driver.next_due() == 106.0  # step 2 was dropped; step 3 is due 5 s after now
    planner.accept = False
    assert not driver.retarget(model)
    assert driver.next_due() == 106.0  # refused: the plan goes on
    assert planner.retargets == [model, model, model]


def test_a_runaway_planner_is_an_error() -> None:
    clock = FakeClock()

    class Forever(Scripted):
        def __next__(self) -> PlanStep:
            return PlanStep()  # an endless zero-delay wake-up

    driver = StepDriver(Forever(clock, []), clock)
    driver.start()
    with pytest.raises(RuntimeError, match="Forever yielded over"):
        driver.pop_due()


async def test_run_awaits_each_step_on_the_clock_and_returns_when_idle() -> None:
    clock, _, driver = setup(step(1), step(2, 1.0), PlanStep(delay=1.0), step(3, 0.5))
    applied: list[tuple[float, Any]] = []

    async def apply(s: PlanStep) -> None:
        applied.append((clock.monotonic(), s.payloads["w"]))

    task = asyncio.create_task(driver.run(apply))
    await asyncio.sleep(0)  # the task starts at 100.0
    await clock.run_for(5, step=0.25)
    await asyncio.wait_for(task, 1)
    assert applied == [(100.0, 1), (101.0, 2), (102.5, 3)]


async def test_time_spent_applying_is_absorbed_by_the_next_delay() -> None:
    clock, _, driver = setup(step(1), step(2, 1.0), step(3, 1.0))
    applied: list[float] = []

    async def slow_apply(s: PlanStep) -> None:
        applied.append(clock.monotonic())
        await clock.sleep(0.75)  # e.g. users finishing their task within stop_timeout

    task = asyncio.create_task(driver.run(slow_apply))
    await asyncio.sleep(0)
    await clock.run_for(4, step=0.25)
    await asyncio.wait_for(task, 1)
    assert applied == [100.0, 101.0, 102.0]


async def test_cancelling_run_abandons_the_plan() -> None:
    clock, _, driver = setup(step(1), step(2, 1.0))
    applied: list[Any] = []

    async def apply(s: PlanStep) -> None:
        applied.append(s)

    task = asyncio.create_task(driver.run(apply))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    clock.advance(5)
    assert applied == [step(1)] and driver.next_due() == 101.0


@dataclass(frozen=True)
class Worker:
    id: str
    hostname: str = "h"


def test_a_timer_driven_caller_over_closed_users() -> None:
    """What the master's controller does: arm a timer for next_due(), pop when it fires, never sleep."""

    class Shopper:
        weight = 1

    clock = FakeClock(start=0.0)
    model = ClosedUsers([Shopper], 6, 2)
    driver = StepDriver(model.planner([Worker("w1"), Worker("w2", "h2")], PlanContext(clock)), clock)
    driver.start()
    timeline: list[tuple[float, dict[str, Any], bool]] = []
    while (due := driver.next_due()) is not None:
        clock.advance(due - clock.monotonic())  # the timer fires
        for s in driver.pop_due():
            timeline.append((clock.monotonic(), dict(s.payloads), s.complete))
    assert [t for t, _, _ in timeline] == [0.0, 1.0, 2.0, 2.0]
    assert timeline[2][1] == {"w1": {"Shopper": 3}, "w2": {"Shopper": 3}}
    assert timeline[-1][2]  # the complete marker comes with the last step


def test_a_master_like_controller_with_workers_joining_and_lost_mid_run() -> None:
    """Timers only: a ramp over two workers, a third joining mid-ramp, one lost after it completed."""

    class Shopper:
        weight = 1

    clock = FakeClock(start=0.0)
    driver = StepDriver(
        ClosedUsers([Shopper], 12, 4).planner([Worker("w1"), Worker("w2", "h2")], PlanContext(clock)), clock
    )
    driver.start()
    running: dict[str, int] = {}
    markers: list[tuple[float, bool]] = []

    def fire_timers_until(t: float) -> None:
        while (due := driver.next_due()) is not None and due <= t:
            clock.advance(due - clock.monotonic())
            for s in driver.pop_due():
                running.update({wid: p["Shopper"] for wid, p in s.payloads.items()})
                if s.complete:
                    markers.append((clock.monotonic(), s.rebalance))
        clock.advance(max(0.0, t - clock.monotonic()))

    fire_timers_until(1.5)
    assert sum(running.values()) == 8
    driver.add_worker(Worker("w3", "h3"), clock.monotonic())
    fire_timers_until(10)
    assert running == {"w1": 4, "w2": 4, "w3": 4}
    assert [rebalance for _, rebalance in markers] == [False]  # the join folded into the ramp
    driver.remove_worker("w2", clock.monotonic())
    running.pop("w2")
    fire_timers_until(20)
    assert running == {"w1": 6, "w3": 6}
    assert markers[-1][1] is True  # that one was a rebalance
    assert driver.idle
