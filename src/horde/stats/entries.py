"""Request statistics per (name, method): counts, response times, failures, rates and the error table.

The names (``RequestStats``, ``StatsEntry``, ``StatsError``, ``log_request``, ``current_rps``,
``get_response_time_percentile`` …) are Locust's, so listeners and reports written for Locust read naturally.
What differs, and why:

* **Times are kept as integer microseconds** internally (sum, min, max, histogram) and exposed in
  milliseconds as floats. Integer sums make a merge of worker reports *exactly* equal to the stats of the
  union of their samples, in any order.
* **Percentiles** come from a log-linear :class:`~horde.stats.histogram.Histogram` (relative error ≤ 0.78 %)
  and are clamped to the exact ``[min, max]``: p0 is the min, p100 the max, nothing exceeds the max.
* **Current (last ~10 s) percentiles** cost nothing per request: when an entry sees its first sample of a
  new wall-clock second it stores what the previous active second added to its histogram (a small delta
  dict). The window is "the samples recorded in seconds ``int(now) - 10`` … now", i.e. between 10 and 11
  seconds of data, and it is exact: no nearest-snapshot guessing, so it never goes blank while requests flow.
  On a master, "recorded" means "arrived in a worker report".
* **current_rps** is Locust's formula (mean over whole seconds ``[last - lag - 10, last - lag)`` with
  ``last`` the newest request timestamp of the total; ``lag`` defaults to 2 s so late worker reports do not
  pull the rate down), except that a window reaching back before ``start_time`` is divided by the time that
  actually elapsed, not by whole seconds, so the first seconds after a start or reset are not under-stated.
  Anchoring on the newest request rather than on "now" keeps it immune to clock skew between machines.
* Per-second counters older than ``per_second_retention`` seconds are dropped (in batches, so up to about
  four times that many seconds may be held); they exist for the rate windows and recent charts. The error
  table is capped at ``max_errors`` rows, the excess folded into one row per (method, name).
"""

from __future__ import annotations

import logging
import operator
import time
from bisect import insort
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from itertools import accumulate, islice, repeat
from typing import Any

from horde.clock import SYSTEM_CLOCK, Clock
from horde.stats.errors import StatsError, error_key, error_text
from horde.stats.histogram import (
    HISTOGRAM_SCHEME,
    SUB_BUCKET_BITS,
    Histogram,
    bucket_index,
    select_percentiles,
)
from horde.stats.wire import EntryData, StatsPayloadError, check_scheme, parse_entry

#: Seconds covered by "current" percentiles and rates.
CURRENT_WINDOW = 10
#: Newest whole seconds left out of current_rps (worker reports arrive late); Locust uses 2.
DEFAULT_RPS_LAG = 2
#: Per-second counters older than this (seconds) are pruned; ``None`` keeps them all.
DEFAULT_PER_SECOND_RETENTION = 60
#: Distinct error rows kept before further new errors are folded into an overflow row.
DEFAULT_MAX_ERRORS = 1000
#: Distinct (name, method) entries kept before new names are folded into one overflow row per method.
DEFAULT_MAX_ENTRIES = 1000
#: Name of the row that collects requests beyond ``max_entries`` distinct names, one per method.
OVERFLOW_ENTRY = "(other names: use name= to group URLs)"
#: Text of the row that collects errors beyond ``max_errors`` for one (method, name).
OVERFLOW_ERROR = "(other errors: the error table reached its size limit)"

logger = logging.getLogger(__name__)

# The hot path inlines histogram.bucket_index with literal constants; keep them in step.
assert SUB_BUCKET_BITS == 6
_NO_MIN = 1 << 62  # "no timed sample yet"; larger than any plausible response time in µs
_DELTA_KEEP = 2 * CURRENT_WINDOW  # seconds of per-second histogram deltas kept for the window


class StatsEntry:
    """Statistics of one request name + method (or of all requests: the ``Aggregated`` total).

    ``stats`` is the owning :class:`RequestStats` (it supplies the clock and the global timestamps that
    rates are computed against); ``None`` gives a standalone entry on the system clock.
    """

    __slots__ = (
        "_base",
        "_clock",
        "_deltas",
        "_fail_per_sec",
        "_hist",
        "_keys",
        "_max_us",
        "_min_us",
        "_pct_cache",
        "_reqs_per_sec",
        "_sec",
        "_sec_end",
        "_sec_fails_mark",
        "_sec_reqs_mark",
        "_stats",
        "_total_us",
        "_wbase",
        "_wevicted",
        "_wsec",
        "last_request_timestamp",
        "method",
        "name",
        "num_failures",
        "num_none_requests",
        "num_requests",
        "start_time",
        "total_content_length",
        "use_response_times_cache",
    )
    _keys: list[int] | None
    _pct_cache: tuple[tuple[Any, ...], tuple[float, ...]] | None
    _wbase: dict[int, int] | None
    _wsec: int
    _wevicted: int

    def __init__(
        self, stats: RequestStats | None, name: str, method: str, use_response_times_cache: bool = False
    ) -> None:
        self._stats = stats
        self._clock: Clock = stats.clock if stats is not None else SYSTEM_CLOCK
        self.name = name
        self.method = method
        self.use_response_times_cache = use_response_times_cache
        self.reset()

    def reset(self, now: float | None = None) -> None:
        """Zero every counter in place; the entry's ``start_time`` becomes ``now``."""
        self.start_time: float = self._clock.time() if now is None else now
        self.last_request_timestamp: float | None = None
        self.num_requests = 0
        self.num_none_requests = 0
        self.num_failures = 0
        self.total_content_length = 0
        self._total_us = 0
        self._min_us = _NO_MIN
        self._max_us = 0
        self._hist: dict[int, int] = {}
        # Per-second counters: the newest second's counts are not written per request but derived from
        # num_requests/num_failures minus their value when that second began (the marks), and folded into
        # the dicts when a new second starts or when someone reads them.
        self._reqs_per_sec: dict[int, int] = {}
        self._fail_per_sec: dict[int, int] = {}
        self._sec = -1
        self._sec_end = float("-inf")
        self._sec_reqs_mark = 0
        self._sec_fails_mark = 0
        # Current-window bookkeeping: the histogram as it was when second ``_sec`` began, and what each
        # earlier active second added.
        self._base: dict[int, int] | None = None
        self._reset_window_cache()
        self._deltas: deque[tuple[int, dict[int, int]]] | None = (
            deque() if self.use_response_times_cache else None
        )

    # -- recording -------------------------------------------------------------------------------------

    def log(self, response_time: float | None, content_length: int) -> None:
        """Count one request (response time in ms, ``None`` if not timed) on this entry only."""
        now = self._clock.time()
        if now >= self._sec_end:
            self._new_second(now)
        self.num_requests += 1
        if response_time is None:
            self.num_none_requests += 1
        else:
            us = int(response_time * 1000.0 + 0.5)
            if us < 0:
                us = 0
            self._total_us += us
            if us < self._min_us:
                self._min_us = us
            if us > self._max_us:
                self._max_us = us
            idx = bucket_index(us)
            self._hist[idx] = self._hist.get(idx, 0) + 1
        if content_length:
            self.total_content_length += content_length
        self.last_request_timestamp = now

    def log_error(self, error: object = None) -> None:
        """Count one failure on this entry (the error table itself lives in :class:`RequestStats`)."""
        now = self._clock.time()
        if now >= self._sec_end:
            self._new_second(now)
        self.num_failures += 1

    def _flush_second(self) -> None:
        """Fold the counts of second ``_sec`` not yet in the per-second dicts into them."""
        pending = self.num_requests - self._sec_reqs_mark
        if pending:
            self._reqs_per_sec[self._sec] = self._reqs_per_sec.get(self._sec, 0) + pending
            self._sec_reqs_mark = self.num_requests
        pending = self.num_failures - self._sec_fails_mark
        if pending:
            self._fail_per_sec[self._sec] = self._fail_per_sec.get(self._sec, 0) + pending
            self._sec_fails_mark = self.num_failures

    def _new_second(self, now: float) -> None:
        """Runs before the first sample of a newer wall-clock second is added (once per active second)."""
        # Only called once ``now`` passed the end of second ``_sec``; a wall clock stepping back simply
        # keeps counting into the newest second.
        sec = int(now)
        self._flush_second()
        deltas = self._deltas
        if deltas is not None:
            cur = self._hist
            base = self._base
            if base is not None:
                get = base.get
                delta = {}
                for idx, n in cur.items():
                    d = n - get(idx, 0)
                    if d:
                        delta[idx] = d
                if delta:
                    deltas.append((self._sec, delta))
                cutoff = sec - _DELTA_KEEP
                while deltas and deltas[0][0] < cutoff:
                    self._wevicted = deltas.popleft()[0]
            self._base = cur.copy()
        retention = self._stats.per_second_retention if self._stats is not None else None
        if retention is not None and len(self._reqs_per_sec) + len(self._fail_per_sec) > 4 * retention:
            cutoff = sec - retention
            self._reqs_per_sec = {s: n for s, n in self._reqs_per_sec.items() if s >= cutoff}
            self._fail_per_sec = {s: n for s, n in self._fail_per_sec.items() if s >= cutoff}
        self._sec = sec
        self._sec_end = sec + 1

    # -- merging ---------------------------------------------------------------------------------------

    def extend(self, other: StatsEntry | EntryData | Mapping[str, Any]) -> None:
        """Add another entry's numbers (a live entry, or one serialised by a worker) to this one."""
        if isinstance(other, StatsEntry):
            data = other._data()
        elif isinstance(other, EntryData):
            data = other
        else:
            data = parse_entry(other)
        self._absorb(data, self._clock.time())

    def _absorb(self, d: EntryData, now: float) -> None:
        if now >= self._sec_end:
            self._new_second(now)
        if d.start_time is not None and d.start_time < self.start_time:
            self.start_time = d.start_time
        if d.last_request_timestamp is not None and (
            self.last_request_timestamp is None or d.last_request_timestamp > self.last_request_timestamp
        ):
            self.last_request_timestamp = d.last_request_timestamp
        # Merged counts arrive with their own per-second split: move the marks so they are not also
        # attributed to the current second.
        self.num_requests += d.num_requests
        self._sec_reqs_mark += d.num_requests
        self.num_none_requests += d.num_none_requests
        self.num_failures += d.num_failures
        self._sec_fails_mark += d.num_failures
        self.total_content_length += d.total_content_length
        self._total_us += d.total_us
        if d.min_us is not None and d.min_us < self._min_us:
            self._min_us = d.min_us
        if d.max_us > self._max_us:
            self._max_us = d.max_us
        # the master runs this for every entry of every report: plain loops with the lookups bound
        hist = self._hist
        get = hist.get
        for k, n in d.histogram.items():
            hist[k] = get(k, 0) + n
        if d.num_reqs_per_sec:
            reqs = self._reqs_per_sec
            for k, n in d.num_reqs_per_sec.items():
                reqs[k] = reqs.get(k, 0) + n
        if d.num_fail_per_sec:
            fails = self._fail_per_sec
            for k, n in d.num_fail_per_sec.items():
                fails[k] = fails.get(k, 0) + n

    def _data(self) -> EntryData:
        return EntryData(
            name=self.name,
            method=self.method,
            start_time=self.start_time,
            last_request_timestamp=self.last_request_timestamp,
            num_requests=self.num_requests,
            num_none_requests=self.num_none_requests,
            num_failures=self.num_failures,
            total_us=self._total_us,
            min_us=None if self._min_us == _NO_MIN else self._min_us,
            max_us=self._max_us,
            total_content_length=self.total_content_length,
            histogram=self._hist.copy(),
            num_reqs_per_sec=self.num_reqs_per_sec.copy(),
            num_fail_per_sec=self.num_fail_per_sec.copy(),
        )

    def serialize(self) -> dict[str, Any]:
        """A msgpack-friendly dict (int keys in the maps; times in integer µs). See :mod:`horde.stats.wire`."""
        return {
            "name": self.name,
            "method": self.method,
            "start_time": self.start_time,
            "last_request_timestamp": self.last_request_timestamp,
            "num_requests": self.num_requests,
            "num_none_requests": self.num_none_requests,
            "num_failures": self.num_failures,
            "total_response_time_us": self._total_us,
            "min_response_time_us": None if self._min_us == _NO_MIN else self._min_us,
            "max_response_time_us": self._max_us,
            "total_content_length": self.total_content_length,
            "histogram": self._hist.copy(),
            "num_reqs_per_sec": self.num_reqs_per_sec.copy(),
            "num_fail_per_sec": self.num_fail_per_sec.copy(),
        }

    @classmethod
    def unserialize(cls, data: Mapping[str, Any], stats: RequestStats | None = None) -> StatsEntry:
        d = parse_entry(data)
        entry = cls(stats, d.name, d.method)
        entry.start_time = d.start_time if d.start_time is not None else entry.start_time
        entry._absorb(d, entry._clock.time())
        return entry

    # -- reading ---------------------------------------------------------------------------------------

    @property
    def num_reqs_per_sec(self) -> dict[int, int]:
        """Requests per wall-clock second ``{epoch_second: count}`` (recent seconds only, see retention)."""
        self._flush_second()
        return self._reqs_per_sec

    @property
    def num_fail_per_sec(self) -> dict[int, int]:
        """Failures per wall-clock second ``{epoch_second: count}``."""
        self._flush_second()
        return self._fail_per_sec

    @property
    def histogram(self) -> Histogram:
        """The cumulative response-time histogram (µs buckets), sharing this entry's counts."""
        return Histogram.wrap(self._hist)

    @property
    def total_response_time(self) -> float:
        """Sum of the timed requests' response times, ms."""
        return self._total_us / 1000

    @property
    def min_response_time(self) -> float | None:
        """Fastest response, ms (``None`` before the first timed request, as in Locust)."""
        return None if self._min_us == _NO_MIN else self._min_us / 1000

    @property
    def max_response_time(self) -> float:
        """Slowest response, ms (0 before the first timed request)."""
        return self._max_us / 1000

    @property
    def avg_response_time(self) -> float:
        timed = self.num_requests - self.num_none_requests
        return self._total_us / timed / 1000 if timed > 0 else 0.0

    @property
    def median_response_time(self) -> float:
        return self.get_response_time_percentile(0.5)

    @property
    def avg_content_length(self) -> float:
        return self.total_content_length / self.num_requests if self.num_requests else 0.0

    @property
    def fail_ratio(self) -> float:
        """Failures per request; 1.0 when there are failures but no requests (e.g. failed connects)."""
        if self.num_requests:
            return self.num_failures / self.num_requests
        return 1.0 if self.num_failures else 0.0

    def _run_span(self) -> tuple[float | None, float]:
        """(newest request time, start time) of the whole run this entry belongs to."""
        if self._stats is not None:
            total = self._stats.total
            return total.last_request_timestamp, total.start_time
        return self.last_request_timestamp, self.start_time

    @property
    def total_rps(self) -> float:
        """Requests per second over the run: ``num_requests / (last_request_timestamp - start_time)``."""
        last, start = self._run_span()
        if last is None or last <= start:
            return 0.0
        return self.num_requests / (last - start)

    @property
    def total_fail_per_sec(self) -> float:
        last, start = self._run_span()
        if last is None or last <= start:
            return 0.0
        return self.num_failures / (last - start)

    @property
    def current_rps(self) -> float:
        """Requests per second over the last ~10 whole seconds, leaving out the newest ``lag`` seconds."""
        return self._current_rate(self.num_reqs_per_sec)

    @property
    def current_fail_per_sec(self) -> float:
        return self._current_rate(self.num_fail_per_sec)

    def _current_rate(self, per_sec: Mapping[int, int]) -> float:
        last, start = self._run_span()
        if last is None:
            return 0.0
        lag = self._stats.current_rps_lag if self._stats is not None else DEFAULT_RPS_LAG
        end = int(last) - lag
        begin = end - CURRENT_WINDOW
        elapsed = end - max(float(begin), start)
        if elapsed <= 0:
            # the run is younger than the lag: the lagged window is empty although requests flow, so
            # give the rate since the start instead of a misleading 0.00 in the first live table
            span = last - start
            return sum(per_sec.values()) / span if span >= 1.0 else 0.0
        first = max(begin, int(start))
        return sum(per_sec.get(s, 0) for s in range(first, end)) / elapsed

    def get_response_time_percentile(self, percent: float) -> float:
        """Response time (ms) at quantile ``percent`` in [0, 1], nearest rank, clamped to [min, max]."""
        return self.get_response_time_percentiles((percent,))[0]

    def get_response_time_percentiles(self, percents: Iterable[float]) -> list[float]:
        """Several cumulative percentiles (ms) in one pass; 0.0 each when there is no timed request."""
        qs = tuple(percents)
        # Snapshots ask every tick; an entry without new samples since the last ask gets the same answer.
        key = (self.num_requests, self._min_us, self._max_us, len(self._hist), qs)
        cached = self._pct_cache
        if cached is not None and cached[0] == key:
            return list(cached[1])
        hist = self._hist
        keys, cumulative = self._cumulate(lambda keys: map(hist.__getitem__, keys))
        low = None if self._min_us == _NO_MIN else self._min_us
        values = [us / 1000 for us in select_percentiles(keys, cumulative, qs, low, self._max_us)]
        self._pct_cache = (key, tuple(values))
        return values

    def _sorted_keys(self) -> list[int]:
        """The histogram's bucket indices, ascending; cached, since buckets are only ever added."""
        keys = self._keys
        hist = self._hist
        if keys is None or len(keys) > len(hist):
            keys = self._keys = sorted(hist)
        elif len(keys) < len(hist):
            # Dicts keep insertion order and buckets are never removed: the new ones are the last ones.
            for idx in islice(hist, len(keys), None):
                insort(keys, idx)
        return keys

    def _cumulate(self, counts: Callable[[list[int]], Iterable[int]]) -> tuple[list[int], list[int]]:
        """(sorted keys, running totals of ``counts(keys)``), in C; re-sorts if a bucket was removed."""
        keys = self._sorted_keys()
        try:
            return keys, list(accumulate(counts(keys)))
        except KeyError:  # someone subtracted from .histogram: a cached key is gone
            self._keys = None
            keys = self._sorted_keys()
            return keys, list(accumulate(counts(keys)))

    def get_current_response_time_percentile(self, percent: float) -> float | None:
        """Percentile (ms) of the samples recorded in the last ~10 s; ``None`` if there were none.

        Only entries that keep the response-time cache (master/local) can answer; workers cannot.
        """
        values = self.get_current_response_time_percentiles((percent,))
        return None if values is None else values[0]

    def get_current_response_time_percentiles(self, percents: Iterable[float]) -> list[float] | None:
        """Several current-window percentiles (ms) in one pass, or ``None`` if the window is empty."""
        window = self._window_vector(int(self._clock.time()) - CURRENT_WINDOW)
        if window is None:
            return None
        keys, cumulative = window
        low = None if self._min_us == _NO_MIN else self._min_us
        # The window's own extremes are unknown: clamp into the run's [min, max] but never force them.
        values = select_percentiles(keys, cumulative, percents)
        return [min(max(us, low or 0), self._max_us) / 1000 for us in values]

    def current_histogram(self) -> Histogram:
        """The samples recorded in the last ~10 s (see the module docstring for the window)."""
        return Histogram.wrap(self._window_counts(int(self._clock.time()) - CURRENT_WINDOW))

    def _window_counts(self, since: int) -> dict[int, int]:
        window = self._window_vector(since)
        if window is None:
            return {}
        keys, cumulative = window
        out: dict[int, int] = {}
        previous = 0
        for idx, c in zip(keys, cumulative, strict=True):
            if c != previous:
                out[idx] = c - previous
                previous = c
        return out

    def _window_vector(self, since: int) -> tuple[list[int], list[int]] | None:
        """(sorted keys, running totals) of the samples recorded in seconds ``>= since``; None if none.

        The window is "the histogram now minus the histogram as it was when second ``since`` began". That
        earlier histogram (``_wbase``, for second ``_wsec``) is kept between calls and moved forward by
        adding the per-second deltas it passes, so a call per second costs one delta plus a subtraction
        done in C, instead of re-adding ten seconds of deltas.
        """
        if self._deltas is None:
            raise ValueError(
                f"{self.method} {self.name}: current percentiles need use_response_times_cache=True"
            )
        if self._base is None or self._sec < since:
            return None
        start = self._window_start(since)
        hist = self._hist
        keys, cumulative = self._cumulate(
            lambda keys: map(operator.sub, map(hist.__getitem__, keys), map(start.get, keys, repeat(0)))
        )
        if not cumulative or cumulative[-1] == 0:
            return None
        return keys, cumulative

    def _window_start(self, since: int) -> dict[int, int]:
        """The histogram as it was when second ``since`` began (``since <= _sec``)."""
        deltas = self._deltas
        assert deltas is not None and self._base is not None
        wbase, wsec = self._wbase, self._wsec
        if wbase is not None and wsec <= since and wsec > self._wevicted:
            # Forward: add what seconds wsec … since-1 recorded (their deltas are all still held).
            for sec, delta in deltas:
                if sec >= since:
                    break
                if sec >= wsec:
                    for idx, n in delta.items():
                        wbase[idx] = wbase.get(idx, 0) + n
        else:
            # Rebuild: the histogram when second _sec began, minus what seconds since … _sec-1 added.
            wbase = self._base.copy()
            for sec, delta in deltas:
                if sec >= since:
                    for idx, n in delta.items():
                        wbase[idx] -= n
        self._wbase, self._wsec = wbase, since
        return wbase

    def _reset_window_cache(self) -> None:
        self._keys = None
        self._pct_cache = None
        self._wbase = None
        self._wsec = 0
        self._wevicted = -(1 << 62)  # newest second whose delta was dropped

    def __repr__(self) -> str:
        return (
            f"StatsEntry({self.method!r}, {self.name!r}, requests={self.num_requests}, "
            f"failures={self.num_failures})"
        )


class RequestStats:
    """All entries of a run, their ``Aggregated`` total and the error table.

    >>> stats = RequestStats()
    >>> stats.record("GET", "/", 12.5, 100)
    >>> stats.total.num_requests, stats.get("/", "GET").max_response_time
    (1, 12.5)

    Workers pass ``use_response_times_cache=False``: they keep no current-window data and only ship deltas
    (:meth:`serialize_and_reset`), which the master adds up with :meth:`merge`.
    """

    def __init__(
        self,
        clock: Clock = SYSTEM_CLOCK,
        use_response_times_cache: bool = True,
        *,
        current_rps_lag: int = DEFAULT_RPS_LAG,
        per_second_retention: int | None = DEFAULT_PER_SECOND_RETENTION,
        max_errors: int = DEFAULT_MAX_ERRORS,
        max_entries: int | None = DEFAULT_MAX_ENTRIES,
    ) -> None:
        if per_second_retention is not None and per_second_retention < 2 * CURRENT_WINDOW:
            raise ValueError(f"per_second_retention must be at least {2 * CURRENT_WINDOW} s")
        self.clock = clock
        # Clock.time *is* time.time(); calling it directly saves a Python frame on the hot path while a
        # FakeClock (or any other subclass) is still honoured.
        self._time = time.time if type(clock) is Clock else clock.time
        self.use_response_times_cache = use_response_times_cache
        self.current_rps_lag = current_rps_lag
        self.per_second_retention = per_second_retention
        self.max_errors = max_errors
        #: distinct (name, method) entries kept before new names fold into one overflow row per method
        self.max_entries = max_entries
        self.overflowed_names = 0  # requests whose name went to an overflow row
        #: requests in flight when their user was cancelled (a stop, the stop_timeout deadline): neither
        #: answered nor failed by the target, so counted apart instead of silently dropped
        self.aborted: dict[tuple[str, str], int] = {}
        self.num_aborted = 0
        self._overflow_warned = False
        self.entries: dict[tuple[str, str], StatsEntry] = {}
        # name → method → entry: the hot path looks entries up without building a tuple key.
        self._index: dict[str, dict[str, StatsEntry]] = {}
        self.errors: dict[str, StatsError] = {}
        self.total = StatsEntry(self, "Aggregated", "", use_response_times_cache)

    def configure(
        self, *, current_rps_lag: int | None = None, use_response_times_cache: bool | None = None
    ) -> None:
        """Change settings in place (``None`` leaves one as it is); entries, counts and listeners stay.

        Runners call this instead of replacing ``env.stats``, so code holding a reference to the stats
        keeps seeing the live numbers. Turning the response-time cache on starts the current-window data
        empty (it fills within a second); turning it off drops that data.
        """
        if current_rps_lag is not None:
            if (
                isinstance(current_rps_lag, bool)
                or not isinstance(current_rps_lag, int)
                or current_rps_lag < 0
            ):
                raise ValueError(f"current_rps_lag must be a non-negative int, got {current_rps_lag!r}")
            self.current_rps_lag = current_rps_lag
        if use_response_times_cache is not None and use_response_times_cache != self.use_response_times_cache:
            self.use_response_times_cache = use_response_times_cache
            for entry in (self.total, *self.entries.values()):
                entry.use_response_times_cache = use_response_times_cache
                entry._base = None
                entry._deltas = deque() if use_response_times_cache else None
                entry._reset_window_cache()

    # -- the hot path ----------------------------------------------------------------------------------

    def record(
        self,
        method: str,
        name: str,
        response_time: float | None,
        content_length: int,
        error: object = None,
    ) -> None:
        """Count one request on its entry and on the total, and its error if ``error`` is not ``None``.

        ``response_time`` is in milliseconds (``None``: counted but not timed). This runs once per request,
        so it reads the clock once, inlines the histogram bucketing and touches only counters.
        """
        try:
            e = self._index[name][method]
        except KeyError:
            e = self.get(name, method)
        t = self.total
        now = self._time()
        if now >= e._sec_end:
            e._new_second(now)
        if now >= t._sec_end:
            t._new_second(now)
        e.num_requests += 1
        t.num_requests += 1
        if response_time is None:
            e.num_none_requests += 1
            t.num_none_requests += 1
        else:
            # histogram.bucket_index, inlined: exact below 128 µs, then 64 sub-buckets per power of two.
            us = int(response_time * 1000.0 + 0.5)
            if us < 128:
                if us < 0:
                    us = 0
                idx = us
            else:
                shift = us.bit_length() - 7
                idx = (shift << 6) + (us >> shift)
            e._total_us += us
            t._total_us += us
            if us > e._max_us:
                e._max_us = us
            if us < e._min_us:
                e._min_us = us
            if us > t._max_us:
                t._max_us = us
            if us < t._min_us:
                t._min_us = us
            try:
                e._hist[idx] += 1  # no get() call: a bucket is new only a few hundred times per entry
            except KeyError:
                e._hist[idx] = 1
            try:
                t._hist[idx] += 1
            except KeyError:
                t._hist[idx] = 1
        if content_length:
            e.total_content_length += content_length
            t.total_content_length += content_length
        e.last_request_timestamp = now
        t.last_request_timestamp = now
        if error is not None:
            self._failed(e, t, now, error)

    def _failed(self, e: StatsEntry, t: StatsEntry, now: float, error: object) -> None:
        e.num_failures += 1
        t.num_failures += 1
        text = error_text(error)
        row = self.errors.get(error_key(e.method, e.name, text))
        if row is None:
            row = self._error_row(e.method, e.name, text)
        row.occurrences += 1
        if row.first_seen is None:
            row.first_seen = now
        row.last_seen = now

    def _error_row(self, method: str, name: str, text: str) -> StatsError:
        """The row for a new error key, or the (method, name) overflow row once the table is full."""
        if len(self.errors) >= self.max_errors:
            text = OVERFLOW_ERROR
        key = error_key(method, name, text)
        row = self.errors.get(key)
        if row is None:
            row = self.errors[key] = StatsError(method, name, text)
        return row

    # -- Locust's logging API --------------------------------------------------------------------------

    def log_request(self, method: str, name: str, response_time: float | None, content_length: int) -> None:
        self.record(method, name, response_time, content_length)

    def log_error(self, method: str, name: str, error: object) -> None:
        """Count a failure (entry, total, error table) without counting a request."""
        e = self.get(name, method)
        t = self.total
        now = self._time()
        if now >= e._sec_end:
            e._new_second(now)
        if now >= t._sec_end:
            t._new_second(now)
        self._failed(e, t, now, error)

    def get(self, name: str, method: str) -> StatsEntry:
        """The entry for ``name`` + ``method``, created on first use.

        Past ``max_entries`` distinct entries a new name is counted on the overflow row of its method
        (:data:`OVERFLOW_ENTRY`), with one warning: unique URLs without ``name=`` would otherwise grow memory
        by a few KB per URL for ever, and the tables would become unreadable.
        """
        by_method = self._index.get(name)
        entry = by_method.get(method) if by_method is not None else None
        if entry is not None:
            return entry
        if self.max_entries is not None and len(self.entries) >= self.max_entries and name != OVERFLOW_ENTRY:
            self._warn_overflow(name)
            self.overflowed_names += 1
            return (
                self.get(OVERFLOW_ENTRY, method)
                if (OVERFLOW_ENTRY, method) in self.entries
                else self._add(OVERFLOW_ENTRY, method)
            )
        return self._add(name, method)

    def _add(self, name: str, method: str) -> StatsEntry:
        entry = StatsEntry(self, name, method, self.use_response_times_cache)
        self._index.setdefault(name, {})[method] = entry
        self.entries[(name, method)] = entry
        return entry

    def log_aborted(self, method: str, name: str) -> None:
        """A request in flight when its user was cancelled: neither answered nor failed (the clients call
        this instead of firing the request event)."""
        key = (method, name)
        self.aborted[key] = self.aborted.get(key, 0) + 1
        self.num_aborted += 1

    def _warn_overflow(self, name: str) -> None:
        if self._overflow_warned:
            return
        self._overflow_warned = True
        logger.warning(
            "More than %d distinct request names (the latest: %r): further names are counted under %r. "
            'URLs with ids in them usually need name=, e.g. self.client.get(f"/items/{id}", name="/items/[id]")',
            self.max_entries,
            name[:120],
            OVERFLOW_ENTRY,
        )

    # -- run-level numbers -----------------------------------------------------------------------------

    @property
    def num_requests(self) -> int:
        return self.total.num_requests

    @property
    def num_none_requests(self) -> int:
        return self.total.num_none_requests

    @property
    def num_failures(self) -> int:
        return self.total.num_failures

    @property
    def fail_ratio(self) -> float:
        return self.total.fail_ratio

    @property
    def start_time(self) -> float:
        return self.total.start_time

    @property
    def last_request_timestamp(self) -> float | None:
        return self.total.last_request_timestamp

    def sorted_entries(self) -> list[StatsEntry]:
        """Entries in report order: by name, then method."""
        return [self.entries[key] for key in sorted(self.entries)]

    # -- resets ----------------------------------------------------------------------------------------

    def reset_all(self) -> None:
        """Zero every entry and the total in place (``start_time`` := now) and clear the error table.

        Entries survive, so reports keep listing names seen before the reset.
        """
        now = self.clock.time()
        self.total.reset(now)
        for entry in self.entries.values():
            entry.reset(now)
        self.errors.clear()
        self.aborted.clear()
        self.num_aborted = 0

    def clear_all(self) -> None:
        """Forget everything for a fresh test: no entries, no errors, a new total."""
        self.entries.clear()
        self._index.clear()
        self.errors.clear()
        self.overflowed_names = 0
        self._overflow_warned = False
        self.aborted.clear()
        self.num_aborted = 0
        self.total = StatsEntry(self, "Aggregated", "", self.use_response_times_cache)

    # -- wire ------------------------------------------------------------------------------------------

    def serialize(self) -> dict[str, Any]:
        """``{"stats": [entry…], "stats_total": entry, "errors": {key: row}, "histogram_scheme": …}``.

        Only entries with at least one request or failure are included.
        """
        return {
            "stats": self.serialize_stats(),
            "stats_total": self.total.serialize(),
            "errors": self.serialize_errors(),
            "histogram_scheme": HISTOGRAM_SCHEME,
            "aborted": [[method, name, n] for (method, name), n in self.aborted.items()],
        }

    def serialize_stats(self) -> list[dict[str, Any]]:
        """Locust's name: the serialised entries that have data."""
        return [e.serialize() for e in self.entries.values() if e.num_requests or e.num_failures]

    def serialize_errors(self) -> dict[str, dict[str, Any]]:
        """Locust's name: the serialised error table."""
        return {key: row.serialize() for key, row in self.errors.items()}

    def serialize_and_reset(self) -> dict[str, Any]:
        """:meth:`serialize`, then reset: a worker's report carries only what happened since the last one."""
        payload = self.serialize()
        self.reset_all()
        return payload

    def merge(self, payload: Mapping[str, Any]) -> None:
        """Add a serialised stats object (a worker's report) to these stats.

        Counts and totals add up, min/max take the extreme, histograms and per-second counters add per
        key, and error rows add occurrences (keys are recomputed from the row, not trusted). The payload is
        validated completely before anything is added: a malformed one raises
        :class:`~horde.stats.wire.StatsPayloadError` and changes nothing.
        """
        if not isinstance(payload, Mapping):
            raise StatsPayloadError(f"stats payload must be a mapping, got {type(payload).__name__}")
        check_scheme(payload)
        raw_entries = payload.get("stats", [])
        if not isinstance(raw_entries, list | tuple):
            raise StatsPayloadError("stats payload 'stats' must be a list")
        entries = [parse_entry(item) for item in raw_entries]
        raw_total = payload.get("stats_total")
        total = parse_entry(raw_total) if raw_total is not None else None
        raw_errors = payload.get("errors", {})
        if not isinstance(raw_errors, Mapping):
            raise StatsPayloadError("stats payload 'errors' must be a mapping")
        try:
            rows = [StatsError.unserialize(item) for item in raw_errors.values()]
        except ValueError as exc:
            raise StatsPayloadError(str(exc)) from None
        aborted = _parse_aborted(payload.get("aborted", []))

        now = self.clock.time()
        for data in entries:
            self.get(data.name, data.method)._absorb(data, now)
        if total is not None:
            self.total._absorb(total, now)
        for row in rows:
            existing = self.errors.get(row.key)
            if existing is None:
                existing = self._error_row(row.method, row.name, row.error)
            existing.extend(row)
        for method, name, n in aborted:
            self.aborted[(method, name)] = self.aborted.get((method, name), 0) + n
            self.num_aborted += n


def _parse_aborted(raw: Any) -> list[tuple[str, str, int]]:
    """A report's ``aborted`` rows ``[[method, name, count], …]``, checked before anything is added."""
    if not isinstance(raw, list | tuple):
        raise StatsPayloadError("stats payload 'aborted' must be a list")
    rows = []
    for item in raw:
        if (
            not isinstance(item, list | tuple)
            or len(item) != 3
            or not isinstance(item[0], str)
            or not isinstance(item[1], str)
            or isinstance(item[2], bool)
            or not isinstance(item[2], int)
            or item[2] < 0
        ):
            raise StatsPayloadError(f"stats payload 'aborted' has a malformed row: {item!r}")
        rows.append((item[0], item[1], item[2]))
    return rows
