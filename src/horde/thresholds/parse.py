"""Threshold expressions: ``[SCOPE:] METRIC OP VALUE[UNIT]`` → :class:`Threshold`, every problem at once.

Examples (the grammar and every metric are in ``docs/thresholds.md``)::

    p95<300ms                   p95 of all requests below 300 ms (ms is the default unit)
    p99.9<1s   avg<200          any percentile 0 < p <= 100 (also p(95), median), avg, min, max
    fail_ratio<0.01             a fraction, or a percentage: fail_ratio<1%
    rps>500   requests>=1000    whole-run rate and counts; current_rps is the last ~10 s
    dropped_iterations==0       an extra, run-wide figure the session passes in
    GET /items: p99<800ms       one entry (method + name)
    /items: p99<800ms           every entry named /items, whatever its method, merged
    * API health: avg<50        the same for a name whose first word looks like a method

The scope is everything before the **last** colon, so names that contain colons work (``GET
http://x/y: p95<300``). A scope is a method and a name when its first word is upper case (``GET``,
``POST``, ``WS``, a custom ``GRPC``); otherwise, or after a leading ``*``, it is a name across methods.

>>> t = parse_threshold("GET /items: p95 < 300ms")
>>> t.describe(), t.value, t.scope.method
('p95 of GET /items < 300 ms', 300.0, 'GET')
>>> parse_all(["p95<300kb", "p0<1", "avg<200"])[1]
["threshold 'p95<300kb': unit 'kb' does not fit p95 (use ms (the default) or s)", "threshold 'p0<1': a percentile must be above 0 and at most 100, got p0"]
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from horde.exceptions import ConfigurationError
from horde.thresholds.metrics import (
    EXTRA_METRICS,
    SNAPSHOT_METRICS,
    UNIT_HELP,
    UNITS,
    MetricInfo,
    number,
    percentile_info,
    with_unit,
)

#: The comparison operators, longest first so ``<=`` is never read as ``<``.
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
#: Near misses people type, and what they meant.
_OPERATOR_HINTS = {"=": "==", "=<": "<=", "=>": ">=", "<>": "!=", "===": "=="}

_OP_RUN = re.compile(r"[<>=!]+")
_PERCENTILE = re.compile(r"^p\(?\s*([0-9]+(?:\.[0-9]+)?)\s*\)?$")
_VALUE = re.compile(r"^((?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?)\s*(.*)$", re.IGNORECASE)
_METHOD = re.compile(r"^[A-Z][A-Z0-9_-]*$")
_EXAMPLE = "expected METRIC OP VALUE, e.g. p95<300ms or 'GET /items: p99<800ms'"


class ThresholdError(ConfigurationError):
    """One or more invalid threshold expressions; ``problems`` holds one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True, slots=True)
class Scope:
    """Which requests a threshold looks at.

    ``name is None``: the ``Aggregated`` row (all requests). ``method is None`` and a name: every entry with
    that name, whatever its method, merged. Both set: the one entry.
    """

    method: str | None = None
    name: str | None = None

    @property
    def is_total(self) -> bool:
        return self.name is None

    @property
    def is_entry(self) -> bool:
        return self.name is not None and self.method is not None

    @property
    def label(self) -> str:
        """How descriptions name it: ``all requests``, ``GET /items``, ``/items (all methods)``."""
        if self.name is None:
            return "all requests"
        if self.method is None:
            return f"{self.name} (all methods)"
        return f"{self.method} {self.name}"

    @property
    def text(self) -> str:
        """The scope as an expression writes it (``""`` for all requests)."""
        if self.name is None:
            return ""
        if self.method is None:
            return f"* {self.name}" if _looks_like_entry(self.name) else self.name
        return f"{self.method} {self.name}"


@dataclass(frozen=True, slots=True)
class Threshold:
    """One parsed pass/fail criterion; ``value`` is canonical (ms, a fraction, a count or a rate)."""

    expression: str
    metric: str
    op: str
    value: float
    unit: str
    scope: Scope = Scope()
    #: The quantile in [0, 1] of a percentile metric (``p95`` → 0.95, ``median`` → 0.5), else ``None``.
    quantile: float | None = None

    @property
    def info(self) -> MetricInfo:
        if self.metric in SNAPSHOT_METRICS:
            return SNAPSHOT_METRICS[self.metric]
        if self.metric in EXTRA_METRICS:
            return EXTRA_METRICS[self.metric]
        return percentile_info(self.metric)

    @property
    def kind(self) -> str:
        return self.info.kind

    @property
    def key(self) -> str:
        """A normalised expression in canonical units (``GET /items: p99<800ms``, ``fail_ratio<0.01``):
        the same for every spelling of one threshold."""
        unit = "ms" if self.kind == "time" else ""
        body = f"{self.metric}{self.op}{number_exact(self.value)}{unit}"
        return f"{self.scope.text}: {body}" if self.scope.name is not None else body

    def compare(self, observed: float) -> bool:
        """True when ``observed`` (canonical unit) meets the threshold."""
        return OPERATORS[self.op](observed, self.value)

    def format(self, value: float) -> str:
        """A canonical value in the unit the expression used: ``1412 → "1.41 s"`` for ``p99<1s``."""
        return with_unit(value, self.kind, self.unit)

    def describe(self) -> str:
        """One sentence: ``p95 of GET /items < 300 ms``, ``fail_ratio of all requests < 1 %``."""
        limit = f"{self.op} {self.format(self.value)}"
        if self.info.extra:
            return f"{self.metric} {limit}"
        if self.metric == "requests" and self.scope.is_total:
            return f"requests in total {limit}"
        return f"{self.metric} of {self.scope.label} {limit}"

    def __str__(self) -> str:
        return self.expression

    def to_dict(self) -> dict[str, Any]:
        return {
            "expression": self.expression,
            "description": self.describe(),
            "metric": self.metric,
            "op": self.op,
            "value": self.value,
            "unit": self.unit,
            "method": self.scope.method,
            "name": self.scope.name,
        }


def number_exact(value: float) -> str:
    """A threshold's own value written back without rounding (``0.001``, ``300``, ``99.95``)."""
    text = repr(round(float(value), 9))
    if text.endswith(".0"):
        text = text[:-2]
    return text


def _looks_like_entry(scope: str) -> bool:
    first, _, rest = scope.partition(" ")
    return bool(rest.strip()) and bool(_METHOD.match(first))


def _parse_scope(text: str, problems: list[str]) -> Scope:
    raw = text.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        raw = raw[1:-1].strip()
    if not raw:
        problems.append("the scope before ':' is empty (leave out the scope and the colon for all requests)")
        return Scope()
    if raw.startswith("*"):
        name = raw[1:].strip()
        if not name:
            problems.append("'*' must be followed by a request name ('* /items': /items with any method)")
        return Scope(None, name or None)
    if _looks_like_entry(raw):
        method, _, name = raw.partition(" ")
        return Scope(method, name.strip())
    return Scope(None, raw)


def _split_operator(expr: str, problems: list[str]) -> tuple[str, str, str] | None:
    runs = list(_OP_RUN.finditer(expr))
    if not runs:
        problems.append(f"no comparison operator: {_EXAMPLE}")
        return None
    if len(runs) > 1:
        problems.append("one comparison per threshold (write a range as two thresholds: p95>10, p95<300)")
        return None
    run = runs[0]
    op = run.group()
    if op not in OPERATORS:
        hint = _OPERATOR_HINTS.get(op)
        problems.append(
            f"operator {op!r} is not one of < <= > >= == !=" + (f" (did you mean {hint!r}?)" if hint else "")
        )
        return None
    return expr[: run.start()].strip(), op, expr[run.end() :].strip()


def _parse_metric(text: str, problems: list[str]) -> tuple[str, MetricInfo, float | None] | None:
    name = text.strip().lower()
    if not name:
        problems.append(f"no metric before the operator: {_EXAMPLE}")
        return None
    match = _PERCENTILE.match(name)
    if match:
        p = Decimal(match.group(1))
        if not Decimal(0) < p <= Decimal(100):
            problems.append(f"a percentile must be above 0 and at most 100, got {text.strip()}")
            return None
        canonical = f"p{_decimal_text(p)}"
        return canonical, percentile_info(canonical), float(p / 100)
    if name in SNAPSHOT_METRICS:
        return name, SNAPSHOT_METRICS[name], 0.5 if name == "median" else None
    if name in EXTRA_METRICS:
        return name, EXTRA_METRICS[name], None
    known = [*SNAPSHOT_METRICS, *EXTRA_METRICS]
    close = difflib.get_close_matches(name, [*known, "p95", "p99"], n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    problems.append(
        f"unknown metric {text.strip()!r} ({hint}known: p50 … p99.99 or any pNN, {', '.join(known)})"
    )
    return None


def _decimal_text(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _parse_value(text: str, metric: str, info: MetricInfo, problems: list[str]) -> tuple[float, str] | None:
    if not text:
        problems.append(f"no value after the operator: {_EXAMPLE}")
        return None
    if text.startswith(("-", "+")):
        problems.append(f"the value must be a plain number >= 0, got {text!r}")
        return None
    match = _VALUE.match(text)
    if not match:
        problems.append(f"the value {text!r} is not a number")
        return None
    unit = match.group(2).strip().lower().replace(" ", "")
    units = UNITS[info.kind]
    if unit not in units:
        problems.append(f"unit {match.group(2).strip()!r} does not fit {metric} (use {UNIT_HELP[info.kind]})")
        return None
    value = float(Decimal(match.group(1)) * Decimal(repr(units[unit])))
    if not math.isfinite(value):
        problems.append(f"the value {text!r} is too large")
        return None
    if info.kind == "ratio" and value > 1:
        problems.append(f"{metric} is a fraction from 0 to 1 (or 0% to 100%), got {text}")
        return None
    if info.kind == "count" and value != int(value):
        problems.append(f"{metric} counts whole requests, got {text}")
        return None
    return value, unit


def _parse_one(text: object) -> tuple[Threshold | None, list[str]]:
    problems: list[str] = []
    if not isinstance(text, str):
        return None, [f"a threshold must be text, got {type(text).__name__} {text!r}"]
    expression = text.strip()
    if len(expression) >= 2 and expression[0] == expression[-1] and expression[0] in "\"'":
        expression = expression[1:-1].strip()  # quoted twice: once for the shell or TOML, once inside
    if not expression:
        return None, [f"empty threshold: {_EXAMPLE}"]
    scope_text, colon, body = expression.rpartition(":")
    scope = _parse_scope(scope_text, problems) if colon else Scope()
    split = _split_operator(body, problems)
    if split is None:
        return None, problems
    metric_text, op, value_text = split
    metric = _parse_metric(metric_text, problems)
    if metric is None:
        return None, problems
    name, info, quantile = metric
    value = _parse_value(value_text, name, info, problems)
    if colon and not info.scoped:
        problems.append(f"{name} is a figure of the whole run: it takes no scope")
    if value is None or problems:
        return None, problems
    amount, unit = value
    return Threshold(expression, name, op, amount, unit, scope, quantile), []


def parse_threshold(text: str) -> Threshold:
    """Parse one expression; raises :class:`ThresholdError` naming every problem with it."""
    threshold, problems = _parse_one(text)
    if threshold is None:
        raise ThresholdError([f"threshold {text!r}: {p}" for p in problems])
    return threshold


def parse_all(texts: str | Iterable[str]) -> tuple[list[Threshold], list[str]]:
    """Parse every expression; returns the valid ones and one line per problem (each names its expression).

    Validate up front: ``thresholds, problems = parse_all(options.threshold)``; print every problem and
    exit 2 when there is any, before a user is spawned.
    """
    if isinstance(texts, str):
        texts = [texts]
    thresholds: list[Threshold] = []
    problems: list[str] = []
    for text in texts:
        threshold, found = _parse_one(text)
        if threshold is not None:
            thresholds.append(threshold)
        problems.extend(f"threshold {text!r}: {p}" for p in found)
    return thresholds, problems


def split_expressions(value: str | Iterable[Any]) -> list[str]:
    """Config-file and env-var values → a list of expressions.

    A TOML list gives one expression per item; a string (``horde.conf``'s ``threshold = ...`` line,
    ``HORDE_THRESHOLD``) holds several separated by ``;`` or newlines. A ``;`` inside double quotes (a
    request name) does not split.

    >>> split_expressions('p95<300ms; "GET /a;b": p99<1s')
    ['p95<300ms', '"GET /a;b": p99<1s']
    """
    if not isinstance(value, str):
        return [str(v).strip() for v in value if str(v).strip()]
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char in ";\n" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


__all__ = [
    "OPERATORS",
    "Scope",
    "Threshold",
    "ThresholdError",
    "number",
    "parse_all",
    "parse_threshold",
    "split_expressions",
]
