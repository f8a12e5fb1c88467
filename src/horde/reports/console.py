"""Locust-style text tables of a run's statistics, returned as strings (the CLI decides where they go).

Which numbers each table shows:

* :func:`stats_table` — counts, Avg/Min/Max/Med are cumulative (since the start or the last reset). The
  rate columns are *current* (``current_rps``: the last ~10 whole seconds, see
  :mod:`horde.stats.entries`) when ``current=True``, which is what the live console prints every few
  seconds, and whole-run (``total_rps``) when ``current=False``, which is what the end-of-run summary prints.
* :func:`percentile_table` — cumulative percentiles by default; ``current=True`` shows the last ~10 s
  window instead ("N/A" where that window holds no sample). ``# reqs`` is always cumulative.
* :func:`error_table` — every error row, most frequent first.

Milliseconds print as integers from 10 ms up, like Locust, and with one or two decimals below that, so a
0.3 ms local service does not show as a column of zeros.
"""

from __future__ import annotations

from collections.abc import Sequence

from horde.stats import MAX_RELATIVE_ERROR, PERCENTILES_TO_REPORT, RequestStats, StatsEntry

#: Names longer than this are shortened in the middle (the end of a URL usually tells rows apart).
DEFAULT_MAX_NAME_WIDTH = 60
_MIN_NAME_WIDTH = len("Aggregated")
_TYPE_WIDTH = 8


def stats_table(
    stats: RequestStats, *, current: bool = True, max_name_width: int = DEFAULT_MAX_NAME_WIDTH
) -> str:
    """One row per entry (sorted by name, then method), a separator, then the ``Aggregated`` row."""
    width = _name_width(stats, max_name_width)
    header = (
        f"{'Type':<{_TYPE_WIDTH}} {'Name':<{width}} {'# reqs':>7} {'# fails':>12} |"
        f" {'Avg':>7} {'Min':>7} {'Max':>7} {'Med':>7} | {'req/s':>7} {'failures/s':>10}"
    )
    separator = _separator(header)

    def row(entry: StatsEntry, type_: str) -> str:
        rps, fps = (
            (entry.current_rps, entry.current_fail_per_sec)
            if current
            else (entry.total_rps, entry.total_fail_per_sec)
        )
        fails = f"{entry.num_failures}({entry.fail_ratio * 100:.2f}%)"
        return (
            f"{_fit(type_, _TYPE_WIDTH)} {_fit(entry.name, width)} {entry.num_requests:>7} {fails:>12} |"
            f" {_ms(entry.avg_response_time):>7} {_ms(entry.min_response_time or 0.0):>7}"
            f" {_ms(entry.max_response_time):>7} {_ms(entry.median_response_time):>7} |"
            f" {rps:>7.2f} {fps:>10.2f}"
        )

    lines = [header, separator]
    lines += [row(entry, entry.method) for entry in stats.sorted_entries()]
    lines += [separator, row(stats.total, "")]
    return "\n".join(line.rstrip() for line in lines)


def percentile_table(
    stats: RequestStats,
    *,
    current: bool = False,
    percentiles: Sequence[float] = PERCENTILES_TO_REPORT,
    max_name_width: int = DEFAULT_MAX_NAME_WIDTH,
) -> str:
    """Response-time percentiles (ms) per entry and for ``Aggregated``; cumulative unless ``current``."""
    width = _name_width(stats, max_name_width)
    labels = [_percent_label(p) for p in percentiles]
    header = (
        f"{'Type':<{_TYPE_WIDTH}} {'Name':<{width}} " + " ".join(f"{lbl:>6}" for lbl in labels) + " # reqs"
    )
    separator = _separator(header)

    def row(entry: StatsEntry, type_: str) -> str:
        values: Sequence[float | None] | None
        if current:
            values = entry.get_current_response_time_percentiles(percentiles)
        elif entry.num_requests - entry.num_none_requests > 0:
            values = entry.get_response_time_percentiles(percentiles)
        else:
            values = None
        cells = [_ms(v) for v in values] if values is not None else ["N/A"] * len(percentiles)
        return (
            f"{_fit(type_, _TYPE_WIDTH)} {_fit(entry.name, width)} "
            + " ".join(f"{cell:>6}" for cell in cells)
            + f" {entry.num_requests:>6}"
        )

    lines = [header, separator]
    lines += [row(entry, entry.method) for entry in stats.sorted_entries()]
    lines += [separator, row(stats.total, "")]
    return "\n".join(line.rstrip() for line in lines)


def error_table(stats: RequestStats) -> str:
    """``# occurrences`` and ``METHOD name: error text`` per error row, most frequent first."""
    header = f"{'# occurrences':<18} Error"
    lines = [header, _separator(header + " " * 40)]
    rows = sorted(stats.errors.values(), key=lambda r: (-r.occurrences, r.method, r.name, r.error))
    lines += [f"{row.occurrences:<18} {row.to_name()}" for row in rows]
    return "\n".join(lines)


def summary(stats: RequestStats, *, current: bool = False) -> str:
    """The end-of-run report: request statistics, percentiles and (if any) errors, with headings."""
    error_bound = f"{MAX_RELATIVE_ERROR * 100:.1f}"
    parts = [
        "Request statistics",
        stats_table(stats, current=current),
        "",
        f"Response time percentiles (ms; bucketed, within {error_bound} % of the true value)",
        percentile_table(stats),
    ]
    if stats.errors:
        parts += ["", "Error report", error_table(stats)]
    return "\n".join(parts)


def _name_width(stats: RequestStats, max_width: int) -> int:
    longest = max((len(entry.name) for entry in stats.entries.values()), default=0)
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
