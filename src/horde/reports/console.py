"""Locust-style text tables of a run's statistics, and the console as an :class:`~horde.reports.output.Output`.

The table functions take a :class:`~horde.stats.snapshot.StatsSnapshot` (or, for convenience, a live
:class:`~horde.stats.RequestStats`, which they snapshot first) and return strings. Which numbers each shows:

* :func:`stats_table` — counts, Avg/Min/Max/Med are cumulative (since the start or the last reset). The
  rate columns are *current* (``current_rps``: the last ~10 whole seconds, see
  :mod:`horde.stats.entries`) when ``current=True``, which is what the live console prints every few
  seconds, and whole-run (``total_rps``) when ``current=False``, which is what the end-of-run summary prints.
* :func:`percentile_table` — cumulative percentiles by default; ``current=True`` shows the last ~10 s
  window instead ("N/A" where that window holds no sample). ``# reqs`` is always cumulative.
* :func:`error_table` — every error row, most frequent first.

Milliseconds print as integers from 10 ms up, like Locust, and with one or two decimals below that, so a
0.3 ms local service does not show as a column of zeros.

:class:`ConsoleOutput` prints the live table every ``interval`` seconds from the tick's snapshot (and the
workers table whenever a worker changes state, on a master), and the final report at ``stop``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from horde.stats import MAX_RELATIVE_ERROR, RequestStats
from horde.stats.snapshot import EntrySnapshot, StatsSnapshot, take_snapshot

if TYPE_CHECKING:
    from horde.reports.output import RunInfo, RunResult

#: Names longer than this are shortened in the middle (the end of a URL usually tells rows apart).
DEFAULT_MAX_NAME_WIDTH = 60
#: Seconds between two live tables (the hidden ``--print-stats-interval``; Locust prints every 2 s).
DEFAULT_INTERVAL = 2.0
_MIN_NAME_WIDTH = len("Aggregated")
_TYPE_WIDTH = 8

StatsLike = RequestStats | StatsSnapshot


def _snapshot(stats: StatsLike, percentiles: Sequence[float] | None = None) -> StatsSnapshot:
    if isinstance(stats, StatsSnapshot):
        return stats
    return take_snapshot(stats, user_count=0, percentiles=percentiles)


def stats_table(
    stats: StatsLike, *, current: bool = True, max_name_width: int = DEFAULT_MAX_NAME_WIDTH
) -> str:
    """One row per entry (sorted by name, then method), a separator, then the ``Aggregated`` row."""
    snap = _snapshot(stats)
    width = _name_width(snap, max_name_width)
    header = (
        f"{'Type':<{_TYPE_WIDTH}} {'Name':<{width}} {'# reqs':>7} {'# fails':>12} |"
        f" {'Avg':>7} {'Min':>7} {'Max':>7} {'Med':>7} | {'req/s':>7} {'failures/s':>10}"
    )
    separator = _separator(header)

    def row(entry: EntrySnapshot) -> str:
        rps, fps = (
            (entry.current_rps, entry.current_fail_per_sec)
            if current
            else (entry.total_rps, entry.total_fail_per_sec)
        )
        fails = f"{entry.num_failures}({entry.fail_ratio * 100:.2f}%)"
        return (
            f"{_fit(entry.method, _TYPE_WIDTH)} {_fit(entry.name, width)} {entry.num_requests:>7} {fails:>12} |"
            f" {_ms(entry.avg_response_time):>7} {_ms(entry.min_response_time):>7}"
            f" {_ms(entry.max_response_time):>7} {_ms(entry.median_response_time):>7} |"
            f" {rps:>7.2f} {fps:>10.2f}"
        )

    lines = [header, separator]
    lines += [row(entry) for entry in snap.entries]
    lines += [separator, row(snap.total)]
    return "\n".join(line.rstrip() for line in lines)


def percentile_table(
    stats: StatsLike,
    *,
    current: bool = False,
    percentiles: Sequence[float] | None = None,
    max_name_width: int = DEFAULT_MAX_NAME_WIDTH,
) -> str:
    """Response-time percentiles (ms) per entry and for ``Aggregated``; cumulative unless ``current``.

    ``percentiles`` defaults to the snapshot's (``PERCENTILES_TO_REPORT``); given a snapshot, they must be
    among the ones it holds.
    """
    snap = _snapshot(stats, percentiles)
    qs = tuple(snap.percentiles if percentiles is None else (float(p) for p in percentiles))
    missing = [p for p in qs if p not in snap.total.percentiles]
    if missing:
        raise ValueError(f"the snapshot holds no percentile {missing[0]!r}; it has {snap.percentiles}")
    width = _name_width(snap, max_name_width)
    labels = [_percent_label(p) for p in qs]
    header = (
        f"{'Type':<{_TYPE_WIDTH}} {'Name':<{width}} " + " ".join(f"{lbl:>6}" for lbl in labels) + " # reqs"
    )
    separator = _separator(header)

    def row(entry: EntrySnapshot) -> str:
        values: Sequence[float | None] | None
        if current:
            window = entry.current_percentiles
            values = None if all(window[p] is None for p in qs) else [window[p] for p in qs]
        elif entry.timed_requests > 0:
            values = [entry.percentiles[p] for p in qs]
        else:
            values = None
        cells = [_ms(v) for v in values] if values is not None else ["N/A"] * len(qs)
        return (
            f"{_fit(entry.method, _TYPE_WIDTH)} {_fit(entry.name, width)} "
            + " ".join(f"{cell:>6}" for cell in cells)
            + f" {entry.num_requests:>6}"
        )

    lines = [header, separator]
    lines += [row(entry) for entry in snap.entries]
    lines += [separator, row(snap.total)]
    return "\n".join(line.rstrip() for line in lines)


def error_table(stats: StatsLike) -> str:
    """``# occurrences`` and ``METHOD name: error text`` per error row, most frequent first."""
    snap = _snapshot(stats)
    header = f"{'# occurrences':<18} Error"
    lines = [header, _separator(header + " " * 40)]
    lines += [f"{row.occurrences:<18} {row.method} {row.name}: {row.error}" for row in snap.errors]
    return "\n".join(lines)


def summary(stats: StatsLike, *, current: bool = False) -> str:
    """The end-of-run report: request statistics, percentiles and (if any) errors, with headings."""
    snap = _snapshot(stats)
    error_bound = f"{MAX_RELATIVE_ERROR * 100:.1f}"
    parts = [
        "Request statistics",
        stats_table(snap, current=current),
        "",
        f"Response time percentiles (ms; bucketed, within {error_bound} % of the true value)",
        percentile_table(snap),
    ]
    if snap.errors:
        parts += ["", "Error report", error_table(snap)]
    return "\n".join(parts)


def exceptions_table(exceptions: Iterable[Mapping[str, Any]] | Mapping[Any, Mapping[str, Any]]) -> str:
    """User exceptions (``count``, ``msg``, ``traceback`` rows), most frequent first, with the traceback's end."""
    rows = list(exceptions.values()) if isinstance(exceptions, Mapping) else list(exceptions)
    lines = ["User exceptions:", f" {'# occurrences':>14}  Exception"]
    for row in sorted(rows, key=lambda r: -int(r["count"])):
        lines.append(f" {row['count']:>14}  {row['msg']}")
        last = [ln for ln in str(row.get("traceback", "")).strip().splitlines() if ln.strip()][-3:]
        lines.extend(f" {'':>14}    {ln.strip()}" for ln in last[:-1])
    return "\n".join(lines)


#: Above this many workers the console shows a summary per state and the rows worth a look, not every row
#: (a 5,000-worker table on every state change buries the stats tables).
WORKERS_TABLE_ROWS = 20


def workers_table(workers: Iterable[Any], max_rows: int = WORKERS_TABLE_ROWS) -> str:
    """One row per worker (``WorkerStatus``): id, state, users, CPU and event-loop lag.

    With more than ``max_rows`` workers: a line per state (how many, their users, the highest CPU and lag),
    then the ``max_rows`` workers most worth a look (not running, then busiest CPU, then worst lag).
    """
    ordered = sorted(workers, key=lambda w: w.index)
    share = any(getattr(w, "load", None) for w in ordered)  # an open model's per-worker rate split
    head = f" {'worker':<44} {'state':<9} {'users':>6} {'cpu %':>6} {'lag ms':>7}"
    rows = [head + ("  share" if share else "")]
    shown = ordered
    if len(ordered) > max_rows:
        shown = sorted(ordered, key=lambda w: (w.state == "running", -w.cpu_percent, -w.loop_lag, w.index))
        shown = sorted(shown[:max_rows], key=lambda w: w.index)
        rows = [_states_summary(ordered), f" the {max_rows} most worth a look (not running, busiest):", *rows]
    for w in shown:
        row = (
            f" {w.id[:44]:<44} {w.state:<9} {w.user_count:>6} {w.cpu_percent:>6.0f} {w.loop_lag * 1000:>7.0f}"
        )
        rows.append(row + (f"  {w.load or ''}" if share else ""))
    if len(shown) < len(ordered):
        rows.append(f" ... and {len(ordered) - len(shown)} more (the web UI's Workers tab lists every one)")
    return "\n".join(rows)


def _states_summary(workers: Sequence[Any]) -> str:
    """``5000 workers: running 4990 (49,900 users, cpu <= 71 %, lag <= 12 ms); missing 10 (...)``."""
    by_state: dict[str, list[Any]] = {}
    for w in workers:
        by_state.setdefault(w.state, []).append(w)
    parts = [
        f"{state} {len(ws)} ({sum(w.user_count for w in ws):,} users,"
        f" cpu <= {max(w.cpu_percent for w in ws):.0f} %, lag <= {max(w.loop_lag for w in ws) * 1000:.0f} ms)"
        for state, ws in sorted(by_state.items(), key=lambda item: -len(item[1]))
    ]
    return f" {len(workers)} workers: " + "; ".join(parts)


def is_distributed(workers: Iterable[Any]) -> bool:
    """Whether the rows are a master's workers (a local run has one row named ``local``, or none)."""
    return any(w.id != "local" for w in workers)


def final_report(result: RunResult) -> str:
    """What the console prints at the end: summary, user exceptions, workers (on a master), warnings."""
    parts = [summary(result.snapshot)]
    if result.exceptions:
        parts.append(exceptions_table(result.exceptions))
    if is_distributed(result.workers):
        parts.append("Workers:\n" + workers_table(result.workers))
    verdicts = list(getattr(result, "thresholds", ()) or ())
    if verdicts:
        parts.append(thresholds_block(verdicts))
    if result.warnings:
        parts.append("Warnings:\n" + "\n".join(f"  - {w}" for w in result.warnings))
    return "\n\n".join(parts) + "\n"


def thresholds_block(verdicts: Sequence[Any]) -> str:
    """Each threshold as written, its status and the observed value (``FAIL  p95<300ms  observed 412 ms``)."""
    breached = sum(getattr(v, "ok", None) is False for v in verdicts)
    total = len(verdicts)
    head = f"Thresholds: {breached} of {total} breached" if breached else f"Thresholds: all {total} passed"
    width = max(len(str(getattr(v, "expression", ""))) for v in verdicts)
    rows = []
    for v in verdicts:
        ok = getattr(v, "ok", None)
        status = "FAIL" if ok is False else ("pass" if ok else "no data")
        seen = f"observed {v.observed_text}" if ok is not None else str(getattr(v, "why", "") or "no data")
        rows.append(f"  {status:<8} {v.expression:<{width}}  {seen}")
    return "\n".join([head, *rows])


class ConsoleOutput:
    """The headless console: the live stats table every ``interval`` s, the final report at the end.

    ``only_summary`` (``--only-summary``) suppresses the live tables, not the workers table or the final
    report. ``final=False`` suppresses the final report too (a front end that prints its own).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        interval: float = DEFAULT_INTERVAL,
        only_summary: bool = False,
        *,
        final: bool = True,
        max_name_width: int = DEFAULT_MAX_NAME_WIDTH,
        status_lines: Callable[[], Sequence[str]] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        self.stream = stream
        self.interval = interval
        self.only_summary = only_summary
        self.final = final
        self.max_name_width = max_name_width
        #: extra live lines printed under each table (the thresholds' status line, for one)
        self.status_lines = status_lines
        self._run: RunInfo | None = None
        self._last_print: float | None = None
        self._workers_seen: dict[str, str] | None = None

    def description(self) -> str:
        live = "final summary only" if self.only_summary else f"live table every {self.interval:g} s"
        return f"console: {live}"

    def _write(self, text: str) -> None:
        stream = self.stream if self.stream is not None else sys.stdout
        stream.write(text + "\n")
        stream.flush()

    def start(self, run: RunInfo) -> None:
        self._run = run
        self._workers_seen = None
        clock = getattr(getattr(run, "env", None), "clock", None)
        self._last_print = clock.time() if clock is not None else None

    def on_tick(self, snapshot: StatsSnapshot) -> None:
        self._print_workers_if_changed()
        if self.only_summary:
            return
        if self._last_print is None:
            self._last_print = snapshot.time  # no start time known: the first table comes one interval on
            return
        # Half a tick of slack: ticks are about a second apart and never exactly.
        if snapshot.time - self._last_print >= self.interval - 0.5:
            self._last_print = snapshot.time
            self._write(stats_table(snapshot, current=True, max_name_width=self.max_name_width))
            if self.status_lines is not None:
                for line in self.status_lines():
                    self._write(line)

    def _print_workers_if_changed(self) -> None:
        status = self._run.status() if self._run is not None else None
        workers = tuple(getattr(status, "workers", ()) or ())
        if not is_distributed(workers):
            return
        seen = {w.id: w.state for w in workers}  # no sort: compared on every tick, at thousands of workers
        if seen != self._workers_seen:
            self._workers_seen = seen
            self._write(workers_table(workers))

    def stop(self, result: RunResult) -> None:
        if self.final:
            self._write(final_report(result))


def _name_width(snap: StatsSnapshot, max_width: int) -> int:
    longest = max((len(entry.name) for entry in snap.entries), default=0)
    return max(_MIN_NAME_WIDTH, min(longest, max(max_width, _MIN_NAME_WIDTH)))


def _fit(text: str, width: int) -> str:
    """Pad ``text`` to ``width``, or shorten it in the middle with ``...`` so both ends stay readable."""
    if len(text) <= width:
        return text.ljust(width)
    if width <= 3:
        return text[:width]
    tail = (width - 3) // 2
    head = width - 3 - tail
    return f"{text[:head]}...{text[len(text) - tail :]}"


def _separator(header: str) -> str:
    """Dashes under each column, with ``|`` where the header has a gap between column groups."""
    return "".join("|" if ch == "|" else "-" for ch in header)


def _ms(value: float | None) -> str:
    if value is None:
        return "N/A"
    if value >= 10 or value == 0:
        return str(round(value))
    if value >= 1:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _percent_label(p: float) -> str:
    """0.5 → '50%', 0.999 → '99.9%', 1.0 → '100%'."""
    return f"{round(p * 100, 4):g}%"
