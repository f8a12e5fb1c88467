"""Request statistics: per-entry counters, exact-merge histograms, error table, worker/master wire format,
the per-tick snapshot every report reads (:mod:`~horde.stats.snapshot`) and the run's history
(:mod:`~horde.stats.history`).

See :mod:`horde.stats.histogram` for the bucket layout and its error bound, and
:mod:`horde.stats.entries` for the rate and window definitions.
"""

from horde.stats.entries import (
    CURRENT_WINDOW,
    DEFAULT_MAX_ENTRIES,
    DEFAULT_MAX_ERRORS,
    DEFAULT_PER_SECOND_RETENTION,
    DEFAULT_RPS_LAG,
    OVERFLOW_ENTRY,
    RequestStats,
    StatsEntry,
)
from horde.stats.errors import StatsError
from horde.stats.histogram import HISTOGRAM_SCHEME, MAX_RELATIVE_ERROR, Histogram
from horde.stats.history import HistoryRow, StatsHistory
from horde.stats.library import (
    CONSOLE_STATS_INTERVAL_SEC,
    HISTORY_STATS_INTERVAL_SEC,
    stats_history,
    stats_printer,
)
from horde.stats.snapshot import EntrySnapshot, ErrorSnapshot, StatsSnapshot, take_snapshot
from horde.stats.wire import StatsPayloadError

#: Percentiles the reports show (Locust's set).
PERCENTILES_TO_REPORT: tuple[float, ...] = (0.5, 0.66, 0.75, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0)

__all__ = [
    "CONSOLE_STATS_INTERVAL_SEC",
    "CURRENT_WINDOW",
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_MAX_ERRORS",
    "DEFAULT_PER_SECOND_RETENTION",
    "DEFAULT_RPS_LAG",
    "HISTOGRAM_SCHEME",
    "HISTORY_STATS_INTERVAL_SEC",
    "MAX_RELATIVE_ERROR",
    "OVERFLOW_ENTRY",
    "PERCENTILES_TO_REPORT",
    "EntrySnapshot",
    "ErrorSnapshot",
    "Histogram",
    "HistoryRow",
    "RequestStats",
    "StatsEntry",
    "StatsError",
    "StatsHistory",
    "StatsPayloadError",
    "StatsSnapshot",
    "stats_history",
    "stats_printer",
    "take_snapshot",
]
