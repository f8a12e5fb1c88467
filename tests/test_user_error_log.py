"""A task that keeps raising is logged once with its traceback, then summarised, never flooded."""

from __future__ import annotations

import logging

import pytest

from horde.clock import FakeClock
from horde.user.error_log import UserErrorLog


def boom(n: int) -> None:
    raise KeyError(f"missing {n}")


def other() -> None:
    raise ValueError("bad")


def raised(fn: object, *args: object) -> BaseException:
    try:
        fn(*args)  # type: ignore[operator]
    except Exception as e:
        return e
    raise AssertionError("did not raise")


def test_one_line_per_kind_then_a_periodic_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    log = UserErrorLog(clock, interval=10.0)
    with caplog.at_level(logging.ERROR):
        for i in range(1000):
            log.record("Shop", raised(boom, i))
            clock.advance(0.001)
        log.record("Shop", raised(other))
        clock.advance(10)
        log.record("Shop", raised(boom, 0))
    full = [r for r in caplog.records if "repeats are counted" in r.message]
    assert len(full) == 2  # KeyError at boom, ValueError at other
    assert "Traceback" in full[0].message and "boom" in full[0].message
    summaries = [r for r in caplog.records if "more time(s)" in r.message]
    assert len(summaries) == 1 and "1000 more time(s)" in summaries[0].message
    assert len(caplog.records) == 3
