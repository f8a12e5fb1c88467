"""The blocking-call watchdog names the line of user code that held the event loop, once per place."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from horde.blocking import BlockingDetector


def blocking_helper(seconds: float) -> None:
    time.sleep(seconds)


def cpu_helper(seconds: float) -> int:
    end, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        n += 1
    return n


async def test_a_sleep_in_user_code_is_found_once_per_place_with_the_fix(
    caplog: pytest.LogCaptureFixture,
) -> None:
    detector = BlockingDetector(asyncio.get_running_loop())
    with caplog.at_level(logging.WARNING):
        detector.start()
        try:
            await asyncio.sleep(0.05)
            for _ in range(3):
                blocking_helper(0.25)
                await asyncio.sleep(0.08)
        finally:
            detector.stop()
    [line] = detector.summary()
    assert "test_blocking.py:15 (blocking_helper)" in line
    assert "`time.sleep(seconds)`" in line and "await asyncio.sleep" in line
    assert "(3x" in line
    assert sum("blocked the event loop" in r.message for r in caplog.records) == 1  # warned once


async def test_cpu_work_gets_the_to_thread_fix_and_short_turns_are_not_reported() -> None:
    detector = BlockingDetector(asyncio.get_running_loop())
    detector.start()
    try:
        for _ in range(10):
            cpu_helper(0.01)  # 10 ms slices: a busy loop, not a blocked one
            await asyncio.sleep(0)
        assert detector.summary() == []
        cpu_helper(0.3)
        await asyncio.sleep(0.08)
    finally:
        detector.stop()
    [line] = detector.summary()
    assert "cpu_helper" in line and "asyncio.to_thread" in line
