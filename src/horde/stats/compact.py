"""The compact wire form of a worker's stats report (horde protocol 2), and its merge on the master.

Why another form: a master with thousands of workers decodes and merges a report per worker every few
seconds. In the map form (:meth:`RequestStats.serialize`) each entry is a 14-key map whose histogram and
per-second counters are maps too, so one 20-entry report is about 80 containers and 300 key strings to
build, check and throw away; at 5,000 workers that was over a third of the master's CPU. Here an entry
is one array in a fixed field order and each counter map (histogram, requests and failures per second)
is one binary string: its keys as little-endian unsigned 32-bit integers, then its counts the same way.
A 20-entry report then decodes in a tenth of the time (6 against 60 µs) in three quarters of the bytes,
and the integers need no type check: what comes out of the string can only be a non-negative int. A map with a key or count too large for 32 bits
(never seen in a report of a few seconds, but possible) travels as a flat array ``[key, count, …]``
instead, which the master checks integer by integer.

Layout (``entry_format`` ``"array-1"``): a report is the map form's envelope (``stats``, ``stats_total``,
``errors``, ``aborted``, ``histogram_scheme``) with ``entry_format`` added and every entry an array::

    [name, method, start_time, last_request_timestamp, num_requests, num_none_requests, num_failures,
     total_response_time_us, min_response_time_us, max_response_time_us, total_content_length,
     histogram, num_reqs_per_sec, num_fail_per_sec]      # each: bytes, or a flat array

The master accepts both forms: a payload without ``entry_format`` goes to :meth:`RequestStats.merge`
(older horde workers speak protocol 1 and are refused at registration anyway; Locust-dialect entries
from third-party workers come that way). As there, the whole report is checked before anything is added,
so a malformed one raises :class:`StatsPayloadError` and changes nothing.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgpack

from horde.stats.entries import RequestStats
from horde.stats.histogram import HISTOGRAM_SCHEME
from horde.stats.wire import Counts, EntryData, StatsPayloadError, check_scheme

ENTRY_FORMAT = "array-1"
_FIELDS = 14
_INT_ONLY = {int}
_TIME_TYPES = (type(None), float, int)
_U32_MAX = 0xFFFF_FFFF
_HALF: dict[int, struct.Struct] = {}  # unpackers by pair count (a histogram has at most a few thousand)
_HALF_CACHE = 4096


def encode_report(stats: RequestStats) -> dict[str, Any]:
    """The report of everything in ``stats`` (the caller resets it after, as a worker does)."""
    return {
        "entry_format": ENTRY_FORMAT,
        "stats": [_row(e._data()) for e in stats.entries.values() if e.num_requests or e.num_failures],
        "stats_total": _row(stats.total._data()),
        "errors": stats.serialize_errors(),
        "histogram_scheme": HISTOGRAM_SCHEME,
        "aborted": [[method, name, n] for (method, name), n in stats.aborted.items()],
    }


def encode_and_reset(stats: RequestStats) -> dict[str, Any]:
    """:func:`encode_report`, then reset: a worker's report carries only what happened since the last one."""
    payload = encode_report(stats)
    stats.reset_all()
    return payload


def pack_report(payload: Mapping[str, Any]) -> bytes:
    """A report as one msgpack string: a worker sends it so, and the master can hand it on unopened."""
    return msgpack.packb(payload, use_bin_type=True)


def unpack_report(packed: bytes) -> Any:
    """The report in a packed string; :class:`StatsPayloadError` if it is not msgpack."""
    try:
        return msgpack.unpackb(packed, raw=False, strict_map_key=False)
    except Exception as e:
        raise StatsPayloadError(f"undecodable stats report: {e}") from None


def merge_report(stats: RequestStats, payload: object) -> None:
    """Add a worker's report, in either form (or packed, see :func:`pack_report`), to ``stats``; nothing is
    added if any part is malformed."""
    if type(payload) is bytes:
        payload = unpack_report(payload)
    if not isinstance(payload, Mapping):
        raise StatsPayloadError(f"stats payload must be a mapping, got {type(payload).__name__}")
    fmt = payload.get("entry_format")
    if fmt is None:
        stats.merge(payload)
        return
    if fmt != ENTRY_FORMAT:
        raise StatsPayloadError(f"stats entry format {fmt!r} is not one this master reads ({ENTRY_FORMAT!r})")
    check_scheme(payload)
    raw_entries = payload.get("stats", [])
    if type(raw_entries) is not list:
        raise StatsPayloadError("stats payload 'stats' must be a list")
    entries = [parse_row(row) for row in raw_entries]
    raw_total = payload.get("stats_total")
    total = parse_row(raw_total) if raw_total is not None else None
    # error and aborted rows are rare and small: the map form's merge checks all of them before it adds
    # any, and it runs before the entries are absorbed, so a bad row still leaves everything unchanged
    errors, aborted = payload.get("errors"), payload.get("aborted")
    if errors or aborted:
        stats.merge({"errors": errors or {}, "aborted": aborted or [], "histogram_scheme": HISTOGRAM_SCHEME})
    now = stats.clock.time()
    for data in entries:
        stats.get(data.name, data.method)._absorb(data, now)
    if total is not None:
        stats.total._absorb(total, now)


def _row(d: EntryData) -> list[Any]:
    return [
        d.name,
        d.method,
        d.start_time,
        d.last_request_timestamp,
        d.num_requests,
        d.num_none_requests,
        d.num_failures,
        d.total_us,
        d.min_us,
        d.max_us,
        d.total_content_length,
        pack_counts(d.histogram),
        pack_counts(d.num_reqs_per_sec),
        pack_counts(d.num_fail_per_sec),
    ]


def pack_counts(counts: Counts) -> bytes | list[int]:
    """A counter map as keys then counts, little-endian uint32 (a flat array if any is too large)."""
    if not counts:
        return b""
    pairs = list(counts.items())
    keys, values = [k for k, _ in pairs], [n for _, n in pairs]
    if max(max(keys), max(values)) > _U32_MAX or min(keys) < 0:
        return [x for pair in pairs for x in pair]
    return struct.pack(f"<{2 * len(keys)}I", *keys, *values)


def parse_row(row: object) -> EntryData:
    """Validate one array entry and convert it; :class:`StatsPayloadError` says what is wrong."""
    if type(row) is not list or len(row) != _FIELDS:
        raise StatsPayloadError(f"stats entry must be an array of {_FIELDS} fields, got {_describe(row)}")
    name, method, start, last, n_req, n_none, n_fail, total_us, min_us, max_us, length, hist, reqs, fails = (
        row
    )
    if type(name) is not str or type(method) is not str:
        raise StatsPayloadError(f"stats entry needs string name and method, got {name!r}, {method!r}")
    if type(start) not in _TIME_TYPES or type(last) not in _TIME_TYPES:
        raise _bad(row, "start_time and last_request_timestamp must be numbers or null")
    counts: tuple[Any, ...] = (n_req, n_none, n_fail, total_us, max_us, length)
    if min_us is not None:
        counts = (*counts, min_us)
    if set(map(type, counts)) != _INT_ONLY or min(counts) < 0:
        raise _bad(row, "counts and times must be non-negative ints")
    if n_none > n_req:
        raise _bad(row, "num_none_requests exceeds num_requests")
    if min_us is not None and min_us > max_us:
        raise _bad(row, "min_response_time_us exceeds max_response_time_us")
    return EntryData(
        name,
        method,
        None if start is None else float(start),
        None if last is None else float(last),
        n_req,
        n_none,
        n_fail,
        total_us,
        min_us,
        max_us,
        length,
        _NO_COUNTS if hist == b"" else _counts(hist, row, "histogram"),
        _NO_COUNTS if reqs == b"" else _counts(reqs, row, "num_reqs_per_sec"),
        _NO_COUNTS if fails == b"" else _counts(fails, row, "num_fail_per_sec"),
    )


class _Pairs:
    """A decoded counter map as its two halves, read once by the merge (no dict is built for it)."""

    __slots__ = ("_keys", "_values")

    def __init__(self, keys: Sequence[int], values: Sequence[int]) -> None:
        self._keys = keys
        self._values = values

    def items(self) -> Iterable[tuple[int, int]]:
        return zip(self._keys, self._values, strict=False)  # equal halves by construction

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"_Pairs({dict(self.items())!r})"


def _counts(packed: object, row: list[Any], key: str) -> _Pairs:
    """A counter map from its packed form (bytes) or, for large values, its flat-array form.

    Keys are not checked for repeats: the merge adds every pair, so a repeated key adds up (the packer
    never repeats one).
    """
    keys: Sequence[int]
    values: Sequence[int]
    if type(packed) is bytes:
        if len(packed) & 7:
            raise _bad(row, f"{key} must be pairs of 32-bit integers")
        keys, values = _halves(packed)
    elif type(packed) is list:
        if len(packed) & 1:
            raise _bad(row, f"{key} must have an even length (key, count pairs)")
        if set(map(type, packed)) - _INT_ONLY or (packed and min(packed) < 0):
            raise _bad(row, f"{key} must hold non-negative ints")
        keys, values = packed[0::2], packed[1::2]
    else:
        raise _bad(row, f"{key} must be bytes or an array, got {type(packed).__name__}")
    if 0 in values:
        raise _bad(row, f"{key} has a zero count")
    return _Pairs(keys, values)


_NO_COUNTS = _Pairs((), ())


def _halves(packed: bytes) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The keys and the counts of a packed map, unpacked in C (the ints come out made, not per access)."""
    n = len(packed) >> 3
    half = _HALF.get(n)
    if half is None:
        half = struct.Struct(f"<{n}I")
        if len(_HALF) < _HALF_CACHE:
            _HALF[n] = half
    return half.unpack_from(packed, 0), half.unpack_from(packed, 4 * n)


def _bad(row: list[Any], why: str) -> StatsPayloadError:
    return StatsPayloadError(f"stats entry {row[1]} {row[0]}: {why}")


def _describe(value: object) -> str:
    if type(value) is list:
        return f"an array of {len(value)}"
    return type(value).__name__
