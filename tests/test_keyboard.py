"""Keyboard control (w/W/s/S) re-targets a running test through the run session."""

from __future__ import annotations

import asyncio

from horde import User, task
from horde.cli.keyboard import apply_key, step_for
from horde.clock import FakeClock
from horde.env import Environment
from horde.event import Events
from horde.session import StartRequest, TestRun


class Idle(User):
    @task
    async def rest(self) -> None:
        await asyncio.sleep(0.01)


def test_keys_map_to_steps_and_never_below_zero() -> None:
    assert [step_for(k, 5) for k in "wWsS"] == [6, 15, 4, 0]
    assert step_for("x", 5) is None
    assert step_for("s", 0) == 0


async def test_a_key_edits_the_running_test_and_is_ignored_when_none_runs() -> None:
    clock = FakeClock()
    env = Environment(user_classes=[Idle], events=Events(), clock=clock)
    env.create_local_runner()
    run = TestRun(env)
    await run.open()
    apply_key(run, "W")  # nothing runs yet: nothing happens
    assert run.status().state == "ready"
    run.start(StartRequest(user_count=2, spawn_rate=100))
    for _ in range(20):
        clock.advance(0.05)
        await asyncio.sleep(0.002)
    apply_key(run, "W")
    apply_key(run, "s")
    for _ in range(20):
        clock.advance(0.05)
        await asyncio.sleep(0.002)
    assert run.status().target_user_count == 11
    assert run.status().user_count == 11
    assert [m["kind"] for m in run.markers] == ["start", "edit", "edit"]
    await run.close()
