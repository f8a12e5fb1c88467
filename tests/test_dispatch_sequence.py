"""Class totals: the dispatcher's threshold search against a plain greedy generator of the sequence.

The reference below is the rule as the spec states it, written the slow and obvious way: keep a heap of each
class's next score ``w * log2((w + n) / (w + n + 1))`` and emit the smallest, ties broken by smaller
``w + n``, then smaller weight, then name. Fixed-count classes come first, interleaved by the same rule with
their counts as weights. Weights are divided by the lightest one (what makes the rule scale-invariant).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from horde.dispatch import UsersDispatcher, canonical_class_counts

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def user(name: str, weight: float = 1, fixed_count: int = 0) -> type:
    return type(name, (), {"weight": weight, "fixed_count": fixed_count})


def unit_weights(weights: dict[str, float]) -> dict[str, float]:
    low = min(weights.values())
    out = {}
    for name, w in weights.items():
        ratio = w / low
        out[name] = float(round(ratio)) if abs(ratio - round(ratio)) <= 1e-9 * ratio else ratio
    return out


def greedy(weights: dict[str, float]) -> Iterator[str]:
    """The divergence-minimising sequence, one symbol at a time."""

    def entry(name: str, w: float, n: int) -> tuple[float, float, float, str, int]:
        x = w + n
        return (w * math.log2(x / (x + 1.0)), x, w, name, n)

    heap = [entry(name, w, 0) for name, w in weights.items() if w > 0]
    heapq.heapify(heap)
    while heap:
        _, _, w, name, n = heap[0]
        yield name
        heapq.heapreplace(heap, entry(name, w, n + 1))


def reference_prefixes(classes: list[type], n: int) -> list[dict[str, int]]:
    """Class totals after 0, 1, ..., n users (shorter if only satisfied fixed classes remain)."""
    fixed = {c.__name__: float(c.fixed_count) for c in classes if c.fixed_count}
    weighted = {c.__name__: c.weight for c in classes if not c.fixed_count and c.weight > 0}
    symbols = itertools.chain(
        itertools.islice(greedy(fixed), int(sum(fixed.values()))) if fixed else (),
        greedy(unit_weights(weighted)) if weighted else (),
    )
    counts = dict.fromkeys((c.__name__ for c in classes), 0)
    out = [dict(counts)]
    for name in itertools.islice(symbols, n):
        counts[name] += 1
        out.append(dict(counts))
    return out


weights_st = st.one_of(
    st.integers(min_value=1, max_value=12).map(float),
    st.floats(min_value=0.05, max_value=50, allow_nan=False, allow_infinity=False),
)


@st.composite
def class_sets(draw: st.DrawFn, fixed: bool = True) -> list[type]:
    size = draw(st.integers(min_value=1, max_value=8))
    classes = []
    for i in range(size):
        w = draw(weights_st)
        f = draw(st.sampled_from([0, 0, 0, 1, 2, 5])) if fixed else 0
        classes.append(user(f"C{i}", w, f))
    if not any(c.weight > 0 or c.fixed_count for c in classes):
        classes.append(user("Last", 1))
    return classes


@SETTINGS
@given(class_sets(), st.integers(min_value=0, max_value=400))
def test_prefix_counts_match_the_greedy_generator(classes: list[type], n: int) -> None:
    expected = reference_prefixes(classes, n)  # shorter when only satisfied fixed classes remain
    for i in sorted({0, 1, 2, 3, n // 2, n, *range(0, n + 1, 37)} - {j for j in range(4) if j > n}):
        assert canonical_class_counts(classes, i) == expected[min(i, len(expected) - 1)], i


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(class_sets(fixed=False))
def test_every_prefix_of_a_short_ramp_matches(classes: list[type]) -> None:
    expected = reference_prefixes(classes, 60)
    assert [canonical_class_counts(classes, i) for i in range(61)] == expected


@SETTINGS
@given(
    st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=6),
    st.sampled_from([10, 2.5, 0.3, 1 / 23, math.e, math.pi, 7.77]),
    st.integers(min_value=0, max_value=300),
)
def test_scale_invariance(weights: list[int], factor: float, n: int) -> None:
    plain = [user(f"C{i}", w) for i, w in enumerate(weights)]
    scaled = [user(f"C{i}", w * factor) for i, w in enumerate(weights)]
    assert canonical_class_counts(scaled, n) == canonical_class_counts(plain, n)


def test_a_long_prefix_matches() -> None:
    classes = [user(f"U{i}", w) for i, w in enumerate([1, 2, 3, 5, 8, 13, 1.5, 2.25, 7, 10])]
    expected = reference_prefixes(classes, 200_000)
    for n in (199_999, 200_000, 123_457, 65_536):
        assert canonical_class_counts(classes, n) == expected[n]


def test_a_million_users_on_a_thousand_workers_is_one_exact_step() -> None:
    classes = [user(f"U{i}", i + 1) for i in range(10)]
    d = UsersDispatcher([type("N", (), {"id": f"h{i % 50}_{i:04x}"})() for i in range(1000)], classes)
    d.new_dispatch(1_000_000, 1_000_000)
    (step,) = list(d)
    sums = {name: sum(row[name] for row in step.users.values()) for name in step.users["h0_0000"]}
    assert sums == canonical_class_counts(classes, 1_000_000)
    assert {sum(row.values()) for row in step.users.values()} == {1000}
