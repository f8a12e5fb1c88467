"""The machine-readable end-of-run report (``--json``); other tools parse it, so its shape is a contract.

.. code-block:: text

    {
      "schema_version": 2,             bumped on any incompatible change; 1 = the files before it existed
      "horde_version": "0.1.0",
      "stats": [                       one object per entry, sorted by name then method, then "Aggregated"
        {"method", "name", "num_requests", "num_failures", "num_none_requests",
         "min_response_time", "max_response_time", "avg_response_time", "median_response_time",   ms
         "total_rps", "total_fail_per_sec", "fail_ratio", "avg_content_length", "total_content_length",
         "start_time", "last_request_timestamp",                                      epoch s (or null)
         "percentiles": {"0.5": ms, "0.66": …, "0.9", "0.95", "0.99", "0.999", "0.9999", "1.0"},
         "histogram": {"scheme": "loglin-us-6", "count": n, "min_us": µs|null, "max_us": µs,
                       "buckets": {"<bucket index>": count, …}}}                       (since version 2)
      ],
      "errors": [{"method", "name", "error", "occurrences", "first_seen", "last_seen"}],   most frequent first
      "user_count", "start_time", "end_time", "duration"                            the run, epoch s
      "user_classes_count", "host", "locustfile", "stop_reason", "exit_code",       (since version 2; from
      "warnings", "exceptions": [{"count", "msg", "traceback", "nodes"}],            the run result, if known)
      "thresholds": [{"expression", "metric", "ok", "status", "observed", "observed_text", …}]
      "arrival": {"iterations", "dropped_iterations", "scheduling_lag_ms": {…}, …}     (open model runs only)
      "num_aborted", "aborted": [{"method", "name", "count"}]   requests in flight when their users stopped
    }

All response times are floats in milliseconds. An entry without timed requests reports 0.0 for every
time (never NaN or null), so consumers need no special case.

``histogram`` is the entry's exact response-time histogram: bucket index → samples, in the layout named
by ``scheme`` (see :mod:`horde.stats.histogram`: indices below 128 are exact microseconds, above that 64
buckets per power of two, each within 0.78 % of its values). ``horde compare`` computes percentiles from
it, so any percentile of either run can be compared exactly, and two histograms of the same scheme can be
added. ``count`` is the number of timed requests (``num_requests - num_none_requests``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from horde._version import __version__
from horde.reports.output import check_writable_file
from horde.stats import HISTOGRAM_SCHEME, RequestStats, StatsEntry
from horde.stats.snapshot import EntrySnapshot, StatsSnapshot, entry_snapshot, percentile_key, take_snapshot

if TYPE_CHECKING:
    from horde.reports.output import RunInfo, RunResult

#: Version of the report's shape (see the module docstring).
SCHEMA_VERSION = 2


def histogram_dict(entry: StatsEntry | None) -> dict[str, Any]:
    """An entry's exact histogram in report form (empty when ``entry`` is ``None``)."""
    if entry is None:
        return {"scheme": HISTOGRAM_SCHEME, "count": 0, "min_us": None, "max_us": 0, "buckets": {}}
    data = entry.serialize()
    buckets = data["histogram"]
    return {
        "scheme": HISTOGRAM_SCHEME,
        "count": sum(buckets.values()),
        "min_us": data["min_response_time_us"],
        "max_us": data["max_response_time_us"],
        "buckets": {str(idx): buckets[idx] for idx in sorted(buckets)},
    }


def entry_dict(entry: EntrySnapshot, histogram: dict[str, Any] | None = None) -> dict[str, Any]:
    """One entry (or the ``Aggregated`` total) in report form."""
    out = {
        "method": entry.method,
        "name": entry.name,
        "num_requests": entry.num_requests,
        "num_failures": entry.num_failures,
        "num_none_requests": entry.num_none_requests,
        "min_response_time": entry.min_response_time,
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
        "percentiles": {percentile_key(p): v for p, v in entry.percentiles.items()},
    }
    if histogram is not None:
        out["histogram"] = histogram
    return out


def entry_to_dict(entry: StatsEntry) -> dict[str, Any]:
    """A live entry in report form (snapshotted on its own; use :func:`report_dict` for a whole run)."""
    import horde.stats

    return entry_dict(entry_snapshot(entry, horde.stats.PERCENTILES_TO_REPORT), histogram_dict(entry))


def report_dict(
    snapshot: StatsSnapshot,
    stats: RequestStats | None,
    *,
    user_count: int,
    start_time: float,
    end_time: float,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole report: numbers from ``snapshot`` (so they equal the CSV's), histograms from ``stats``.

    ``stats`` must be the stats the snapshot was taken of, unchanged since (the session takes the final
    snapshot after the last worker report is merged).
    """

    def live(e: EntrySnapshot) -> StatsEntry | None:
        if stats is None:
            return None
        if e is snapshot.total:
            return stats.total
        return stats.entries.get((e.name, e.method))

    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "horde_version": __version__,
        "stats": [entry_dict(e, histogram_dict(live(e))) for e in snapshot.rows],
        "errors": [row.to_dict() for row in snapshot.errors],
        "user_count": user_count,
        "start_time": start_time,
        "end_time": end_time,
        "duration": max(0.0, end_time - start_time),
    }
    if extra:
        data.update(extra)
    return data


def result_dict(result: RunResult) -> dict[str, Any]:
    """The report of a finished run (what :class:`JsonOutput` writes)."""
    extra = {
        "user_classes_count": dict(result.user_classes_count),
        "host": result.host,
        "locustfile": result.locustfile,
        "stop_reason": result.stop_reason,
        "exit_code": result.exit_code,
        "warnings": list(result.warnings),
        "exceptions": exceptions_list(result.exceptions),
        "thresholds": [v.to_dict() for v in getattr(result, "thresholds", ()) or ()],
        "num_aborted": int(getattr(result.stats, "num_aborted", 0)),
        "aborted": [
            {"method": method, "name": name, "count": n}
            for (method, name), n in sorted(getattr(result.stats, "aborted", {}).items())
        ],
        **dict(getattr(result, "figures", {}) or {}),
    }
    return report_dict(
        result.snapshot,
        result.stats,
        user_count=result.user_count,
        start_time=result.start_time,
        end_time=result.end_time,
        extra=extra,
    )


def exceptions_list(
    exceptions: Iterable[Mapping[str, Any]] | Mapping[Any, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """User exceptions as plain rows ``{count, msg, traceback, nodes: [..]}``, most frequent first."""
    rows = list(exceptions.values()) if isinstance(exceptions, Mapping) else list(exceptions)
    out = []
    for row in sorted(rows, key=lambda r: -int(r["count"])):
        nodes = row.get("nodes", ())
        out.append(
            {
                "count": int(row["count"]),
                "msg": str(row.get("msg", "")),
                "traceback": str(row.get("traceback", "")),
                "nodes": [nodes] if isinstance(nodes, str) else sorted(str(n) for n in nodes),
            }
        )
    return out


def stats_to_dict(
    stats: RequestStats, *, user_count: int, start_time: float, end_time: float
) -> dict[str, Any]:
    """The report of live stats (see the module docstring for the shape)."""
    snapshot = take_snapshot(stats, user_count=user_count)
    return report_dict(snapshot, stats, user_count=user_count, start_time=start_time, end_time=end_time)


def dumps(data: Mapping[str, Any]) -> str:
    """Report data as JSON text (strict: a NaN anywhere would raise rather than emit invalid JSON)."""
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` (``"-"`` for stdout), atomically: beside the target, then renamed.

    A reader polling for the file never sees half of it.
    """
    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a report is meant to be read by other tools
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(
    path: str | os.PathLike[str],
    stats: RequestStats,
    *,
    user_count: int,
    start_time: float,
    end_time: float,
) -> None:
    """Write the report of live ``stats`` to ``path`` (``"-"`` for stdout)."""
    write_text(
        path, dumps(stats_to_dict(stats, user_count=user_count, start_time=start_time, end_time=end_time))
    )


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise :class:`~horde.reports.output.OutputPathError` (one line) now if ``--json PATH`` could not be written."""
    check_writable_file(path)


class JsonOutput:
    """``--json PATH``: the report of the finished run, written once at ``stop`` (also after SIGTERM)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path

    def description(self) -> str:
        return (
            "JSON report: stdout at the end"
            if str(self.path) == "-"
            else f"JSON report: {self.path} at the end"
        )

    def start(self, run: RunInfo) -> None:
        check_writable(self.path)

    def on_tick(self, snapshot: StatsSnapshot) -> None:
        pass

    def stop(self, result: RunResult) -> None:
        write_text(self.path, dumps(result_dict(result)))
