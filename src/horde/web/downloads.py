"""The Download tab's CSV files: rendered by :mod:`horde.reports.csv`, the same code as ``--csv``, so a
download and a ``--csv`` file are byte for byte alike (Locust's columns, CRLF, ``N/A``, empty Type on
Aggregated). The full-history CSV is built from the run's StatsHistory, so it works without ``--csv``
(Locust answers 404 then)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from horde.reports import csv as reports_csv
from horde.stats import RequestStats
from horde.stats.history import StatsHistory


def requests_csv(stats: RequestStats) -> str:
    return reports_csv.stats_csv(stats)


def failures_csv(stats: RequestStats) -> str:
    return reports_csv.failures_csv(stats)


def exceptions_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    return reports_csv.exceptions_csv(list(rows))


def history_csv(history: StatsHistory) -> str:
    """Every kept point in ``--csv-full-history`` form: per point, the entries (every 10 s), then Aggregated."""
    return reports_csv.history_csv(history, full_history=True)


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
