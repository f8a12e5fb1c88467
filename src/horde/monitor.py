"""Watches the load generator itself: CPU, memory and event-loop lag.

A saturated generator produces wrong numbers (response times include the time requests waited for the
CPU), so horde measures itself and says so, once per test and again in the final summary.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from horde.env import Environment

logger = logging.getLogger(__name__)

CPU_MONITOR_INTERVAL = 10.0
CPU_WARNING_THRESHOLD = 90.0
LOOP_LAG_WARNING_THRESHOLD = 0.1
LAG_PROBE_INTERVAL = 0.25


@dataclass
class UsageSample:
    cpu_percent: float = 0.0
    memory_rss: int = 0
    loop_lag: float = 0.0  # worst lateness of the loop during the last interval, seconds


@dataclass
class UsageMonitor:
    """Samples this process every ``interval`` seconds and fires ``usage_monitor`` / ``cpu_warning``."""

    environment: Environment
    interval: float = CPU_MONITOR_INTERVAL
    latest: UsageSample = field(default_factory=UsageSample)
    cpu_warning_emitted: bool = False
    lag_warning_emitted: bool = False
    worst_cpu: float = 0.0
    worst_lag: float = 0.0
    _max_lag: float = 0.0
    _process: psutil.Process | None = None

    def reset_warnings(self) -> None:
        """Forget this test's warnings (called at each fresh test)."""
        self.cpu_warning_emitted = self.lag_warning_emitted = False
        self.worst_cpu = self.worst_lag = 0.0

    async def run(self) -> None:
        self._process = psutil.Process()
        self._process.cpu_percent()  # the first call only sets the reference point
        probe = asyncio.create_task(self._probe_lag())
        try:
            # 1, 2, 4, 8 s, then every ``interval``: a short run is still measured while it runs
            delay = min(1.0, self.interval)
            while True:
                await self.environment.clock.sleep(delay)
                self.sample_now()
                delay = min(delay * 2, self.interval)
        finally:
            probe.cancel()
            await asyncio.gather(probe, return_exceptions=True)

    async def _probe_lag(self) -> None:
        # lag = how late a short sleep wakes up: the time ready callbacks waited for the loop
        while True:
            before = time.perf_counter()
            await asyncio.sleep(LAG_PROBE_INTERVAL)
            lag = time.perf_counter() - before - LAG_PROBE_INTERVAL
            if lag > self._max_lag:
                self._max_lag = lag

    def sample_now(self) -> None:
        """Take a reading now (also the final one when a test stops, so a saturated generator is always
        named in the summary, however short the run)."""
        if self._process is None:
            return
        self.sample(self._process.cpu_percent(), self._process.memory_info().rss, self._max_lag)
        self._max_lag = 0.0

    def sample(self, cpu: float, rss: int, lag: float) -> None:
        """Record one reading; public so tests and the worker heartbeat path can feed it directly."""
        self.latest = UsageSample(cpu, rss, lag)
        self.worst_cpu = max(self.worst_cpu, cpu)
        self.worst_lag = max(self.worst_lag, lag)
        events = self.environment.events
        # Locust's arguments exactly (a listener written for Locust may not take **kwargs); the loop lag is
        # ``environment.runner.monitor.latest.loop_lag``
        events.usage_monitor.fire(environment=self.environment, cpu_usage=cpu, memory_usage=rss)
        if cpu > CPU_WARNING_THRESHOLD:
            message = (
                f"CPU usage of this load generator reached {cpu:.0f}% (above {CPU_WARNING_THRESHOLD:.0f}%): "
                "response times and rates may be distorted. Run more worker processes (--processes)."
            )
            events.cpu_warning.fire(environment=self.environment, cpu_usage=cpu, message=message)
            if not self.cpu_warning_emitted:
                self.cpu_warning_emitted = True
                logger.warning(message)
        if lag > LOOP_LAG_WARNING_THRESHOLD and not self.lag_warning_emitted:
            self.lag_warning_emitted = True
            logger.warning(
                "Event-loop lag of this load generator reached %.0f ms (above %.0f ms): results may be "
                "distorted; look for blocking calls in tasks or run more worker processes.",
                lag * 1000,
                LOOP_LAG_WARNING_THRESHOLD * 1000,
            )

    def summary_warnings(self) -> list[str]:
        """The warnings to repeat in the final summary (empty when the generator kept up)."""
        lines = []
        if self.cpu_warning_emitted:
            lines.append(
                f"CPU usage of the load generator exceeded {CPU_WARNING_THRESHOLD:.0f}% during the test "
                f"(peak {self.worst_cpu:.0f}%): results may be distorted."
            )
        if self.lag_warning_emitted:
            lines.append(
                f"Event-loop lag exceeded {LOOP_LAG_WARNING_THRESHOLD * 1000:.0f} ms during the test "
                f"(peak {self.worst_lag * 1000:.0f} ms): results may be distorted."
            )
        return lines
