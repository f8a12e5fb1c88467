"""The console's workers table stays readable at thousands of workers."""

from __future__ import annotations

from horde.reports.console import WORKERS_TABLE_ROWS, workers_table
from horde.runners.status import WorkerStatus


def cluster(n: int) -> list[WorkerStatus]:
    rows = [
        WorkerStatus(id=f"host_{i:04d}", index=i, state="running", user_count=10, cpu_percent=i % 50)
        for i in range(n)
    ]
    rows[7] = WorkerStatus(id="host_0007", index=7, state="missing", user_count=0)
    rows[3000] = WorkerStatus(id="host_3000", index=3000, state="running", user_count=10, cpu_percent=99)
    return rows


def test_a_large_cluster_is_summarised_by_state_with_the_rows_worth_a_look() -> None:
    table = workers_table(cluster(5000))
    lines = table.splitlines()
    assert lines[0] == (
        " 5000 workers: running 4999 (49,990 users, cpu <= 99 %, lag <= 0 ms);"
        " missing 1 (0 users, cpu <= 0 %, lag <= 0 ms)"
    )
    ids = [line.split()[0] for line in lines[3:-1]]
    assert len(ids) == WORKERS_TABLE_ROWS
    assert ids[0] == "host_0007" and "host_3000" in ids  # the missing one, and the busiest, in index order
    assert ids == sorted(ids)
    assert (
        lines[-1] == f" ... and {5000 - WORKERS_TABLE_ROWS} more (the web UI's Workers tab lists every one)"
    )


def test_a_small_cluster_gets_every_row() -> None:
    lines = workers_table(cluster(5000)[:WORKERS_TABLE_ROWS]).splitlines()
    assert len(lines) == 1 + WORKERS_TABLE_ROWS and lines[0].split()[0] == "worker"
