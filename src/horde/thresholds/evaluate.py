"""Evaluate thresholds on one :class:`~horde.stats.snapshot.StatsSnapshot` → one :class:`Verdict` each.

Every figure is over the whole run so far (the snapshot's cumulative numbers), except ``current_rps``,
which is the last ~10 s by definition. A verdict is ``ok=True`` (met), ``ok=False`` (breached) or
``ok=None`` (no data yet: no request in the scope, no timed request for a time metric, no source for an
extra metric). Counts and rates of an existing scope are always data: 0 requests is an observation.

**Merging a name across methods** (``/items: …``): counts, failures and rates are summed (the rates share
one denominator, the run's span, so their sum is the rate of the union); ``fail_ratio`` is summed failures
over summed requests; ``avg`` is weighted by each entry's timed requests, which is exact (an average times
its count is the entry's sum); ``min``/``max``/``p100`` are the extremes. **Percentiles** need the
distribution, not the entries' percentiles: with the live ``RequestStats`` (the session always passes it)
the entries' histograms are added and the percentile is read from the sum, exactly as the ``Aggregated``
row does (within the histogram's 0.78 % bucket error). Without it, the percentile is *approximated*: each
entry's distribution is taken as the piecewise-linear CDF through its reported percentiles (from its min
at 0 to its max at 1), the request-weighted mixture is solved for the quantile, and the verdict says
``approximate``. The answer always lies between the smallest and the largest entry's own value at that
quantile. The same interpolation answers a percentile the snapshot does not report (``p97``) when no live
stats are given.

>>> from horde.clock import FakeClock
>>> from horde.stats import RequestStats, take_snapshot
>>> from horde.thresholds.parse import parse_threshold
>>> stats = RequestStats(FakeClock(1000.0))
>>> for ms in (100, 200, 400):
...     stats.record("GET", "/items", ms, 0)
>>> verdict = evaluate(parse_threshold("p95<300ms"), take_snapshot(stats, user_count=1), stats=stats)
>>> verdict.ok, verdict.observed, verdict.text
(False, 400.0, 'p95 of all requests < 300 ms: observed 400 ms')
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from horde.stats.histogram import Histogram
from horde.thresholds.parse import Threshold

if TYPE_CHECKING:
    from horde.stats import RequestStats, StatsEntry
    from horde.stats.snapshot import EntrySnapshot, StatsSnapshot

#: The process exit code of a run with a breached threshold (see docs/thresholds.md for the precedence).
THRESHOLD_EXIT_CODE = 3

#: Why an extra metric may have no value (shown in the verdict).
_EXTRA_HINTS = {"dropped_iterations": "only arrival-rate load models start, and drop, iterations"}


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one threshold at one instant.

    ``observed`` is in the threshold's canonical unit (ms, a fraction, a count, a rate) or ``None`` without
    data; ``text`` is one line, ``"p95 of all requests < 300 ms: observed 412 ms"``.
    """

    threshold: Threshold
    ok: bool | None
    observed: float | None
    text: str
    #: True when ``observed`` was interpolated from reported percentiles rather than read from histograms.
    approximate: bool = False
    #: Why there is no data (``ok is None``): ``"no request GET /items yet"``.
    why: str | None = None

    @property
    def expression(self) -> str:
        return self.threshold.expression

    @property
    def status(self) -> str:
        """``"pass"``, ``"fail"`` or ``"no data"``."""
        return {True: "pass", False: "fail", None: "no data"}[self.ok]

    @property
    def observed_text(self) -> str | None:
        """The observed value in the unit the expression used (``"412 ms"``), ``None`` without data."""
        if self.observed is None:
            return None
        return ("about " if self.approximate else "") + self.threshold.format(self.observed)

    def describe(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form: the threshold's fields plus ``ok``, ``status``, ``observed``, ``text``."""
        return {
            **self.threshold.to_dict(),
            "ok": self.ok,
            "status": self.status,
            "observed": self.observed,
            "observed_text": self.observed_text,
            "approximate": self.approximate,
            "why": self.why,
            "text": self.text,
        }


def any_breached(verdicts: Iterable[Verdict]) -> bool:
    """True when at least one verdict is a breach (``ok is False``): the run exits with code 3."""
    return any(v.ok is False for v in verdicts)


def evaluate_all(
    thresholds: Iterable[Threshold],
    snapshot: StatsSnapshot,
    *,
    stats: RequestStats | None = None,
    extra: Mapping[str, float | None] | None = None,
) -> list[Verdict]:
    """One verdict per threshold, in order (see :func:`evaluate`)."""
    return [evaluate(t, snapshot, stats=stats, extra=extra) for t in thresholds]


def evaluate(
    threshold: Threshold,
    snapshot: StatsSnapshot,
    *,
    stats: RequestStats | None = None,
    extra: Mapping[str, float | None] | None = None,
) -> Verdict:
    """The verdict of ``threshold`` on ``snapshot``.

    ``stats`` are the live stats the snapshot was taken of, at the same instant (the session's tick
    guarantees it); they make percentiles of merged names and unreported percentiles exact. Stats whose
    counts differ from the snapshot's are ignored. ``extra`` holds the extra metrics by name
    (``{"dropped_iterations": 0}``); a missing or ``None`` value is "no data".
    """
    info = threshold.info
    if info.extra:
        value = (extra or {}).get(threshold.metric)
        if value is None:
            hint = _EXTRA_HINTS.get(threshold.metric, "this run does not report it")
            return _no_data(threshold, f"no {threshold.metric} figure: {hint}")
        return _verdict(threshold, float(value))
    rows = _rows(threshold, snapshot)
    if not rows:
        scope = threshold.scope
        where = f"{scope.method} {scope.name}" if scope.is_entry else f"named {scope.name}"
        return _no_data(threshold, f"no request {where} yet")
    live = _live_entries(threshold, rows, stats)
    observed, why, approximate = _measure(threshold, rows, live)
    if observed is None or math.isnan(observed):
        return _no_data(threshold, why or "no data")
    return _verdict(threshold, observed, approximate)


def _verdict(threshold: Threshold, observed: float, approximate: bool = False) -> Verdict:
    shown = ("about " if approximate else "") + threshold.format(observed)
    note = " (approximate: interpolated from reported percentiles)" if approximate else ""
    return Verdict(
        threshold,
        threshold.compare(observed),
        observed,
        f"{threshold.describe()}: observed {shown}{note}",
        approximate,
    )


def _no_data(threshold: Threshold, why: str) -> Verdict:
    return Verdict(threshold, None, None, f"{threshold.describe()}: no data ({why})", why=why)


def _rows(threshold: Threshold, snapshot: StatsSnapshot) -> list[EntrySnapshot]:
    scope = threshold.scope
    if scope.name is None:
        return [snapshot.total]
    if scope.method is None:
        return [e for e in snapshot.entries if e.name == scope.name]
    return [e for e in snapshot.entries if e.name == scope.name and e.method == scope.method]


def _live_entries(
    threshold: Threshold, rows: Sequence[EntrySnapshot], stats: RequestStats | None
) -> list[StatsEntry] | None:
    """The live entries behind ``rows`` when they hold exactly the snapshot's counts, else ``None``."""
    if stats is None or threshold.quantile is None:
        return None
    live: list[StatsEntry] = []
    for row in rows:
        entry = stats.total if threshold.scope.is_total else stats.entries.get((row.name, row.method))
        if (
            entry is None
            or entry.num_requests != row.num_requests
            or entry.max_response_time != (row.max_response_time)
        ):
            return None
        live.append(entry)
    return live


def _measure(
    threshold: Threshold, rows: Sequence[EntrySnapshot], live: Sequence[StatsEntry] | None
) -> tuple[float | None, str | None, bool]:
    """(observed, why there is no value, approximate)."""
    metric = threshold.metric
    if metric == "requests":
        return float(sum(e.num_requests for e in rows)), None, False
    if metric == "failures":
        return float(sum(e.num_failures for e in rows)), None, False
    if metric == "rps":
        return sum(e.total_rps for e in rows), None, False
    if metric == "current_rps":
        return sum(e.current_rps for e in rows), None, False
    if metric == "fail_ratio":
        requests = sum(e.num_requests for e in rows)
        failures = sum(e.num_failures for e in rows)
        if requests:
            return failures / requests, None, False
        # a failure without a request (a failed connect logged alone) is all failure, as in StatsEntry
        return (1.0, None, False) if failures else (None, "no request yet", False)
    timed_rows = [e for e in rows if e.timed_requests > 0]
    if not timed_rows:
        return None, "no timed request yet", False
    if metric == "avg":
        timed = sum(e.timed_requests for e in timed_rows)
        return sum(e.avg_response_time * e.timed_requests for e in timed_rows) / timed, None, False
    if metric == "min":
        return min(e.min_response_time for e in timed_rows), None, False
    if metric == "max":
        return max(e.max_response_time for e in timed_rows), None, False
    assert threshold.quantile is not None
    return _percentile(threshold.quantile, metric, rows, timed_rows, live)


def _percentile(
    q: float,
    metric: str,
    rows: Sequence[EntrySnapshot],
    timed_rows: Sequence[EntrySnapshot],
    live: Sequence[StatsEntry] | None,
) -> tuple[float, None, bool]:
    if q >= 1.0:
        return max(e.max_response_time for e in timed_rows), None, False
    if len(rows) == 1:
        row = rows[0]
        reported = _reported(row.percentiles, q)
        if reported is not None:
            return reported, None, False
        if metric == "median":
            return row.median_response_time, None, False
    if live is not None:
        return _histogram_percentile(q, live), None, False
    return _mixture_quantile(q, timed_rows), None, True


def _reported(percentiles: Mapping[float, float], q: float) -> float | None:
    for key, value in percentiles.items():
        if abs(key - q) < 1e-12:
            return value
    return None


def _histogram_percentile(q: float, entries: Sequence[StatsEntry]) -> float:
    """The percentile of the union of ``entries``' samples: their histograms added, clamped to [min, max]."""
    timed = [e for e in entries if e.min_response_time is not None]
    low = round(min(e.min_response_time or 0.0 for e in timed) * 1000)
    high = round(max(e.max_response_time for e in timed) * 1000)
    if len(timed) == 1:
        histogram = timed[0].histogram
    else:
        histogram = Histogram()
        for entry in timed:
            histogram.merge(entry.histogram)
    return histogram.percentiles((q,), low, high)[0] / 1000


# ---- the approximation without live stats --------------------------------------------------------


def _cdf_points(row: EntrySnapshot) -> tuple[list[float], list[float]]:
    """(values, quantiles): the entry's reported percentiles as points of a CDF, min at 0 and max at 1."""
    xs = [row.min_response_time]
    qs = [0.0]
    for q, value in sorted(row.percentiles.items()):
        if 0.0 < q < 1.0:
            xs.append(max(xs[-1], min(value, row.max_response_time)))
            qs.append(q)
    xs.append(max(xs[-1], row.max_response_time))
    qs.append(1.0)
    return xs, qs


def _cdf(xs: Sequence[float], qs: Sequence[float], x: float, *, left: bool = False) -> float:
    """The piecewise-linear CDF at ``x`` (``left``: its limit from below, where a vertical step sits)."""
    if left:
        i = bisect_left(xs, x) - 1
        if i < 0:
            return 0.0
    else:
        i = bisect_right(xs, x) - 1
        if i < 0:
            return 0.0
        if xs[i] == x:
            return qs[i]
    if i >= len(xs) - 1:
        return 1.0
    x0, x1 = xs[i], xs[i + 1]
    return qs[i] + (qs[i + 1] - qs[i]) * (x - x0) / (x1 - x0)


def _mixture_quantile(q: float, rows: Sequence[EntrySnapshot]) -> float:
    """Smallest x where the request-weighted mixture of the rows' interpolated CDFs reaches ``q``."""
    curves = [(_cdf_points(r), r.timed_requests) for r in rows]
    total = sum(w for _, w in curves)

    def mixture(x: float, left: bool = False) -> float:
        return sum(w * _cdf(xs, qs, x, left=left) for (xs, qs), w in curves) / total

    points = sorted({x for (xs, _), _ in curves for x in xs})
    previous = points[0]
    if mixture(previous) >= q - 1e-12:
        return previous
    for x in points[1:]:
        below, at = mixture(previous), mixture(x, left=True)
        if at >= q - 1e-12 and at > below:
            return previous + (x - previous) * (q - below) / (at - below)
        if mixture(x) >= q - 1e-12:
            return x
        previous = x
    return points[-1]


__all__ = ["THRESHOLD_EXIT_CODE", "Verdict", "any_breached", "evaluate", "evaluate_all"]
