"""Locust's library helpers ``stats_printer`` and ``stats_history`` (``from locust.stats import ...``), for
code that drives an Environment itself instead of using the ``horde`` command.

    asyncio.create_task(stats_printer(env.stats)())      # Locust: gevent.spawn(stats_printer(env.stats))
    asyncio.create_task(stats_history(env.runner))       # Locust: gevent.spawn(stats_history, env.runner)

Keep a reference to each task and cancel it when done (asyncio holds tasks weakly).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from horde.stats.entries import RequestStats
from horde.stats.history import StatsHistory
from horde.stats.snapshot import take_snapshot

#: Seconds between two tables of :func:`stats_printer` (Locust's CONSOLE_STATS_INTERVAL_SEC).
CONSOLE_STATS_INTERVAL_SEC = 2.0
#: Seconds between two points of :func:`stats_history` (Locust's HISTORY_STATS_INTERVAL_SEC).
HISTORY_STATS_INTERVAL_SEC = 1.0


def stats_printer(
    stats: RequestStats, interval: float = CONSOLE_STATS_INTERVAL_SEC
) -> Callable[[], Coroutine[Any, Any, None]]:
    """A coroutine function that prints the live statistics table every ``interval`` seconds, forever."""

    async def printer() -> None:
        from horde.reports.console import stats_table  # the console's own table, as the CLI prints it

        while True:
            snapshot = take_snapshot(stats, user_count=0)
            sys.stdout.write(stats_table(snapshot, current=True) + "\n")
            sys.stdout.flush()
            await asyncio.sleep(interval)

    return printer


async def stats_history(runner: Any, history: StatsHistory | None = None) -> StatsHistory:
    """Append one point a second to ``history`` (by default ``runner.stats_history``, created on first use)
    while the runner is not stopped, forever; the same points the web UI's charts and the HTML report use."""
    if history is None:
        history = getattr(runner, "stats_history", None)
        if history is None:
            history = StatsHistory(runner.environment.clock)
            runner.stats_history = history
    while True:
        if runner.state != "stopped":
            history.append(
                take_snapshot(
                    runner.environment.stats,
                    user_count=runner.user_count,
                    user_classes_count=dict(runner.user_classes_count),
                )
            )
        await asyncio.sleep(HISTORY_STATS_INTERVAL_SEC)
