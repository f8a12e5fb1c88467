"""The self-contained HTML report (``--html FILE``, and the web UI's ``/stats/report``).

One file that opens offline and can be attached to a ticket: plotly.js is read from the installed
``plotly`` package and inlined (no CDN), the tables are plain HTML (readable with scripts off, and
greppable), and the chart data is one JSON block that the inlined script draws.

Sections, top to bottom: the run manifest (horde version, locustfile name + sha256, options, host,
start/end in UTC, duration, users, workers), a verdict banner (thresholds when there are any, the exit
code, the stop reason and the generator-health warnings), request statistics, response-time percentiles,
charts over the whole run from ``result.history`` (requests/s and failures/s; response-time percentiles,
selectable; the 95th percentile of the ten busiest requests, from the history's 10-s entry points; users;
the start/edit/stop/reset markers on each), the generator's CPU and event-loop lag
per worker over time (sampled by :class:`HtmlOutput` at every tick, since the history keeps no per-worker
series; the web UI's on-demand report has the final workers table only), users per class, the final
workers table, failures, and exceptions with their tracebacks.

Size. The plotly bundle (4.82 MB) dominates. Everything else is small because every chart series is
downsampled to at most :data:`MAX_CHART_POINTS` points (consecutive history points grouped evenly; a
group keeps the *mean* of requests/s and failures/s, so the area under the curve — the request count —
is preserved, and the *maximum* of each percentile, of the user count and of CPU/lag, so a latency spike
or a saturated second is never averaged away), chart numbers are rounded to 4 significant digits (the
histogram is only good to 0.78 % anyway), and the tables carry one row per entry with no repeated sort
keys. Measured with ``benchmarks/outputs.py report`` (a simulated 1-hour run, 3,600 one-second ticks):
**50 entries: 4.93 MB, of which 119 KB is the report itself; 100 entries: 4.97 MB, 153 KB** (a local
run's HtmlOutput adds ~10 KB for the generator CPU/lag series). Writing it (``HtmlOutput.stop``: the
pieces are streamed, plotly.js is never copied) takes ~0.1 s and peaks at ~15 MB of allocations;
:func:`render_html` (one string, for the web route) peaks at ~10 MB.

Times are shown in UTC everywhere (a report travels between time zones). Percentiles in the tables are
cumulative over the run (:data:`horde.stats.PERCENTILES_TO_REPORT`, the console's and the CSV's set);
those in the chart are the last-10-s window of each tick, which is what shows a change over time.

>>> from horde.reports.html import HtmlOutput
>>> output = HtmlOutput("report_{u}users_{t}s.html")   # handed to TestRun(outputs=[...])
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import math
import os
import platform
import re
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from horde._version import __version__
from horde.stats import MAX_RELATIVE_ERROR

if TYPE_CHECKING:
    from horde.reports.output import RunInfo, RunResult
    from horde.stats.history import HistoryRow
    from horde.stats.snapshot import EntrySnapshot, StatsSnapshot

logger = logging.getLogger(__name__)

#: Percentiles drawn in the response-time chart (all of them selectable; 50 % and 95 % shown at first).
PERCENTILES_TO_CHART: tuple[float, ...] = (0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
_CHART_VISIBLE = (0.5, 0.95)
#: Most points one chart series holds; longer histories are grouped evenly (see the module docstring).
MAX_CHART_POINTS = 1000
#: Entries drawn in the per-request percentile chart (the busiest ones).
TOP_ENTRIES = 10
#: Option names whose values are never written into the report.
_SECRET_OPTION = re.compile(r"pass|secret|token|key|auth|login|credential", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{([urt])\}")


# -- the manifest --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocustfileDigest:
    """One file of the test script and the sha256 of its bytes (``None`` if it could not be read)."""

    path: str
    sha256: str | None


@dataclass(frozen=True)
class Manifest:
    """What was run, where and when: the header of the report (and of any ticket it is attached to)."""

    horde_version: str
    python: str
    platform: str
    locustfile: str | None
    locustfiles: tuple[LocustfileDigest, ...]
    host: str | None
    start_time: float
    end_time: float
    duration: float
    user_count: int
    peak_user_count: int
    workers: int
    options: tuple[tuple[str, str], ...] = ()
    extra: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def from_result(
        cls, result: RunResult, *, locustfiles: Sequence[LocustfileDigest] | None = None
    ) -> Manifest:
        """The manifest of a finished (or running) test; ``locustfiles`` are hashed now when not given.

        The HTML output hashes the locustfile at ``start`` (the file as it was loaded), the web UI's
        on-demand report hashes it when the report is asked for.
        """
        options = getattr(result, "options", None)
        locustfile = getattr(result, "locustfile", None) or _option(options, "locustfile")
        digests = tuple(locustfiles) if locustfiles is not None else digest_locustfiles(locustfile)
        peak = _peak_users(result)
        workers = [w for w in result.workers if getattr(w, "id", None) != "local"]
        return cls(
            horde_version=__version__,
            python=platform.python_version(),
            platform=f"{platform.system()} {platform.machine()}",
            locustfile=locustfile,
            locustfiles=digests,
            host=getattr(result, "host", None) or _option(options, "host"),
            start_time=result.start_time,
            end_time=result.end_time,
            duration=max(0.0, result.end_time - result.start_time),
            user_count=result.user_count,
            peak_user_count=peak,
            workers=len(workers),
            options=options_for_report(options),
        )


def digest_locustfiles(spec: str | None) -> tuple[LocustfileDigest, ...]:
    """sha256 of every file a ``-f`` value names (a file, a directory of ``.py`` files, or a comma list)."""
    if not spec:
        return ()
    out: list[LocustfileDigest] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        path = Path(part)
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            try:
                digest: str | None = hashlib.sha256(f.read_bytes()).hexdigest()
            except OSError:
                digest = None
            out.append(LocustfileDigest(str(f), digest))
    return tuple(out)


def options_for_report(options: object) -> tuple[tuple[str, str], ...]:
    """The options that were set (not ``None``), sorted, as text; values of secret-looking names masked."""
    if options is None:
        return ()
    try:
        items = vars(options).items()
    except TypeError:
        return ()
    out = []
    for key, value in sorted(items):
        if value is None or key.startswith("_"):
            continue
        text = "***" if _SECRET_OPTION.search(key) and value not in (False, "", 0) else _option_text(value)
        out.append((key, text))
    return tuple(out)


def _option_text(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _option(options: object, name: str) -> Any:
    return getattr(options, name, None) if options is not None else None


# -- chart data ----------------------------------------------------------------------------------------


def downsample(
    times: Sequence[float], series: Mapping[str, tuple[str, Sequence[float | None]]], max_points: int
) -> tuple[list[float], dict[str, list[float | None]]]:
    """Group consecutive points evenly so that no series has more than ``max_points`` points.

    ``series`` maps a name to ``(how, values)`` with ``how`` one of ``"mean"`` (rates: keeps the area),
    ``"max"`` (percentiles, users: keeps the peaks) or ``"last"``. ``None`` values (an empty window) are
    skipped within a group; a group of only ``None`` stays ``None``. A group's time is its last point's.

    >>> downsample([1, 2, 3, 4], {"rps": ("mean", [1, 3, 5, 7]), "p95": ("max", [9, None, 2, 4])}, 2)
    ([2, 4], {'rps': [2.0, 6.0], 'p95': [9, 4]})
    """
    n = len(times)
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    size = max(1, math.ceil(n / max_points))
    if size == 1:
        return list(times), {name: list(values) for name, (_, values) in series.items()}
    out_times = [times[min(i + size, n) - 1] for i in range(0, n, size)]
    out: dict[str, list[float | None]] = {}
    for name, (how, values) in series.items():
        grouped: list[float | None] = []
        for i in range(0, n, size):
            chunk = [v for v in values[i : i + size] if v is not None]
            if not chunk:
                grouped.append(None)
            elif how == "mean":
                grouped.append(sum(chunk) / len(chunk))
            elif how == "max":
                grouped.append(max(chunk))
            else:
                grouped.append(chunk[-1])
        out[name] = grouped
    return out_times, out


class WorkerSeries:
    """CPU % and loop lag per worker over the run, for the report's generator chart, in bounded memory.

    The history keeps no per-worker series, so :class:`HtmlOutput` samples ``status().workers`` at every
    tick. At most ``2 * max_points`` samples per worker are held: when full, neighbouring samples are
    merged pairwise, keeping the higher value of each (a saturated second is never averaged away), so the
    resolution halves as the run grows. Memory: ~100 bytes per sample, ≈ 200 KB per worker at most.
    """

    def __init__(self, max_points: int = MAX_CHART_POINTS) -> None:
        self.max_points = max_points
        self._series: dict[str, tuple[list[float], list[float], list[float]]] = {}

    def __bool__(self) -> bool:
        return bool(self._series)

    def add(self, now: float, workers: Iterable[Any]) -> None:
        for w in workers:
            wid = str(_get(w, "id"))
            times, cpu, lag = self._series.setdefault(wid, ([], [], []))
            times.append(now)
            cpu.append(float(_get(w, "cpu_percent") or 0.0))
            lag.append(float(_get(w, "loop_lag") or 0.0) * 1000)
            if len(times) >= 2 * self.max_points:
                self._series[wid] = (
                    times[1::2],
                    [max(a, b) for a, b in zip(cpu[::2], cpu[1::2], strict=False)],
                    [max(a, b) for a, b in zip(lag[::2], lag[1::2], strict=False)],
                )

    def chart(self, t0: float) -> dict[str, Any]:
        """``{worker id: {"t", "cpu", "lag"}}`` for the chart JSON, each at most ``max_points`` long."""
        out: dict[str, Any] = {}
        for wid, (times, cpu, lag) in sorted(self._series.items()):
            t, series = downsample(times, {"cpu": ("max", cpu), "lag": ("max", lag)}, self.max_points)
            out[wid] = {
                "t": _rounded([x - t0 for x in t], 1),
                "cpu": _rounded(series["cpu"], 1),
                "lag": _rounded(series["lag"], 1),
            }
        return out


def _get(obj: Any, name: str, default: Any = None) -> Any:
    """An attribute, or a key of a mapping (threshold and worker rows may be either)."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _total_rows(result: RunResult) -> list[HistoryRow]:
    """The Aggregated history points (one per tick, older ones thinned: see horde.stats.history)."""
    history = getattr(result, "history", None)
    return list(history.total_rows()) if history is not None else []


def chart_data(
    result: RunResult, *, max_points: int = MAX_CHART_POINTS, workers: WorkerSeries | None = None
) -> dict[str, Any]:
    """The JSON the report's script draws: time offsets from ``t0`` (s) and one list per series."""
    rows = _total_rows(result)
    quantiles = list(result.history.percentiles) if rows else []
    series: dict[str, tuple[str, Sequence[float | None]]] = {
        "rps": ("mean", [r.current_rps for r in rows]),
        "fps": ("mean", [r.current_fail_per_sec for r in rows]),
        "users": ("max", [float(r.user_count) for r in rows]),
    }
    charted = [p for p in PERCENTILES_TO_CHART if p in quantiles]
    for p in charted:
        i = quantiles.index(p)
        series[f"p{p}"] = ("max", [r.current_percentiles[i] for r in rows])
    out_times, out = downsample([r.time for r in rows], series, max_points)
    t0 = out_times[0] if out_times else result.start_time
    step = (out_times[-1] - out_times[0]) / (len(out_times) - 1) if len(out_times) > 1 else 0.0
    markers = [
        {"t": round(float(m["time"]) - t0, 1), "kind": str(m.get("kind", "")), "text": str(m.get("text", ""))}
        for m in getattr(result, "markers", ()) or ()
        if isinstance(m, Mapping) and isinstance(m.get("time"), int | float)
    ]
    return {
        "t0": round(t0, 3),
        "t": _rounded([t - t0 for t in out_times], 1),
        "step": round(step, 1),
        "rps": _rounded(out["rps"], 2),
        "fps": _rounded(out["fps"], 2),
        "users": _rounded(out["users"], 0),
        "pct": {_percent_label(p): _rounded(out[f"p{p}"], 2) for p in charted},
        "visible": [_percent_label(p) for p in _CHART_VISIBLE if p in charted],
        "markers": markers,
        "workers": workers.chart(t0) if workers else {},
        "entries": _entry_series(result, quantiles, t0, max_points),
    }


def _entry_series(result: RunResult, quantiles: list[float], t0: float, max_points: int) -> dict[str, Any]:
    """The 95th percentile (last-10-s window) of the busiest entries over time: which request got slow.

    The history keeps entry points every 10 s (thinned after an hour), so these series are coarser than
    the Aggregated ones; only the :data:`TOP_ENTRIES` entries with the most requests are drawn.
    """
    if not quantiles:
        return {}
    p = min(quantiles, key=lambda q: abs(q - 0.95))
    i = quantiles.index(p)
    busiest = sorted(result.snapshot.entries, key=lambda e: (-e.num_requests, e.name, e.method))[:TOP_ENTRIES]
    lines: dict[str, dict[str, Any]] = {}
    for e in busiest:
        rows = result.history.entry_rows(e.name, e.method)
        if not rows:
            continue
        times, series = downsample(
            [r.time for r in rows], {"v": ("max", [r.current_percentiles[i] for r in rows])}, max_points
        )
        label = f"{e.method} {e.name}".strip()
        lines[label] = {"t": _rounded([t - t0 for t in times], 1), "v": _rounded(series["v"], 2)}
    if not lines:
        return {}
    # Entries are kept at the same ticks: send the longest time axis once; a line whose times are its
    # tail (an entry first seen later) only says where it starts.
    shared = max((line["t"] for line in lines.values()), key=len)
    for line in lines.values():
        start = len(shared) - len(line["t"])
        if shared[start:] == line["t"]:
            del line["t"]
            line["from"] = start
    return {"percentile": _percent_label(p), "t": shared, "lines": lines}


def _rounded(values: Iterable[float | None], digits: int) -> list[float | int | None]:
    """Round for the chart JSON: ``digits`` decimals below 10, fewer above (4 significant digits at
    most, well inside the histogram's 0.78 %), and integral values as ints (``3`` is shorter than ``3.0``)."""
    out: list[float | int | None] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        r = round(v, max(0, min(digits, 3 - int(math.log10(abs(v))))) if v else 0)
        out.append(int(r) if r == int(r) else r)
    return out


# -- rendering -----------------------------------------------------------------------------------------


def render_html(
    result: RunResult,
    *,
    manifest: Manifest | None = None,
    download_url: str | None = None,
    workers: WorkerSeries | None = None,
    generated_at: float | None = None,
) -> str:
    """The whole report as one HTML document (UTF-8 text).

    ``manifest`` defaults to :meth:`Manifest.from_result`; ``download_url`` adds a "Download the report"
    link (the web UI's ``/stats/report?download=1``); ``workers`` adds the generator CPU / loop-lag chart;
    ``generated_at`` (epoch s, default now) is the footer's time.
    """
    return "".join(
        render_parts(
            result, manifest=manifest, download_url=download_url, workers=workers, generated_at=generated_at
        )
    )


def render_parts(
    result: RunResult,
    *,
    manifest: Manifest | None = None,
    download_url: str | None = None,
    workers: WorkerSeries | None = None,
    generated_at: float | None = None,
) -> list[str]:
    """:func:`render_html` as pieces to write one after the other (plotly.js is one piece, not copied)."""
    manifest = manifest or Manifest.from_result(result)
    title = f"horde report: {Path(manifest.locustfile).name if manifest.locustfile else 'test'}"
    title += f" on {manifest.host}" if manifest.host else ""
    data = {"chart": chart_data(result, workers=workers)}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f'<meta name="generator" content="horde {_e(__version__)}">',
        f"<style>{_CSS}</style>",
        "</head><body>",
        '<header class="top"><div class="brand">horde</div>',
        f"<h1>Test report <span class=sub>{_e(_utc(manifest.start_time))}</span></h1>",
        f'<a class="download" href="{_e(download_url)}">Download the report</a>' if download_url else "",
        "</header><main>",
        _verdict_html(result),
        _manifest_html(manifest),
        _section("Request statistics", _requests_table(result)),
        _section(
            "Response time percentiles",
            _percentiles_table(result),
            note=f"Cumulative over the run, ms; from exact-merge histograms, within "
            f"{MAX_RELATIVE_ERROR * 100:.2f} % of the true value; min and max exact.",
        ),
        _section("Charts", _charts_html(data["chart"]), note=_chart_note(data["chart"])),
        _section("Users per class", _classes_html(result)),
        _section("Workers", _workers_table(result)),
        _section("Failures", _failures_table(result)),
        _section("Exceptions", _exceptions_html(result)),
        "</main>",
        f"<footer>Generated by horde {_e(__version__)} at {_e(_utc(time.time() if generated_at is None else generated_at))}.</footer>",
        f'<script type="application/json" id="report-data">{_json_for_script(data)}</script>',
        "<script>",
        _plotly_js(),  # 4.8 M characters: kept as its own piece so it is never copied into another string
        "</script>",
        f"<script>{_JS}</script>",
        "</body></html>",
    ]
    return [f"{p}\n" if len(p) < 100_000 else p for p in parts if p]


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _utc(ts: float | None) -> str:
    if ts is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _duration(seconds: float) -> str:
    """``3725`` → ``1 h 2 min 5 s``."""
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    parts = [f"{h} h"] if h else []
    if m or h:
        parts.append(f"{m} min")
    parts.append(f"{sec} s")
    return " ".join(parts)


def _ms(value: float | None) -> str:
    if value is None:
        return "N/A"
    if value >= 10 or value == 0:
        return f"{round(value):,}"
    if value >= 1:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _num(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def _percent_label(p: float) -> str:
    return f"{round(p * 100, 4):g}%"


def _section(title: str, body: str, *, note: str | None = None) -> str:
    anchor = re.sub(r"[^a-z]+", "-", title.lower()).strip("-")
    note_html = f'<p class="note">{_e(note)}</p>' if note else ""
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{note_html}{body}</section>'


def _table(
    headers: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[tuple[str, object]]],
    *,
    total: Sequence[tuple[str, object]] | None = None,
) -> str:
    """``headers``: (label, css class: ``n`` numeric, ``t…`` text); a row: (html, raw value) per cell.

    Click a header to sort (the script sorts by the cell's text, numerically in ``n`` columns, so no sort
    keys are repeated in the markup: a 100-entry table stays ~20 KB). ``total`` is a last row pinned at the
    bottom (the ``Aggregated`` row), also when sorting.
    """
    head = "".join(f'<th class="{cls}">{_e(label)}</th>' for label, cls in headers)
    body = []
    marked = [("", row) for row in rows] + ([(' class="total"', total)] if total is not None else [])
    for attr, row in marked:
        cells = "".join(
            f'<td class="{headers[i][1]}">{text}</td>' if headers[i][1] != "n" else f"<td>{text}</td>"
            for i, (text, _) in enumerate(row)
        )
        body.append(f"<tr{attr}>{cells}</tr>")
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _entries(result: RunResult) -> tuple[tuple[EntrySnapshot, ...], EntrySnapshot]:
    return result.snapshot.entries, result.snapshot.total


def _peak_users(result: RunResult) -> int:
    return max([result.user_count, *(r.user_count for r in _total_rows(result))])


def _requests_table(result: RunResult) -> str:
    entries, total = _entries(result)
    headers = [
        ("Type", "t"),
        ("Name", "t name"),
        ("# Requests", "n"),
        ("# Fails", "n"),
        ("Fail %", "n"),
        ("Median (ms)", "n"),
        ("Average (ms)", "n"),
        ("Min (ms)", "n"),
        ("Max (ms)", "n"),
        ("Avg size (B)", "n"),
        ("RPS", "n"),
        ("Failures/s", "n"),
    ]

    def row(e: EntrySnapshot) -> list[tuple[str, object]]:
        timed = e.num_requests - e.num_none_requests > 0
        median = e.median_response_time if timed else None
        low = e.min_response_time if timed else None
        return [
            (_e(e.method), e.method),
            (_e(e.name), e.name),
            (f"{e.num_requests:,}", e.num_requests),
            (f"{e.num_failures:,}", e.num_failures),
            (_num(e.fail_ratio * 100), e.fail_ratio),
            (_ms(median), median if median is not None else -1),
            (_ms(e.avg_response_time if timed else None), e.avg_response_time),
            (_ms(low), low if low is not None else -1),
            (_ms(e.max_response_time if timed else None), e.max_response_time),
            (f"{round(e.avg_content_length):,}", e.avg_content_length),
            (_num(e.total_rps), e.total_rps),
            (_num(e.total_fail_per_sec), e.total_fail_per_sec),
        ]

    return _table(headers, [row(e) for e in entries], total=row(total))


def _percentiles_table(result: RunResult) -> str:
    entries, total = _entries(result)
    quantiles = result.snapshot.percentiles  # PERCENTILES_TO_REPORT, or a locustfile's override
    headers = [("Type", "t"), ("Name", "t name")]
    headers += [(_percent_label(p), "n") for p in quantiles]
    headers += [("# Requests", "n")]

    def row(e: EntrySnapshot) -> list[tuple[str, object]]:
        timed = e.num_requests - e.num_none_requests > 0
        values: list[float | None] = [e.percentiles.get(p) if timed else None for p in quantiles]
        cells: list[tuple[str, object]] = [(_e(e.method), e.method), (_e(e.name), e.name)]
        cells += [(_ms(v), -1 if v is None else v) for v in values]
        cells.append((f"{e.num_requests:,}", e.num_requests))
        return cells

    return _table(headers, [row(e) for e in entries], total=row(total))


def _verdict(result: RunResult) -> tuple[str, str, list[str]]:
    """(level, headline, detail lines); level is ``pass``, ``warn`` or ``fail``."""
    _, total = _entries(result)
    lines: list[str] = []
    failed_thresholds = 0
    for threshold in getattr(result, "thresholds", ()) or ():
        ok = _threshold_ok(threshold)
        failed_thresholds += ok is False
        mark = {True: "PASS", False: "FAIL", None: "NO DATA"}[ok]
        lines.append(f"{mark} \u2014 threshold {_threshold_text(threshold)}")
    warnings = list(result.warnings)
    exit_code = result.exit_code
    if total.num_requests:
        lines.insert(
            0,
            f"{total.num_failures:,} of {total.num_requests:,} requests failed ({total.fail_ratio * 100:.2f} %).",
        )
    else:
        lines.insert(0, "No request was made.")
    if result.stop_reason:
        lines.insert(1, f"Stopped: {result.stop_reason}.")
    if failed_thresholds:
        level, headline = "fail", f"{failed_thresholds} threshold(s) breached (exit code {exit_code})"
    elif exit_code != 0:
        level, headline = "fail", f"Failed (exit code {exit_code})"
    elif warnings:
        level, headline = "warn", "Passed, but the load generator reported problems"
    else:
        level, headline = "pass", "Passed (exit code 0)"
    lines += [f"Generator health: {w}" for w in warnings]
    return level, headline, lines


def _threshold_ok(threshold: object) -> bool | None:
    for name in ("ok", "passed"):
        value = _get(threshold, name)
        if isinstance(value, bool):
            return value
    return None


def _threshold_text(threshold: object) -> str:
    # a horde.thresholds Verdict describes itself ("p95 of all requests < 300 ms: observed 412 ms")
    for name in ("describe", "text", "expression", "name"):
        value = _get(threshold, name)
        if callable(value):
            value = value()
        if isinstance(value, str) and value:
            return value
    return str(threshold)


def _verdict_html(result: RunResult) -> str:
    level, headline, lines = _verdict(result)
    items = "".join(
        f'<li class="{line.split(" ", 1)[0].lower()}">{_e(line)}</li>'
        if line.startswith(("PASS \u2014", "FAIL \u2014", "NO DATA \u2014"))
        else f"<li>{_e(line)}</li>"
        for line in lines
    )
    return f'<div class="verdict {level}" id="verdict"><strong>{_e(headline)}</strong><ul>{items}</ul></div>'


def _manifest_html(m: Manifest) -> str:
    rows: list[tuple[str, str]] = [
        ("Locustfile", _e(m.locustfile or "unknown")),
    ]
    for digest in m.locustfiles:
        rows.append(
            ("sha256", f"<code>{_e(digest.sha256 or 'unreadable')}</code> {_e(Path(digest.path).name)}")
        )
    rows += [
        ("Target host", _e(m.host or "none")),
        ("Start", _e(_utc(m.start_time))),
        ("End", _e(_utc(m.end_time))),
        ("Duration", _e(_duration(m.duration))),
        ("Users", _e(f"{m.peak_user_count:,} at peak, {m.user_count:,} at the end")),
        ("Workers", _e(f"{m.workers} worker process(es)" if m.workers else "local (one process)")),
        ("horde", _e(f"{m.horde_version} on Python {m.python}, {m.platform}")),
    ]
    rows += list(m.extra)
    grid = "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in rows)
    options = ""
    if m.options:
        cells = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in m.options)
        options = f'<details class="options"><summary>Options ({len(m.options)})</summary><table>{cells}</table></details>'
    return f'<section id="manifest"><h2>Run</h2><dl class="manifest">{grid}</dl>{options}</section>'


def _chart_note(chart: Mapping[str, Any]) -> str:
    n = len(chart["t"])
    if not n:
        return "No history was recorded for this run."
    step = chart["step"]
    text = f"{n:,} points, one every {step:g} s" if step else f"{n} point"
    return (
        f"{text} (UTC). Rates are per-tick means, percentiles the last-10-s window, "
        "the highest within each point. Click a legend entry or a percentile box to show or hide it."
    )


def _charts_html(chart: Mapping[str, Any]) -> str:
    if not chart["t"]:
        return ""
    boxes = "".join(
        f'<label><input type="checkbox" data-pct="{_e(label)}"{" checked" if label in chart["visible"] else ""}>'
        f" {_e(label)}</label>"
        for label in chart["pct"]
    )
    return (
        '<div class="chart" id="chart-rps"></div>'
        f'<div class="pct-select" id="pct-select">Percentiles: {boxes}</div>'
        '<div class="chart" id="chart-rt"></div>'
        + ('<div class="chart" id="chart-entries"></div>' if chart["entries"] else "")
        + '<div class="chart" id="chart-users"></div>'
        + (
            '<div class="chart" id="chart-cpu"></div><div class="chart" id="chart-lag"></div>'
            if chart["workers"]
            else ""
        )
    )


def _classes_html(result: RunResult) -> str:
    counts = dict(result.user_classes_count)  # the classes' counts before the final stop
    total = sum(counts.values())
    if not total:
        return '<p class="empty">No users ran.</p>'
    rows = [
        [(_e(name), name), (f"{n:,}", n), (_num(n / total * 100, 1), n)]
        for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return _table([("User class", "t"), ("Users", "n"), ("Share %", "n")], rows)


def _workers_table(result: RunResult) -> str:
    workers = list(result.workers)
    if not workers:
        return '<p class="empty">No worker rows.</p>'
    headers = [
        ("Worker", "t"),
        ("State", "t"),
        ("Users", "n"),
        ("CPU %", "n"),
        ("Memory (MB)", "n"),
        ("Loop lag (ms)", "n"),
        ("Last heartbeat", "t"),
    ]
    rows = []
    for w in workers:
        cpu = float(_get(w, "cpu_percent") or 0.0)
        lag = float(_get(w, "loop_lag") or 0.0) * 1000
        rss = int(_get(w, "memory_rss") or 0)
        beat = _get(w, "last_heartbeat")
        rows.append(
            [
                (_e(_get(w, "id")), _get(w, "id")),
                (_e(_get(w, "state")), _get(w, "state")),
                (f"{int(_get(w, 'user_count') or 0):,}", _get(w, "user_count")),
                (f'<span class="{"hot" if cpu >= 90 else ""}">{cpu:.1f}</span>', cpu),
                (_num(rss / 1e6, 1), rss),
                (f'<span class="{"hot" if lag >= 100 else ""}">{lag:.1f}</span>', lag),
                (_e(_utc(beat)) if beat else "", beat or 0),
            ]
        )
    return _table(headers, rows)


def _failures_table(result: RunResult) -> str:
    rows = result.snapshot.errors  # most frequent first
    if not rows:
        return '<p class="empty">No failures.</p>'
    headers = [
        ("# Failures", "n"),
        ("Method", "t"),
        ("Name", "t name"),
        ("Message", "t msg"),
        ("First seen", "t"),
        ("Last seen", "t"),
    ]
    return _table(
        headers,
        [
            [
                (f"{r.occurrences:,}", r.occurrences),
                (_e(r.method), r.method),
                (_e(r.name), r.name),
                (f"<code>{_e(r.error)}</code>", r.error),
                (_e(_utc(r.first_seen)), r.first_seen or 0),
                (_e(_utc(r.last_seen)), r.last_seen or 0),
            ]
            for r in rows
        ],
    )


def _exceptions_html(result: RunResult) -> str:
    rows = sorted(result.exceptions, key=lambda x: -int(x.get("count", 0)))
    if not rows:
        return '<p class="empty">No exceptions in user code.</p>'
    out = []
    for x in rows:
        nodes = ", ".join(str(n) for n in x.get("nodes", ()) or ())
        out.append(
            f'<details class="exception"><summary><span class="count">{int(x.get("count", 0)):,}&times;</span> '
            f"<code>{_e(x.get('msg', ''))}</code>"
            f"{f' <span class=nodes>on {_e(nodes)}</span>' if nodes else ''}</summary>"
            f"<pre>{_e(x.get('traceback', ''))}</pre></details>"
        )
    return "".join(out)


def _json_for_script(data: object) -> str:
    """JSON that is safe inside ``<script>``: ``<``, ``>`` and ``&`` are escaped (no ``</script>`` breakout)."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@cache
def _plotly_js() -> str:
    """plotly.min.js from the installed ``plotly`` package (read once per process)."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:  # pragma: no cover - a broken plotly install
        raise RuntimeError(f"cannot read plotly.js from the plotly package ({path}): {exc}") from None
    # Never let the bundle close our <script> element early (it does not contain one today).
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.IGNORECASE)


# -- the output ----------------------------------------------------------------------------------------


def fill_placeholders(
    template: str, *, users: float | None, spawn_rate: float | None, run_time: float | None
) -> str:
    """Replace ``{u}``, ``{r}`` and ``{t}`` by ``str(int(value))`` (Locust's rule); a ``None`` keeps it literal.

    >>> fill_placeholders("report_{u}_{r}_{t}.html", users=100, spawn_rate=10.0, run_time=50)
    'report_100_10_50.html'
    """
    values = {"u": users, "r": spawn_rate, "t": run_time}

    def sub(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        return match.group(0) if value is None else str(int(value))

    return _PLACEHOLDER.sub(sub, template)


def check_writable(path_template: str | os.PathLike[str]) -> None:
    """Raise :class:`~horde.reports.output.OutputPathError` (one line) now if the report could not be
    written at the end; the CLI calls it before the test starts. Missing directories are created.

    The placeholders are unknown before the run; the path is checked with each of them set to ``0``.
    """
    from horde.reports.output import check_writable_file

    check_writable_file(fill_placeholders(os.fspath(path_template), users=0, spawn_rate=0, run_time=0))


def write_atomic(path: Path, text: str | Iterable[str]) -> None:
    """Write (a text, or its pieces in order) beside the destination, then rename: a reader never sees
    half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for piece in [text] if isinstance(text, str) else text:
                f.write(piece)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class HtmlOutput:
    """An :class:`~horde.reports.output.Output` that writes the report once, at ``stop(result)``.

    ``stop`` runs on every kind of end (run time, Ctrl-C, SIGTERM, ``StopTest``), so the report is written
    on SIGTERM too. The placeholders come from the run itself, not only from the command line, so they are
    right after a test started from the web UI:

    * ``{u}``: the highest target user count of the run (``-u``, the web form, an edit or a shape,
      watched at every tick), else the peak user count in the history, else ``--users``;
    * ``{r}``: the spawn rate of the test's start request (``result.spawn_rate``), else ``--spawn-rate``;
    * ``{t}``: the run time limit in seconds (``result.run_time``: ``-t`` or the web form's), else
      ``--run-time``, else the measured duration rounded to whole seconds.

    Each is ``str(int(value))``. A failure to write raises ``OSError`` with one line (also kept in
    :attr:`error`): the session logs it, still stops the other outputs, and turns a passing exit code into
    2, so a CI job notices a missing report.
    """

    def __init__(self, path_template: str | os.PathLike[str]) -> None:
        self.path_template = os.fspath(path_template)
        self.path: Path | None = None  # where the report was written
        self.error: str | None = None
        self._run: RunInfo | None = None
        self._locustfiles: tuple[LocustfileDigest, ...] | None = None
        self._peak_target = 0
        self.workers = WorkerSeries()
        self._cleared_at: float | None = None

    def description(self) -> str:
        return f"HTML report: {self.path_template} (written at the end)"

    def start(self, run: RunInfo) -> None:
        self._run = run
        locustfile = getattr(run, "locustfile", None) or _option(run.options, "locustfile")
        self._locustfiles = digest_locustfiles(locustfile)
        self._peak_target = 0
        self.workers = WorkerSeries()
        self._cleared_at = getattr(run.history, "cleared_at", None)
        self._observe()

    def on_tick(self, snapshot: StatsSnapshot) -> None:
        cleared = getattr(getattr(self._run, "history", None), "cleared_at", None)
        if cleared != self._cleared_at:  # a fresh test in the same session (web UI): its own figures
            self._cleared_at = cleared
            self._peak_target = 0
            self.workers = WorkerSeries()
        status = self._observe()
        if status is not None:
            self.workers.add(snapshot.time, getattr(status, "workers", ()) or ())

    def _observe(self) -> Any:
        """Remember the highest target user count (it changes on a web start, an edit or a shape)."""
        if self._run is None:
            return None
        try:
            status = self._run.status()
        except Exception:  # a report must not break the run
            return None
        target = getattr(status, "target_user_count", None)
        if isinstance(target, int | float) and target > self._peak_target:
            self._peak_target = int(target)
        return status

    def placeholders(self, result: RunResult) -> dict[str, float | None]:
        """The values of ``{u}``, ``{r}`` and ``{t}`` for this result (see the class docstring)."""
        self._observe()
        options = result.options
        users = self._peak_target or _peak_users(result) or _option(options, "users")
        rate = getattr(result, "spawn_rate", None) or _option(options, "spawn_rate")
        run_time = getattr(result, "run_time", None) or _option(options, "run_time")
        if not run_time:
            run_time = round(max(0.0, result.end_time - result.start_time))
        return {"users": users, "spawn_rate": rate, "run_time": run_time}

    def path_for(self, result: RunResult) -> Path:
        return Path(fill_placeholders(self.path_template, **self.placeholders(result)))

    def stop(self, result: RunResult) -> None:
        path = self.path_for(result)
        try:
            manifest = Manifest.from_result(result, locustfiles=self._locustfiles)
            write_atomic(path, render_parts(result, manifest=manifest, workers=self.workers))
        except OSError as exc:
            self.error = f"HTML report not written to {path}: {exc.strerror or exc}"
            raise OSError(self.error) from None
        self.path = path
        logger.info("HTML report written to %s", path)


def report_size_breakdown(text: str) -> dict[str, int]:
    """Bytes of the report that are plotly.js and that are everything else (for the size figures)."""
    plotly_bytes = len(_plotly_js().encode("utf-8"))
    total = len(text.encode("utf-8"))
    return {"total": total, "plotly": plotly_bytes, "report": total - plotly_bytes}


_CSS = """
:root{--fg:#1d2330;--muted:#5b6475;--line:#dfe3ea;--bg:#fff;--alt:#f6f8fb;--accent:#2d5bd7;
--pass:#17803d;--pass-bg:#e8f6ed;--warn:#8a5a00;--warn-bg:#fff5dc;--fail:#b3261e;--fail-bg:#fdecea}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header.top{display:flex;align-items:center;gap:16px;padding:14px 28px;background:#1d2330;color:#fff}
header.top .brand{font-weight:700;letter-spacing:.08em;text-transform:uppercase;background:var(--accent);
padding:3px 9px;border-radius:4px}
header.top h1{font-size:20px;margin:0;font-weight:600}
header.top .sub{font-weight:400;color:#b8c0d0;font-size:15px;margin-left:8px}
header.top .download{margin-left:auto;color:#fff}
main{max-width:1400px;margin:0 auto;padding:8px 28px 40px}
h2{font-size:17px;margin:28px 0 8px;padding-bottom:4px;border-bottom:2px solid var(--line)}
.note{color:var(--muted);margin:0 0 8px;font-size:13px}
.empty{color:var(--muted)}
.verdict{margin:20px 0 0;padding:12px 18px;border-radius:6px;border-left:6px solid}
.verdict strong{font-size:16px}
.verdict ul{margin:6px 0 0;padding-left:20px}
.verdict.pass{background:var(--pass-bg);border-color:var(--pass);color:var(--pass)}
.verdict.warn{background:var(--warn-bg);border-color:#d99a00;color:var(--warn)}
.verdict.fail{background:var(--fail-bg);border-color:var(--fail);color:var(--fail)}
.verdict li{color:var(--fg)}
.verdict li.fail{color:var(--fail);font-weight:600}
.verdict li.pass{color:var(--pass)}
dl.manifest{display:grid;grid-template-columns:max-content 1fr;gap:3px 18px;margin:0}
dl.manifest dt{color:var(--muted)}
dl.manifest dd{margin:0}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
details.options{margin-top:8px}
details.options table td{padding:1px 12px 1px 0;font:12px ui-monospace,Menlo,Consolas,monospace}
table.sortable{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
table.sortable th{background:var(--alt);text-align:left;font-weight:600;
padding:6px 8px;border-bottom:1px solid var(--line);cursor:pointer;white-space:nowrap;user-select:none}
table.sortable th.n,table.sortable td{text-align:right}
table.sortable td.t{text-align:left}
table.sortable th[data-dir=asc]::after{content:" \\25B2";font-size:10px}
table.sortable th[data-dir=desc]::after{content:" \\25BC";font-size:10px}
table.sortable td{padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
table.sortable td.name{max-width:420px;overflow-wrap:anywhere}
table.sortable td.msg{max-width:520px;overflow-wrap:anywhere}
table.sortable tbody tr:hover{background:var(--alt)}
table.sortable tr.total td{font-weight:600;border-top:2px solid var(--fg);background:var(--alt)}
.hot{color:var(--fail);font-weight:600}
.chart{height:320px;margin:4px 0 10px;border:1px solid var(--line);border-radius:6px}
#chart-entries{height:400px}
.pct-select{margin:6px 0 2px;color:var(--muted)}
.pct-select label{margin-left:10px;color:var(--fg);cursor:pointer}
details.exception{border:1px solid var(--line);border-radius:6px;margin:6px 0;padding:6px 10px}
details.exception summary{cursor:pointer}
details.exception .count{font-weight:700;color:var(--fail)}
details.exception .nodes{color:var(--muted)}
details.exception pre{overflow:auto;background:var(--alt);padding:8px;margin:8px 0 2px;font-size:12px}
footer{color:var(--muted);font-size:12px;text-align:center;padding:16px}
@media print{.chart{break-inside:avoid}header.top{background:#fff;color:#000}}
"""

_JS = r"""
(function () {
  "use strict";
  // Click-to-sort tables; the Aggregated row (tr.total) stays last. "1,234" sorts as 1234, N/A lowest.
  function num(text) {
    var v = parseFloat(text.replace(/,/g, ""));
    return isNaN(v) ? -Number.MAX_VALUE : v;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("th").forEach(function (th, col) {
      th.addEventListener("click", function () {
        var dir = th.dataset.dir === "asc" ? "desc" : "asc";
        table.querySelectorAll("th").forEach(function (o) { delete o.dataset.dir; });
        th.dataset.dir = dir;
        var numeric = th.classList.contains("n");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var pinned = rows.filter(function (r) { return r.classList.contains("total"); });
        rows = rows.filter(function (r) { return !r.classList.contains("total"); });
        rows.sort(function (a, b) {
          var x = a.cells[col].textContent, y = b.cells[col].textContent;
          var c = numeric ? num(x) - num(y) : x.localeCompare(y);
          return dir === "asc" ? c : -c;
        });
        rows.concat(pinned).forEach(function (r) { body.appendChild(r); });
      });
    });
  });

  var data = JSON.parse(document.getElementById("report-data").textContent);
  var c = data.chart;
  if (!window.Plotly || !c || !c.t.length) { return; }
  var x = c.t.map(function (dt) { return new Date((c.t0 + dt) * 1000); });
  var config = {displaylogo: false, responsive: true,
                modeBarButtonsToRemove: ["lasso2d", "select2d"]};
  // start / edit / stop / reset markers: a dotted line on every chart, the text on hover of its label
  var colors = {start: "#17803d", edit: "#8a5a00", stop: "#b3261e", reset: "#6c4ab6"};
  var shapes = c.markers.map(function (m) {
    var at = new Date((c.t0 + m.t) * 1000);
    return {type: "line", xref: "x", yref: "paper", x0: at, x1: at, y0: 0, y1: 1,
            line: {color: colors[m.kind] || "#8a8d91", width: 1, dash: "dot"}};
  });
  var notes = c.markers.map(function (m) {
    return {x: new Date((c.t0 + m.t) * 1000), xref: "x", yref: "paper", y: 1, yanchor: "bottom",
            text: m.kind, hovertext: m.text, showarrow: false, font: {size: 10, color: colors[m.kind] || "#8a8d91"}};
  });
  function layout(title, unit) {
    return {title: {text: title, x: 0.01, font: {size: 14}}, margin: {l: 60, r: 20, t: 44, b: 36},
            xaxis: {type: "date", title: {text: "UTC", font: {size: 11}}},
            yaxis: {title: {text: unit}, rangemode: "tozero"}, shapes: shapes, annotations: notes,
            legend: {orientation: "h", y: 1.14, x: 1, xanchor: "right"}, hovermode: "x unified"};
  }
  function line(name, y, color, extra) {
    var t = {x: x, y: y, name: name, type: "scatter", mode: "lines", connectgaps: false,
             line: {width: 1.8, color: color}};
    for (var k in extra || {}) { t[k] = extra[k]; }
    return t;
  }
  var palette = ["#2d5bd7", "#d1495b", "#00a36c", "#edae49", "#6c4ab6", "#30a5bf", "#8a8d91", "#e07b39"];
  Plotly.newPlot("chart-rps", [line("Requests/s", c.rps, "#2d5bd7"),
    line("Failures/s", c.fps, "#d1495b")], layout("Requests per second", "per second"), config);

  var labels = Object.keys(c.pct);
  var rt = labels.map(function (label, i) {
    return line(label, c.pct[label], palette[i % palette.length],
                {visible: c.visible.indexOf(label) >= 0 ? true : "legendonly"});
  });
  Plotly.newPlot("chart-rt", rt, layout("Response time percentiles (last 10 s)", "ms"), config);
  var boxes = document.querySelectorAll("#pct-select input");
  boxes.forEach(function (box) {
    box.addEventListener("change", function () {
      Plotly.restyle("chart-rt", {visible: box.checked ? true : "legendonly"},
                     [labels.indexOf(box.dataset.pct)]);
    });
  });
  document.getElementById("chart-rt").on("plotly_restyle", function () {
    var traces = document.getElementById("chart-rt").data;
    boxes.forEach(function (box) {
      box.checked = traces[labels.indexOf(box.dataset.pct)].visible === true;
    });
  });
  Plotly.newPlot("chart-users", [line("Users", c.users, "#1d2330", {line: {width: 2.2, color: "#1d2330", shape: "hv"}})], layout("Users", "users"), config);

  if (c.entries.lines) {
    var names = Object.keys(c.entries.lines);
    var per_entry = names.map(function (name, i) {
      var e = c.entries.lines[name];
      var t = e.t || c.entries.t.slice(e.from);
      return {x: t.map(function (dt) { return new Date((c.t0 + dt) * 1000); }), y: e.v, name: name,
              type: "scatter", mode: "lines", connectgaps: false,
              line: {width: 1.5, color: palette[i % palette.length]}};
    });
    var title = c.entries.percentile + " response time of the " + names.length + " busiest requests (last 10 s, every 10 s)";
    var l = layout(title, "ms");
    l.legend = {orientation: "h", x: 0, y: -0.18, yanchor: "top", font: {size: 11}};
    l.margin.b = 90;
    Plotly.newPlot("chart-entries", per_entry, l, config);
  }

  var ids = Object.keys(c.workers);
  if (ids.length) {
    function per(key) {
      return ids.map(function (id, i) {
        var w = c.workers[id];
        return {x: w.t.map(function (dt) { return new Date((c.t0 + dt) * 1000); }), y: w[key], name: id,
                type: "scatter", mode: "lines", line: {width: 1.5, color: palette[i % palette.length]}};
      });
    }
    Plotly.newPlot("chart-cpu", per("cpu"), layout("Generator CPU per worker (90 % and above: saturated)", "%"), config);
    Plotly.newPlot("chart-lag", per("lag"), layout("Generator event-loop lag per worker", "ms"), config);
  }
})();
"""
