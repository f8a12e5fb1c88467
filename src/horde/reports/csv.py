"""Locust's CSV files (``--csv PREFIX``), byte for byte, written from the per-tick snapshot.

Four files, with Locust's names, headers and column order (``locust/stats.py``), Python ``csv`` defaults
(comma, minimal quoting with doubled quotes, **CRLF**), UTF-8 without BOM:

* ``PREFIX_stats.csv`` — one row per entry (sorted by name, then method), then ``,Aggregated,…`` (empty
  Type). Rewritten every tick. ``Requests/s``/``Failures/s`` are whole-run rates; the percentile columns
  are cumulative.
* ``PREFIX_stats_history.csv`` — appended every tick: the Aggregated row, or with ``--csv-full-history``
  one row per entry then Aggregated, all with the same ``Timestamp`` (epoch s). ``Requests/s`` and
  ``Failures/s`` are the current (~10 s) rates with 6 decimals (Locust's ``"{:2f}"``).
* ``PREFIX_failures.csv`` — ``Method,Name,Error,Occurrences,First Seen,Last Seen`` (UTC ISO times).
* ``PREFIX_exceptions.csv`` — ``Count,Message,Traceback,Nodes`` (multi-line tracebacks in one quoted cell).

Number formats are Locust's: counts and the median and percentile columns are integers (ms, rounded),
averages, min, max, sizes and rates are Python ``str(float)``, and every percentile cell of an entry
without requests is ``N/A``. The percentile headers come from ``PERCENTILES_TO_REPORT`` (``50%`` … ``100%``).

Where horde differs from Locust, on purpose:

* **History percentiles are over the last ~10 s window**, in both modes and on every row. Locust writes
  the *cumulative* percentiles of the Aggregated row by default (issue #2377), current-window ones only
  with ``--csv-full-history``. The columns are the same, so scripts that parse Locust's history file parse
  this one; an empty window reads ``0`` as in Locust.
* **A final write at the end** (``stop``), on every way a run ends, so the final ``_stats.csv`` totals are
  exactly the console's and the JSON report's (Locust's files may miss the last second: #2299, #1806);
  ``_stats.csv`` and friends are replaced atomically (written beside, then renamed), so a reader never
  sees a half-written file; the history file is flushed every tick, not every 5 s.
* History rows are written while a test runs (one per tick), not also before it starts.
* ``_failures.csv`` rows are most frequent first (Locust orders them by a hash of the key).

The ``*_csv`` functions render one file as a string; the web UI serves ``/stats/requests/csv``,
``/stats/failures/csv`` and ``/exceptions/csv`` from them, and :func:`history_csv` renders a whole
:class:`~horde.stats.history.StatsHistory` (per-entry rows at its 10-s resolution).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from horde.reports.json import write_text
from horde.reports.output import check_writable_file
from horde.stats import RequestStats
from horde.stats.snapshot import EntrySnapshot, StatsSnapshot, take_snapshot

if TYPE_CHECKING:
    from horde.reports.output import RunInfo, RunResult
    from horde.stats.history import HistoryRow, StatsHistory

logger = logging.getLogger(__name__)

#: Seconds between two rewrites (Locust's ``CSV_STATS_INTERVAL_SEC``); ticks come about once a second.
CSV_STATS_INTERVAL_SEC = 1.0

STATS_COLUMNS = (
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
)
HISTORY_COLUMNS = ("Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s")
HISTORY_TOTAL_COLUMNS = (
    "Total Request Count",
    "Total Failure Count",
    "Total Median Response Time",
    "Total Average Response Time",
    "Total Min Response Time",
    "Total Max Response Time",
    "Total Average Content Size",
)
FAILURES_COLUMNS = ("Method", "Name", "Error", "Occurrences", "First Seen", "Last Seen")
EXCEPTIONS_COLUMNS = ("Count", "Message", "Traceback", "Nodes")
SUFFIXES = ("_stats.csv", "_stats_history.csv", "_failures.csv", "_exceptions.csv")


def readable_percentiles(percentiles: Iterable[float]) -> list[str]:
    """Locust's ``get_readable_percentiles``: ``0.5 → "50%"``, ``0.999 → "99.9%"``, ``1.0 → "100%"``."""
    return [f"{int(p * 100) if (p * 100).is_integer() else round(100 * p, 6)}%" for p in percentiles]


def _default_percentiles() -> tuple[float, ...]:
    import horde.stats

    return tuple(horde.stats.PERCENTILES_TO_REPORT)


def _render(rows: Iterable[Sequence[object]]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)  # the csv defaults are Locust's: comma, minimal quoting, CRLF
    return buf.getvalue()


def _ms_int(value: float | None) -> int:
    return round(value or 0)


def _percentile_cells(num_requests: int, values: Iterable[float | None]) -> list[object]:
    """Locust's ``_percentile_fields``: ``N/A`` everywhere for an entry without requests, else int ms."""
    values = list(values)
    if not num_requests:
        return ["N/A"] * len(values)
    return [_ms_int(v) for v in values]


def stats_header(percentiles: Sequence[float] | None = None) -> list[str]:
    qs = _default_percentiles() if percentiles is None else percentiles
    return [*STATS_COLUMNS, *readable_percentiles(qs)]


def _stats_row(e: EntrySnapshot) -> list[object]:
    return [
        e.method,
        e.name,
        e.num_requests,
        e.num_failures,
        _ms_int(e.median_response_time),
        e.avg_response_time,
        e.min_response_time,
        e.max_response_time,
        e.avg_content_length,
        e.total_rps,
        e.total_fail_per_sec,
        *_percentile_cells(e.num_requests, e.percentiles.values()),
    ]


def _snap(stats: StatsSnapshot | RequestStats) -> StatsSnapshot:
    return stats if isinstance(stats, StatsSnapshot) else take_snapshot(stats, user_count=0)


def stats_csv(snapshot: StatsSnapshot | RequestStats) -> str:
    """``PREFIX_stats.csv`` (and ``/stats/requests/csv``): whole-run totals, then ``Aggregated``.

    Takes the tick's snapshot, or live stats (snapshotted first).
    """
    snapshot = _snap(snapshot)
    return _render([stats_header(snapshot.percentiles), *(_stats_row(e) for e in snapshot.rows)])


def history_header(percentiles: Sequence[float] | None = None) -> list[str]:
    qs = _default_percentiles() if percentiles is None else percentiles
    return [*HISTORY_COLUMNS, *readable_percentiles(qs), *HISTORY_TOTAL_COLUMNS]


def _history_row(
    timestamp: float,
    user_count: int,
    method: str,
    name: str,
    rps: float,
    fps: float,
    num_requests: int,
    current: Iterable[float | None],
    rest: Sequence[object],
) -> list[object]:
    return [
        int(timestamp),
        user_count,
        method,
        name,
        f"{rps:2f}",
        f"{fps:2f}",
        *_percentile_cells(num_requests, current),
        *rest,
    ]


def history_rows(snapshot: StatsSnapshot, *, full_history: bool = False) -> list[list[object]]:
    """The rows one tick appends to ``PREFIX_stats_history.csv`` (entries only with ``full_history``)."""
    rows = []
    for e in snapshot.rows if full_history else (snapshot.total,):
        rows.append(
            _history_row(
                snapshot.time,
                snapshot.user_count,
                e.method,
                e.name,
                e.current_rps,
                e.current_fail_per_sec,
                e.num_requests,
                e.current_percentiles.values(),
                [
                    e.num_requests,
                    e.num_failures,
                    _ms_int(e.median_response_time),
                    e.avg_response_time,
                    e.min_response_time,
                    e.max_response_time,
                    e.avg_content_length,
                ],
            )
        )
    return rows


def _history_row_from(row: HistoryRow) -> list[object]:
    return _history_row(
        row.time,
        row.user_count,
        row.method,
        row.name,
        row.current_rps,
        row.current_fail_per_sec,
        row.num_requests,
        row.current_percentiles,
        [
            row.num_requests,
            row.num_failures,
            _ms_int(row.median_response_time),
            row.avg_response_time,
            row.min_response_time,
            row.max_response_time,
            row.avg_content_length,
        ],
    )


def history_csv(history: StatsHistory, *, full_history: bool = True, since: float | None = None) -> str:
    """A whole :class:`StatsHistory` as ``PREFIX_stats_history.csv`` text (rows as the history keeps them)."""
    rows = history.rows(since, entries=full_history)
    return _render([history_header(history.percentiles or None), *(_history_row_from(r) for r in rows)])


def _iso(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


#: Locust's name for the stats file renderer (``StatsCSV.requests_csv``).
requests_csv = stats_csv


def failures_csv(snapshot: StatsSnapshot | RequestStats) -> str:
    """``PREFIX_failures.csv`` (and ``/stats/failures/csv``): one row per error, most frequent first."""
    snapshot = _snap(snapshot)
    rows = [
        [r.method, r.name, r.error, r.occurrences, _iso(r.first_seen), _iso(r.last_seen)]
        for r in snapshot.errors
    ]
    return _render([FAILURES_COLUMNS, *rows])


def exceptions_csv(exceptions: Iterable[Mapping[str, Any]] | Mapping[Any, Mapping[str, Any]]) -> str:
    """``PREFIX_exceptions.csv`` (and ``/exceptions/csv``) from the runner's or the result's exception rows."""
    rows = list(exceptions.values()) if isinstance(exceptions, Mapping) else list(exceptions)
    out = []
    for row in rows:
        nodes = row.get("nodes", ())
        nodes_text = nodes if isinstance(nodes, str) else ", ".join(sorted(str(n) for n in nodes))
        out.append([row["count"], row.get("msg", ""), row.get("traceback", ""), nodes_text])
    return _render([EXCEPTIONS_COLUMNS, *out])


def csv_paths(prefix: str | os.PathLike[str]) -> list[Path]:
    """The four files of ``--csv PREFIX``: stats, stats history, failures, exceptions."""
    return [Path(f"{os.fspath(prefix)}{suffix}") for suffix in SUFFIXES]


def check_writable(prefix: str | os.PathLike[str]) -> None:
    """Raise :class:`~horde.reports.output.OutputPathError` (one line) now if a ``--csv PREFIX`` file could
    not be written; missing directories in the prefix are created, as Locust does."""
    for path in csv_paths(prefix):
        check_writable_file(path)


class CsvOutput:
    """``--csv PREFIX`` (and ``--csv-full-history``): the four files, rewritten every tick, final at stop.

    >>> out = CsvOutput("results/run1", full_history=True)
    >>> out.description().split(":")[0]
    'CSV'
    """

    def __init__(
        self,
        prefix: str | os.PathLike[str],
        full_history: bool = False,
        *,
        interval: float = CSV_STATS_INTERVAL_SEC,
    ) -> None:
        self.prefix = prefix
        self.full_history = full_history
        self.interval = interval
        self.stats_path, self.history_path, self.failures_path, self.exceptions_path = csv_paths(prefix)
        self._run: RunInfo | None = None
        self._history: IO[str] | None = None
        self._last_write: float | None = None
        self._last_history: tuple[int, int, int] | None = None  # (timestamp, requests, failures) written last
        self._failed = False
        self._written: dict[Path, str] = {}
        self._history_created = False

    def description(self) -> str:
        names = ", ".join(
            str(p) for p in (self.stats_path, self.history_path, self.failures_path, self.exceptions_path)
        )
        mode = ", full history" if self.full_history else ""
        return f"CSV: {names} (every {self.interval:g} s{mode})"

    def start(self, run: RunInfo) -> None:
        check_writable(self.prefix)
        self._run = run
        self._last_write = None
        self._last_history = None
        self._open_history()
        # The files exist (with their headers) from the start, as Locust's do.
        self._written = {}
        self._replace(self.stats_path, _render([stats_header()]))
        self._replace(self.failures_path, _render([FAILURES_COLUMNS]))
        self._replace(self.exceptions_path, _render([EXCEPTIONS_COLUMNS]))

    def _open_history(self) -> None:
        if self._history is None:
            # Truncate once per output; if written again after stop(), append to what is there.
            mode = "a" if self._history_created else "w"
            self._history = open(self.history_path, mode, encoding="utf-8", newline="")
            if not self._history_created:
                self._history.write(_render([history_header()]))
                self._history.flush()
            self._history_created = True

    def on_tick(self, snapshot: StatsSnapshot) -> None:
        if self._last_write is not None and snapshot.time - self._last_write < self.interval - 0.5:
            return
        self._last_write = snapshot.time
        try:
            self._write(snapshot, self._current_exceptions())
        except OSError as e:  # a full disk must not stop the test; stop() tries again and reports
            if not self._failed:
                logger.error("could not write the CSV files %s_*.csv: %s", os.fspath(self.prefix), e)
            self._failed = True

    def _current_exceptions(self) -> Any:
        runner = getattr(getattr(self._run, "env", None), "runner", None)
        return getattr(runner, "exceptions", None) or ()

    def _replace(self, path: Path, text: str) -> None:
        """Replace ``path`` with ``text`` unless that is what the last write left there."""
        if self._written.get(path) != text:
            write_text(path, text)
            self._written[path] = text

    def _write(self, snapshot: StatsSnapshot, exceptions: Any) -> None:
        self._replace(self.stats_path, stats_csv(snapshot))
        self._replace(self.failures_path, failures_csv(snapshot))
        self._replace(self.exceptions_path, exceptions_csv(exceptions))
        self._open_history()
        assert self._history is not None
        total = snapshot.total
        key = (int(snapshot.time), total.num_requests, total.num_failures)
        if key != self._last_history:
            self._history.write(_render(history_rows(snapshot, full_history=self.full_history)))
            self._history.flush()
            self._last_history = key

    def stop(self, result: RunResult) -> None:
        """The final write, from the result: ``_stats.csv`` totals equal the JSON report's."""
        try:
            self._write(result.snapshot, result.exceptions)
        finally:
            if self._history is not None:
                self._history.close()
                self._history = None
