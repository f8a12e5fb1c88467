"""Stand-ins for the session's TestRun and RunResult (outputs only read these fields)."""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass, field
from typing import Any

from horde.clock import FakeClock
from horde.runners.status import WorkerStatus
from horde.stats import RequestStats, StatsHistory, StatsSnapshot, take_snapshot

T0 = 1_700_000_000.0


@dataclass
class FakeEnv:
    clock: FakeClock
    stats: RequestStats
    host: str | None = "http://127.0.0.1:8080"
    runner: Any = None


@dataclass
class FakeStatus:
    workers: tuple[WorkerStatus, ...] = ()


@dataclass
class FakeRun:
    env: FakeEnv
    history: StatsHistory
    options: argparse.Namespace | None = None
    workers: tuple[WorkerStatus, ...] = ()

    def status(self) -> FakeStatus:
        return FakeStatus(self.workers)


@dataclass(frozen=True)
class FakeResult:
    start_time: float
    end_time: float
    user_count: int
    stats: RequestStats
    snapshot: StatsSnapshot
    history: StatsHistory
    user_classes_count: dict[str, int] = field(default_factory=dict)
    exceptions: tuple[dict[str, Any], ...] = ()
    workers: tuple[WorkerStatus, ...] = ()
    warnings: tuple[str, ...] = ()
    stop_reason: str | None = None
    exit_code: int = 0
    options: argparse.Namespace | None = None
    host: str | None = "http://127.0.0.1:8080"
    locustfile: str | None = "locustfile.py"
    thresholds: tuple[Any, ...] = ()

    @property
    def duration(self) -> float:
        return self.end_time - self.start_time


def make_run(seed: int = 1) -> FakeRun:
    clock = FakeClock(T0)
    stats = RequestStats(clock)
    return FakeRun(FakeEnv(clock, stats), StatsHistory(clock))


def drive(
    run: FakeRun, outputs: list[Any], seconds: int, *, rps: int = 20, seed: int = 1, users: int = 5
) -> None:
    """``seconds`` ticks of traffic on three names (one failing now and then), each output fed every tick."""
    rnd = random.Random(seed)
    clock, stats = run.env.clock, run.env.stats
    for _ in range(seconds):
        for i in range(rps):
            clock.advance(1 / rps)
            name = ("/", "/api/items", '/q?x="a,b"')[i % 3]
            method = "POST" if name == "/api/items" else "GET"
            error = ValueError('boom, "quoted"') if i % 7 == 3 else None
            stats.record(method, name, rnd.lognormvariate(3, 0.8), 1000 + i, error=error)
        snap = take_snapshot(stats, user_count=users, user_classes_count={"Web": users})
        run.history.append(snap)
        for out in outputs:
            out.on_tick(snap)


def finish(run: FakeRun, outputs: list[Any], **kwargs: Any) -> FakeResult:
    """The final result (snapshot of the stats as they are now), handed to every output's stop()."""
    clock, stats = run.env.clock, run.env.stats
    snap = take_snapshot(stats, user_count=5, user_classes_count={"Web": 5})
    result = FakeResult(
        start_time=T0,
        end_time=clock.time(),
        user_count=5,
        stats=stats,
        snapshot=snap,
        history=run.history,
        user_classes_count={"Web": 5},
        **kwargs,
    )
    for out in outputs:
        out.stop(result)
    return result
