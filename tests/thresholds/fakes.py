"""Small stand-ins for the session's TestRun and RunResult, and a stats builder on a fake clock."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from horde.clock import FakeClock
from horde.stats import RequestStats, StatsSnapshot, take_snapshot

T0 = 1_700_000_000.0


@dataclass
class FakeRunner:
    state: str = "running"


@dataclass
class FakeEnv:
    stats: RequestStats
    runner: FakeRunner = field(default_factory=FakeRunner)


@dataclass
class FakeRun:
    env: FakeEnv
    options: Any = None
    history: Any = None

    def status(self) -> Any:
        return None


@dataclass(frozen=True)
class FakeResult:
    stats: RequestStats
    snapshot: StatsSnapshot
    start_time: float = T0
    end_time: float = T0 + 60.0
    thresholds: tuple[Any, ...] = ()
    host: str | None = "http://127.0.0.1:8080"
    locustfile: str | None = "locustfile.py"
    stop_reason: str | None = None
    exit_code: int = 0

    @property
    def duration(self) -> float:
        return self.end_time - self.start_time


def new_stats(start: float = T0) -> tuple[FakeClock, RequestStats]:
    clock = FakeClock(start)
    return clock, RequestStats(clock)


def record(
    stats: RequestStats,
    clock: FakeClock,
    method: str,
    name: str,
    times: Iterable[float | None],
    *,
    every: float = 0.01,
    error: object = None,
) -> None:
    """One request per value (ms; ``None``: untimed), ``every`` seconds apart."""
    for ms in times:
        clock.advance(every)
        stats.record(method, name, ms, 0, error=error)


def snap(stats: RequestStats) -> StatsSnapshot:
    return take_snapshot(stats, user_count=1)
