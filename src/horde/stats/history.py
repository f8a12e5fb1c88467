"""The statistics of a whole run over time, one point per tick, in bounded memory.

:class:`StatsHistory` is fed the per-tick :class:`~horde.stats.snapshot.StatsSnapshot` (by the run session,
on a master as locally: it only ever sees snapshots, so a master's merged history is built exactly like a
local one). It keeps, per series, the numbers a chart or the history CSV needs: user count, current
req/s and failures/s, the current-window (~10 s) percentiles, and the cumulative counts, median, average,
min, max and average content size.

**The bound.** Each series has a *recent* tier at its native resolution and an *older* tier that is
thinned out (every other point dropped, oldest first) whenever it fills up, so its resolution halves as
the run grows and its size never exceeds its capacity:

=====================  ===========  =======================  ==============================
series                 resolution   recent tier              older tier
=====================  ===========  =======================  ==============================
Aggregated + users     every tick   86,400 points (24 h)     7,200 points (1, 2, 4, 8 … ticks)
each entry             10 s         360 points (1 h)         360 points (10, 20, 40 … s)
=====================  ===========  =======================  ==============================

A point costs 108 bytes (float64 time and rates, int64 counts, uint32 users, float32 response times), so
the history of a run of **any length** holds at most about ``108 B * (99,000 + 742 * E)`` plus array slack
(≈ 6 %): ≈ 11 MB + 85 KB per entry, **under 24 MB for 100 entries** (tested with tracemalloc on a simulated
24-hour run). Per-entry rows are kept every 10 s (the first tick of each 10-s slot of the epoch), not every tick, because nothing charts entries at 1-s
resolution (the CSV writer appends its per-second full-history rows straight from the snapshots) and it
keeps the per-tick cost at one series.

Thinned points are samples, not averages: a kept older point is exactly the snapshot of its second, and
the cumulative columns stay exact at every kept point. Response times are stored as float32 and read back
rounded to the microsecond, well inside the histogram's 0.78 % error. A current percentile that was
``None`` (empty window) reads back as ``None``.

>>> from horde.clock import FakeClock
>>> from horde.stats import RequestStats
>>> from horde.stats.snapshot import take_snapshot
>>> clock = FakeClock(1000.0); stats = RequestStats(clock); history = StatsHistory(clock)
>>> stats.record("GET", "/", 12.0, 0)
>>> history.append(take_snapshot(stats, user_count=3))
>>> [(row.name, row.user_count, row.num_requests) for row in history.rows()]
[('/', 3, 1), ('Aggregated', 3, 1)]
"""

from __future__ import annotations

import logging
import math
from array import array
from collections.abc import Iterator
from typing import Any, NamedTuple

from horde.clock import SYSTEM_CLOCK, Clock
from horde.stats.snapshot import EntrySnapshot, StatsSnapshot, percentile_key

logger = logging.getLogger(__name__)

#: Points at full resolution in the Aggregated series (24 h of 1-s ticks).
TOTAL_RECENT_POINTS = 86_400
#: Capacity of the Aggregated series' thinned older tier.
TOTAL_OLDER_POINTS = 7_200
#: Seconds between kept per-entry points.
ENTRY_INTERVAL = 10.0
#: Points at ENTRY_INTERVAL resolution per entry (1 h).
ENTRY_RECENT_POINTS = 360
#: Capacity of each entry's thinned older tier.
ENTRY_OLDER_POINTS = 360

# Columns of a series, with their array type codes.
_INT_COLUMNS = (("time", "d"), ("user_count", "I"), ("num_requests", "q"), ("num_failures", "q"))
_RATE_COLUMNS = (("current_rps", "d"), ("current_fail_per_sec", "d"))
_MS_COLUMNS = (
    "median_response_time",
    "avg_response_time",
    "min_response_time",
    "max_response_time",
    "avg_content_length",
)
_FIXED = len(_INT_COLUMNS) + len(_RATE_COLUMNS) + len(_MS_COLUMNS)
_NAN = math.nan
_USERS_MAX = 2**32 - 1


class HistoryRow(NamedTuple):
    """One kept point of one series (an entry, or the ``Aggregated`` total with method ``""``)."""

    time: float
    user_count: int
    method: str
    name: str
    current_rps: float
    current_fail_per_sec: float
    #: Current-window (~10 s) percentiles in the history's quantile order; ``None`` for an empty window.
    current_percentiles: tuple[float | None, ...]
    num_requests: int
    num_failures: int
    median_response_time: float
    avg_response_time: float
    min_response_time: float
    max_response_time: float
    avg_content_length: float


class _Series:
    """Column arrays for one series: a recent tier and an older tier thinned by halving."""

    __slots__ = (
        "_older",
        "_phase",
        "_recent",
        "_room",
        "method",
        "name",
        "older_capacity",
        "recent_capacity",
        "step",
    )

    def __init__(self, method: str, name: str, npercentiles: int, recent: int, older: int) -> None:
        self.method = method
        self.name = name
        self.recent_capacity = recent
        self.older_capacity = older
        codes = [code for _, code in _INT_COLUMNS + _RATE_COLUMNS] + ["f"] * (len(_MS_COLUMNS) + npercentiles)
        self._recent: list[array[Any]] = [array(code) for code in codes]
        self._older: list[array[Any]] = [array(code) for code in codes]
        self.step = 1  # recent points per older point
        self._phase = 0  # recent points moved to the older tier so far, modulo step
        self._room = 0  # appends before the tier size is next checked (kept <= 256: cached small ints)

    def __len__(self) -> int:
        return len(self._recent[0]) + len(self._older[0])

    def append(self, t: float, users: int, e: EntrySnapshot) -> None:
        # Column by column, without building a row tuple: this runs once per tick and series.
        c = self._recent
        c[0].append(t)
        c[1].append(users)
        c[2].append(e.num_requests)
        c[3].append(e.num_failures)
        c[4].append(e.current_rps)
        c[5].append(e.current_fail_per_sec)
        c[6].append(e.median_response_time)
        c[7].append(e.avg_response_time)
        c[8].append(e.min_response_time)
        c[9].append(e.max_response_time)
        c[10].append(e.avg_content_length)
        i = _FIXED
        for v in e.current_percentiles.values():
            c[i].append(_NAN if v is None else v)
            i += 1
        # Checking the size costs an int allocation above 256 points; a small countdown does not.
        room = self._room - 1
        if room > 0:
            self._room = room
            return
        limit = self.recent_capacity + max(1, self.recent_capacity // 16)
        n = len(c[0])
        if n > limit:
            self._spill(n - self.recent_capacity)
            n = self.recent_capacity
        self._room = min(256, limit - n + 1)

    def _spill(self, k: int) -> None:
        """Move the oldest ``k`` recent points to the older tier, keeping one in ``step``."""
        step = self.step
        first = (step - 1 - self._phase) % step
        for recent, older in zip(self._recent, self._older, strict=True):
            older.extend(recent[first:k:step])
            del recent[:k]
        self._phase = (self._phase + k) % step
        while len(self._older[0]) > self.older_capacity:
            n = len(self._older[0])
            start = (n - 1) % 2  # keep the newest point of the tier
            self._older = [col[start::2] for col in self._older]
            self.step *= 2

    def points(self, since: float | None) -> Iterator[HistoryRow]:
        npct = len(self._recent) - _FIXED
        for tier in (self._older, self._recent):
            times = tier[0]
            lo = 0 if since is None else _bisect(times, since)
            for i in range(lo, len(times)):
                yield HistoryRow(
                    time=times[i],
                    user_count=tier[1][i],
                    method=self.method,
                    name=self.name,
                    current_rps=tier[4][i],
                    current_fail_per_sec=tier[5][i],
                    current_percentiles=tuple(_read_ms(tier[_FIXED + j][i]) for j in range(npct)),
                    num_requests=tier[2][i],
                    num_failures=tier[3][i],
                    median_response_time=round(tier[6][i], 3),
                    avg_response_time=round(tier[7][i], 3),
                    min_response_time=round(tier[8][i], 3),
                    max_response_time=round(tier[9][i], 3),
                    avg_content_length=round(tier[10][i], 3),
                )

    def nbytes(self) -> int:
        return sum(col.buffer_info()[1] * col.itemsize for col in (*self._recent, *self._older))


def _read_ms(v: float) -> float | None:
    return None if v != v else round(v, 3)  # NaN marks an empty window


def _bisect(times: array[Any], t: float) -> int:
    lo, hi = 0, len(times)
    while lo < hi:
        mid = (lo + hi) // 2
        if times[mid] < t:
            lo = mid + 1
        else:
            hi = mid
    return lo


class StatsHistory:
    """Per-tick points of a whole run for the charts, the HTML report and the history CSV.

    ``append`` the tick's snapshot (a snapshot not newer than the last one kept is ignored, so a final
    snapshot taken in the same instant as the last tick is harmless; one with other percentiles than the
    history's restarts the history, with a warning); ``clear`` at a new test. See the
    module docstring for what is kept and the memory bound. The capacities are parameters for tests and
    embedders; the defaults are the documented bound.
    """

    def __init__(
        self,
        clock: Clock = SYSTEM_CLOCK,
        *,
        entry_interval: float = ENTRY_INTERVAL,
        total_recent: int = TOTAL_RECENT_POINTS,
        total_older: int = TOTAL_OLDER_POINTS,
        entry_recent: int = ENTRY_RECENT_POINTS,
        entry_older: int = ENTRY_OLDER_POINTS,
    ) -> None:
        for label, n in (
            ("total_recent", total_recent),
            ("total_older", total_older),
            ("entry_recent", entry_recent),
            ("entry_older", entry_older),
        ):
            if n < 2:
                raise ValueError(f"{label} must be at least 2, got {n}")
        self.clock = clock
        self.entry_interval = entry_interval
        self._capacities = (total_recent, total_older, entry_recent, entry_older)
        self.clear()

    def clear(self) -> None:
        """Forget every point (a new test starts)."""
        self.percentiles: tuple[float, ...] = ()
        self._total: _Series | None = None
        self._entries: dict[str, dict[str, _Series]] = {}
        self._last_time = -math.inf
        self._last_entry_slot: float | None = None
        self._percentile_keys: Any = None
        self.cleared_at = self.clock.time()

    def __len__(self) -> int:
        """Number of kept Aggregated points."""
        return len(self._total) if self._total is not None else 0

    @property
    def last_time(self) -> float | None:
        """Timestamp of the newest kept point, or ``None``."""
        return None if self._total is None else self._last_time

    def append(self, snapshot: StatsSnapshot) -> None:
        """Keep the snapshot's Aggregated point, and its entries' points every ``entry_interval`` s."""
        # Runs once per tick for the whole run: written to allocate as few objects as possible.
        t = snapshot.time
        if t <= self._last_time:
            return
        total = snapshot.total
        recent_t, older_t, recent_e, older_e = self._capacities
        if self._total is not None and total.current_percentiles.keys() != self._percentile_keys:
            # PERCENTILES_TO_REPORT changed mid-run: the columns no longer fit. Start over rather than
            # fail the tick (the history feeds charts, not the final figures).
            logger.warning(
                "stats history restarted: the percentiles changed from %s to %s",
                self.percentiles,
                snapshot.percentiles,
            )
            self.clear()
        if self._total is None:
            self.percentiles = tuple(total.current_percentiles)
            self._total = _Series(total.method, total.name, len(self.percentiles), recent_t, older_t)
        self._percentile_keys = total.current_percentiles.keys()
        self._last_time = t
        users = snapshot.user_count
        if users < 0 or users > _USERS_MAX:
            users = min(max(users, 0), _USERS_MAX)
        self._total.append(t, users, total)
        # Entries are kept at the first tick of each entry_interval slot of the epoch: robust to tick jitter.
        slot = t // self.entry_interval
        if slot == self._last_entry_slot:
            return
        self._last_entry_slot = slot
        by_name = self._entries
        npct = len(self.percentiles)
        for e in snapshot.entries:
            methods = by_name.get(e.name)
            if methods is None:
                methods = by_name[e.name] = {}
            s = methods.get(e.method)
            if s is None:
                s = methods[e.method] = _Series(e.method, e.name, npct, recent_e, older_e)
            s.append(t, users, e)

    def total_rows(self, since: float | None = None) -> list[HistoryRow]:
        """The Aggregated points (with the user count) from ``since`` (epoch s, inclusive) on."""
        return [] if self._total is None else list(self._total.points(since))

    def entry_rows(self, name: str, method: str, since: float | None = None) -> list[HistoryRow]:
        """One entry's points (empty if the entry was never seen)."""
        s = self._entries.get(name, {}).get(method)
        return [] if s is None else list(s.points(since))

    def rows(self, since: float | None = None, *, entries: bool = True) -> list[HistoryRow]:
        """Every kept point in the history CSV's order: by time; at one time the entries, then Aggregated."""
        if self._total is None:
            return []
        keyed: list[tuple[float, int, str, str, HistoryRow]] = [
            (row.time, 1, "", "", row) for row in self._total.points(since)
        ]
        if entries:
            for s in self._all_entries():
                name, method = s.name, s.method
                keyed.extend((row.time, 0, name, method, row) for row in s.points(since))
            keyed.sort(key=lambda k: k[:4])
        return [k[4] for k in keyed]

    def _all_entries(self) -> list[_Series]:
        return [s for methods in self._entries.values() for s in methods.values()]

    def nbytes(self) -> int:
        """Bytes held by the point arrays (what the bound in the module docstring counts)."""
        series = [*self._all_entries()] + ([self._total] if self._total is not None else [])
        return sum(s.nbytes() for s in series)

    def to_dict(self, since: float | None = None) -> dict[str, Any]:
        """Columnar JSON-ready data (one list per column), the shape charts consume directly.

        ``{"entry_interval", "percentiles": ["0.5", …], "total": {columns},
        "entries": [{"method", "name", columns}]}`` where the columns are ``time``, ``user_count``,
        ``current_rps``, ``current_fail_per_sec``, ``num_requests``, ``num_failures``, the cumulative
        ``median/avg/min/max_response_time``, ``avg_content_length`` and ``current_percentiles``
        (``{"0.95": [ms or null, …]}``).
        """
        keys = [percentile_key(p) for p in self.percentiles]
        entries = []
        for s in sorted(self._all_entries(), key=lambda s: (s.name, s.method)):
            entries.append({"method": s.method, "name": s.name, **_columns(list(s.points(since)), keys)})
        return {
            "entry_interval": self.entry_interval,
            "percentiles": keys,
            "total": _columns(self.total_rows(since), keys),
            "entries": entries,
        }


def _columns(rows: list[HistoryRow], keys: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        field: [getattr(r, field) for r in rows]
        for field in (
            "time",
            "user_count",
            "current_rps",
            "current_fail_per_sec",
            "num_requests",
            "num_failures",
            *_MS_COLUMNS,
        )
    }
    out["current_percentiles"] = {key: [r.current_percentiles[i] for r in rows] for i, key in enumerate(keys)}
    return out


__all__ = ["ENTRY_INTERVAL", "HistoryRow", "StatsHistory"]
