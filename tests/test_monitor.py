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


@pytest.mark.slow  # blocks the real loop for about a second
async def test_a_blocked_loop_is_measured_early_and_named_in_the_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # a short run: the monitor's first samples come after 1 s, then 2 s, and a final one at stop, so a
    # blocking task is named even in a run far shorter than the 10-s interval
    env = Environment(events=Events(), user_classes=[Burner])
    samples: list[tuple[float, int, float]] = []
    env.events.usage_monitor.add_listener(
        lambda environment, cpu_usage, memory_usage: samples.append(
            (cpu_usage, memory_usage, environment.runner.monitor.latest.loop_lag)
        )
    )
    runner = env.create_local_runner()
    with caplog.at_level(logging.WARNING):
        await runner.start(1, 100)
        await asyncio.sleep(1.3)
        runner.monitor.sample_now()
        await runner.quit()
    assert len(samples) >= 2
    assert all(mem > 10_000_000 for _, mem, _ in samples)
    assert any(lag > 0.1 for _, _, lag in samples)
    assert any("Event-loop lag" in w for w in runner.monitor.summary_warnings())


def test_a_saturated_cpu_warns_once_and_again_in_the_summary(caplog: pytest.LogCaptureFixture) -> None:
    # CPU readings are fed directly: a busy shared machine cannot make a real burner reach 90 %
    env = Environment(events=Events(), user_classes=[Burner])
    warnings: list[float] = []
    env.events.cpu_warning.add_listener(lambda environment, cpu_usage, message: warnings.append(cpu_usage))
    runner = env.create_local_runner()
    with caplog.at_level(logging.WARNING):
        for cpu in (40.0, 96.0, 99.0, 50.0):
            runner.monitor.sample(cpu, 20_000_000, 0.0)
    assert warnings == [96.0, 99.0]  # the event fires on every saturated sample
    cpu_lines = [
        r.message for r in caplog.records if "CPU usage" in r.message and "may be distorted" in r.message
    ]
    assert len(cpu_lines) == 1  # the log line only once per test
    [summary] = runner.monitor.summary_warnings()
    assert "peak 99%" in summary


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
