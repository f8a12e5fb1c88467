"""Evaluating thresholds on synthetic snapshots: every metric, every operator, scopes, merges, no data."""

from __future__ import annotations

import json
import random
import re

import pytest

from horde.stats import RequestStats
from horde.thresholds import Verdict, any_breached, evaluate, evaluate_all, parse_threshold
from horde.thresholds.metrics import number
from tests.thresholds.fakes import new_stats, record, snap


def check(text: str, stats: RequestStats, *, live: bool = True, **extra: float | None) -> Verdict:
    return evaluate(parse_threshold(text), snap(stats), stats=stats if live else None, extra=extra)


@pytest.fixture
def shop() -> RequestStats:
    """GET /items: 1..100 ms; POST /items: 200, 400 … 2000 ms, one in five failing; GET /login: 5 ms."""
    clock, stats = new_stats()
    record(stats, clock, "GET", "/items", [float(i) for i in range(1, 101)])
    record(stats, clock, "POST", "/items", [200.0 * i for i in range(1, 11) if i % 5], every=0.1)
    record(stats, clock, "POST", "/items", [1000.0, 2000.0], every=0.1, error="HTTP 500")
    record(stats, clock, "GET", "/login", [5.0] * 10)
    return stats


def test_counts_and_times_of_the_aggregated_row(shop: RequestStats) -> None:
    total = shop.total
    cases = {
        "requests>0": 120.0,
        "failures==2": 2.0,
        "fail_ratio<0.05": 2 / 120,
        "avg<200": total.avg_response_time,
        "min>=1": 1.0,
        "max<=2s": 2000.0,
        "p100<=2000": 2000.0,
        "median<60": total.median_response_time,
        "p50<60": total.get_response_time_percentile(0.5),
        "p95<3000": total.get_response_time_percentile(0.95),
        "p99.9<3000": total.get_response_time_percentile(0.999),
        "rps>1": total.total_rps,
        "current_rps>=0": total.current_rps,
    }
    for text, expected in cases.items():
        verdict = check(text, shop)
        assert verdict.observed == pytest.approx(expected), text
        assert verdict.ok is True, verdict.text
        assert not verdict.approximate


@pytest.mark.parametrize(
    ("op", "value", "ok"),
    [
        ("<", 121, True),
        ("<", 120, False),
        ("<=", 120, True),
        ("<=", 119, False),
        (">", 119, True),
        (">", 120, False),
        (">=", 120, True),
        (">=", 121, False),
        ("==", 120, True),
        ("==", 119, False),
        ("!=", 119, True),
        ("!=", 120, False),
    ],
)
def test_every_operator_on_a_count(shop: RequestStats, op: str, value: int, ok: bool) -> None:
    verdict = check(f"requests{op}{value}", shop)
    assert (verdict.ok, verdict.observed) == (ok, 120.0)


def test_breach_text_names_the_threshold_and_the_observed_value(shop: RequestStats) -> None:
    verdict = check("GET /items: p95<50ms", shop)
    assert verdict.ok is False and verdict.status == "fail"
    assert verdict.observed == pytest.approx(95.0, rel=0.008)
    assert verdict.text == f"p95 of GET /items < 50 ms: observed {verdict.observed_text}"
    assert verdict.observed_text == f"{number(verdict.observed or 0)} ms"
    assert re.fullmatch(r"9[45]\.\d\d ms", verdict.observed_text or "")
    seconds = check("GET /items: p95<0.05s", shop)
    assert seconds.observed_text == "0.0947 s" and seconds.observed == verdict.observed


def test_fail_ratio_in_percent_is_shown_in_percent(shop: RequestStats) -> None:
    verdict = check("POST /items: fail_ratio<10%", shop)
    assert verdict.observed == pytest.approx(2 / 10)
    assert verdict.ok is False and verdict.observed_text == "20 %"
    assert check("POST /items: fail_ratio<0.25", shop).observed_text == "0.2"


def test_per_entry_scope_reads_only_that_entry(shop: RequestStats) -> None:
    assert check("GET /items: requests==100", shop).ok is True
    assert check("POST /items: requests==10", shop).ok is True
    assert check("POST /items: failures==2", shop).ok is True
    assert check("GET /items: max==100", shop).ok is True
    assert check("POST /items: min==200", shop).ok is True
    assert check("GET /login: avg==5", shop).ok is True
    entry = shop.get("/items", "GET")
    assert check("GET /items: p99<1s", shop).observed == entry.get_response_time_percentile(0.99)
    assert check("GET /items: rps>0", shop).observed == pytest.approx(entry.total_rps)


def test_per_name_scope_merges_every_method(shop: RequestStats) -> None:
    get, post = shop.get("/items", "GET"), shop.get("/items", "POST")
    assert check("/items: requests==110", shop).ok is True
    assert check("/items: failures==2", shop).ok is True
    assert check("/items: fail_ratio<0.02", shop).observed == pytest.approx(2 / 110)
    weighted = (get.total_response_time + post.total_response_time) / 110
    assert check("/items: avg<1s", shop).observed == pytest.approx(weighted)
    assert check("/items: min<1s", shop).observed == 1.0
    assert check("/items: max<=2s", shop).observed == 2000.0
    assert check("/items: p100<=2s", shop).observed == 2000.0
    assert check("/items: rps>0", shop).observed == pytest.approx(get.total_rps + post.total_rps)
    assert check("/items: current_rps>=0", shop).observed == pytest.approx(get.current_rps + post.current_rps)


def test_merged_percentiles_equal_those_of_the_union_of_samples() -> None:
    rnd = random.Random(7)
    clock, stats = new_stats()
    _, union = new_stats()
    samples = {m: [rnd.lognormvariate(4, 1) for _ in range(2000)] for m in ("GET", "POST", "PUT")}
    for method, values in samples.items():
        record(stats, clock, method, "/x", values)
        record(stats, clock, method, "/other", [1.0] * 10)
        for v in values:
            union.record("ANY", "/x", v, 0)
    expected = union.get("/x", "ANY")
    for p in ("p50", "p90", "p95", "p97", "p99", "p99.9"):
        verdict = check(f"/x: {p}<100000", stats)
        q = parse_threshold(f"{p}<1").quantile
        assert q is not None
        assert verdict.observed == expected.get_response_time_percentile(q), p
        assert not verdict.approximate


def test_without_live_stats_merged_percentiles_are_approximate_and_bounded() -> None:
    rnd = random.Random(3)
    clock, stats = new_stats()
    record(stats, clock, "GET", "/x", [rnd.uniform(10, 100) for _ in range(3000)])
    record(stats, clock, "POST", "/x", [rnd.uniform(200, 400) for _ in range(1000)])
    get, post = stats.get("/x", "GET"), stats.get("/x", "POST")
    _, union = new_stats()
    for e in (get, post):
        union.total.extend(e)
    for p, q in (("p50", 0.5), ("p75", 0.75), ("p90", 0.9), ("p95", 0.95), ("p97", 0.97), ("p99", 0.99)):
        verdict = check(f"/x: {p}<1000", stats, live=False)
        assert verdict.approximate and "approximate" in verdict.text
        assert verdict.observed_text is not None and verdict.observed_text.startswith("about ")
        low, high = sorted((get.get_response_time_percentile(q), post.get_response_time_percentile(q)))
        assert verdict.observed is not None and low <= verdict.observed <= high
        exact = union.total.get_response_time_percentile(q)
        assert verdict.observed == pytest.approx(exact, rel=0.05), p


def test_an_unreported_percentile_is_exact_with_live_stats_and_approximate_without() -> None:
    clock, stats = new_stats()
    record(stats, clock, "GET", "/x", [float(i) for i in range(1, 1001)])
    exact = check("p97<1s", stats)
    assert exact.observed == stats.total.get_response_time_percentile(0.97) and not exact.approximate
    approx = check("p97<1s", stats, live=False)
    assert approx.approximate and approx.observed == pytest.approx(970, rel=0.01)
    # a reported percentile is read from the snapshot either way
    assert not check("p95<1s", stats, live=False).approximate


def test_live_stats_that_moved_on_since_the_snapshot_are_not_used() -> None:
    clock, stats = new_stats()
    record(stats, clock, "GET", "/x", [10.0] * 100)
    snapshot = snap(stats)
    record(stats, clock, "GET", "/x", [5000.0] * 100)
    verdict = evaluate(parse_threshold("p97<100"), snapshot, stats=stats)
    assert verdict.approximate and verdict.observed == pytest.approx(10.0)


def test_no_data(shop: RequestStats) -> None:
    _, empty = new_stats()
    for text in ("p95<300", "avg<1", "min>1", "max<1", "median<1", "p100<1", "fail_ratio<0.1"):
        verdict = check(text, empty)
        assert (verdict.ok, verdict.observed, verdict.status) == (None, None, "no data"), text
        assert "no data (" in verdict.text and verdict.why
        assert verdict.observed_text is None
    # counts and rates of an existing scope are observations, even when zero
    assert check("requests>0", empty).ok is False
    assert check("failures==0", empty).ok is True
    assert check("rps>10", empty).observed == 0.0
    # a scope with no entry: nothing at all (a misspelt name must not pass silently as 0 failures)
    missing = check("GET /itmes: failures==0", shop)
    assert missing.ok is None and missing.why == "no request GET /itmes yet"
    assert check("/nope: requests>1", shop).why == "no request named /nope yet"
    # an entry with requests but no timed one (response_time None)
    clock, untimed = new_stats()
    record(untimed, clock, "WS", "chat", [None, None])
    assert check("WS chat: avg<10", untimed).why == "no timed request yet"
    assert check("WS chat: requests==2", untimed).ok is True


def test_a_failure_without_any_request_is_a_fail_ratio_of_one() -> None:
    _, stats = new_stats()
    stats.log_error("GET", "/down", "connection refused")
    verdict = check("fail_ratio<0.5", stats)
    assert (verdict.ok, verdict.observed) == (False, 1.0)


def test_extra_metrics_come_from_the_values_passed_in(shop: RequestStats) -> None:
    assert check("dropped_iterations==0", shop, dropped_iterations=0).ok is True
    breached = check("dropped_iterations==0", shop, dropped_iterations=12)
    assert (breached.ok, breached.observed, breached.text) == (
        False,
        12.0,
        "dropped_iterations == 0: observed 12",
    )
    missing = check("dropped_iterations==0", shop)
    assert missing.ok is None and "arrival-rate" in (missing.why or "")
    assert check("dropped_iterations==0", shop, dropped_iterations=None).ok is None


def test_evaluate_all_keeps_the_order_and_any_breached(shop: RequestStats) -> None:
    thresholds = [parse_threshold(t) for t in ("requests>0", "p95<1", "/nope: avg<1")]
    verdicts = evaluate_all(thresholds, snap(shop), stats=shop)
    assert [v.threshold for v in verdicts] == thresholds
    assert [v.status for v in verdicts] == ["pass", "fail", "no data"]
    assert any_breached(verdicts) and not any_breached(verdicts[::2])


def test_a_verdict_is_json_ready(shop: RequestStats) -> None:
    verdict = check("GET /items: p95<50ms", shop)
    data = json.loads(json.dumps(verdict.to_dict(), allow_nan=False))
    assert data["expression"] == "GET /items: p95<50ms" and data["ok"] is False
    assert data["status"] == "fail" and data["observed"] == verdict.observed
    assert (
        data["observed_text"] == verdict.observed_text
        and data["method"] == "GET"
        and data["name"] == "/items"
    )
    assert data["why"] is None and data["approximate"] is False
    assert verdict.describe() == verdict.text and verdict.expression == "GET /items: p95<50ms"


def test_the_html_report_reads_a_verdict() -> None:
    # the HTML report duck-types its threshold rows: `ok` and `describe()` must be there
    from horde.reports import html

    _threshold_ok = getattr(html, "_threshold_ok", None)
    _threshold_text = getattr(html, "_threshold_text", None)
    if _threshold_ok is None or _threshold_text is None:
        pytest.skip("the HTML report no longer has these helpers")
    clock, stats = new_stats()
    record(stats, clock, "GET", "/", [500.0])
    verdict = check("p95<300", stats)
    assert _threshold_ok(verdict) is False
    assert _threshold_text(verdict) == "p95 of all requests < 300 ms: observed 500 ms"
