"""Validation of serialised stats (a worker's report) before anything is added to the master's totals.

A report is checked completely first and merged afterwards, so a malformed payload (a bug, a third-party
worker, a garbage frame) raises :class:`StatsPayloadError` and leaves the master's numbers untouched instead
of half-merged.

Times travel as integer microseconds (``*_us`` keys) so sums and merges are exact. For workers that speak
Locust's format (boomer, locust4j), an entry without ``histogram`` but with Locust's ``response_times``
(``{milliseconds: count}``) and millisecond totals is converted on the way in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Protocol

from horde.stats.histogram import HISTOGRAM_SCHEME, bucket_index

_INT_ONLY = {int}


class StatsPayloadError(ValueError):
    """A serialised stats object does not have the expected shape; nothing was merged."""


class Counts(Protocol):
    """What merging reads of a counter map (histogram, per-second counts): its pairs, and whether it has any.

    A dict is one; the compact report form (:mod:`horde.stats.compact`) hands over its decoded arrays
    without building a dict the merge would only iterate once.
    """

    def items(self) -> Iterable[tuple[int, int]]: ...

    def __len__(self) -> int: ...


@dataclass(slots=True)
class EntryData:
    """One entry's numbers in plain form, as read from the wire or taken from a live entry."""

    name: str
    method: str
    start_time: float | None = None
    last_request_timestamp: float | None = None
    num_requests: int = 0
    num_none_requests: int = 0
    num_failures: int = 0
    total_us: int = 0
    min_us: int | None = None
    max_us: int = 0
    total_content_length: int = 0
    histogram: Counts = field(default_factory=dict)
    num_reqs_per_sec: Counts = field(default_factory=dict)
    num_fail_per_sec: Counts = field(default_factory=dict)


def parse_entry(data: object) -> EntryData:
    """Validate and convert one serialised entry."""
    fast = _parse_horde_entry(data)
    if fast is not None:
        return fast
    return _parse_entry(data)


_COUNT_KEYS = (
    "num_requests",
    "num_none_requests",
    "num_failures",
    "total_content_length",
    "total_response_time_us",
    "max_response_time_us",
)


def _parse_horde_entry(data: object) -> EntryData | None:
    """The common case, a well-formed entry as horde workers send it, validated with few calls per entry.

    A master merges tens of thousands of entries a second at 5,000 workers; the general parser's dozen
    function calls per entry were most of its CPU. Anything unusual (Locust's format, JSON-stringified
    keys, zero counts, a wrong type) returns None and goes through :func:`_parse_entry`, which accepts
    or refuses it with a precise message.
    """
    if type(data) is not dict or "histogram" not in data:
        return None
    try:
        counts = [data[k] for k in _COUNT_KEYS]
        name = data["name"]
        method = data["method"]
        min_us = data["min_response_time_us"]
        start = data["start_time"]
        last = data["last_request_timestamp"]
        hist = data["histogram"]
        reqs = data["num_reqs_per_sec"]
        fails = data["num_fail_per_sec"]
    except KeyError:
        return None
    if (
        type(name) is not str
        or type(method) is not str
        or type(hist) is not dict
        or type(reqs) is not dict
        or type(fails) is not dict
        or not (start is None or type(start) is float or type(start) is int)
        or not (last is None or type(last) is float or type(last) is int)
    ):
        return None
    if min_us is not None:
        counts.append(min_us)
    # one pass in C over every integer of the entry: all ints (bool is not), counts >= 0, map counts > 0
    if (
        set(map(type, chain(counts, hist, reqs, fails, hist.values(), reqs.values(), fails.values())))
        != _INT_ONLY
    ):
        return None
    if min(counts) < 0 or counts[1] > counts[0] or (min_us is not None and min_us > counts[5]):
        return None
    if (hist or reqs or fails) and min(chain(hist.values(), reqs.values(), fails.values())) <= 0:
        return None
    if hist and min(hist) < 0:
        return None
    return EntryData(
        name,
        method,
        None if start is None else float(start),
        None if last is None else float(last),
        counts[0],
        counts[1],
        counts[2],
        counts[4],
        min_us,
        counts[5],
        counts[3],
        hist,
        reqs,
        fails,
    )


def _parse_entry(data: object) -> EntryData:
    """Validate and convert one serialised entry, whatever its dialect (the careful, general path)."""
    if not isinstance(data, Mapping):
        raise StatsPayloadError(f"stats entry must be a mapping, got {type(data).__name__}")
    name = data.get("name")
    method = data.get("method")
    if not isinstance(name, str) or not isinstance(method, str):
        raise StatsPayloadError(f"stats entry needs string name and method, got {name!r}, {method!r}")
    where = f"stats entry {method} {name}"
    out = EntryData(name=name, method=method)
    out.start_time = _time(data.get("start_time"), where, "start_time")
    out.last_request_timestamp = _time(data.get("last_request_timestamp"), where, "last_request_timestamp")
    out.num_requests = _count(data.get("num_requests", 0), where, "num_requests")
    out.num_none_requests = _count(data.get("num_none_requests", 0), where, "num_none_requests")
    out.num_failures = _count(data.get("num_failures", 0), where, "num_failures")
    out.total_content_length = _count(data.get("total_content_length", 0), where, "total_content_length")
    if "histogram" in data:
        out.total_us = _count(data.get("total_response_time_us", 0), where, "total_response_time_us")
        out.max_us = _count(data.get("max_response_time_us", 0), where, "max_response_time_us")
        min_us = data.get("min_response_time_us")
        out.min_us = None if min_us is None else _count(min_us, where, "min_response_time_us")
        out.histogram = _int_map(data["histogram"], where, "histogram")
        if out.histogram and min(out.histogram) < 0:
            raise StatsPayloadError(f"{where}: histogram bucket indices must be non-negative")
    else:  # Locust's format: milliseconds
        out.total_us = _ms_to_us(data.get("total_response_time", 0), where, "total_response_time")
        out.max_us = _ms_to_us(data.get("max_response_time", 0) or 0, where, "max_response_time")
        min_ms = data.get("min_response_time")
        out.min_us = None if min_ms is None else _ms_to_us(min_ms, where, "min_response_time")
        hist: dict[int, int] = {}
        for ms, n in _number_map(data.get("response_times", {}), where, "response_times").items():
            idx = bucket_index(round(ms * 1000))
            hist[idx] = hist.get(idx, 0) + n
        out.histogram = hist
    out.num_reqs_per_sec = _int_map(data.get("num_reqs_per_sec", {}), where, "num_reqs_per_sec")
    out.num_fail_per_sec = _int_map(data.get("num_fail_per_sec", {}), where, "num_fail_per_sec")
    if out.num_none_requests > out.num_requests:
        raise StatsPayloadError(f"{where}: num_none_requests exceeds num_requests")
    if out.min_us is not None and out.min_us > out.max_us:
        raise StatsPayloadError(f"{where}: min_response_time_us exceeds max_response_time_us")
    return out


def check_scheme(payload: Mapping[str, Any]) -> None:
    """Refuse histograms built with another bucket layout (their indices would mean other values)."""
    scheme = payload.get("histogram_scheme", HISTOGRAM_SCHEME)
    if scheme != HISTOGRAM_SCHEME:
        raise StatsPayloadError(f"histogram scheme {scheme!r} differs from ours ({HISTOGRAM_SCHEME!r})")


def _count(value: object, where: str, key: str) -> int:
    if type(value) is not int or value < 0:
        raise StatsPayloadError(f"{where}: {key} must be a non-negative int, got {value!r}")
    return value


def _time(value: object, where: str, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StatsPayloadError(f"{where}: {key} must be a number or null, got {value!r}")
    return float(value)


def _ms_to_us(value: object, where: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise StatsPayloadError(f"{where}: {key} must be a non-negative number, got {value!r}")
    return round(value * 1000)


def _int_map(value: object, where: str, key: str) -> dict[int, int]:
    if not isinstance(value, Mapping):
        raise StatsPayloadError(f"{where}: {key} must be a mapping, got {type(value).__name__}")
    # Fast path for the normal case (checks run in C): int keys, non-negative int counts, no zeros.
    if not value:
        return {}
    if set(map(type, value)) == _INT_ONLY and set(map(type, value.values())) == _INT_ONLY:
        if min(value.values()) > 0:
            return dict(value)
    out: dict[int, int] = {}
    for k, n in value.items():
        if type(k) is not int:
            if isinstance(k, str) and k.lstrip("-").isdigit():  # JSON turned int keys into strings
                k = int(k)
            else:
                raise StatsPayloadError(f"{where}: {key} keys must be ints, got {k!r}")
        if type(n) is not int or n < 0:
            raise StatsPayloadError(f"{where}: {key} counts must be non-negative ints, got {n!r}")
        if n:
            out[k] = out.get(k, 0) + n
    return out


def _number_map(value: object, where: str, key: str) -> dict[float, int]:
    if not isinstance(value, Mapping):
        raise StatsPayloadError(f"{where}: {key} must be a mapping, got {type(value).__name__}")
    out: dict[float, int] = {}
    for k, n in value.items():
        try:
            ms = float(k)
        except (TypeError, ValueError):
            raise StatsPayloadError(f"{where}: {key} keys must be numbers, got {k!r}") from None
        if ms < 0 or ms != ms or type(n) is not int or n < 0:
            raise StatsPayloadError(f"{where}: {key} has an invalid item {k!r}: {n!r}")
        out[ms] = out.get(ms, 0) + n
    return out
