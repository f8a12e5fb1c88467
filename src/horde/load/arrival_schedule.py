"""When arrivals happen: a rate profile (constant or linear stages), its arrival times, and the rate split.

Pure: no clock, no sleeping, no I/O. Times are seconds from the start of the profile; the worker-side
pacer (:mod:`horde.load.arrival_pool`) maps them onto its clock.

* :class:`RateProfile` is ``rate(t)`` as k6 defines it: a start rate, then stages that each ramp linearly
  to their target over their duration (a constant rate is one flat stage, possibly endless).
  ``count(t)`` is the expected number of arrivals in ``[0, t)`` (the integral of the rate).
* :class:`ArrivalSchedule` turns a profile into arrival times. Deterministic: the n-th arrival (n = 0, 1,
  ...) is at the first time ``count(t)`` reaches ``n`` (so the first is at 0 and exactly ``⌈count(T)⌉``
  arrive in ``[0, T)``). Poisson: the gaps in ``count`` are independent Exp(1) draws (a non-homogeneous
  Poisson process by time change), so the number in ``[0, T)`` has mean and variance ``count(T)``.
* :func:`split_units` / :func:`split_rate` share an integer amount (users, milli-iterations per second) over
  workers in the host-aware order: the sum is exact and shares differ by at most one unit.
* :func:`parse_stages` reads ``"30s:50/s,2m:500/s,30s:0/s"`` and reports every error at once.

>>> profile = RateProfile.constant(10, duration=60)
>>> schedule = ArrivalSchedule(profile)
>>> [schedule.next_time() for _ in range(3)]
[0.0, 0.1, 0.2]
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from horde.exceptions import ConfigurationError

#: the rounding unit of a split rate: a worker's share is a whole number of milli-iterations per second
RATE_UNIT = 0.001
_EPS = 1e-9


@dataclass(frozen=True)
class Segment:
    """``rate`` goes linearly from ``r0`` at ``t0`` to ``r1`` at ``t1`` (``t1`` may be infinite, with
    ``r1 == r0``); ``c0`` is ``count(t0)``."""

    t0: float
    t1: float
    r0: float
    r1: float
    c0: float

    @property
    def slope(self) -> float:
        return 0.0 if math.isinf(self.t1) or self.t1 == self.t0 else (self.r1 - self.r0) / (self.t1 - self.t0)

    @property
    def c1(self) -> float:
        if math.isinf(self.t1):
            return math.inf if self.r0 > 0 else self.c0
        return self.c0 + (self.t1 - self.t0) * (self.r0 + self.r1) / 2.0

    def count_at(self, t: float) -> float:
        x = t - self.t0
        return self.c0 + x * (self.r0 + self.r0 + self.slope * x) / 2.0

    def time_of(self, c: float) -> float:
        """The time in this segment where the count reaches ``c`` (``c0 <= c <= c1``)."""
        need = c - self.c0
        if need <= 0:
            return self.t0
        a, r0 = self.slope, self.r0
        disc = max(0.0, r0 * r0 + 2.0 * a * need)
        denom = r0 + math.sqrt(disc)
        x = 2.0 * need / denom if denom > 0 else 0.0  # the stable root of a/2 x² + r0 x = need
        return min(self.t0 + x, self.t1)


class RateProfile:
    """``rate(t)``: ``start_rate`` at 0, then each ``(duration, target)`` stage ramps linearly to its target.

    ``end`` is when the last stage ends (``None``: a constant rate without duration, for ever).

    >>> RateProfile.stages([(30, 50), (120, 500), (30, 0)]).count(30)
    750.0
    """

    def __init__(
        self, start_rate: float, stages: Sequence[tuple[float, float]], endless: bool = False
    ) -> None:
        self.start_rate = float(start_rate)
        self.stage_list = [(float(d), float(r)) for d, r in stages]
        segments: list[Segment] = []
        t, rate, c = 0.0, self.start_rate, 0.0
        for duration, target in self.stage_list:
            seg = Segment(t, t + duration, rate, target, c)
            segments.append(seg)
            t, rate, c = seg.t1, target, seg.c1
        if endless:
            segments.append(Segment(t, math.inf, rate, rate, c))
        self.segments = segments
        self.end: float | None = None if endless else t

    @classmethod
    def constant(cls, rate: float, duration: float | None = None) -> RateProfile:
        if duration is None:
            return cls(rate, [], endless=True)
        return cls(rate, [(duration, rate)])

    @classmethod
    def stages(cls, stages: Sequence[tuple[float, float]], start_rate: float = 0.0) -> RateProfile:
        return cls(start_rate, stages)

    def scaled(self, factor: float) -> RateProfile:
        """The same profile with every rate multiplied by ``factor``."""
        return RateProfile(
            self.start_rate * factor, [(d, r * factor) for d, r in self.stage_list], endless=self.end is None
        )

    def _segment(self, t: float) -> Segment | None:
        for seg in self.segments:
            if t < seg.t1:
                return seg
        return None

    def rate(self, t: float) -> float:
        """The target rate at ``t`` (0 after the end)."""
        seg = self._segment(max(0.0, t))
        if seg is None:
            return 0.0
        return seg.r0 + seg.slope * (max(0.0, t) - seg.t0)

    def count(self, t: float) -> float:
        """Expected arrivals in ``[0, t)``: the integral of the rate (constant after the end)."""
        if t <= 0:
            return 0.0
        seg = self._segment(t)
        if seg is None:
            return self.segments[-1].c1 if self.segments else 0.0
        return seg.count_at(t)

    @property
    def total(self) -> float:
        """Expected arrivals over the whole profile (infinite when endless with a rate above 0)."""
        if not self.segments:
            return 0.0
        return self.segments[-1].c1

    def time_of(self, c: float) -> float | None:
        """The first time the count reaches ``c`` (after a zero-rate stretch: where it starts rising);
        ``None`` when the profile ends first."""
        for seg in self.segments:
            if seg.c0 <= c < seg.c1 or (c <= seg.c0 and seg.c1 > seg.c0):
                return seg.time_of(c)
        return None


class ArrivalSchedule:
    """Arrival times of a profile, from ``start`` on, one at a time (seconds from the profile's origin).

    ``phase`` (deterministic only) is how far, in arrivals, the first one is after ``start``: 0 starts with
    an arrival at ``start``; a schedule replacing another mid-run passes :meth:`remaining` of the old one so
    the spacing carries over. ``rng`` seeds the Poisson draws (tests pass ``random.Random(seed)``).
    """

    def __init__(
        self,
        profile: RateProfile,
        start: float = 0.0,
        *,
        phase: float = 0.0,
        poisson: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self.profile = profile
        self.poisson = poisson
        self._rng = rng or random.Random()
        base = profile.count(start)
        self._next_count = base + (self._rng.expovariate(1.0) if poisson else max(0.0, phase))
        self._last_time = start
        self.emitted = 0

    def next_time(self) -> float | None:
        """The time of the next arrival, or ``None`` once the profile has ended."""
        c = self._next_count
        if c >= self.profile.total - _EPS:
            return None
        t = self.profile.time_of(c)
        if t is None:
            return None
        t = max(t, self._last_time)  # float rounding never reorders arrivals
        self._last_time = t
        self._next_count = c + (self._rng.expovariate(1.0) if self.poisson else 1.0)
        self.emitted += 1
        return t

    def peek_count(self) -> float:
        """The count at which the next arrival happens."""
        return self._next_count

    def remaining(self, t: float) -> float:
        """Arrivals (a fraction in [0, 1]) still to go at ``t`` before the next one: the phase to hand a
        schedule that takes over at ``t``."""
        return min(1.0, max(0.0, self._next_count - self.profile.count(t)))

    def times_until(self, end: float) -> list[float]:
        """Every arrival time before ``end`` (for tests and planning; consumes them)."""
        out: list[float] = []
        while True:
            c = self._next_count
            if c >= self.profile.total - _EPS:
                return out
            t = self.profile.time_of(c)
            if t is None or t >= end:
                return out
            self.next_time()
            out.append(max(t, out[-1] if out else t))


# ---- splitting over workers --------------------------------------------------------------------------


def split_units(total: int, order: Sequence[str]) -> dict[str, int]:
    """``total`` whole units over the workers in ``order`` (host-aware): floor for all, one more for the
    first ``total % n``. The sum is ``total`` and shares differ by at most one."""
    n = len(order)
    if n == 0:
        return {}
    base, extra = divmod(max(0, int(total)), n)
    return {wid: base + (1 if i < extra else 0) for i, wid in enumerate(order)}


def rate_units(rate: float) -> int:
    """A rate in whole rounding units (:data:`RATE_UNIT`)."""
    return round(float(rate) / RATE_UNIT)


def split_rate(rate: float, order: Sequence[str]) -> dict[str, float]:
    """A rate over workers in rounding units: shares sum to the rate (in units) and differ by one unit."""
    return {wid: units * RATE_UNIT for wid, units in split_units(rate_units(rate), order).items()}


# ---- parsing -----------------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|h|m|s)")
_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:/\s*(s|sec|m|min|h|hour))?\s*$")
_PER = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hour": 3600.0}
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | float | int) -> float:
    """``"30s"``, ``"2m"``, ``"1h30m"``, ``"1.5s"``, ``"500ms"``, ``"90"`` (seconds) -> seconds.

    Raises ValueError with a one-line explanation.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    s = str(text).strip().lower()
    if not s:
        raise ValueError("an empty duration")
    try:
        return float(s)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(s):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    if pos != len(s) or pos == 0:
        raise ValueError(f"{text!r} is not a duration (e.g. 30s, 2m, 1h30m)")
    return total


def parse_rate(text: str | float | int) -> float:
    """``"50/s"``, ``"50"``, ``"3000/m"``, ``"0.5/s"`` -> iterations per second."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    match = _RATE.match(str(text).lower())
    if match is None:
        raise ValueError(f"{text!r} is not a rate (e.g. 50/s, 3000/m)")
    return float(match.group(1)) / _PER[match.group(2)]


def parse_stages(text: str | Iterable[str]) -> list[tuple[float, float]]:
    """``"30s:50/s,2m:500/s,30s:0/s"`` -> ``[(30.0, 50.0), (120.0, 500.0), (30.0, 0.0)]``.

    Each stage is ``DURATION:TARGET``: ramp linearly to TARGET iterations per second over DURATION. Raises
    ConfigurationError naming every bad stage at once.
    """
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else [str(p).strip() for p in text]
    problems: list[str] = []
    stages: list[tuple[float, float]] = []
    if not any(parts):
        raise ConfigurationError("--stages needs at least one stage, e.g. '30s:50/s,2m:500/s,30s:0/s'")
    for i, part in enumerate(parts, 1):
        where = f"stage {i} ({part!r})" if part else f"stage {i} (empty)"
        if part.count(":") != 1:
            problems.append(f"{where} must be DURATION:RATE, e.g. 30s:50/s.")
            continue
        dur_text, rate_text = part.split(":")
        bad = False
        try:
            duration = parse_duration(dur_text)
            if not math.isfinite(duration) or duration <= 0:
                problems.append(f"{where}: the duration must be above 0.")
                bad = True
        except ValueError as e:
            problems.append(f"{where}: {e}.")
            bad = True
        try:
            rate = parse_rate(rate_text)
            if not math.isfinite(rate):
                problems.append(f"{where}: the rate must be finite.")
                bad = True
        except ValueError as e:
            problems.append(f"{where}: {e}.")
            bad = True
        if not bad:
            stages.append((duration, rate))
    if problems:
        raise ConfigurationError("Invalid --stages: " + " ".join(problems))
    return stages
