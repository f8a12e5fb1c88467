"""load.model: plan steps, the protocols' runtime checks, and the formatting every describe() shares."""

from __future__ import annotations

import pytest

from horde.clock import FakeClock
from horde.load import ClosedUsers, LoadModel, LocalNode, PlanContext, Planner, PlanStep, ShapeModel
from horde.load.model import format_duration, format_rate
from horde.shape import LoadTestShape


class Shopper:
    weight = 3


def test_plan_step_kinds() -> None:
    assert PlanStep(delay=1.0).is_wakeup
    assert not PlanStep({"w1": {"A": 1}}).is_wakeup
    assert not PlanStep(complete=True).is_wakeup
    assert not PlanStep(end="done").is_wakeup
    step = PlanStep({"w1": {"A": 1}}, 0.5, rebalance=True)
    assert (step.delay, step.rebalance, step.complete, step.end, dict(step.totals)) == (
        0.5,
        True,
        False,
        None,
        {},
    )


def test_local_node_and_context_defaults() -> None:
    assert LocalNode().id == "local" and LocalNode("me").id == "me"
    context = PlanContext()
    assert context.user_classes == () and context.dispatcher_class is None


def test_built_in_models_and_planners_satisfy_the_protocols() -> None:
    class Flat(LoadTestShape):
        def tick(self):  # type: ignore[no-untyped-def]
            return (1, 1)

    clock = FakeClock()
    for model in (ClosedUsers([Shopper], 1, 1), ShapeModel(Flat(), [Shopper])):
        assert isinstance(model, LoadModel)
        assert isinstance(model.planner([LocalNode()], PlanContext(clock)), Planner)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "0.5s"),
        (59, "59s"),
        (60, "1m"),
        (90, "1m30s"),
        (90.5, "1m30.5s"),
        (300, "5m"),
        (3600, "1h"),
        (5400, "1h30m"),
        (3661, "1h1m1s"),
        (86400, "24h"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("rate", "text"), [(10, "10/s"), (0.5, "0.5/s"), (2.25, "2.25/s"), (1000, "1000/s")])
def test_format_rate(rate: float, text: str) -> None:
    assert format_rate(rate) == text
