"""The threshold flags, their checks before anything starts, and the outputs they ask for.

The CLI calls :func:`add_threshold_arguments` on its parser (so each flag also comes from ``HORDE_*``
variables, ``horde.conf`` and ``pyproject.toml [tool.horde]`` like every other option), then
:func:`check_threshold_options` for every problem at once, then :func:`build_threshold_outputs`::

    --threshold EXPR               repeatable; config: a TOML list, or one string split on ';'
    --threshold-abort              stop the test at the first breach
    --threshold-abort-after SECS   grace period before an abort: 30, 30s, 2m, 1m30s, 1.5s
    --junit FILE                   the verdicts as JUnit XML at the end

Flags replace the config files' thresholds instead of adding to them (a flag overrides its config value,
as for every option), so a CI job can set its own gate over a project's defaults.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from horde.thresholds.junit import JUnitOutput
from horde.thresholds.output import ThresholdOutput
from horde.thresholds.parse import Threshold, parse_all, split_expressions

_DURATION = re.compile(r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s?)?$")


def parse_duration(text: str | float) -> float:
    """Seconds from ``30``, ``30s``, ``1.5s``, ``2m``, ``1m30s``, ``1h``; raises ValueError otherwise.

    >>> parse_duration("1m30s"), parse_duration("1.5s"), parse_duration(20)
    (90.0, 1.5, 20.0)
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        raw = str(text).strip().lower().replace(" ", "")
        match = _DURATION.match(raw)
        if not raw or not match or not any(match.groupdict().values()):
            raise ValueError(f"invalid duration {text!r}: use seconds (30) or units like 30s, 2m, 1m30s")
        parts = {k: float(v) for k, v in match.groupdict().items() if v}
        value = parts.get("h", 0.0) * 3600 + parts.get("m", 0.0) * 60 + parts.get("s", 0.0)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"invalid duration {text!r}: must be a finite number of seconds >= 0")
    return value


def _duration_arg(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class _ThresholdAction(argparse.Action):
    """``append``, except that the first flag drops what the config files gave (flags replace config)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        current = getattr(namespace, self.dest, None)
        if current is None or current is self.default or isinstance(current, str):
            current = []
        setattr(namespace, self.dest, [*current, values])


def add_threshold_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--threshold``, ``--threshold-abort``, ``--threshold-abort-after`` and ``--junit``."""
    group = parser.add_argument_group("thresholds (pass/fail criteria; a breach exits with code 3)")
    add = group.add_argument
    add(
        "--threshold",
        action=_ThresholdAction,
        default=None,
        metavar="EXPR",
        help="a pass/fail criterion, repeatable: 'p95<300ms', 'fail_ratio<1%%', 'rps>500', "
        "'GET /items: p99<800ms', '/items: avg<200' (see docs/thresholds.md)",
    )
    add(
        "--threshold-abort",
        action="store_true",
        default=None,
        help="stop the test at the first breached threshold (after --threshold-abort-after)",
    )
    add(
        "--threshold-abort-after",
        type=_duration_arg,
        default=0.0,
        metavar="SECONDS",
        help="grace period from the first stats tick before a breach stops the test (30, 30s, 2m)",
    )
    add(
        "--junit",
        metavar="FILE",
        help="write the thresholds' verdicts as JUnit XML to FILE",
    )


def threshold_texts(options: argparse.Namespace) -> list[str]:
    """The expressions the options hold: flags, or a config list, or a config string split on ``;``."""
    value = getattr(options, "threshold", None)
    return split_expressions(value) if value else []


def check_threshold_options(options: argparse.Namespace) -> tuple[list[Threshold], list[str]]:
    """(thresholds, problems): every invalid expression and setting at once, before anything starts.

    The CLI prints each problem on its own line and exits 2 when there is any.
    """
    thresholds, problems = parse_all(threshold_texts(options))
    after = getattr(options, "threshold_abort_after", 0.0)
    try:
        parse_duration(after if after is not None else 0.0)
    except ValueError as e:
        problems.append(f"--threshold-abort-after: {e}")
    return thresholds, problems


def build_threshold_outputs(
    options: argparse.Namespace,
    *,
    on_abort: Callable[[str], Any] | None,
    sources: Mapping[str, Callable[[], float | None]] | None = None,
    thresholds: Sequence[Threshold] | None = None,
    check_writable: Callable[[str], Any] | None = None,
) -> tuple[ThresholdOutput | None, list[Any]]:
    """(the checker or ``None`` without thresholds, the outputs to add to the run).

    ``--junit FILE`` gets a JUnit output even without thresholds (an empty suite), so a CI step that
    always reads the file finds one; ``check_writable(path)`` is called on it first (the CLI passes
    ``horde.reports.output.check_writable_file``, which raises a one-line ``OutputPathError``; thresholds
    sit beside reports in the layers, so they do not import it themselves).
    """
    if thresholds is None:
        thresholds, problems = check_threshold_options(options)
        if problems:
            raise ValueError("; ".join(problems))
    outputs: list[Any] = []
    checker: ThresholdOutput | None = None
    if thresholds:
        checker = ThresholdOutput(
            thresholds,
            abort=bool(getattr(options, "threshold_abort", False)),
            abort_after=parse_duration(getattr(options, "threshold_abort_after", 0.0) or 0.0),
            on_abort=on_abort,
            sources=sources,
        )
        outputs.append(checker)
    junit = getattr(options, "junit", None)
    if junit:
        if check_writable is not None:
            check_writable(junit)
        outputs.append(JUnitOutput(junit, checker))
    return checker, outputs


__all__ = [
    "add_threshold_arguments",
    "build_threshold_outputs",
    "check_threshold_options",
    "parse_duration",
    "threshold_texts",
]
