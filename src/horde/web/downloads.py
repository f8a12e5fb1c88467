"""CSV downloads of the Download tab, Locust's columns exactly (CRLF, ``N/A``, empty Type on Aggregated).

The reports package renders these for ``--csv`` too; when its renderers (``horde.reports.csv``) are
installed they are used, so a download and a ``--csv`` file are byte for byte the same. The functions below
are the fallback used until then and the reference the compatibility tests check against.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from horde.stats import PERCENTILES_TO_REPORT, RequestStats, StatsEntry


def readable_percentile(p: float) -> str:
    """``0.5`` → ``50%``, ``0.999`` → ``99.9%`` (Locust's get_readable_percentiles)."""
    scaled = p * 100
    return f"{int(scaled)}%" if float(scaled).is_integer() else f"{round(scaled, 6)}%"


PERCENTILE_HEADERS = [readable_percentile(p) for p in PERCENTILES_TO_REPORT]
REQUESTS_HEADER = [
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
    *PERCENTILE_HEADERS,
]
HISTORY_HEADER = [
    "Timestamp",
    "User Count",
    "Type",
    "Name",
    "Requests/s",
    "Failures/s",
    *PERCENTILE_HEADERS,
    "Total Request Count",
    "Total Failure Count",
    "Total Median Response Time",
    "Total Average Response Time",
    "Total Min Response Time",
    "Total Max Response Time",
    "Total Average Content Size",
]
FAILURES_HEADER = ["Method", "Name", "Error", "Occurrences", "First Seen", "Last Seen"]
EXCEPTIONS_HEADER = ["Count", "Message", "Traceback", "Nodes"]


def _render(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)  # Python's defaults are Locust's: comma, minimal quoting, CRLF
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _entry_row(entry: StatsEntry) -> list[Any]:
    if entry.num_requests:
        percentiles: list[Any] = list(entry.get_response_time_percentiles(PERCENTILES_TO_REPORT))
    else:
        percentiles = ["N/A"] * len(PERCENTILES_TO_REPORT)
    return [
        entry.method,
        entry.name,
        entry.num_requests,
        entry.num_failures,
        entry.median_response_time,
        entry.avg_response_time,
        entry.min_response_time or 0,
        entry.max_response_time,
        entry.avg_content_length,
        entry.total_rps,
        entry.total_fail_per_sec,
        *percentiles,
    ]


def requests_csv(stats: RequestStats) -> str:
    try:
        from horde.reports import csv as reports_csv  # type: ignore[attr-defined]

        return str(reports_csv.requests_csv(stats))
    except (ImportError, AttributeError):
        pass
    rows = [_entry_row(e) for e in stats.sorted_entries()]
    rows.append(_entry_row(stats.total))
    return _render(REQUESTS_HEADER, rows)


def _iso(ts: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else ""


def failures_csv(stats: RequestStats) -> str:
    try:
        from horde.reports import csv as reports_csv  # type: ignore[attr-defined]

        return str(reports_csv.failures_csv(stats))
    except (ImportError, AttributeError):
        pass
    rows = [
        [e.method, e.name, e.error, e.occurrences, _iso(e.first_seen), _iso(e.last_seen)]
        for _, e in sorted(stats.errors.items())
    ]
    return _render(FAILURES_HEADER, rows)


def exceptions_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    try:
        from horde.reports import csv as reports_csv  # type: ignore[attr-defined]

        return str(reports_csv.exceptions_csv(list(rows)))
    except (ImportError, AttributeError):
        pass
    out = []
    for row in rows:
        nodes = row.get("nodes", ())
        out.append(
            [
                row["count"],
                row["msg"],
                row["traceback"],
                nodes if isinstance(nodes, str) else ", ".join(sorted(nodes)),
            ]
        )
    return _render(EXCEPTIONS_HEADER, out)


def _history_row(row: Any, percentiles: Sequence[float]) -> list[Any]:
    if row.num_requests:
        current = dict(zip(percentiles, row.current_percentiles, strict=False))
        values: list[Any] = [current.get(p) or 0 for p in PERCENTILES_TO_REPORT]
    else:
        values = ["N/A"] * len(PERCENTILES_TO_REPORT)
    return [
        int(row.time),
        row.user_count,
        row.method,
        row.name,
        f"{row.current_rps:2f}",
        f"{row.current_fail_per_sec:2f}",
        *values,
        row.num_requests,
        row.num_failures,
        row.median_response_time,
        row.avg_response_time,
        row.min_response_time or 0,
        row.max_response_time,
        row.avg_content_length,
    ]


def history_csv(history: Any) -> str:
    """``_stats_history.csv`` in its ``--csv-full-history`` form (per point: the entries, then Aggregated),
    built from the run's StatsHistory, so it works without ``--csv`` too (Locust answers 404 then).
    Percentile columns are the current-window (~10 s) ones, as with Locust's full history."""
    try:
        from horde.reports import csv as reports_csv  # type: ignore[attr-defined]

        return str(reports_csv.history_csv(history))
    except (ImportError, AttributeError):
        pass
    percentiles = tuple(getattr(history, "percentiles", ()) or ())
    return _render(HISTORY_HEADER, (_history_row(r, percentiles) for r in history.rows()))


def download_name(kind: str, start_time: float | None, locustfile: str | None, host: str | None) -> str:
    """``horde_2026-12-01-05h55_locustfile.py_127.0.0.1-8080_requests.csv``: Locust's pattern, but the host
    made file-name safe (Locust inserts ``http://…`` raw, slashes and all)."""
    stamp = time.strftime("%Y-%m-%d-%Hh%M", time.localtime(start_time or time.time()))
    parts = ["horde", stamp]
    if locustfile:
        parts.append(locustfile.replace("/", "-").replace("\\", "-"))
    if host:
        safe = host.split("://", 1)[-1]
        parts.append("".join(c if c.isalnum() or c in ".-" else "-" for c in safe).strip("-"))
    return "_".join(parts) + f"_{kind}.csv"
