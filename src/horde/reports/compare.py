"""``horde compare BASE.json NEW.json``: two runs side by side, with a verdict a CI job can gate on.

Reads two ``--json`` reports, pairs their entries by (method, name), and shows per entry the requests,
the failure ratio, p50/p95/p99 and the whole-run req/s of both runs with the change. Percentiles are
computed from the exact histograms the reports carry (``schema_version`` 2), so any percentile can be
compared, not only the ones the report listed; a report without histograms (schema 1) falls back to
its listed percentiles.

Rules (``--fail-on``, repeatable) say what counts as a regression::

    p95>+10%            p95 grew by more than 10 % (relative change)
    rps<-5%             the request rate fell by more than 5 %
    fail_ratio>+0.5pp   the failure ratio grew by more than 0.5 percentage points
    p99>+20ms           p99 grew by more than 20 ms (absolute change)
    max>+1000ms, avg>+10%, p99.9>+25%, requests<-10%, failures>+0 …

Metrics: ``requests``, ``failures``, ``fail_ratio``, ``rps``, ``avg``, ``median``, ``max``, ``min`` and
``pNN`` for any percentile (``p50``, ``p99.9``, ``p100``). Units: ``%`` is the change relative to the base
(from 0 to anything non-zero is an infinite change), ``pp`` percentage points (``fail_ratio`` only),
``ms`` milliseconds (times only); no unit is an absolute change in the metric's own unit. Every rule is
checked on the ``Aggregated`` row and on each entry present in both runs with at least
``--min-requests`` requests in both (time metrics need timed requests on both sides).

Exit codes: **0** no rule failed, **3** at least one rule failed (regressed), **2** bad input (unreadable
or malformed files, files of different tests, a bad rule). 1 is left alone because a test run itself
exits 1 when requests failed, so a pipeline can tell "the run had errors" from "the run got slower".
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from horde.reports.json import SCHEMA_VERSION
from horde.stats.histogram import HISTOGRAM_SCHEME, Histogram

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_REGRESSED = 3

#: The percentiles the table always shows (rules may add more columns).
TABLE_METRICS = ("requests", "fail_ratio", "p50", "p95", "p99", "rps")
_TIME_METRICS = {"avg", "median", "max", "min"}
_PLAIN_METRICS = {"requests", "failures", "fail_ratio", "rps"}
_PERCENTILE = re.compile(r"p\d+(?:\.\d+)?")
_RULE = re.compile(
    r"^\s*(?P<metric>[a-z_]+|p\d+(?:\.\d+)?)\s*(?P<op>[<>])\s*(?P<value>[+-]?\d+(?:\.\d+)?)\s*(?P<unit>%|pp|ms)?\s*$"
)


class CompareError(ValueError):
    """Bad input for a comparison; the message is one line naming the file or the rule."""


# -- reading reports ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryStats:
    """One entry of one report, with what a comparison reads."""

    method: str
    name: str
    requests: int
    failures: int
    timed: int
    fail_ratio: float
    rps: float
    avg: float
    min: float
    max: float
    histogram: Histogram | None
    min_us: int | None
    max_us: int
    listed: dict[float, float] = field(default_factory=dict)

    def percentile(self, q: float) -> float | None:
        """The q-quantile in ms (exact from the histogram; else a listed one); None when unknown."""
        if self.timed <= 0:
            return None
        if self.histogram is not None:
            return self.histogram.percentiles([q], self.min_us, self.max_us)[0] / 1000
        return self.listed.get(q)

    def value(self, metric: str) -> float | None:
        if metric == "requests":
            return float(self.requests)
        if metric == "failures":
            return float(self.failures)
        if metric == "fail_ratio":
            return self.fail_ratio
        if metric == "rps":
            return self.rps
        if self.timed <= 0:
            return None
        if metric == "avg":
            return self.avg
        if metric == "min":
            return self.min
        if metric == "max":
            return self.max
        return self.percentile(quantile(metric))


@dataclass(frozen=True)
class Report:
    path: str
    schema_version: int
    entries: dict[tuple[str, str], EntryStats]

    @property
    def total(self) -> EntryStats:
        return self.entries[("", "Aggregated")]

    @property
    def has_histograms(self) -> bool:
        return all(e.histogram is not None for e in self.entries.values())


def quantile(metric: str) -> float:
    """``"p95" → 0.95``, ``"p99.9" → 0.999``, ``"median" → 0.5``."""
    if metric == "median":
        return 0.5
    return round(float(metric[1:]) / 100, 10)


def load_report(path: str | Path) -> Report:
    """Read and check one ``--json`` report; raises :class:`CompareError` with one line on bad input."""
    label = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise CompareError(f"cannot read {label}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise CompareError(f"{label}: not a text file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CompareError(f"{label}: not JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    return parse_report(data, label)


def parse_report(data: Any, label: str = "report") -> Report:
    if isinstance(data, list):
        raise CompareError(f"{label}: a list, not a horde --json report (a Locust --json file?)")
    if not isinstance(data, Mapping) or not isinstance(data.get("stats"), list):
        raise CompareError(f'{label}: not a horde --json report (no "stats" list)')
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CompareError(f"{label}: bad schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise CompareError(
            f"{label}: schema_version {version} is newer than this horde reads ({SCHEMA_VERSION}); upgrade horde"
        )
    entries: dict[tuple[str, str], EntryStats] = {}
    for i, raw in enumerate(data["stats"]):
        entry = _parse_entry(raw, f"{label}: stats[{i}]")
        entries[(entry.method, entry.name)] = entry
    if ("", "Aggregated") not in entries:
        raise CompareError(f"{label}: no Aggregated row in stats")
    return Report(label, version, entries)


def _parse_entry(raw: Any, where: str) -> EntryStats:
    if not isinstance(raw, Mapping):
        raise CompareError(f"{where} is not an object")

    def number(key: str, default: float | None = None) -> float:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise CompareError(f"{where} lacks a number {key!r}")
        return float(value)

    method, name = raw.get("method"), raw.get("name")
    if not isinstance(method, str) or not isinstance(name, str):
        raise CompareError(f"{where} lacks a string 'method' and 'name'")
    requests = int(number("num_requests"))
    failures = int(number("num_failures"))
    none = int(number("num_none_requests", 0))
    listed: dict[float, float] = {}
    percentiles = raw.get("percentiles", {})
    if isinstance(percentiles, Mapping):
        for key, value in percentiles.items():
            try:
                listed[round(float(key), 10)] = float(value)
            except (TypeError, ValueError):
                raise CompareError(f"{where} has a bad percentile {key!r}: {value!r}") from None
    histogram, min_us, max_us = None, None, 0
    raw_hist = raw.get("histogram")
    if raw_hist is not None:
        if not isinstance(raw_hist, Mapping):
            raise CompareError(f"{where} histogram is not an object")
        scheme = raw_hist.get("scheme")
        if scheme != HISTOGRAM_SCHEME:
            raise CompareError(
                f"{where} histogram scheme {scheme!r} is unknown (this horde reads {HISTOGRAM_SCHEME})"
            )
        try:
            histogram = Histogram.from_wire(raw_hist.get("buckets", {}))
        except ValueError as e:
            raise CompareError(f"{where} histogram: {e}") from None
        min_us = raw_hist.get("min_us")
        max_us = raw_hist.get("max_us", 0)
        if (min_us is not None and not isinstance(min_us, int)) or not isinstance(max_us, int):
            raise CompareError(f"{where} histogram min_us/max_us must be integers")
    return EntryStats(
        method=method,
        name=name,
        requests=requests,
        failures=failures,
        timed=requests - none,
        fail_ratio=number("fail_ratio", failures / requests if requests else 0.0),
        rps=number("total_rps", 0.0),
        avg=number("avg_response_time", 0.0),
        min=number("min_response_time", 0.0),
        max=number("max_response_time", 0.0),
        histogram=histogram,
        min_us=min_us,
        max_us=max_us,
        listed=listed,
    )


# -- rules -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """``METRIC OP CHANGE[UNIT]``, e.g. ``p95>+10%``: regressed when the change passes the limit."""

    text: str
    metric: str
    op: str
    limit: float
    unit: str  # "%", "pp", "ms" or "" (absolute, in the metric's unit)

    @classmethod
    def parse(cls, text: str) -> Rule:
        m = _RULE.match(text)
        if m is None:
            raise CompareError(
                f"bad --fail-on rule {text!r}: expected METRIC>CHANGE or METRIC<CHANGE, e.g. 'p95>+10%'"
            )
        metric, op, unit = m["metric"], m["op"], m["unit"] or ""
        if _PERCENTILE.fullmatch(metric):
            q = float(metric[1:])
            if not 0 < q <= 100:
                raise CompareError(f"bad --fail-on rule {text!r}: percentile {metric} is not within p0..p100")
        elif metric not in _TIME_METRICS | _PLAIN_METRICS:
            known = ", ".join(sorted(_TIME_METRICS | _PLAIN_METRICS))
            raise CompareError(
                f"bad --fail-on rule {text!r}: unknown metric {metric!r} (known: {known}, pNN)"
            )
        is_time = _PERCENTILE.fullmatch(metric) is not None or metric in _TIME_METRICS
        if unit == "pp" and metric != "fail_ratio":
            raise CompareError(f"bad --fail-on rule {text!r}: pp (percentage points) is for fail_ratio only")
        if unit == "ms" and not is_time:
            raise CompareError(f"bad --fail-on rule {text!r}: ms is for response times only")
        if unit == "" and metric == "fail_ratio":
            raise CompareError(f"bad --fail-on rule {text!r}: give fail_ratio changes in pp or %")
        return cls(text.strip(), metric, op, float(m["value"]), unit)

    def change(self, base: float, new: float) -> float:
        """The change this rule measures, in its unit."""
        if self.unit == "%":
            return relative_change(base, new)
        if self.unit == "pp":
            return (new - base) * 100
        return new - base

    def violated(self, base: float, new: float) -> bool:
        change = self.change(base, new)
        return change > self.limit if self.op == ">" else change < self.limit

    def describe(self, base: float, new: float) -> str:
        return f"{self.metric} {_fmt_change(self.change(base, new), self.unit)} {self.op} {_fmt_change(self.limit, self.unit)}"


def relative_change(base: float, new: float) -> float:
    """``(new - base) / base`` in %, with 0 → 0 being 0 and 0 → x being ±infinity."""
    if base == 0:
        return 0.0 if new == 0 else math.copysign(math.inf, new)
    return (new - base) / abs(base) * 100


# -- the comparison ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One rule applied to one entry present in both runs."""

    rule: Rule
    method: str
    name: str
    base: float
    new: float

    @property
    def failed(self) -> bool:
        return self.rule.violated(self.base, self.new)

    @property
    def where(self) -> str:
        return (
            "Aggregated" if (self.method, self.name) == ("", "Aggregated") else f"{self.method} {self.name}"
        )

    def describe(self) -> str:
        return f"{self.where}: {self.rule.describe(self.base, self.new)} ({_fmt_value(self.rule.metric, self.base)} → {_fmt_value(self.rule.metric, self.new)})"


@dataclass(frozen=True)
class EntryComparison:
    method: str
    name: str
    base: EntryStats | None
    new: EntryStats | None

    def values(self, metric: str) -> tuple[float | None, float | None]:
        return (
            self.base.value(metric) if self.base is not None else None,
            self.new.value(metric) if self.new is not None else None,
        )


@dataclass(frozen=True)
class Comparison:
    base: Report
    new: Report
    entries: tuple[EntryComparison, ...]
    rules: tuple[Rule, ...]
    checks: tuple[Check, ...]

    @property
    def violations(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.failed)

    @property
    def regressed(self) -> bool:
        return bool(self.violations)

    @property
    def exit_code(self) -> int:
        return EXIT_REGRESSED if self.regressed else EXIT_OK

    @property
    def metrics(self) -> tuple[str, ...]:
        """The table's columns: the defaults, then any other metric a rule names."""
        extra = [r.metric for r in self.rules if r.metric not in TABLE_METRICS]
        return TABLE_METRICS + tuple(dict.fromkeys(extra))

    def verdict(self) -> str:
        if not self.rules:
            return "no --fail-on rules: nothing to judge"
        if not self.violations:
            return f"OK: no rule failed ({len(self.rules)} rule(s), {len(self.checks)} check(s))"
        return f"REGRESSED: {len(self.violations)} check(s) failed: " + "; ".join(
            v.describe() for v in self.violations
        )


def compare(
    base_json: str | Path | Mapping[str, Any],
    new_json: str | Path | Mapping[str, Any],
    fail_on: Sequence[str | Rule] = (),
    *,
    min_requests: int = 1,
) -> Comparison:
    """Compare two reports (paths or already-parsed dicts) and apply the ``fail_on`` rules.

    Raises :class:`CompareError` (one line) on bad files, bad rules, or two runs without a request name
    in common.
    """
    base = _report(base_json, "BASE")
    new = _report(new_json, "NEW")
    rules = tuple(r if isinstance(r, Rule) else Rule.parse(r) for r in fail_on)
    named = lambda r: {k for k in r.entries if k != ("", "Aggregated")}  # noqa: E731
    if named(base) and named(new) and not named(base) & named(new):
        raise CompareError(
            f"{base.path} and {new.path} have no request name in common: runs of different tests?"
        )
    for rule in rules:
        q_needed = _PERCENTILE.fullmatch(rule.metric) is not None and not (
            base.has_histograms and new.has_histograms
        )
        if q_needed and not all(
            quantile(rule.metric) in e.listed for r in (base, new) for e in r.entries.values()
        ):
            raise CompareError(f"rule {rule.text!r} needs the histograms of schema_version 2 reports")
    keys = sorted(set(base.entries) | set(new.entries), key=lambda k: (k == ("", "Aggregated"), k[1], k[0]))
    entries = tuple(EntryComparison(k[0], k[1], base.entries.get(k), new.entries.get(k)) for k in keys)
    checks: list[Check] = []
    for ec in entries:
        if ec.base is None or ec.new is None:
            continue
        is_total = (ec.method, ec.name) == ("", "Aggregated")
        if not is_total and min(ec.base.requests, ec.new.requests) < min_requests:
            continue
        for rule in rules:
            b, n = ec.values(rule.metric)
            if b is None or n is None:
                continue
            checks.append(Check(rule, ec.method, ec.name, b, n))
    return Comparison(base, new, entries, rules, tuple(checks))


def _report(source: str | Path | Mapping[str, Any], label: str) -> Report:
    if isinstance(source, Mapping):
        return parse_report(source, label)
    return load_report(source)


# -- rendering ---------------------------------------------------------------------------------------


def _fmt_value(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric == "requests" or metric == "failures":
        return str(int(value))
    if metric == "fail_ratio":
        return f"{value * 100:.2f}%"
    if metric == "rps":
        return f"{value:.1f}"
    return f"{value:.0f}" if value >= 10 else f"{value:.2f}"


def _fmt_change(change: float, unit: str) -> str:
    if math.isinf(change):
        return "+inf" + unit if change > 0 else "-inf" + unit
    return f"{change:+.1f}{unit}" if unit in ("%", "pp") else f"{change:+g}{unit}"


def _cell(ec: EntryComparison, metric: str) -> str:
    b, n = ec.values(metric)
    if ec.base is None:
        return f"(new) {_fmt_value(metric, n)}"
    if ec.new is None:
        return f"{_fmt_value(metric, b)} (gone)"
    if b is None or n is None:
        return f"{_fmt_value(metric, b)} → {_fmt_value(metric, n)}"
    change = (
        _fmt_change((n - b) * 100, "pp")
        if metric == "fail_ratio"
        else _fmt_change(relative_change(b, n), "%")
    )
    return f"{_fmt_value(metric, b)} → {_fmt_value(metric, n)} ({change})"


_HEADINGS = {
    "requests": "requests",
    "fail_ratio": "failures",
    "rps": "req/s",
    "avg": "avg ms",
    "max": "max ms",
}


def _heading(metric: str) -> str:
    if metric in _HEADINGS:
        return _HEADINGS[metric]
    return f"{metric} ms"


def _rows(c: Comparison) -> tuple[list[str], list[list[str]]]:
    header = ["Type", "Name", *(_heading(m) for m in c.metrics)]
    rows = [[ec.method, ec.name, *(_cell(ec, m) for m in c.metrics)] for ec in c.entries]
    return header, rows


def render_text(c: Comparison) -> str:
    header, rows = _rows(c)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"horde compare: {c.base.path} → {c.new.path}"]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines += ["", c.verdict()]
    return "\n".join(lines) + "\n"


def render_markdown(c: Comparison) -> str:
    header, rows = _rows(c)

    def md(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") or " " for cell in cells) + " |"

    mark = "❌" if c.regressed else "✅"
    lines = [
        f"### horde compare: `{c.base.path}` → `{c.new.path}`",
        "",
        md(header),
        md(["---"] * len(header)),
    ]
    lines += [md(r) for r in rows]
    lines += ["", f"{mark} {c.verdict()}" if c.rules else c.verdict()]
    return "\n".join(lines) + "\n"


def render_junit(c: Comparison) -> str:
    """JUnit XML: one test case per check (rule x entry), with a ``<failure>`` for each failed one."""
    failures = str(len(c.violations))
    root = ET.Element("testsuites", name="horde compare", tests=str(len(c.checks)), failures=failures)
    suite = ET.SubElement(
        root,
        "testsuite",
        name="horde compare",
        tests=str(len(c.checks)),
        failures=failures,
        errors="0",
        skipped="0",
    )
    for check in c.checks:
        case = ET.SubElement(
            suite, "testcase", classname="horde.compare", name=f"{check.where}: {check.rule.text}"
        )
        if check.failed:
            ET.SubElement(
                case, "failure", message=check.describe(), type="regression"
            ).text = check.describe()
    ET.SubElement(suite, "system-out").text = render_text(c)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


RENDERERS = {"text": render_text, "markdown": render_markdown, "junit": render_junit}


# -- command line ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="horde compare",
        description="Compare two horde --json reports entry by entry; exit 3 if a --fail-on rule fails.",
        epilog="Exit codes: 0 ok, 3 regressed (a rule failed), 2 bad input. "
        "Rules: METRIC>CHANGE or METRIC<CHANGE, e.g. 'p95>+10%', 'rps<-5%', 'fail_ratio>+0.5pp', 'p99>+20ms'.",
    )
    parser.add_argument("base", metavar="BASE.json", help="the reference run")
    parser.add_argument("new", metavar="NEW.json", help="the run to judge")
    parser.add_argument(
        "--fail-on",
        action="append",
        default=[],
        metavar="RULE",
        help="a regression rule (repeatable), e.g. 'p95>+10%%'",
    )
    parser.add_argument(
        "--format", choices=sorted(RENDERERS), default="text", help="output format (default text)"
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
    parser.add_argument(
        "--min-requests",
        type=int,
        default=1,
        metavar="N",
        help="judge an entry only if both runs have at least N requests on it (Aggregated always; default 1)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``horde compare``: prints the comparison; returns 0 (ok), 3 (regressed) or 2 (bad input)."""
    args = build_parser().parse_args(argv)
    try:
        result = compare(args.base, args.new, args.fail_on, min_requests=args.min_requests)
    except CompareError as e:
        print(f"horde compare: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    text = RENDERERS[args.format](result)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as e:
            print(f"horde compare: cannot write {args.output}: {e.strerror or e}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if args.format != "text":
            sys.stdout.write(result.verdict() + "\n")
    else:
        sys.stdout.write(text)
    return result.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
