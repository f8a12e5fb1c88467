"""What a threshold can measure: the metric catalogue, each metric's unit kind, and number formatting.

Four kinds, each with its own units and canonical value (what ``Threshold.value`` and ``Verdict.observed``
hold):

* ``time`` — response times (``p95``, ``avg``, ``min``, ``max``, ``median``); canonical unit milliseconds;
  the expression may say ``ms`` (the default) or ``s``.
* ``ratio`` — ``fail_ratio``; canonical value a fraction in [0, 1]; the expression may say ``%``.
* ``count`` — ``requests``, ``failures`` and the extra (run-wide) counts such as ``dropped_iterations``;
  whole numbers, no unit.
* ``rate`` — ``rps``, ``current_rps``; requests per second, optionally written ``/s``.

*Extra* metrics are not in the stats snapshot: the session passes their values in (see
:data:`EXTRA_METRICS`), so a new load model adds a figure by adding a row here, not by changing the
evaluator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """One metric: its canonical name, unit kind, a short label for descriptions, and where it comes from."""

    name: str
    kind: str  # "time" | "ratio" | "count" | "rate"
    label: str
    #: False for run-wide figures that no request entry has (extra metrics): a scope is an error.
    scoped: bool = True
    #: True when the value comes from an extra metric source the session passes in, not the snapshot.
    extra: bool = False


#: The metrics read from the stats snapshot (percentiles ``pNN`` are parsed separately).
SNAPSHOT_METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("avg", "time", "average response time"),
        MetricInfo("min", "time", "fastest response"),
        MetricInfo("max", "time", "slowest response"),
        MetricInfo("median", "time", "median response time"),
        MetricInfo("fail_ratio", "ratio", "failure ratio"),
        MetricInfo("failures", "count", "failures"),
        MetricInfo("requests", "count", "requests"),
        MetricInfo("rps", "rate", "requests per second (whole run)"),
        MetricInfo("current_rps", "rate", "requests per second (last ~10 s)"),
    )
}

#: Run-wide figures the session supplies by name (``ThresholdOutput(sources={name: callable})``).
EXTRA_METRICS: dict[str, MetricInfo] = {
    "dropped_iterations": MetricInfo(
        "dropped_iterations", "count", "dropped iterations", scoped=False, extra=True
    ),
}

#: Units each kind accepts, with the factor to the canonical value; ``""`` is the unit left out.
UNITS: dict[str, dict[str, float]] = {
    "time": {"": 1.0, "ms": 1.0, "s": 1000.0},
    "ratio": {"": 1.0, "%": 0.01},
    "count": {"": 1.0},
    "rate": {"": 1.0, "/s": 1.0},
}

#: How a kind's accepted units are listed in an error message.
UNIT_HELP = {
    "time": "ms (the default) or s",
    "ratio": "none (a fraction, 0.01) or % (1%)",
    "count": "none (a whole number)",
    "rate": "none or /s",
}


def percentile_info(name: str) -> MetricInfo:
    """The (synthesised) catalogue row of a percentile metric such as ``p99.9``."""
    return MetricInfo(name, "time", f"{name} response time")


def number(value: float) -> str:
    """A value as people read it: no exponent for everyday sizes, no trailing zeros.

    >>> number(300.0), number(412.36), number(99.99), number(3.14159), number(0.0123), number(1e6)
    ('300', '412.4', '99.99', '3.14', '0.0123', '1000000')
    """
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 100 or value == int(value):
        text = f"{value:.1f}"
    elif magnitude >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
        if "e" in text:
            return f"{value:.6f}".rstrip("0").rstrip(".") or "0"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def with_unit(value: float, kind: str, unit: str) -> str:
    """A canonical value shown in the unit the user wrote: ``(1412, "time", "s") → "1.41 s"``."""
    if kind == "time":
        return f"{number(value / 1000)} s" if unit == "s" else f"{number(value)} ms"
    if kind == "ratio":
        return f"{number(value * 100)} %" if unit == "%" else number(value)
    if kind == "rate":
        return f"{number(value)}/s"
    return number(value)


__all__ = [
    "EXTRA_METRICS",
    "SNAPSHOT_METRICS",
    "UNITS",
    "UNIT_HELP",
    "MetricInfo",
    "number",
    "percentile_info",
    "with_unit",
]
