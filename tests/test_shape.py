"""LoadTestShape drives the user count one tick per second; returning None ends the test."""

from __future__ import annotations

import asyncio

from horde import LoadTestShape, User, constant, task
from horde.clock import FakeClock
from horde.env import Environment


class Idle(User):
    wait_time = constant(600)

    @task
    async def rest(self) -> None: ...


class Other(Idle):
    pass


class Stages(LoadTestShape):
    stages = ((10, 4, None), (20, 2, None), (30, 3, [Other]))

    def tick(self):  # type: ignore[no-untyped-def]
        t = self.get_run_time()
        for end, users, classes in self.stages:
            if t < end:
                return (users, 100, classes) if classes else (users, 100)
        return None


async def run_until(clock: FakeClock, seconds: float) -> None:
    await clock.run_for(seconds, step=0.25)


async def test_shape_stages_and_end() -> None:
    clock = FakeClock()
    shape = Stages(clock=clock)
    env = Environment(user_classes=[Idle, Other], shape_class=shape, clock=clock)
    runner = env.create_local_runner()
    runner.start_shape()
    await run_until(clock, 5)
    assert runner.user_count == 4
    await run_until(clock, 10)
    assert runner.user_count == 2
    await run_until(clock, 10)
    # the third stage adds users only from Other; ramp-down before it kept the mix
    assert runner.user_count == 3 and runner.user_classes_count.get("Other", 0) >= 2
    await run_until(clock, 11)
    await asyncio.wait_for(runner.wait_stopped(), 1)
    assert runner.state == "stopped" and runner.stop_reason == "the load shape ended"
    await runner.quit()


async def test_a_shape_runs_on_the_environment_s_clock_whatever_it_was_built_with() -> None:
    clock = FakeClock()
    shape = Stages()  # the system clock by default
    env = Environment(user_classes=[Idle, Other], shape_class=shape, clock=clock)
    runner = env.create_local_runner()
    runner.start_shape()
    await run_until(clock, 31)
    await asyncio.wait_for(runner.wait_stopped(), 1)
    assert shape.clock is clock and runner.stop_reason == "the load shape ended"
    await runner.quit()


async def test_each_stage_completes_a_ramp_and_the_state_follows() -> None:
    clock = FakeClock()
    env = Environment(user_classes=[Idle, Other], shape_class=Stages(clock=clock), clock=clock)
    completed: list[int] = []
    env.events.spawning_complete.add_listener(lambda user_count: completed.append(user_count))
    runner = env.create_local_runner()
    runner.start_shape()
    await run_until(clock, 1)
    assert runner.state == "running" and runner.target_user_count == 4 and runner.spawn_rate == 100
    await run_until(clock, 10)
    assert completed == [4, 2] and runner.target_user_count == 2
    await runner.quit()


async def test_starting_the_shape_twice_is_ignored() -> None:
    clock = FakeClock()
    shape = Stages(clock=clock)
    env = Environment(user_classes=[Idle, Other], shape_class=shape, clock=clock)
    fired: list[str] = []
    env.events.test_start.add_listener(lambda environment: fired.append("start"))
    runner = env.create_local_runner()
    runner.start_shape()
    await run_until(clock, 5)
    runner.start_shape()
    await run_until(clock, 6)  # the first shape goes on: at 11 s its second stage holds
    assert runner.user_count == 2 and fired == ["start"]
    await runner.quit()


async def test_a_user_count_started_during_a_shape_takes_over() -> None:
    clock = FakeClock()
    env = Environment(user_classes=[Idle, Other], shape_class=Stages(clock=clock), clock=clock)
    runner = env.create_local_runner()
    runner.start_shape()
    await run_until(clock, 2)
    await runner.start(7, 100)
    await run_until(clock, 40)  # the shape's later stages and its end no longer apply
    assert runner.user_count == 7 and runner.state == "running" and runner.stop_reason is None
    await runner.quit()


async def test_a_shape_returning_nothing_at_once_ends_before_any_user() -> None:
    class Never(LoadTestShape):
        def tick(self):  # type: ignore[no-untyped-def]
            return None

    clock = FakeClock()
    env = Environment(user_classes=[Idle], shape_class=Never(), clock=clock)
    runner = env.create_local_runner()
    runner.start_shape()
    await asyncio.wait_for(runner.wait_stopped(), 1)
    assert runner.stop_reason == "the load shape ended" and runner.user_count == 0
    await runner.quit()
