"""How a task's exceptions reach the log: the first of each kind with its traceback, then a count.

A broken task raises thousands of times a second across thousands of users; logging each one drowns the
console and costs CPU. One line (with the traceback) per distinct failure — the exception type and the
place it was raised — is enough to fix it; repeats are counted and summarised at most every
``interval`` seconds. The full table, with counts, is in the final report either way.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field

from horde.clock import SYSTEM_CLOCK, Clock

logger = logging.getLogger("horde.user")

SUMMARY_INTERVAL = 10.0


@dataclass
class UserErrorLog:
    clock: Clock = SYSTEM_CLOCK
    interval: float = SUMMARY_INTERVAL
    seen: dict[tuple[str, str, str, int], int] = field(default_factory=dict)
    _pending: int = 0
    _last_summary: float | None = None

    def record(self, user_class: str, error: BaseException) -> None:
        """Log ``error`` raised by a task of ``user_class`` (first of its kind in full, the rest counted)."""
        frames = traceback.extract_tb(error.__traceback__)
        where = frames[-1] if frames else None
        key = (
            user_class,
            type(error).__name__,
            where.filename if where else "",
            where.lineno or 0 if where else 0,
        )
        count = self.seen.get(key, 0)
        self.seen[key] = count + 1
        now = self.clock.monotonic()
        if count == 0:
            text = "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip()
            logger.error(
                "%s in %s: %s (repeats are counted, not logged)\n%s",
                type(error).__name__,
                user_class,
                error,
                text,
            )
            self._last_summary = self._last_summary if self._last_summary is not None else now
            return
        self._pending += 1
        if self._last_summary is None or now - self._last_summary >= self.interval:
            kinds = sum(1 for n in self.seen.values() if n > 1)
            logger.error(
                "Tasks raised %d more time(s) since the last summary (%d distinct kind(s) repeating; "
                "the final report has the counts)",
                self._pending,
                kinds,
            )
            self._pending = 0
            self._last_summary = now
