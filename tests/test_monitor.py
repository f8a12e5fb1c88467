"""The load generator watches itself: CPU, memory and event-loop lag, with warnings once per test."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from horde import User, task
from horde.env import Environment
from horde.event import Events


class Burner(User):
    @task
    async def burn(self) -> None:
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:  # blocks the loop: CPU at 100 %, loop lag ~0.3 s
            pass
        await asyncio.sleep(0)


class Idle(User):
    @task
    async def rest(self) -> None:
        await asyncio.sleep(0.05)


@pytest.mark.slow  # burns real CPU for 1.6 s
async def test_saturated_generator_warns_once_and_in_the_summary(caplog: pytest.LogCaptureFixture) -> None:
    env = Environment(events=Events(), user_classes=[Burner])
    samples: list[tuple[float, int, float]] = []
    warnings: list[float] = []
    env.events.usage_monitor.add_listener(
        lambda environment, cpu_usage, memory_usage, loop_lag: samples.append(
            (cpu_usage, memory_usage, loop_lag)
        )
    )
    env.events.cpu_warning.add_listener(lambda environment, cpu_usage, message: warnings.append(cpu_usage))
    runner = env.create_local_runner()
    runner.monitor.interval = 0.5
    with caplog.at_level(logging.WARNING):
        await runner.start(1, 100)
        await asyncio.sleep(1.6)
        await runner.quit()
    assert len(samples) >= 2
    assert all(mem > 10_000_000 for _, mem, _ in samples)
    assert warnings and max(warnings) > 90
    assert any(lag > 0.1 for _, _, lag in samples)
    cpu_lines = [
        r.message for r in caplog.records if "may be distorted" in r.message and "CPU usage" in r.message
    ]
    assert len(cpu_lines) == 2  # once when it happened, once more in the stop summary
    assert runner.monitor.summary_warnings() and "peak" in runner.monitor.summary_warnings()[0]


@pytest.mark.slow  # real time
async def test_idle_generator_does_not_warn() -> None:
    env = Environment(events=Events(), user_classes=[Idle])
    runner = env.create_local_runner()
    runner.monitor.interval = 0.3
    await runner.start(2, 100)
    await asyncio.sleep(0.8)
    await runner.quit()
    assert runner.monitor.summary_warnings() == []
    assert runner.monitor.latest.memory_rss > 0


def test_warnings_are_per_test() -> None:
    env = Environment(events=Events(), user_classes=[Idle])
    runner = env.create_local_runner()
    runner.monitor.sample(95.0, 1, 0.0)
    runner.monitor.sample(97.0, 1, 0.2)
    assert runner.monitor.cpu_warning_emitted and runner.monitor.lag_warning_emitted
    assert len(runner.monitor.summary_warnings()) == 2
    runner.monitor.reset_warnings()
    assert runner.monitor.summary_warnings() == []
