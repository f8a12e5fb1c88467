"""One immutable, JSON-ready picture of a :class:`~horde.stats.entries.RequestStats` at one instant.

The run session takes one snapshot per tick (once per second) and every consumer reads that same object:
the console table, the CSV files, the history behind the charts, Prometheus and thresholds. So the
percentile walks and rate windows are computed once per tick, not once per output, and all outputs agree
on the numbers of a given second.

What each number means (see :mod:`horde.stats.entries` for the windows):

* counts, avg/min/max/median and ``percentiles`` are **cumulative** (since the start or the last reset);
* ``current_rps``/``current_fail_per_sec`` are the ~10-s window ending ``current_rps_lag`` s before the newest
  request; ``current_percentiles`` are over the samples recorded in the last ~10 s, ``None`` where that
  window is empty or the stats keep no window (a worker's);
* ``total_rps``/``total_fail_per_sec`` are whole-run averages.

Response times are milliseconds (``0.0`` when there is no timed request, never ``None`` or NaN, except the
``None`` of an empty current window). A snapshot of a master's merged stats is built exactly like a local
one, so everything downstream is identical in both modes.

>>> from horde.clock import FakeClock
>>> from horde.stats import RequestStats
>>> stats = RequestStats(FakeClock(1000.0))
>>> stats.record("GET", "/", 12.0, 100)
>>> snap = take_snapshot(stats, user_count=1, user_classes_count={"Web": 1})
>>> snap.total.num_requests, snap.entries[0].name, snap.entries[0].percentiles[0.5]
(1, '/', 12.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from horde.stats.entries import RequestStats, StatsEntry


def percentile_key(p: float) -> str:
    """The JSON key of a quantile: ``0.5 → "0.5"``, ``1.0 → "1.0"`` (the ``--json`` report's keys)."""
    return str(float(p))


@dataclass(frozen=True, slots=True)
class EntrySnapshot:
    """One entry (or the ``Aggregated`` total: name ``"Aggregated"``, method ``""``) at snapshot time."""

    method: str
    name: str
    num_requests: int
    num_failures: int
    num_none_requests: int
    avg_response_time: float
    min_response_time: float
    max_response_time: float
    median_response_time: float
    avg_content_length: float
    total_content_length: int
    current_rps: float
    current_fail_per_sec: float
    total_rps: float
    total_fail_per_sec: float
    fail_ratio: float
    start_time: float
    last_request_timestamp: float | None
    #: Cumulative percentiles (ms) keyed by quantile, in the order of ``PERCENTILES_TO_REPORT``.
    percentiles: dict[float, float]
    #: Percentiles (ms) of the last ~10 s; ``None`` where that window holds no timed sample.
    current_percentiles: dict[float, float | None]

    @property
    def timed_requests(self) -> int:
        """Requests with a response time (percentiles and averages are over these)."""
        return self.num_requests - self.num_none_requests

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "name": self.name,
            "num_requests": self.num_requests,
            "num_failures": self.num_failures,
            "num_none_requests": self.num_none_requests,
            "avg_response_time": self.avg_response_time,
            "min_response_time": self.min_response_time,
            "max_response_time": self.max_response_time,
            "median_response_time": self.median_response_time,
            "avg_content_length": self.avg_content_length,
            "total_content_length": self.total_content_length,
            "current_rps": self.current_rps,
            "current_fail_per_sec": self.current_fail_per_sec,
            "total_rps": self.total_rps,
            "total_fail_per_sec": self.total_fail_per_sec,
            "fail_ratio": self.fail_ratio,
            "start_time": self.start_time,
            "last_request_timestamp": self.last_request_timestamp,
            "percentiles": {percentile_key(p): v for p, v in self.percentiles.items()},
            "current_percentiles": {percentile_key(p): v for p, v in self.current_percentiles.items()},
        }


@dataclass(frozen=True, slots=True)
class ErrorSnapshot:
    """One row of the error table (failures grouped by method, name and error text)."""

    method: str
    name: str
    error: str
    occurrences: int
    first_seen: float | None
    last_seen: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "name": self.name,
            "error": self.error,
            "occurrences": self.occurrences,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """Everything a report shows about one instant of a run (see the module docstring)."""

    #: Epoch seconds at which the snapshot was taken.
    time: float
    user_count: int
    user_classes_count: dict[str, int]
    #: Every entry, sorted by (name, method); entries without requests are included (Locust lists them).
    entries: tuple[EntrySnapshot, ...]
    total: EntrySnapshot
    #: Error rows, most frequent first (then by method, name, error).
    errors: tuple[ErrorSnapshot, ...]

    @property
    def percentiles(self) -> tuple[float, ...]:
        """The quantiles the percentile dicts hold, in report order."""
        return tuple(self.total.percentiles)

    @property
    def rows(self) -> tuple[EntrySnapshot, ...]:
        """The entries, then the ``Aggregated`` total: the row order of every table and CSV file."""
        return (*self.entries, self.total)

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "user_count": self.user_count,
            "user_classes_count": dict(self.user_classes_count),
            "stats": [e.to_dict() for e in self.entries],
            "total": self.total.to_dict(),
            "errors": [e.to_dict() for e in self.errors],
        }


def entry_snapshot(entry: StatsEntry, percentiles: Sequence[float]) -> EntrySnapshot:
    """Freeze one live entry; ``percentiles`` are the quantiles of both percentile dicts."""
    cumulative = entry.get_response_time_percentiles(percentiles)
    # The median is one of the reported percentiles unless a locustfile removed 0.5; avoid a second walk.
    median = cumulative[percentiles.index(0.5)] if 0.5 in percentiles else entry.median_response_time
    current: Sequence[float | None] | None = None
    if entry.use_response_times_cache:
        current = entry.get_current_response_time_percentiles(percentiles)
    if current is None:
        current = [None] * len(percentiles)
    return EntrySnapshot(
        method=entry.method,
        name=entry.name,
        num_requests=entry.num_requests,
        num_failures=entry.num_failures,
        num_none_requests=entry.num_none_requests,
        avg_response_time=entry.avg_response_time,
        min_response_time=entry.min_response_time or 0.0,
        max_response_time=entry.max_response_time,
        median_response_time=median,
        avg_content_length=entry.avg_content_length,
        total_content_length=entry.total_content_length,
        current_rps=entry.current_rps,
        current_fail_per_sec=entry.current_fail_per_sec,
        total_rps=entry.total_rps,
        total_fail_per_sec=entry.total_fail_per_sec,
        fail_ratio=entry.fail_ratio,
        start_time=entry.start_time,
        last_request_timestamp=entry.last_request_timestamp,
        percentiles=dict(zip(percentiles, cumulative, strict=True)),
        current_percentiles=dict(zip(percentiles, current, strict=True)),
    )


def take_snapshot(
    stats: RequestStats,
    *,
    user_count: int,
    user_classes_count: Mapping[str, int] | None = None,
    now: float | None = None,
    percentiles: Sequence[float] | None = None,
) -> StatsSnapshot:
    """Freeze ``stats`` (local or a master's merged stats) together with the user counts.

    ``now`` is the snapshot's timestamp (default: the stats' clock). The windows themselves are anchored
    as :mod:`horde.stats.entries` describes. ``percentiles`` defaults to ``horde.stats.PERCENTILES_TO_REPORT``,
    read at call time so a locustfile that overrides it changes every report.
    """
    if percentiles is None:
        import horde.stats

        percentiles = horde.stats.PERCENTILES_TO_REPORT
    qs = tuple(float(p) for p in percentiles)
    entries = tuple(entry_snapshot(e, qs) for e in stats.sorted_entries())
    errors = tuple(
        ErrorSnapshot(row.method, row.name, row.error, row.occurrences, row.first_seen, row.last_seen)
        for row in sorted(stats.errors.values(), key=lambda r: (-r.occurrences, r.method, r.name, r.error))
    )
    return StatsSnapshot(
        time=stats.clock.time() if now is None else now,
        user_count=user_count,
        user_classes_count=dict(user_classes_count or {}),
        entries=entries,
        total=entry_snapshot(stats.total, qs),
        errors=errors,
    )


__all__ = [
    "EntrySnapshot",
    "ErrorSnapshot",
    "StatsSnapshot",
    "entry_snapshot",
    "percentile_key",
    "take_snapshot",
]
