"""load.arrival_schedule: rate profiles, arrival times (exact counts, Poisson mean and variance), the split,
and the stages syntax."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest

from horde.exceptions import ConfigurationError
from horde.load.arrival_schedule import (
    RATE_UNIT,
    ArrivalSchedule,
    RateProfile,
    parse_duration,
    parse_rate,
    parse_stages,
    rate_units,
    split_rate,
    split_units,
)


def times(profile: RateProfile, **kw: object) -> list[float]:
    schedule = ArrivalSchedule(profile, **kw)  # type: ignore[arg-type]
    out = []
    while (t := schedule.next_time()) is not None:
        out.append(t)
        assert len(out) < 1_000_000
    return out


# ---- profiles -------------------------------------------------------------------------------------------
def test_constant_rate_and_count() -> None:
    p = RateProfile.constant(10, duration=60)
    assert p.rate(0) == p.rate(59.9) == 10 and p.rate(60) == 0
    assert p.count(30) == 300 and p.count(60) == p.count(100) == 600 and p.total == 600


def test_stages_are_linear_ramps_between_targets() -> None:
    p = RateProfile.stages([(30, 50), (120, 500), (30, 0)])
    assert p.rate(0) == 0 and p.rate(15) == 25 and p.rate(30) == 50
    assert p.rate(90) == pytest.approx(275) and p.rate(165) == pytest.approx(250)
    assert p.count(30) == 750 and p.count(150) == pytest.approx(750 + 120 * 275)
    assert p.total == pytest.approx(750 + 33000 + 7500)
    assert p.end == 180


def test_endless_constant_never_ends() -> None:
    p = RateProfile.constant(5)
    assert p.end is None and p.total == math.inf and p.count(1000) == 5000


# ---- deterministic arrivals ---------------------------------------------------------------------------
def test_constant_arrivals_are_evenly_spaced_from_zero() -> None:
    got = times(RateProfile.constant(10, duration=60))
    assert len(got) == 600
    assert got[:3] == [0.0, 0.1, 0.2] and got[-1] == pytest.approx(59.9)
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(got)}
    assert gaps == {0.1}


@pytest.mark.parametrize(
    ("rate", "duration", "expected"),
    [(1, 10, 10), (0.5, 10, 5), (3, 1, 3), (200, 600, 120_000), (7, 0.5, 4), (0.3, 10, 3)],
)
def test_exact_counts_for_constant_rates(rate: float, duration: float, expected: int) -> None:
    assert len(times(RateProfile.constant(rate, duration))) == expected == math.ceil(rate * duration - 1e-9)


def test_exact_counts_for_ramps() -> None:
    # 0 -> 100/s over 10 s is 500 arrivals, then 10 s flat at 100/s is 1000 more, then down to 0: 500
    p = RateProfile.stages([(10, 100), (10, 100), (10, 0)])
    got = times(p)
    assert len(got) == 2000
    assert sum(1 for t in got if t < 10) == 500
    assert sum(1 for t in got if 10 <= t < 20) == 1000
    # within a ramp the count up to t is ⌈count(t)⌉ exactly
    for t in (1.0, 2.5, 7.0, 13.3, 25.0):
        assert sum(1 for a in got if a < t) == math.ceil(p.count(t) - 1e-9)


def test_a_ramp_from_zero_starts_at_once_and_accelerates() -> None:
    got = times(RateProfile.stages([(10, 100)]))
    assert got[0] == 0.0
    gaps = [b - a for a, b in itertools.pairwise(got)]
    assert all(g2 <= g1 + 1e-12 for g1, g2 in itertools.pairwise(gaps))


def test_zero_rate_stages_make_no_arrivals() -> None:
    got = times(RateProfile.stages([(5, 0), (5, 0), (10, 20)], start_rate=0))
    assert got[0] == 10.0 and all(t >= 10 for t in got)
    assert len(got) == 100


def test_a_schedule_started_midway_continues_it() -> None:
    p = RateProfile.constant(10, 10)
    assert times(p, start=5.0) == pytest.approx([5 + i / 10 for i in range(50)])
    # a phase of half an arrival: the first one comes half a gap later
    assert times(p, start=5.0, phase=0.5)[:2] == pytest.approx([5.05, 5.15])


def test_remaining_is_the_phase_for_a_takeover() -> None:
    p = RateProfile.constant(10, 10)
    s = ArrivalSchedule(p)
    s.next_time()  # 0.0
    assert s.remaining(0.03) == pytest.approx(0.7)


# ---- Poisson ----------------------------------------------------------------------------------------------
def test_poisson_counts_have_the_expected_mean_and_variance() -> None:
    rng = random.Random(42)
    p = RateProfile.constant(50, duration=2)  # mean 100 per run
    counts = [len(times(p, poisson=True, rng=rng)) for _ in range(2000)]
    mean, var = statistics.fmean(counts), statistics.pvariance(counts)
    # standard error of the mean is sqrt(100/2000) ≈ 0.22; of the variance ≈ 100*sqrt(2/2000) ≈ 3.2
    assert mean == pytest.approx(100, abs=1.0)
    assert var == pytest.approx(100, abs=15)


def test_poisson_follows_a_ramp() -> None:
    rng = random.Random(7)
    p = RateProfile.stages([(10, 40)])  # 200 expected: 50 in the first 5 s, 150 in the next
    runs = [times(p, poisson=True, rng=rng) for _ in range(400)]
    first = statistics.fmean(sum(1 for t in r if t < 5) for r in runs)
    second = statistics.fmean(sum(1 for t in r if t >= 5) for r in runs)
    assert first == pytest.approx(50, abs=1.5) and second == pytest.approx(150, abs=2.5)


def test_poisson_gaps_are_exponential() -> None:
    got = times(RateProfile.constant(100, 50), poisson=True, rng=random.Random(1))
    gaps = [b - a for a, b in itertools.pairwise(got)]
    assert statistics.fmean(gaps) == pytest.approx(0.01, rel=0.05)
    assert statistics.pstdev(gaps) == pytest.approx(0.01, rel=0.05)  # exponential: sd == mean


# ---- split ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("total", [0, 1, 2, 7, 100, 1001, 123457])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 10])
def test_split_units_sum_exactly_and_differ_by_one(total: int, n: int) -> None:
    order = [f"w{i}" for i in range(n)]
    shares = split_units(total, order)
    assert sum(shares.values()) == total
    assert max(shares.values()) - min(shares.values()) <= 1
    # the extra units go to the first workers in the order
    assert list(shares.values()) == sorted(shares.values(), reverse=True)


def test_split_rate_in_milli_iterations() -> None:
    shares = split_rate(1.0, ["a", "b", "c"])
    assert [rate_units(r) for r in shares.values()] == [334, 333, 333]
    assert sum(rate_units(r) for r in shares.values()) == 1000 == rate_units(1.0)
    assert max(shares.values()) - min(shares.values()) == pytest.approx(RATE_UNIT)


def test_split_over_no_worker_is_empty() -> None:
    assert split_units(10, []) == {}


# ---- parsing -------------------------------------------------------------------------------------------------
def test_durations_and_rates() -> None:
    assert [parse_duration(t) for t in ("30s", "2m", "1h30m", "1.5s", "500ms", "90", 12)] == [
        30,
        120,
        5400,
        1.5,
        0.5,
        90,
        12,
    ]
    assert [parse_rate(t) for t in ("50/s", "50", "3000/m", "0.5/s", "7200/h", " 2 /sec")] == [
        50,
        50,
        50,
        0.5,
        2,
        2,
    ]
    for bad in ("", "s", "3x", "1m30", "-3s"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    with pytest.raises(ValueError):
        parse_rate("fast")


def test_parse_stages() -> None:
    assert parse_stages("30s:50/s,2m:500/s,30s:0/s") == [(30, 50), (120, 500), (30, 0)]
    assert parse_stages(["10s:5", "1m:3000/m"]) == [(10, 5), (60, 50)]


def test_parse_stages_reports_every_error_at_once() -> None:
    with pytest.raises(ConfigurationError) as e:
        parse_stages("30s:50/s,banana,0s:10/s,10x:5/s,1m:fast,,2m:5/s")
    text = str(e.value)
    for bit in (
        "stage 2 ('banana')",
        "stage 3",
        "above 0",
        "stage 4",
        "stage 5",
        "'fast'",
        "stage 6 (empty)",
    ):
        assert bit in text
    assert "stage 1" not in text and "stage 7" not in text


def test_parse_stages_needs_one() -> None:
    with pytest.raises(ConfigurationError, match="at least one stage"):
        parse_stages("")
