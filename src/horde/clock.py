"""The time source every time-dependent piece reads, so tests can drive time by hand.

Dispatcher pacing, stats windows, heartbeats and shapes all take a :class:`Clock`. Production code
uses :data:`SYSTEM_CLOCK`; tests pass a :class:`FakeClock` and advance it, so they neither sleep nor
flake on a loaded machine.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time


class Clock:
    """Real time: wall clock for timestamps, monotonic clock for durations, asyncio for sleeping."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch (timestamps in reports and per-second counters)."""
        return time.time()

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes backwards (durations, pacing)."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


SYSTEM_CLOCK = Clock()


class FakeClock(Clock):
    """A clock that moves only when told to; sleepers wake when ``advance`` passes their deadline.

    >>> clock = FakeClock(start=1000.0)
    >>> clock.advance(2.5); clock.monotonic()
    1002.5
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        await fut

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has passed."""
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    async def run_for(self, seconds: float, step: float = 0.01) -> None:
        """Advance in small steps, letting woken tasks run between steps."""
        end = self._now + seconds
        while self._now < end - 1e-12:
            self.advance(min(step, end - self._now))
            for _ in range(5):
                await asyncio.sleep(0)
