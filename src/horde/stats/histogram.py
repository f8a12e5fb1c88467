"""A sparse log-linear histogram of integer microseconds that merges exactly.

Why this scheme: percentiles must be cheap to record, exact to merge across workers (so p99 over ten
workers is p99 of the union of their samples), and accurate everywhere from sub-millisecond to minute-long
responses. Locust's two-significant-digit buckets fail the last point (10 % steps above 1 s, p99 above the
true max); an HDR-style log-linear layout keeps a fixed *relative* error instead.

The layout (``SUB_BUCKET_BITS = 6``, so 64 sub-buckets per power of two):

* values ``0 .. 127`` µs have a bucket each, so they are exact;
* a value ``v >= 128`` with ``bit_length(v) = b`` lies in ``[2**(b-1), 2**b)``; that range is cut into 64
  equal buckets of width ``w = 2**(b-7)``; the bucket index is ``((b-7) << 6) + (v >> (b-7))``.

The index is monotone in the value, so sorting indices sorts buckets. A bucket is represented by
``lo + w // 2`` (its midpoint, rounded down). Every value in a wide bucket is at least ``64 * w``, and the
representative is at most ``w / 2`` away, so the **relative error is at most 1/128 ≈ 0.78 %** (zero below
128 µs). Indices grow by 64 per doubling: a full hour (3.6e9 µs) is index 1,707, and a typical run
touches a few hundred buckets, so the counts are kept sparse in a ``dict[int, int]``.

Merging is adding counts per index; there is no rounding, so merge order never matters.

>>> h = Histogram()
>>> for us in (100, 250_000, 260_000):
...     h.record(us)
>>> h.count, h.percentile(0.5)
(3, 250880)
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate
from typing import Any

#: log2 of the number of sub-buckets per power of two (64 → relative error ≤ 1/128).
SUB_BUCKET_BITS = 6
#: Values below this many microseconds are stored exactly.
EXACT_LIMIT = 1 << (SUB_BUCKET_BITS + 1)
#: Largest relative distance between a value and its bucket's representative.
MAX_RELATIVE_ERROR = 1 / (1 << (SUB_BUCKET_BITS + 1))
#: Name of the bucket layout; peers exchange it so they never add counts of different layouts.
HISTOGRAM_SCHEME = f"loglin-us-{SUB_BUCKET_BITS}"

_SHIFT_OFFSET = SUB_BUCKET_BITS + 1
_SUB = 1 << SUB_BUCKET_BITS

# Tolerance for ceil(q * n): 0.29 * 100 is 28.999999999999996 in binary floating point.
_RANK_EPSILON = 1e-9


def bucket_index(us: int) -> int:
    """The bucket index of a value in microseconds (negative values count as 0).

    >>> bucket_index(127), bucket_index(128), bucket_index(129), bucket_index(1_000_000)
    (127, 128, 128, 954)
    """
    if us < EXACT_LIMIT:
        return us if us > 0 else 0
    shift = us.bit_length() - _SHIFT_OFFSET
    return (shift << SUB_BUCKET_BITS) + (us >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """``(lowest, highest)`` microsecond value that falls into bucket ``index`` (both inclusive)."""
    if index < EXACT_LIMIT:
        return index, index
    shift = (index >> SUB_BUCKET_BITS) - 1
    low = (index - (shift << SUB_BUCKET_BITS)) << shift
    return low, low + (1 << shift) - 1


def bucket_value(index: int) -> int:
    """The value that stands for every sample in bucket ``index`` (the midpoint, rounded down)."""
    if index < EXACT_LIMIT:
        return index
    shift = (index >> SUB_BUCKET_BITS) - 1
    return ((index - (shift << SUB_BUCKET_BITS)) << shift) + (1 << shift >> 1)


def rank(q: float, n: int) -> int:
    """Nearest-rank position (1-based) of quantile ``q`` among ``n`` samples: ``ceil(q * n)``, at least 1."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within [0, 1], got {q!r}")
    return min(n, max(1, math.ceil(q * n - _RANK_EPSILON)))


class Histogram:
    """Counts of samples per log-linear bucket; see the module docstring for the layout and error bound.

    ``counts`` maps bucket index → number of samples and never holds zero counts. It is a plain dict so hot
    paths (``RequestStats.record``) may increment it directly with :func:`bucket_index`.
    """

    __slots__ = ("counts",)

    def __init__(self, counts: Mapping[int, int] | None = None) -> None:
        self.counts: dict[int, int] = {}
        if counts:
            self.merge(counts)

    # -- recording -------------------------------------------------------------------------------------

    def record(self, us: int, n: int = 1) -> None:
        """Add ``n`` samples of ``us`` microseconds."""
        idx = bucket_index(us)
        counts = self.counts
        counts[idx] = counts.get(idx, 0) + n

    def merge(self, other: Histogram | Mapping[int, int] | Mapping[str, int]) -> None:
        """Add another histogram's counts (or a wire dict from :meth:`to_wire`) to this one.

        Wire dicts may have string keys (a JSON round-trip turns int keys into strings).
        """
        src = other.counts if isinstance(other, Histogram) else other
        counts = self.counts
        for key, n in src.items():
            idx = key if type(key) is int and key >= 0 else _parse_index(key)
            if type(n) is not int or n < 0:
                raise ValueError(f"histogram count must be a non-negative int, got {n!r}")
            if n:
                counts[idx] = counts.get(idx, 0) + n

    def subtract(self, other: Histogram | Mapping[int, int]) -> None:
        """Remove ``other``'s samples, which must all be present (e.g. an earlier snapshot of this one).

        This is how a time window is computed: cumulative now minus cumulative at the window's start.
        """
        src = other.counts if isinstance(other, Histogram) else other
        counts = self.counts
        for idx, n in src.items():
            left = counts.get(idx, 0) - n
            if left < 0:
                raise ValueError(f"cannot subtract {n} samples from bucket {idx} holding {left + n}")
            if left:
                counts[idx] = left
            else:
                counts.pop(idx, None)

    def clear(self) -> None:
        self.counts.clear()

    @classmethod
    def wrap(cls, counts: dict[int, int]) -> Histogram:
        """A histogram that *shares* ``counts`` (no copy): a view over a dict someone else updates."""
        h = cls.__new__(cls)
        h.counts = counts
        return h

    def copy(self) -> Histogram:
        h = Histogram()
        h.counts = self.counts.copy()
        return h

    def __add__(self, other: Histogram) -> Histogram:
        h = self.copy()
        h.merge(other)
        return h

    def __sub__(self, other: Histogram) -> Histogram:
        h = self.copy()
        h.subtract(other)
        return h

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.counts == other.counts

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Histogram(count={self.count}, buckets={len(self.counts)})"

    # -- reading ---------------------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Number of samples recorded."""
        return sum(self.counts.values())

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return bool(self.counts)

    def percentile(self, q: float) -> int:
        """The representative value of the sample at nearest rank ``ceil(q * count)``; 0 when empty.

        >>> Histogram({10: 1, 20: 1, 30: 1, 40: 1}).percentile(0.5)
        20
        """
        return self.percentiles((q,))[0]

    def percentiles(self, qs: Iterable[float], low: int | None = None, high: int | None = None) -> list[int]:
        """Several percentiles in one ascending walk over the buckets (reports ask for eleven at once).

        ``low``/``high`` are the exact smallest and largest samples when the caller knows them: rank 1
        then returns ``low`` and rank ``count`` returns ``high`` exactly, and every other answer is clamped
        into ``[low, high]``, so no percentile exceeds the true maximum.
        """
        counts = self.counts
        keys = sorted(counts)
        return select_percentiles(keys, list(accumulate(map(counts.__getitem__, keys))), qs, low, high)

    def min_value(self) -> int:
        """Representative of the lowest non-empty bucket (0 when empty)."""
        return bucket_value(min(self.counts)) if self.counts else 0

    def max_value(self) -> int:
        """Representative of the highest non-empty bucket (0 when empty)."""
        return bucket_value(max(self.counts)) if self.counts else 0

    # -- wire ------------------------------------------------------------------------------------------

    def to_wire(self) -> dict[int, int]:
        """A msgpack-friendly copy: ``{bucket_index: count}`` (unpack with ``strict_map_key=False``)."""
        return self.counts.copy()

    @classmethod
    def from_wire(cls, data: Mapping[Any, Any]) -> Histogram:
        """Rebuild from :meth:`to_wire` output (int or numeric-string keys); rejects malformed input."""
        if not isinstance(data, Mapping):
            raise ValueError(f"histogram must be a mapping, got {type(data).__name__}")
        return cls(data)


def select_percentiles(
    keys: Sequence[int],
    cumulative: Sequence[int],
    qs: Iterable[float],
    low: int | None = None,
    high: int | None = None,
) -> list[int]:
    """Percentiles from ascending bucket indices and the running total of their counts.

    ``cumulative[i]`` is the number of samples in ``keys[0..i]`` (zero-count buckets are allowed), so a
    caller holding the sorted keys can build it with ``itertools.accumulate`` in C and find each rank by
    bisection instead of walking the buckets in Python. ``low``/``high`` clamp as in
    :meth:`Histogram.percentiles`; every answer is 0 when there is no sample.
    """
    n = cumulative[-1] if cumulative else 0
    out = []
    ceil = math.ceil
    for q in qs:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be within [0, 1], got {q!r}")
        if n == 0:
            out.append(0)
            continue
        r = ceil(q * n - _RANK_EPSILON)
        r = 1 if r < 1 else (n if r > n else r)
        idx = keys[bisect_left(cumulative, r)]
        if idx < EXACT_LIMIT:  # bucket_value, inlined: reports ask for eleven per entry per tick
            v = idx
        else:
            shift = (idx >> SUB_BUCKET_BITS) - 1
            v = ((idx - (shift << SUB_BUCKET_BITS)) << shift) + (1 << shift >> 1)
        if low is not None and (r == 1 or v < low):
            v = low
        if high is not None and (r == n or v > high):
            v = high
        out.append(v)
    return out


def _parse_index(key: object) -> int:
    if isinstance(key, str) and key.isdigit():
        return int(key)
    raise ValueError(f"histogram bucket index must be a non-negative int, got {key!r}")
