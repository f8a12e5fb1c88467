"""Threshold expressions: every accepted form, every error, all errors at once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from horde.exceptions import ConfigurationError
from horde.thresholds import (
    Scope,
    ThresholdError,
    parse_all,
    parse_threshold,
    split_expressions,
)

ALL = Scope()
EXAMPLE = "expected METRIC OP VALUE, e.g. p95<300ms or 'GET /items: p99<800ms'"

# text, metric, op, canonical value, unit as written, scope, quantile, description
FORMS = [
    ("p95<300ms", "p95", "<", 300.0, "ms", ALL, 0.95, "p95 of all requests < 300 ms"),
    ("p95<300", "p95", "<", 300.0, "", ALL, 0.95, "p95 of all requests < 300 ms"),
    ("p99.9<1s", "p99.9", "<", 1000.0, "s", ALL, 0.999, "p99.9 of all requests < 1 s"),
    ("p99.99<=1.5s", "p99.99", "<=", 1500.0, "s", ALL, 0.9999, "p99.99 of all requests <= 1.5 s"),
    ("p50>=10", "p50", ">=", 10.0, "", ALL, 0.5, "p50 of all requests >= 10 ms"),
    ("p100<2s", "p100", "<", 2000.0, "s", ALL, 1.0, "p100 of all requests < 2 s"),
    ("p0.1>1", "p0.1", ">", 1.0, "", ALL, 0.001, "p0.1 of all requests > 1 ms"),
    ("p97<250", "p97", "<", 250.0, "", ALL, 0.97, "p97 of all requests < 250 ms"),
    ("p(95)<300", "p95", "<", 300.0, "", ALL, 0.95, "p95 of all requests < 300 ms"),
    ("P99.90 < 1S", "p99.9", "<", 1000.0, "s", ALL, 0.999, "p99.9 of all requests < 1 s"),
    ("median<=20", "median", "<=", 20.0, "", ALL, 0.5, "median of all requests <= 20 ms"),
    ("avg<200", "avg", "<", 200.0, "", ALL, None, "avg of all requests < 200 ms"),
    ("min>0.5ms", "min", ">", 0.5, "ms", ALL, None, "min of all requests > 0.5 ms"),
    ("max<.5s", "max", "<", 500.0, "s", ALL, None, "max of all requests < 0.5 s"),
    ("fail_ratio<0.01", "fail_ratio", "<", 0.01, "", ALL, None, "fail_ratio of all requests < 0.01"),
    ("fail_ratio<1%", "fail_ratio", "<", 0.01, "%", ALL, None, "fail_ratio of all requests < 1 %"),
    ("fail_ratio<=7 %", "fail_ratio", "<=", 0.07, "%", ALL, None, "fail_ratio of all requests <= 7 %"),
    ("fail_ratio==0", "fail_ratio", "==", 0.0, "", ALL, None, "fail_ratio of all requests == 0"),
    ("failures==0", "failures", "==", 0.0, "", ALL, None, "failures of all requests == 0"),
    ("failures!=3", "failures", "!=", 3.0, "", ALL, None, "failures of all requests != 3"),
    ("requests>=1000", "requests", ">=", 1000.0, "", ALL, None, "requests in total >= 1000"),
    ("requests>1e6", "requests", ">", 1e6, "", ALL, None, "requests in total > 1000000"),
    ("rps>500", "rps", ">", 500.0, "", ALL, None, "rps of all requests > 500/s"),
    ("rps>500/s", "rps", ">", 500.0, "/s", ALL, None, "rps of all requests > 500/s"),
    ("current_rps>=10", "current_rps", ">=", 10.0, "", ALL, None, "current_rps of all requests >= 10/s"),
    ("dropped_iterations==0", "dropped_iterations", "==", 0.0, "", ALL, None, "dropped_iterations == 0"),
    (
        "GET /items: p99<800ms",
        "p99",
        "<",
        800.0,
        "ms",
        Scope("GET", "/items"),
        0.99,
        "p99 of GET /items < 800 ms",
    ),
    (
        '"GET /items": p99<800ms',
        "p99",
        "<",
        800.0,
        "ms",
        Scope("GET", "/items"),
        0.99,
        "p99 of GET /items < 800 ms",
    ),
    (
        "  POST /api/login :  avg < 1 s ",
        "avg",
        "<",
        1000.0,
        "s",
        Scope("POST", "/api/login"),
        None,
        "avg of POST /api/login < 1 s",
    ),
    (
        "/items: p99<800",
        "p99",
        "<",
        800.0,
        "",
        Scope(None, "/items"),
        0.99,
        "p99 of /items (all methods) < 800 ms",
    ),
    (
        "Login flow: fail_ratio<1%",
        "fail_ratio",
        "<",
        0.01,
        "%",
        Scope(None, "Login flow"),
        None,
        "fail_ratio of Login flow (all methods) < 1 %",
    ),
    (
        "* API health: avg<50",
        "avg",
        "<",
        50.0,
        "",
        Scope(None, "API health"),
        None,
        "avg of API health (all methods) < 50 ms",
    ),
    (
        "WS chat: requests>10",
        "requests",
        ">",
        10.0,
        "",
        Scope("WS", "chat"),
        None,
        "requests of WS chat > 10",
    ),
    (
        "GET http://x/y: p95<300",  # the scope ends at the last colon
        "p95",
        "<",
        300.0,
        "",
        Scope("GET", "http://x/y"),
        0.95,
        "p95 of GET http://x/y < 300 ms",
    ),
    (
        "/search?q=a b: p95<300",
        "p95",
        "<",
        300.0,
        "",
        Scope(None, "/search?q=a b"),
        0.95,
        "p95 of /search?q=a b (all methods) < 300 ms",
    ),
]


@pytest.mark.parametrize(
    ("text", "metric", "op", "value", "unit", "scope", "quantile", "description"),
    FORMS,
    ids=[f[0] for f in FORMS],
)
def test_every_form_parses(
    text: str,
    metric: str,
    op: str,
    value: float,
    unit: str,
    scope: Scope,
    quantile: float | None,
    description: str,
) -> None:
    t = parse_threshold(text)
    assert (t.metric, t.op, t.unit, t.scope, t.quantile) == (metric, op, unit, scope, quantile)
    assert t.value == pytest.approx(value, rel=1e-12)
    assert t.expression == text.strip()
    assert t.describe() == description
    assert str(t) == text.strip()


@pytest.mark.parametrize("text", [f[0] for f in FORMS])
def test_the_normalised_key_parses_back_to_the_same_threshold(text: str) -> None:
    t = parse_threshold(text)
    again = parse_threshold(t.key)
    assert (again.metric, again.op, again.value, again.scope, again.quantile) == (
        t.metric,
        t.op,
        t.value,
        t.scope,
        t.quantile,
    )
    assert again.key == t.key


def test_an_expression_quoted_as_a_whole_is_unquoted() -> None:
    t = parse_threshold('"GET /items: p99<800ms"')
    assert (t.expression, t.scope, t.value) == ("GET /items: p99<800ms", Scope("GET", "/items"), 800.0)
    assert parse_threshold("'p95<300'").expression == "p95<300"
    assert parse_all(['""'])[1] == ["threshold '\"\"': empty threshold: " + EXAMPLE]


def test_scope_labels_and_texts() -> None:
    assert (ALL.label, ALL.text, ALL.is_total, ALL.is_entry) == ("all requests", "", True, False)
    entry = Scope("GET", "/items")
    assert (entry.label, entry.text, entry.is_total, entry.is_entry) == (
        "GET /items",
        "GET /items",
        False,
        True,
    )
    name = Scope(None, "/items")
    assert (name.label, name.text, name.is_entry) == ("/items (all methods)", "/items", False)
    assert Scope(None, "API health").text == "* API health"


def test_spellings_of_one_threshold_share_a_key() -> None:
    keys = {parse_threshold(t).key for t in ("p95<300", "p95 < 300ms", "P95<0.3s", "p(95)<300 ms")}
    assert keys == {"p95<300ms"}
    assert {parse_threshold(t).key for t in ("fail_ratio<7%", "fail_ratio < 0.07")} == {"fail_ratio<0.07"}
    assert parse_threshold("rps>5/s").key == "rps>5"
    assert parse_threshold("* API health: avg<50").key == "* API health: avg<50ms"


def test_percentile_quantiles_are_exact_decimals() -> None:
    # 99.9 / 100 in binary floating point is 0.9990000000000001; the snapshot key is 0.999
    assert parse_threshold("p99.9<1").quantile == 0.999
    assert parse_threshold("p99.99<1").quantile == 0.9999
    assert parse_threshold("p66<1").quantile == 0.66


# text, a fragment of the (only) problem
ERRORS = [
    ("", "empty threshold"),
    ("   ", "empty threshold"),
    ("p95", "no comparison operator"),
    ("p95 300ms", "no comparison operator"),
    ("p95<", "no value after the operator"),
    ("<300", "no metric before the operator"),
    ("p95=300", "did you mean '=='?"),
    ("p95=<300", "did you mean '<='?"),
    ("p95=>300", "did you mean '>='?"),
    ("p95<>300", "did you mean '!='?"),
    ("p95>>300", "operator '>>' is not one of < <= > >= == !="),
    ("p95!300", "operator '!' is not one of"),
    ("10<p95<300", "one comparison per threshold"),
    ("p0<1", "a percentile must be above 0 and at most 100, got p0"),
    ("p101<1", "at most 100, got p101"),
    ("p100.5<1", "at most 100"),
    ("p<1", "unknown metric 'p'"),
    ("p9x<1", "unknown metric 'p9x'"),
    ("avgg<3", "did you mean avg?"),
    ("latency<3", "unknown metric 'latency'"),
    ("p95<abc", "the value 'abc' is not a number"),
    ("p95<300 ms ms", "unit 'ms ms' does not fit p95"),
    ("p95<-3", "a plain number >= 0, got '-3'"),
    ("p95<+3", "a plain number >= 0"),
    ("p95<1e999", "too large"),
    ("p95<300kb", "unit 'kb' does not fit p95 (use ms (the default) or s)"),
    ("avg<3us", "unit 'us' does not fit avg"),
    ("p95<1%", "unit '%' does not fit p95"),
    ("fail_ratio<2", "fail_ratio is a fraction from 0 to 1 (or 0% to 100%), got 2"),
    ("fail_ratio<150%", "got 150%"),
    ("fail_ratio<1ms", "unit 'ms' does not fit fail_ratio"),
    ("failures<1.5", "failures counts whole requests, got 1.5"),
    ("requests>10/s", "unit '/s' does not fit requests (use none (a whole number))"),
    ("dropped_iterations<0.5", "dropped_iterations counts whole requests"),
    ("rps>5kb", "unit 'kb' does not fit rps (use none or /s)"),
    ("GET /a: dropped_iterations==0", "dropped_iterations is a figure of the whole run: it takes no scope"),
    (": p95<3", "the scope before ':' is empty"),
    ('"": p95<3', "the scope before ':' is empty"),
    ("*: p95<3", "'*' must be followed by a request name"),
]


@pytest.mark.parametrize(("text", "fragment"), ERRORS, ids=[e[0] or "<empty>" for e in ERRORS])
def test_every_error_is_reported_with_its_expression(text: str, fragment: str) -> None:
    thresholds, problems = parse_all([text])
    assert thresholds == []
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"threshold {text!r}: ")
    assert fragment in problems[0]
    with pytest.raises(ThresholdError) as info:
        parse_threshold(text)
    assert info.value.problems == problems
    assert str(info.value) == problems[0]


def test_an_expression_with_two_problems_reports_both() -> None:
    _, problems = parse_all(["GET /a: dropped_iterations==0.5"])
    assert len(problems) == 2
    assert "counts whole requests" in problems[0] and "takes no scope" in problems[1]


def test_every_invalid_expression_is_reported_at_once_in_order() -> None:
    texts = ["p95<300ms", "p95<300kb", "avg<200", "p0<1", "nope", "GET /items: p99<800ms", 42]
    thresholds, problems = parse_all(texts)  # type: ignore[arg-type]
    assert [t.expression for t in thresholds] == ["p95<300ms", "avg<200", "GET /items: p99<800ms"]
    assert [p.split(":")[0] for p in problems] == [
        "threshold 'p95<300kb'",
        "threshold 'p0<1'",
        "threshold 'nope'",
        "threshold 42",
    ]
    assert "must be text, got int" in problems[-1]


def test_threshold_error_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        parse_threshold("p95<")
    with pytest.raises(ValueError):
        parse_threshold("p95<")


def test_parse_all_takes_a_single_string_as_one_expression() -> None:
    thresholds, problems = parse_all("p95<300")
    assert [t.metric for t in thresholds] == ["p95"] and problems == []


def test_thresholds_are_frozen_and_json_ready() -> None:
    t = parse_threshold("GET /items: p99<800ms")
    with pytest.raises(AttributeError):
        t.value = 1.0  # type: ignore[misc]
    assert t.to_dict() == {
        "expression": "GET /items: p99<800ms",
        "description": "p99 of GET /items < 800 ms",
        "metric": "p99",
        "op": "<",
        "value": 800.0,
        "unit": "ms",
        "method": "GET",
        "name": "/items",
    }


@pytest.mark.parametrize(
    ("observed", "op", "expected"),
    [
        (299, "<", True),
        (300, "<", False),
        (300, "<=", True),
        (301, "<=", False),
        (301, ">", True),
        (300, ">", False),
        (300, ">=", True),
        (299, ">=", False),
        (300, "==", True),
        (301, "==", False),
        (301, "!=", True),
        (300, "!=", False),
    ],
)
def test_every_operator_compares_observed_against_the_value(observed: float, op: str, expected: bool) -> None:
    assert parse_threshold(f"p95{op}300").compare(observed) is expected


def test_split_expressions_from_config_values() -> None:
    assert split_expressions(["p95<300", " avg<200 ", ""]) == ["p95<300", "avg<200"]
    assert split_expressions("p95<300ms; fail_ratio<1%\nGET /a: avg<5") == [
        "p95<300ms",
        "fail_ratio<1%",
        "GET /a: avg<5",
    ]
    assert split_expressions('"GET /a;b": p99<1s; avg<2') == ['"GET /a;b": p99<1s', "avg<2"]
    assert split_expressions("") == []
    assert parse_threshold('"GET /a;b": p99<1s').scope == Scope("GET", "/a;b")


@given(
    p=st.decimals(min_value="0.01", max_value="100", places=2),
    value=st.integers(min_value=0, max_value=10**6),
    op=st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
    unit=st.sampled_from(["", "ms", "s"]),
)
def test_any_percentile_in_range_parses(p: object, value: int, op: str, unit: str) -> None:
    t = parse_threshold(f"p{p}{op}{value}{unit}")
    assert t.quantile is not None and 0 < t.quantile <= 1
    assert t.quantile == pytest.approx(float(p) / 100)  # type: ignore[arg-type]
    assert t.value == pytest.approx(value * (1000 if unit == "s" else 1))
    assert parse_threshold(t.key).key == t.key
