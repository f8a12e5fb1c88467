"""The JSON bodies of Locust's REST endpoints, built from horde's stats and the run status (pure: no I/O).

Field names, types and row order follow Locust 2.46 (``/stats/requests``, ``/exceptions``, ``/tasks``) so
scripts and exporters written against Locust read horde unchanged. Differences, each on purpose:

* Response times are milliseconds as floats everywhere (horde measures microseconds; Locust rounds
  ``median`` and the percentiles to integers, which shows a 0.4 ms service as 0).
* The legacy top-level ``current_response_time_percentile_50``/``_95`` keys that old exporters still read
  (Locust dropped them in 2.15.1) are emitted again, next to the modern ``current_response_time_percentiles``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from horde.stats import PERCENTILES_TO_REPORT
from horde.stats.snapshot import take_snapshot
from horde.user.ratio import ratio_report

if TYPE_CHECKING:
    from horde.runners.status import WorkerStatus
    from horde.stats import RequestStats

#: Per-entry cumulative percentiles in ``/stats/requests`` (Locust's PERCENTILES_TO_STATISTICS).
PERCENTILES_TO_STATISTICS: tuple[float, ...] = (0.95, 0.99)
#: Current-window percentiles of the total in ``/stats/requests`` (Locust's PERCENTILES_TO_CHART).
PERCENTILES_TO_CHART: tuple[float, ...] = (0.5, 0.95)
#: Percentiles the charts can show; the user picks any of them in the page.
CHART_PERCENTILES: tuple[float, ...] = tuple(p for p in PERCENTILES_TO_REPORT if p < 1.0)
#: Rows of ``stats`` and ``errors`` sent at most (Locust's cap; the Aggregated row comes on top).
MAX_ROWS = 500


def percentile_key(p: float) -> str:
    return f"response_time_percentile_{p}"


def stats_requests(
    stats: RequestStats,
    *,
    state: str,
    user_count: int,
    workers: Sequence[WorkerStatus] | None = None,
) -> dict[str, Any]:
    """The ``GET /stats/requests`` body from live stats (between tests, or right after a reset): a snapshot
    with the percentiles this body needs, then the same builder as the session's ticks use.
    ``workers`` is given on a master only (Locust shows it there only)."""
    percentiles = sorted({0.5, *PERCENTILES_TO_STATISTICS, *PERCENTILES_TO_CHART})
    snapshot = take_snapshot(stats, user_count=user_count, percentiles=percentiles)
    return stats_requests_from_snapshot(snapshot, state=state, user_count=user_count, workers=workers)


def snapshot_usable(snapshot: Any) -> bool:
    """Whether a StatsSnapshot holds every percentile /stats/requests needs (a locustfile may change them)."""
    total = snapshot.total
    return all(p in total.percentiles for p in PERCENTILES_TO_STATISTICS) and all(
        p in total.current_percentiles for p in (*PERCENTILES_TO_CHART, 0.5, 0.95)
    )


def entry_dict(e: Any) -> dict[str, Any]:
    """One ``stats[]`` row from an EntrySnapshot: Locust's 15 keys (13 plus one per PERCENTILES_TO_STATISTICS)."""
    row: dict[str, Any] = {
        "method": e.method,
        "name": e.name,
        "num_requests": e.num_requests,
        "num_failures": e.num_failures,
        "avg_response_time": e.avg_response_time,
        "min_response_time": e.min_response_time or 0,
        "max_response_time": e.max_response_time,
        "current_rps": e.current_rps,
        "current_fail_per_sec": e.current_fail_per_sec,
        "median_response_time": e.median_response_time,
        "total_rps": e.total_rps,
        "total_fail_per_sec": e.total_fail_per_sec,
        "avg_content_length": e.avg_content_length,
    }
    for p in PERCENTILES_TO_STATISTICS:
        row[percentile_key(p)] = e.percentiles[p]
    return row


def stats_requests_from_snapshot(
    snapshot: Any, *, state: str, user_count: int, workers: Sequence[WorkerStatus] | None = None
) -> dict[str, Any]:
    """The same body as :func:`stats_requests`, read from the session's last tick (already computed once
    a second for the history and the outputs), so serving it costs no histogram walk."""
    total = snapshot.total
    rows = [entry_dict(e) for e in snapshot.entries[:MAX_ROWS]]
    rows.append(entry_dict(total))
    current = total.current_percentiles
    body: dict[str, Any] = {
        "stats": rows,
        "errors": [e.to_dict() for e in snapshot.errors[:MAX_ROWS]],
        "total_rps": total.total_rps,
        "total_fail_per_sec": total.total_fail_per_sec,
        "fail_ratio": total.fail_ratio,
        "current_rps": total.current_rps,
        "current_fail_per_sec": total.current_fail_per_sec,
        "current_response_time_percentiles": {percentile_key(p): current[p] for p in PERCENTILES_TO_CHART},
        "current_response_time_percentile_50": current[0.5],
        "current_response_time_percentile_95": current[0.95],
        "state": state,
        "user_count": user_count,
    }
    if workers is not None:
        body["workers"] = [worker_dict(w) for w in workers]
        body["worker_count"] = len(workers)
    return body


def error_dict(row: Any) -> dict[str, Any]:
    return {
        "method": row.method,
        "name": row.name,
        "error": row.error,
        "occurrences": row.occurrences,
        "first_seen": row.first_seen,
        "last_seen": row.last_seen,
    }


def worker_dict(w: WorkerStatus) -> dict[str, Any]:
    """Locust's worker row (id, state, user_count, cpu_usage, memory_usage) plus horde's health fields."""
    return {
        "id": w.id,
        "state": str(w.state),
        "user_count": w.user_count,
        "cpu_usage": w.cpu_percent,
        "memory_usage": w.memory_rss,
        "loop_lag": w.loop_lag,
        "last_heartbeat": w.last_heartbeat,
        "user_classes_count": dict(w.user_classes_count),
    }


def exceptions(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``GET /exceptions``: ``{"exceptions": [{count, msg, traceback, nodes}]}``, nodes joined by ", "."""
    out = []
    for row in rows:
        nodes = row.get("nodes", ())
        out.append(
            {
                "count": row["count"],
                "msg": row["msg"],
                "traceback": row["traceback"],
                "nodes": nodes if isinstance(nodes, str) else ", ".join(sorted(nodes)),
            }
        )
    return {"exceptions": out}


def tasks(
    user_classes: Sequence[type],
    user_classes_count: Mapping[str, int],
    tasks_for: Callable[[type], Sequence[Any]] | None = None,
) -> dict[str, Any]:
    """``GET /tasks``: per class (tasks summing to 1) and total (scaled by the class's share of the running
    users); ``tasks_for`` applies the run's tag selection. The same structure as --show-task-ratio-json."""
    spawned = sum(user_classes_count.values())
    shares = {
        c.__name__: (user_classes_count.get(c.__name__, 0) / spawned if spawned else 0.0)
        for c in user_classes
    }
    return ratio_report(user_classes, shares, tasks_for)
