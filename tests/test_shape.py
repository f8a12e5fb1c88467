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
