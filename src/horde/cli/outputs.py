"""Which outputs a run gets, from its options. Every path is checked writable, and every port bound, here:
before any load is sent, so a typo costs one line and an exit code, never a finished test's results."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence

from horde.reports import csv as csv_report
from horde.reports import html as html_report
from horde.reports import json as json_report
from horde.reports.console import ConsoleOutput
from horde.reports.output import Output, check_writable_file, describe
from horde.thresholds.options import build_threshold_outputs
from horde.thresholds.output import ThresholdOutput
from horde.thresholds.parse import Threshold


def build_outputs(
    options: argparse.Namespace,
    *,
    web: bool = False,
    thresholds: Sequence[Threshold] = (),
    sources: Mapping[str, Callable[[], float | None]] | None = None,
) -> tuple[list[Output], ThresholdOutput | None]:
    """The console first, then each report the options ask for (``--json``, ``--csv``, ``--html``,
    ``--prometheus-port``), with the threshold checker (and ``--junit``) ahead of the console so the live
    status line is this tick's. Returns the outputs and the checker (``None`` without thresholds). Raises
    ``OutputPathError`` or ``OSError`` with one line on a bad path or port.

    In a web UI run the live table prints only with ``--print-stats`` (the page shows it); the final summary
    always prints. With ``--json`` to stdout the tables go to stderr so stdout stays valid JSON.
    """
    to_stdout = options.json_file == "-"
    live = not web or bool(getattr(options, "print_stats", False))
    checker, outputs = build_threshold_outputs(
        options,
        on_abort=None,
        thresholds=list(thresholds),
        check_writable=check_writable_file,
        sources=sources,
    )
    outputs.append(
        ConsoleOutput(
            stream=sys.stderr if to_stdout else None,
            interval=float(options.print_stats_interval),
            only_summary=bool(options.only_summary) or not live,
            status_lines=(lambda: [checker.status_line()]) if checker is not None else None,
        )
    )
    if options.json_file:
        json_report.check_writable(options.json_file)
        outputs.append(json_report.JsonOutput(options.json_file))
    if getattr(options, "csv_prefix", None):
        csv_report.check_writable(options.csv_prefix)
        outputs.append(csv_report.CsvOutput(options.csv_prefix, full_history=bool(options.csv_full_history)))
    if getattr(options, "html_file", None):
        html_report.check_writable(options.html_file)
        outputs.append(html_report.HtmlOutput(options.html_file))
    if getattr(options, "prometheus_port", None) is not None:
        from horde.reports.prometheus import PrometheusOutput

        prometheus = PrometheusOutput(options.prometheus_port, host=options.prometheus_host)
        prometheus.open()  # bind now: a port in use fails before the test
        outputs.append(prometheus)
    return outputs, checker


def describe_outputs(outputs: list[Output]) -> list[str]:
    """One line per report output (the console is left out: it is always there)."""
    return [describe(o) for o in outputs if not isinstance(o, ConsoleOutput)]
