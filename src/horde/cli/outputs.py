"""Which outputs a run gets, from its options; every path is checked writable before any load is sent."""

from __future__ import annotations

import argparse
from typing import Any

from horde.reports import console
from horde.reports.json import write_json


class _Console:
    """Transitional console output over the existing tables (replaced by reports.console.ConsoleOutput)."""

    def __init__(self, options: argparse.Namespace) -> None:
        self.interval = float(options.print_stats_interval)
        self.only_summary = bool(options.only_summary)
        self._last = 0.0
        self._run: Any = None
        self._seen_workers: Any = None

    def start(self, run: Any) -> None:
        self._run = run

    def on_tick(self, snapshot: Any) -> None:
        if snapshot.time - self._last < self.interval:
            return
        self._last = snapshot.time
        status = self._run.status()
        rows = tuple((w.id, w.state, w.user_count) for w in status.workers)
        if status.workers and status.workers[0].id != "local" and rows != self._seen_workers:
            self._seen_workers = rows
            print(_workers_table(status.workers), flush=True)
        if not self.only_summary:
            print(console.stats_table(self._run.env.stats, current=True), flush=True)

    def stop(self, result: Any) -> None:
        parts = [console.summary(result.stats)]
        if result.exceptions:
            parts.append(_exceptions_table(result.exceptions))
        if result.workers and result.workers[0].id != "local":
            parts.append("Workers:\n" + _workers_table(result.workers))
        if result.warnings:
            parts.append("Warnings:\n" + "\n".join(f"  - {w}" for w in result.warnings))
        print("\n\n".join(parts) + "\n", flush=True)


class _Json:
    def __init__(self, path: str) -> None:
        self.path = path

    def start(self, run: Any) -> None: ...

    def on_tick(self, snapshot: Any) -> None: ...

    def stop(self, result: Any) -> None:
        write_json(
            self.path,
            result.stats,
            user_count=result.user_count,
            start_time=result.start_time,
            end_time=result.end_time,
        )


def _workers_table(workers: Any) -> str:
    rows = [f" {'worker':<44} {'state':<9} {'users':>6} {'cpu %':>6} {'lag ms':>7}"]
    for w in sorted(workers, key=lambda w: w.index):
        rows.append(
            f" {w.id[:44]:<44} {w.state:<9} {w.user_count:>6} {w.cpu_percent:>6.0f} {w.loop_lag * 1000:>7.0f}"
        )
    return "\n".join(rows)


def _exceptions_table(exceptions: Any) -> str:
    lines = ["User exceptions:", f" {'# occurrences':>14}  Exception"]
    for row in sorted(exceptions, key=lambda r: -r["count"]):
        lines.append(f" {row['count']:>14}  {row['msg']}")
        last = [ln for ln in row["traceback"].strip().splitlines() if ln.strip()][-3:]
        lines.extend(f" {'':>14}    {ln.strip()}" for ln in last[:-1])
    return "\n".join(lines)


def build_outputs(options: argparse.Namespace) -> list[Any]:
    """The console, then each file or endpoint output the options ask for."""
    outputs: list[Any] = [_Console(options)]
    if options.json_file:
        outputs.append(_Json(options.json_file))
    return outputs
