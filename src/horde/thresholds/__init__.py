"""Pass/fail thresholds: ``--threshold 'p95<300ms'``, evaluated live on every tick, a CI gate at the end.

* :mod:`~horde.thresholds.parse` — expressions → :class:`Threshold`, every problem at once;
* :mod:`~horde.thresholds.evaluate` — a threshold on a stats snapshot → :class:`Verdict`;
* :mod:`~horde.thresholds.output` — :class:`ThresholdOutput`, the live checker (status line, abort);
* :mod:`~horde.thresholds.junit` — JUnit XML (``--junit FILE``).

    thresholds, problems = parse_all(["p95<300ms", "GET /items: p99<800ms", "fail_ratio<1%"])
    checker = ThresholdOutput(thresholds, abort=True, abort_after=30, on_abort=lambda why: run.stop(why))

A breached threshold makes the run exit with :data:`THRESHOLD_EXIT_CODE` (3). See ``docs/thresholds.md``.
"""

from horde.thresholds.evaluate import THRESHOLD_EXIT_CODE, Verdict, any_breached, evaluate, evaluate_all
from horde.thresholds.junit import JUnitOutput, junit_xml
from horde.thresholds.metrics import EXTRA_METRICS, SNAPSHOT_METRICS, MetricInfo
from horde.thresholds.output import ThresholdOutput, no_data_warnings, summary_lines
from horde.thresholds.parse import (
    Scope,
    Threshold,
    ThresholdError,
    parse_all,
    parse_threshold,
    split_expressions,
)

__all__ = [
    "EXTRA_METRICS",
    "SNAPSHOT_METRICS",
    "THRESHOLD_EXIT_CODE",
    "JUnitOutput",
    "MetricInfo",
    "Scope",
    "Threshold",
    "ThresholdError",
    "ThresholdOutput",
    "Verdict",
    "any_breached",
    "evaluate",
    "evaluate_all",
    "junit_xml",
    "no_data_warnings",
    "parse_all",
    "parse_threshold",
    "split_expressions",
    "summary_lines",
]
