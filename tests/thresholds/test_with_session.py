"""ThresholdOutput plugged into a real TestRun (LocalRunner, FakeClock) through the public Output seam.

This is the wiring the CLI does: the checker is one more output, its abort callback is ``run.stop``.
"""

from __future__ import annotations

import asyncio

from horde import User, task
from horde.clock import FakeClock
from horde.env import Environment
from horde.event import Events
from horde.session import StartRequest, TestRun
from horde.thresholds import ThresholdOutput, any_breached, parse_all


class Slow(User):
    """Reports one 50 ms request per task (manual reporting, no network)."""

    @task
    async def work(self) -> None:
        self.environment.events.request.fire(
            request_type="job", name="work", response_time=50.0, response_length=0, exception=None, context={}
        )
        await asyncio.sleep(0.001)


async def settle(clock: FakeClock, seconds: float) -> None:
    steps = max(1, int(seconds / 0.05))
    for _ in range(steps):
        clock.advance(seconds / steps)
        await asyncio.sleep(0.002)


def make_run(texts: list[str], **kw: object) -> tuple[TestRun, ThresholdOutput, FakeClock]:
    clock = FakeClock()
    env = Environment(user_classes=[Slow], events=Events(), clock=clock)
    env.create_local_runner()
    thresholds, problems = parse_all(texts)
    assert not problems
    run: TestRun
    checker = ThresholdOutput(thresholds, on_abort=lambda reason: run.stop(reason), **kw)  # type: ignore[arg-type]
    run = TestRun(env, outputs=[checker])
    return run, checker, clock


async def test_a_breach_after_the_grace_period_stops_the_test_with_the_reason() -> None:
    run, checker, clock = make_run(["avg<10", "requests>0"], abort=True, abort_after=3)
    await run.open()
    run.start(StartRequest(user_count=2, spawn_rate=100, run_time=60))
    await settle(clock, 2.5)
    assert run.status().state == "running" and checker.aborted is None
    assert "1 BREACHED avg<10 (50 ms)" in checker.status_line()
    await settle(clock, 2.0)
    await asyncio.wait_for(run.wait(), 5)
    assert checker.aborted == "threshold avg<10 breached: observed 50 ms"
    result = await run.close()
    assert result.stop_reason == "threshold avg<10 breached: observed 50 ms"
    verdicts = checker.result_verdicts(result)
    assert [v.status for v in verdicts] == ["fail", "pass"] and any_breached(verdicts)
    assert verdicts[1].observed == result.snapshot.total.num_requests  # the final totals


async def test_without_abort_the_run_goes_on_and_the_final_verdicts_are_kept() -> None:
    run, checker, clock = make_run(["avg<10"])
    await run.open()
    run.start(StartRequest(user_count=1, spawn_rate=100, run_time=3))
    await settle(clock, 4.0)
    await asyncio.wait_for(run.wait(), 5)
    result = await run.close()
    assert result.stop_reason == "the run time limit was reached"
    assert checker.aborted is None
    assert checker.final is not None and [v.ok for v in checker.final] == [False]
