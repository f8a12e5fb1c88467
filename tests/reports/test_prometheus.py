"""Prometheus exposition: parsed back with prometheus_client's own parser, checked against the stats."""

from __future__ import annotations

import random
import socket
import urllib.request
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from horde.reports.prometheus import (
    BUCKET_BOUNDS,
    PrometheusOutput,
    bucket_cut,
    cumulative_counts,
    metrics_text,
)
from horde.runners.status import WorkerStatus
from horde.stats import RequestStats
from horde.stats.histogram import MAX_RELATIVE_ERROR, bucket_bounds, bucket_index, bucket_value


def parse(text: str) -> dict[str, Any]:
    """{family name: family} from the exposition text."""
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(family: Any, suffix: str = "", **labels: str) -> list[Any]:
    return [
        s
        for s in family.samples
        if s.name == family.name + suffix and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def value(family: Any, suffix: str = "", **labels: str) -> float:
    found = samples(family, suffix, **labels)
    assert len(found) == 1, (family.name, suffix, labels, found)
    return float(found[0].value)


def record_random(stats: RequestStats, rng: random.Random, n: int) -> dict[tuple[str, str], list[int]]:
    """Record ``n`` requests over three entries; return each entry's timed samples in integer µs."""
    raw: dict[tuple[str, str], list[int]] = {}
    for _ in range(n):
        method, name = rng.choice([("GET", "/"), ("GET", "/api/items"), ("POST", "/api/cart")])
        # log-uniform from 20 µs to 90 s: every region of the bucket layout and of the bounds
        us = round(10 ** rng.uniform(1.3, 7.95))
        error = "boom" if rng.random() < 0.1 else None
        stats.record(method, name, us / 1000, 100, error)
        raw.setdefault((method, name), []).append(us)
    stats.record("GET", "/", None, 0)  # counted, not timed
    return raw


def test_bucket_cut_is_the_nearest_edge_within_the_documented_error() -> None:
    for bound in BUCKET_BOUNDS:
        bound_us = round(bound * 1_000_000)
        cut = bucket_cut(bound)
        effective = bucket_bounds(cut)[1]  # the cumulative count covers samples <= this many µs
        assert abs(effective - bound_us) <= bound_us * MAX_RELATIVE_ERROR
        assert abs(effective - bound_us) <= bound_us * 0.0049  # the figure in the module docstring
        # the whole straddling bucket lies on the side of its midpoint
        straddling = bucket_index(bound_us)
        assert (cut == straddling) == (bucket_value(straddling) <= bound_us)
    assert bucket_bounds(bucket_cut(0.0001))[1] == 100  # exact below 128 µs


def test_cumulative_counts() -> None:
    assert cumulative_counts({}, [1, 2]) == [0, 0, 0]
    assert cumulative_counts({5: 2, 1: 1, 9: 4}, [0, 1, 5, 8]) == [0, 1, 3, 3, 7]


def test_histogram_counts_equal_the_stats_exactly() -> None:
    stats = RequestStats()
    raw = record_random(stats, random.Random(7), 20_000)
    families = parse(metrics_text(stats))
    hist = families["horde_response_time_seconds"]
    cuts = [bucket_cut(b) for b in BUCKET_BOUNDS]
    for (method, name), values in raw.items():
        entry = stats.get(name, method)
        labels = {"method": method, "name": name}
        assert value(families["horde_requests"], "_total", **labels) == entry.num_requests
        assert value(families["horde_request_failures"], "_total", **labels) == entry.num_failures
        assert value(hist, "_count", **labels) == len(values) == entry.num_requests - entry.num_none_requests
        assert value(hist, "_bucket", le="+Inf", **labels) == len(values)
        assert value(hist, "_sum", **labels) == pytest.approx(sum(values) / 1e6)
        for bound, cut in zip(BUCKET_BOUNDS, cuts, strict=True):
            got = value(hist, "_bucket", le=repr(bound), **labels)
            # exact: the count of samples at or below the effective bound (a horde bucket edge) ...
            effective = bucket_bounds(cut)[1]
            assert got == sum(1 for us in values if us <= effective)
            # ... which differs from the nominal bound only by samples in the bucket straddling it
            bound_us = round(bound * 1e6)
            lo, hi = bucket_bounds(bucket_index(bound_us))
            nominal = sum(1 for us in values if us <= bound_us)
            assert abs(got - nominal) <= sum(1 for us in values if lo <= us <= hi)


def test_samples_away_from_the_bounds_are_counted_at_the_nominal_bound() -> None:
    stats = RequestStats()
    rng = random.Random(3)
    values = []
    for _ in range(5000):
        us = round(10 ** rng.uniform(2, 7.5))
        if any(abs(us - b * 1e6) <= b * 1e6 * 0.01 for b in BUCKET_BOUNDS):
            continue  # keep 1 % clear of every bound (the error is below 0.5 %)
        values.append(us)
        stats.record("GET", "/x", us / 1000, 0)
    hist = parse(metrics_text(stats))["horde_response_time_seconds"]
    for bound in BUCKET_BOUNDS:
        expected = sum(1 for us in values if us <= bound * 1e6)
        assert value(hist, "_bucket", le=repr(bound), method="GET", name="/x") == expected


def test_merged_worker_reports_give_the_union_histogram() -> None:
    rng = random.Random(11)
    master = RequestStats()
    union = RequestStats()
    for _ in range(3):
        worker = RequestStats(use_response_times_cache=False)
        for _ in range(2000):
            us = round(10 ** rng.uniform(2, 6))
            worker.record("GET", "/w", us / 1000, 0)
            union.record("GET", "/w", us / 1000, 0)
        master.merge(worker.serialize_and_reset())
    assert parse(metrics_text(master))["horde_response_time_seconds"].samples == (
        parse(metrics_text(union))["horde_response_time_seconds"].samples
    )


def test_aggregated_is_not_exported_and_errors_are() -> None:
    stats = RequestStats()
    stats.record("GET", "/a", 5, 0, ConnectionRefusedError(111, "refused"))
    stats.record("GET", "/a", 5, 0, ConnectionRefusedError(111, "refused"))
    text = metrics_text(stats)
    assert "Aggregated" not in text
    errors = parse(text)["horde_errors"]
    assert (
        value(errors, "_total", method="GET", name="/a", error="ConnectionRefusedError(111, 'refused')") == 2
    )
    assert parse(text)["horde_stats_start_time_seconds"].samples[0].value == stats.total.start_time


def test_empty_stats_parse() -> None:
    families = parse(metrics_text(RequestStats()))
    assert families["horde_info"].samples[0].labels == {
        "version": families["horde_info"].samples[0].labels["version"]
    }
    assert families["horde_response_time_seconds"].samples == []
    assert "horde_users" not in families  # no status given: no run metrics


def status(**kw: Any) -> SimpleNamespace:
    defaults: dict[str, Any] = {
        "state": "running",
        "user_count": 5,
        "user_classes_count": {"Shop": 3, "Browse": 2},
        "target_user_count": 8,
        "workers": (
            WorkerStatus(
                "w1",
                index=0,
                state="running",
                user_count=3,
                cpu_percent=55.5,
                loop_lag=0.012,
                memory_rss=50_000_000,
            ),
            WorkerStatus("w2", index=1, state="running", user_count=2, cpu_percent=93.0, loop_lag=0.25),
            WorkerStatus("w3", index=2, state="missing"),
        ),
    }
    defaults.update(kw)
    return SimpleNamespace(**defaults)


def test_run_metrics_users_workers_cpu_and_lag() -> None:
    families = parse(metrics_text(RequestStats(), status()))
    assert value(families["horde_users"], user_class="Shop") == 3
    assert value(families["horde_users"], user_class="Browse") == 2
    assert value(families["horde_target_users"]) == 8
    assert value(families["horde_state"], state="running") == 1
    assert value(families["horde_state"], state="stopped") == 0
    workers = families["horde_workers"]
    assert value(workers, state="running") == 2
    assert value(workers, state="missing") == 1
    assert value(workers, state="spawning") == 0  # zero-filled: the series does not disappear
    assert value(families["horde_worker_cpu_percent"], worker="w2") == 93.0
    assert value(families["horde_worker_loop_lag_seconds"], worker="w1") == 0.012
    assert value(families["horde_worker_memory_bytes"], worker="w1") == 50_000_000
    assert value(families["horde_worker_users"], worker="w3") == 0


def test_unknown_states_are_exported_too() -> None:
    families = parse(
        metrics_text(RequestStats(), status(state="paused", workers=(WorkerStatus("x", state="odd"),)))
    )
    assert value(families["horde_state"], state="paused") == 1
    assert value(families["horde_workers"], state="odd") == 1


def test_uses_its_own_registry() -> None:
    stats = RequestStats()
    stats.record("GET", "/", 1, 0)
    metrics_text(stats)
    PrometheusOutput(0)  # building one registers nothing globally either
    assert not [m for m in REGISTRY.collect() if m.name.startswith("horde")]


class FakeRun:
    def __init__(self, stats: RequestStats) -> None:
        self.env = SimpleNamespace(stats=stats)
        self.options = None
        self.history = None
        self.current = status(state="spawning")
        self.calls = 0

    def status(self) -> SimpleNamespace:
        self.calls += 1
        return self.current


def scrape(output: PrometheusOutput) -> dict[str, Any]:
    host, port = output.address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as resp:
        assert resp.status == 200
        return parse(resp.read().decode())


def test_output_serves_live_stats_and_cached_status_on_loopback() -> None:
    stats = RequestStats()
    run = FakeRun(stats)
    output = PrometheusOutput(0)
    try:
        output.start(run)  # type: ignore[arg-type]
        assert output.address[0] == "127.0.0.1"
        assert value(scrape(output)["horde_state"], state="spawning") == 1
        stats.record("GET", "/", 3, 0)
        run.current = status(state="running")
        calls = run.calls
        families = scrape(output)
        assert run.calls == calls  # the HTTP thread never calls into the run
        assert value(families["horde_state"], state="spawning") == 1  # cached until the next tick
        assert value(families["horde_requests"], "_total", method="GET", name="/") == 1
        output.on_tick(None)  # type: ignore[arg-type]
        assert value(scrape(output)["horde_state"], state="running") == 1
        final = RequestStats()
        for _ in range(4):
            final.record("GET", "/", 3, 0)
        output.stop(SimpleNamespace(stats=final))  # type: ignore[arg-type]
        # still serving after stop: the last scrape sees the final totals
        assert value(scrape(output)["horde_requests"], "_total", method="GET", name="/") == 4
    finally:
        output.close()
    with pytest.raises(OSError):
        scrape(output)


def test_port_in_use_fails_at_open() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        output = PrometheusOutput(s.getsockname()[1])
        with pytest.raises(OSError):
            output.open()
