"""``ThresholdOutput``: thresholds as one more consumer of the per-tick snapshot (the k6 pattern).

It evaluates every threshold on every tick, on the snapshot the session hands to all outputs (on a master,
the merged, cluster-wide stats), keeps the latest verdicts and a one-line live status for the console,
and, with ``abort=True``, calls ``on_abort(reason)`` once at the first breach after the grace period.

The grace period runs from the first tick of a test, measured on the snapshots' own timestamps (so it
works on a fake clock); a statistics reset (a new test, or "reset stats" in the UI) starts a new grace
period and re-arms the abort, since the cumulative figures start again from nothing. Breaches inside the
grace period are shown but do not abort; the first tick after it that still shows a breach does.

    checker = ThresholdOutput(thresholds, abort=True, abort_after=30)
    run = TestRun(env, outputs=[checker, console])   # the checker first: the console shows this tick's line
    checker.on_abort = run.stop                      # run.stop(reason) becomes the run's stop reason

At the end the session asks :meth:`ThresholdOutput.result_verdicts` for the final verdicts (computed from
the final snapshot and the final stats, exactly what every other report ends with) and puts them in
``RunResult.thresholds``; :meth:`stop` keeps the same verdicts in :attr:`final`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from horde.thresholds.evaluate import Verdict, evaluate_all
from horde.thresholds.parse import Threshold

if TYPE_CHECKING:
    from horde.reports.output import RunInfo, RunResult
    from horde.stats import RequestStats
    from horde.stats.snapshot import StatsSnapshot

logger = logging.getLogger(__name__)

#: Runner states in which an abort makes sense (the final tick after the stop must not stop again).
_ACTIVE = ("spawning", "running")
#: Slack when comparing tick times: an epoch timestamp near 1.7e9 s carries ~1e-7 s of rounding per step.
_EPSILON = 1e-3


class ThresholdOutput:
    """Live threshold evaluation over the tick snapshots; see the module docstring.

    ``sources`` supplies the extra, run-wide metrics by name, each a callable returning the current value
    or ``None`` (``{"dropped_iterations": lambda: runner.dropped_iterations}``); each is read once per tick,
    and only when a threshold uses it.
    """

    def __init__(
        self,
        thresholds: Iterable[Threshold],
        *,
        abort: bool = False,
        abort_after: float = 0.0,
        on_abort: Callable[[str], Any] | None = None,
        sources: Mapping[str, Callable[[], float | None]] | None = None,
    ) -> None:
        self.thresholds: list[Threshold] = list(thresholds)
        self.abort = abort
        self.abort_after = max(0.0, float(abort_after))
        self.on_abort = on_abort
        self.sources: dict[str, Callable[[], float | None]] = dict(sources or {})
        #: The verdicts of the latest tick (the final ones once the run has stopped).
        self.verdicts: list[Verdict] = []
        #: The final verdicts, set by :meth:`result_verdicts` / :meth:`stop`.
        self.final: list[Verdict] | None = None
        #: The abort reason once the test was aborted (``None`` before).
        self.aborted: str | None = None
        self.stats: RequestStats | None = None
        self._run: RunInfo | None = None
        self._epoch: float | None = None  # the stats' start time of the current test
        self._first_tick: float | None = None
        self._last_tick: float | None = None

    # ---- the Output protocol ------------------------------------------------------------------------
    def description(self) -> str:
        names = ", ".join(t.expression for t in self.thresholds) or "none"
        text = f"Thresholds: {names}"
        if self.abort:
            grace = f" after a {self.abort_after:g} s grace period" if self.abort_after else ""
            text += f" (the test stops at the first breach{grace})"
        return text

    def start(self, run: RunInfo) -> None:
        self._run = run
        self.stats = run.env.stats

    def on_tick(self, snapshot: StatsSnapshot) -> None:
        if snapshot.total.start_time != self._epoch:  # a new test or a stats reset: figures start over
            self._epoch = snapshot.total.start_time
            self._first_tick = snapshot.time
            self.aborted = None
            self.final = None
        self._last_tick = snapshot.time
        self.verdicts = self.evaluate(snapshot, self.stats)
        if self.abort and self.aborted is None and self._in_force(snapshot.time):
            breached = [v for v in self.verdicts if v.ok is False]
            if breached and self._active():
                self._abort(breached)

    def stop(self, result: RunResult) -> None:
        self.result_verdicts(result)

    # ---- evaluation ---------------------------------------------------------------------------------
    def evaluate(self, snapshot: StatsSnapshot, stats: RequestStats | None = None) -> list[Verdict]:
        """Every threshold's verdict on ``snapshot`` (``stats``: the live stats it was taken of)."""
        return evaluate_all(self.thresholds, snapshot, stats=stats, extra=self._extra())

    def result_verdicts(self, result: RunResult) -> list[Verdict]:
        """The final verdicts of a finished run (what ``RunResult.thresholds`` holds); computed once.

        Uses ``result.thresholds`` when the session already put verdicts there, otherwise evaluates on
        ``result.snapshot`` with ``result.stats``.
        """
        given = [v for v in getattr(result, "thresholds", ()) or () if isinstance(v, Verdict)]
        if given:
            self.final = given
        elif self.final is None:
            self.final = self.evaluate(result.snapshot, result.stats)
        self.verdicts = list(self.final)
        return list(self.final)

    def final_verdicts(self, snapshot: StatsSnapshot, stats: RequestStats | None) -> list[Verdict]:
        """The final verdicts from the final snapshot and stats (for a session building its result)."""
        self.final = self.evaluate(snapshot, stats)
        self.verdicts = list(self.final)
        return list(self.final)

    def _extra(self) -> dict[str, float | None]:
        wanted = {t.metric for t in self.thresholds if t.info.extra}
        values: dict[str, float | None] = {}
        for name in wanted:
            source = self.sources.get(name)
            values[name] = source() if source is not None else None
        return values

    # ---- abort --------------------------------------------------------------------------------------
    def _in_force(self, now: float) -> bool:
        """True once the grace period, counted from the test's first tick, is over."""
        return self._first_tick is not None and now - self._first_tick >= self.abort_after - _EPSILON

    def _active(self) -> bool:
        """False once the run is stopping (no run known: always active, e.g. library use)."""
        runner = getattr(getattr(self._run, "env", None), "runner", None)
        state = getattr(runner, "state", None)
        return state is None or str(state) in _ACTIVE

    def _abort(self, breached: Sequence[Verdict]) -> None:
        first = breached[0]
        reason = f"threshold {first.expression} breached: observed {first.observed_text}"
        if len(breached) > 1:
            reason += f" (and {len(breached) - 1} more)"
        self.aborted = reason  # set before the call, so a failing callback is never retried every tick
        logger.warning("Stopping the test: %s", reason)
        if self.on_abort is not None:
            self.on_abort(reason)

    # ---- what the console shows ---------------------------------------------------------------------
    def status_line(self) -> str:
        """One line for the live console: ``thresholds: 2/3 ok, 1 BREACHED p95<300ms (412 ms) | …``."""
        verdicts = self.verdicts
        if not verdicts:
            return f"thresholds: {len(self.thresholds)} waiting for the first tick"
        ok = sum(v.ok is True for v in verdicts)
        breached = [v for v in verdicts if v.ok is False]
        missing = sum(v.ok is None for v in verdicts)
        parts = [f"{ok}/{len(verdicts)} ok"]
        if breached:
            shown = ", ".join(f"{v.expression} ({v.observed_text})" for v in breached[:2])
            more = f" +{len(breached) - 2}" if len(breached) > 2 else ""
            parts.append(f"{len(breached)} BREACHED {shown}{more}")
        if missing:
            parts.append(f"{missing} no data")
        line = "thresholds: " + ", ".join(parts)
        if self.aborted:
            line += " | test stopped at the breach"
        elif self.abort:
            line += " | " + self._abort_state()
        return line

    def _abort_state(self) -> str:
        if self._first_tick is None or self._last_tick is None:
            return "abort on breach"
        left = self.abort_after - (self._last_tick - self._first_tick)
        return f"abort on breach in {left:.0f} s" if left > _EPSILON else "abort on breach armed"

    def summary_lines(self) -> list[str]:
        """The final summary block (see :func:`summary_lines`)."""
        return summary_lines(self.final if self.final is not None else self.verdicts)

    def warnings(self) -> list[str]:
        """:func:`no_data_warnings` of the final verdicts (none before the run has ended)."""
        return no_data_warnings(self.final) if self.final is not None else []


def no_data_warnings(verdicts: Iterable[Verdict]) -> list[str]:
    """One warning per threshold without data: a misspelt scope must not pass unnoticed.

    >>> from horde.thresholds.evaluate import Verdict
    >>> from horde.thresholds.parse import parse_threshold
    >>> no_data_warnings([Verdict(parse_threshold("GET /x: avg<1"), None, None, "", why="no request GET /x yet")])
    ['Threshold GET /x: avg<1 had no data at the end (no request GET /x yet); check its scope and metric']
    """
    return [
        f"Threshold {v.expression} had no data at the end ({v.why}); check its scope and metric"
        for v in verdicts
        if v.ok is None
    ]


def summary_lines(verdicts: Sequence[Verdict]) -> list[str]:
    """The end-of-run block: a headline, then one line per threshold with its observed value.

    ::

        Thresholds: 1 of 3 breached
          FAIL     p95<300ms          observed 412 ms
          pass     fail_ratio<1%      observed 0.2 %
          no data  GET /x: p99<800ms  no request GET /x yet
    """
    if not verdicts:
        return []
    breached = sum(v.ok is False for v in verdicts)
    missing = sum(v.ok is None for v in verdicts)
    if breached:
        head = f"Thresholds: {breached} of {len(verdicts)} breached"
    else:
        head = f"Thresholds: all {len(verdicts)} passed" if not missing else "Thresholds: none breached"
    if missing:
        head += f", {missing} without data"
    width = max(len(v.expression) for v in verdicts)
    lines = [head]
    for v in verdicts:
        mark = {True: "pass", False: "FAIL", None: "no data"}[v.ok]
        detail = f"observed {v.observed_text}" if v.observed is not None else str(v.why)
        lines.append(f"  {mark:<8} {v.expression:<{width}}  {detail}")
    return lines


__all__ = ["ThresholdOutput", "no_data_warnings", "summary_lines"]
