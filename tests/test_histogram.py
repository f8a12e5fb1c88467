"""The log-linear histogram: layout, error bound, nearest-rank percentiles, exact merge, wire form."""

from __future__ import annotations

import itertools
import json
import math
import random

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horde.stats.histogram import (
    EXACT_LIMIT,
    MAX_RELATIVE_ERROR,
    Histogram,
    bucket_bounds,
    bucket_index,
    bucket_value,
    rank,
    select_percentiles,
)

# Buckets up to 2**44 µs (~200 days): far beyond any response time, cheap to walk (2,700 buckets).
TOP_INDEX = bucket_index(2**44)


def exact_nearest_rank(samples: list[int], q: float) -> int:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(q * len(ordered) - 1e-9)) - 1]


# -- layout and error bound -------------------------------------------------------------------------------


def test_error_bound_is_within_one_percent() -> None:
    assert MAX_RELATIVE_ERROR == 1 / 128
    assert MAX_RELATIVE_ERROR <= 0.01


def test_small_values_are_exact() -> None:
    for us in range(EXACT_LIMIT):
        assert bucket_index(us) == us
        assert bucket_value(us) == us
        assert bucket_bounds(us) == (us, us)


def test_negative_values_count_as_zero() -> None:
    assert bucket_index(-5) == 0


def test_every_value_below_2_pow_20_is_within_the_bound() -> None:
    """Exhaustive over 0 .. 1,048,575 µs (about 1 s): every bucket with widths 1 .. 8192."""
    bound = MAX_RELATIVE_ERROR
    for us in range(1, 1 << 20):
        rep = bucket_value(bucket_index(us))
        assert abs(rep - us) <= bound * us, us


def test_buckets_tile_the_integers_and_keep_the_bound_at_both_ends() -> None:
    """Every bucket up to 2**44: contiguous, index is monotone, and the worst values (ends) are in bound.

    The error within a bucket is largest at one of its two ends, so checking both ends of every bucket
    proves the bound for every integer up to 2**44.
    """
    expected_low = 0
    for idx in range(TOP_INDEX + 1):
        low, high = bucket_bounds(idx)
        assert low == expected_low, idx
        assert high >= low
        assert bucket_index(low) == idx
        assert bucket_index(high) == idx
        rep = bucket_value(idx)
        assert low <= rep <= high
        for us in (low, high):
            assert abs(rep - us) <= MAX_RELATIVE_ERROR * max(us, 1), (idx, us)
        expected_low = high + 1


def test_random_large_values_are_within_the_bound() -> None:
    rng = random.Random(7)
    for _ in range(20_000):
        us = rng.randrange(1, 1 << 45)
        assert abs(bucket_value(bucket_index(us)) - us) <= MAX_RELATIVE_ERROR * us


def test_typical_run_touches_few_buckets() -> None:
    # 1 ms .. 60 s covers ~ 16 doublings of 64 buckets.
    assert bucket_index(60_000_000) - bucket_index(1_000) < 1100


# -- percentiles -------------------------------------------------------------------------------------


def test_rank_is_nearest_rank_and_tolerates_float_noise() -> None:
    assert rank(0.5, 4) == 2
    assert rank(0.5, 3) == 2
    assert rank(0.0, 10) == 1
    assert rank(1.0, 10) == 10
    assert rank(0.29, 100) == 29  # 0.29 * 100 == 28.999999999999996
    assert rank(0.99, 100) == 99
    with pytest.raises(ValueError):
        rank(1.5, 10)
    with pytest.raises(ValueError):
        rank(-0.1, 10)


def test_percentiles_on_exact_range() -> None:
    h = Histogram()
    for us in range(1, 101):
        h.record(us)
    assert h.count == 100
    assert h.percentile(0.0) == 1
    assert h.percentile(0.5) == 50
    assert h.percentile(0.9) == 90
    assert h.percentile(0.99) == 99
    assert h.percentile(1.0) == 100
    assert h.percentiles([1.0, 0.5, 0.0]) == [100, 50, 1]


def test_percentiles_of_wide_values_are_within_the_bound() -> None:
    rng = random.Random(11)
    samples = [int(rng.lognormvariate(10, 2)) for _ in range(5000)]
    h = Histogram()
    for us in samples:
        h.record(us)
    for q in (0.0, 0.1, 0.5, 0.66, 0.9, 0.95, 0.99, 0.999, 1.0):
        exact = exact_nearest_rank(samples, q)
        assert abs(h.percentile(q) - exact) <= MAX_RELATIVE_ERROR * exact, q


def test_clamping_to_known_extremes() -> None:
    h = Histogram()
    for us in (1000, 250_001, 999_999):
        h.record(us)
    assert h.percentile(1.0) != 999_999  # the bucket midpoint...
    assert h.percentiles([0.0, 1.0], low=1000, high=999_999) == [1000, 999_999]  # ...but exact when told
    assert h.percentiles([0.5], low=1000, high=999_999) == [h.percentile(0.5)]


def test_empty_histogram() -> None:
    h = Histogram()
    assert h.count == 0
    assert not h
    assert h.percentile(0.5) == 0
    assert h.percentiles([0.5, 1.0]) == [0, 0]
    assert h.min_value() == h.max_value() == 0
    with pytest.raises(ValueError):
        h.percentile(2.0)


def test_single_sample() -> None:
    h = Histogram()
    h.record(5)
    assert [h.percentile(q) for q in (0.0, 0.5, 1.0)] == [5, 5, 5]
    assert h.min_value() == h.max_value() == 5


# -- merge, subtract, wire ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=10**9), max_size=60),
    st.lists(st.integers(min_value=0, max_value=10**9), max_size=60),
)
def test_merge_equals_histogram_of_union(a: list[int], b: list[int]) -> None:
    ha, hb, hu = Histogram(), Histogram(), Histogram()
    for us in a:
        ha.record(us)
    for us in b:
        hb.record(us)
    for us in a + b:
        hu.record(us)
    merged = ha.copy()
    merged.merge(hb)
    assert merged == hu
    assert ha + hb == hu
    for q in (0.0, 0.25, 0.5, 0.9, 0.99, 1.0):
        assert merged.percentile(q) == hu.percentile(q)
    assert (hu - hb) == ha


def test_subtract_removes_an_earlier_snapshot_and_refuses_more() -> None:
    h = Histogram()
    h.record(10, 3)
    snapshot = h.copy()
    h.record(10)
    h.record(5000)
    window = h - snapshot
    assert window.counts == {10: 1, bucket_index(5000): 1}
    assert 10 in h.counts  # the original is untouched
    with pytest.raises(ValueError):
        snapshot.subtract(h)


def test_copy_is_independent_and_wrap_shares() -> None:
    counts = {3: 1}
    view = Histogram.wrap(counts)
    view.record(3)
    assert counts == {3: 2}
    clone = view.copy()
    clone.record(3)
    assert counts == {3: 2}


def test_wire_round_trip_through_msgpack_and_json() -> None:
    h = Histogram()
    for us in (1, 1, 500, 90_000, 3_600_000_000):
        h.record(us)
    wire = h.to_wire()
    assert all(type(k) is int and type(v) is int for k, v in wire.items())
    packed = msgpack.unpackb(msgpack.packb(wire), strict_map_key=False)
    assert Histogram.from_wire(packed) == h
    assert Histogram.from_wire(json.loads(json.dumps(wire))) == h  # string keys after JSON
    target = Histogram()
    target.merge(wire)
    assert target == h


@pytest.mark.parametrize(
    "bad",
    [{"x": 1}, {-1: 1}, {1: -2}, {1: 1.5}, {True: 1}, [1, 2]],
)
def test_from_wire_rejects_malformed(bad: object) -> None:
    with pytest.raises(ValueError):
        Histogram.from_wire(bad)  # type: ignore[arg-type]


def _walk_percentiles(
    counts: dict[int, int], qs: list[float], low: int | None, high: int | None
) -> list[int]:
    """The straightforward ascending walk that select_percentiles replaces (the reference)."""
    n = sum(counts.values())
    out = []
    for q in qs:
        r = rank(q, n)
        seen = 0
        for idx in sorted(counts):
            seen += counts[idx]
            if seen >= r:
                v = bucket_value(idx)
                break
        if low is not None and (r == 1 or v < low):
            v = low
        if high is not None and (r == n or v > high):
            v = high
        out.append(v)
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=10**8), min_size=1, max_size=300),
    st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=12),
)
def test_bisected_percentiles_equal_the_bucket_walk(values: list[int], qs: list[float]) -> None:
    h = Histogram()
    for v in values:
        h.record(v)
    for low, high in ((None, None), (min(values), max(values))):
        assert h.percentiles(qs, low, high) == _walk_percentiles(h.counts, qs, low, high)
    # Zero-count buckets (a window vector) do not move any answer.
    keys = sorted({*h.counts, 1, 5000, 10**6})
    cumulative = list(itertools.accumulate(h.counts.get(k, 0) for k in keys))
    assert select_percentiles(keys, cumulative, qs) == h.percentiles(qs)
