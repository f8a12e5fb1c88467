"""load.arrival: the models validate (every problem) and describe themselves; options build them."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from horde.exceptions import ConfigurationError
from horde.load import LoadModel, create_model
from horde.load.arrival import (
    KIND,
    ConstantArrivalRate,
    RampingArrivalRate,
    model_from_options,
)


def user_class(name: str, weight: Any = 1) -> type:
    return type(name, (), {"weight": weight, "fixed_count": 0})


Shopper, Admin = user_class("Shopper", 3), user_class("Admin", 1)


def test_describe_in_one_sentence() -> None:
    model = ConstantArrivalRate(
        200, duration=600, pre_allocated=20, max_users=100, user_classes=[Shopper, Admin]
    )
    assert model.describe() == "200 iterations/s for 10m, pool 20-100 users, Shopper 3 : Admin 1"
    assert ConstantArrivalRate(12.5).describe() == "12.5 iterations/s, pool 1 user"
    ramp = RampingArrivalRate(
        [(30, 50), (120, 500), (30, 0)], max_users=200, poisson=True, user_classes=[Shopper]
    )
    assert ramp.describe() == (
        "from 0 to 50 iterations/s over 30s, to 500 over 2m, to 0 over 30s (3m), pool 1-200 users, "
        "Poisson arrivals, Shopper users"
    )
    assert ramp.duration == 180 and ramp.peak_rate == 500


def test_the_models_are_load_models_with_their_own_kind() -> None:
    for model in (ConstantArrivalRate(1), RampingArrivalRate([(1, 1)])):
        assert isinstance(model, LoadModel) and model.kind == KIND == "arrival-rate"
        assert model.validate() == []
    assert isinstance(create_model("constant-arrival-rate", rate=5), ConstantArrivalRate)
    assert isinstance(create_model("ramping-arrival-rate", stages=[(10, 5)]), RampingArrivalRate)


def test_validate_returns_every_problem() -> None:
    problems = ConstantArrivalRate(
        0,
        duration=-1,
        pre_allocated=3.5,
        max_users=0,
        user_classes=[user_class("A", 0), user_class("A", 0)],  # type: ignore[arg-type]
    ).validate()
    assert len(problems) == 6, problems
    text = " ".join(problems)
    for bit in (
        "arrival rate must be",
        "duration must be",
        "pre_allocated must be",
        "max_users must be",
        "unique",
        "weight 0",
    ):
        assert bit in text
    assert ConstantArrivalRate(0.0001).validate() == [
        "The arrival rate 0.0001/s is below the smallest unit (0.001/s)."
    ]
    assert ConstantArrivalRate(1, pre_allocated=5, max_users=2).validate() == [
        "pre_allocated (5) cannot be more than max_users (2)."
    ]


def test_ramp_validation() -> None:
    problems = RampingArrivalRate([(0, 5), (10, -1), "x"], start_rate=-2).validate()  # type: ignore[list-item]
    text = " ".join(problems)
    assert (
        len(problems) == 4
        and "Stage 1" in text
        and "Stage 2" in text
        and "Stage 3" in text
        and "start rate" in text
    )
    assert RampingArrivalRate([]).validate() == [
        "A ramping arrival rate needs at least one (duration, target rate) stage."
    ]
    assert "nothing would ever run" in RampingArrivalRate([(10, 0)]).validate()[0]


def ns(**kw: Any) -> argparse.Namespace:
    return argparse.Namespace(**kw)


def test_model_from_options() -> None:
    assert model_from_options(ns(), [Shopper]) is None
    assert model_from_options(ns(arrival_rate=None, stages=None), [Shopper]) is None
    m = model_from_options(ns(arrival_rate="200/s", max_users=100, pre_allocated=20, run_time=600), [Shopper])
    assert isinstance(m, ConstantArrivalRate) and m.rate == 200 and m.duration == 600 and m.max_users == 100
    r = model_from_options(ns(stages="30s:50/s,2m:500/s,30s:0/s", max_users=400, poisson=True), [Shopper])
    assert isinstance(r, RampingArrivalRate) and r.stages == [(30, 50), (120, 500), (30, 0)] and r.poisson
    assert r.pre_allocated == 1


def test_model_from_options_reports_every_problem_at_once() -> None:
    with pytest.raises(ConfigurationError) as e:
        model_from_options(ns(arrival_rate=5, stages="1x:5", max_users="many", pre_allocated=2.5), [Shopper])
    text = str(e.value)
    assert "not both" in text and "--max-users must be a whole number" in text
    assert "--pre-allocated must be a whole number" in text and "stage 1" in text
    with pytest.raises(
        ConfigurationError, match="pre_allocated \\(5\\) cannot be more than max_users \\(2\\)"
    ):
        model_from_options(ns(arrival_rate=5, max_users=2, pre_allocated=5), [Shopper])
    with pytest.raises(ConfigurationError, match="not a rate"):
        model_from_options(ns(arrival_rate="fast"), [Shopper])
