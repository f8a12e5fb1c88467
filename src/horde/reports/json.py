"""The machine-readable end-of-run report (``--json``); other tools parse it, so its shape is a contract.

.. code-block:: text

    {
      "stats": [                       one object per entry, sorted by name then method, then "Aggregated"
        {"method", "name", "num_requests", "num_failures", "num_none_requests",
         "min_response_time", "max_response_time", "avg_response_time", "median_response_time",   ms
         "total_rps", "total_fail_per_sec", "fail_ratio", "avg_content_length", "total_content_length",
         "start_time", "last_request_timestamp",                                      epoch s (or null)
         "percentiles": {"0.5": ms, "0.66": …, "0.9", "0.95", "0.99", "0.999", "0.9999", "1.0"}}
      ],
      "errors": [{"method", "name", "error", "occurrences", "first_seen", "last_seen"}],   most frequent first
      "user_count", "start_time", "end_time", "duration"                            the run, epoch s
    }

All response times are floats in milliseconds. An entry without timed requests reports 0.0 for every
time (never NaN or null), so consumers need no special case.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from horde.stats import PERCENTILES_TO_REPORT, RequestStats, StatsEntry


def entry_to_dict(entry: StatsEntry) -> dict[str, Any]:
    """One entry (or the ``Aggregated`` total) in report form."""
    percentiles = entry.get_response_time_percentiles(PERCENTILES_TO_REPORT)
    return {
        "method": entry.method,
        "name": entry.name,
        "num_requests": entry.num_requests,
        "num_failures": entry.num_failures,
        "num_none_requests": entry.num_none_requests,
        "min_response_time": entry.min_response_time or 0.0,
        "max_response_time": entry.max_response_time,
        "avg_response_time": entry.avg_response_time,
        "median_response_time": entry.median_response_time,
        "total_rps": entry.total_rps,
        "total_fail_per_sec": entry.total_fail_per_sec,
        "fail_ratio": entry.fail_ratio,
        "avg_content_length": entry.avg_content_length,
        "total_content_length": entry.total_content_length,
        "start_time": entry.start_time,
        "last_request_timestamp": entry.last_request_timestamp,
        "percentiles": {str(p): value for p, value in zip(PERCENTILES_TO_REPORT, percentiles, strict=True)},
    }


def stats_to_dict(
    stats: RequestStats, *, user_count: int, start_time: float, end_time: float
) -> dict[str, Any]:
    """The whole report as plain JSON-ready data (see the module docstring for the shape)."""
    rows = sorted(stats.errors.values(), key=lambda r: (-r.occurrences, r.method, r.name, r.error))
    return {
        "stats": [entry_to_dict(entry) for entry in stats.sorted_entries()] + [entry_to_dict(stats.total)],
        "errors": [
            {
                "method": row.method,
                "name": row.name,
                "error": row.error,
                "occurrences": row.occurrences,
                "first_seen": row.first_seen,
                "last_seen": row.last_seen,
            }
            for row in rows
        ],
        "user_count": user_count,
        "start_time": start_time,
        "end_time": end_time,
        "duration": max(0.0, end_time - start_time),
    }


def dumps(stats: RequestStats, *, user_count: int, start_time: float, end_time: float) -> str:
    """The report as JSON text (strict: a NaN anywhere would raise rather than emit invalid JSON)."""
    data = stats_to_dict(stats, user_count=user_count, start_time=start_time, end_time=end_time)
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def write_json(
    path: str | os.PathLike[str],
    stats: RequestStats,
    *,
    user_count: int,
    start_time: float,
    end_time: float,
) -> None:
    """Write the report to ``path`` (``"-"`` for stdout).

    The file is written beside its destination and renamed into place, so a reader polling for it never
    sees half a report.
    """
    text = dumps(stats, user_count=user_count, start_time=start_time, end_time=end_time)
    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a report is meant to be read by other tools
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
