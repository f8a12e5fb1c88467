"""load.shape: the shape's ticks, one per clock second, re-target closed users; None ends the test."""

from __future__ import annotations

from typing import Any

from horde.clock import SYSTEM_CLOCK, FakeClock
from horde.load import (
    SHAPE_ENDED,
    ClosedUsers,
    LocalNode,
    PlanContext,
    PlanStep,
    ShapeModel,
    ShapeTick,
    ShapeTicker,
    StepDriver,
)
from horde.shape import LoadTestShape


def user_class(name: str, weight: float = 1) -> type:
    return type(name, (), {"weight": weight, "fixed_count": 0})


A, B = user_class("A"), user_class("B")


class Script(LoadTestShape):
    """Returns ``ticks[i]`` at the i-th call, then None."""

    def __init__(self, ticks: list[Any], clock: Any = None) -> None:
        super().__init__(clock)
        self.ticks = list(ticks)
        self.calls: list[float] = []

    def tick(self):  # type: ignore[no-untyped-def]
        self.calls.append(self.get_run_time())
        return self.ticks.pop(0) if self.ticks else None


class Timed(LoadTestShape):
    """(users, rate) by run time: 4 users until 10 s, 2 until 20 s, then the end."""

    def tick(self):  # type: ignore[no-untyped-def]
        t = self.get_run_time()
        return (4, 100) if t < 10 else (2, 100) if t < 20 else None


# ---- the ticker ----------------------------------------------------------------------------------------
def test_ticker_reports_changes_only_and_schedules_a_tick_a_second() -> None:
    clock = FakeClock(start=50.0)
    shape = Script([(2, 1), (2, 1), (3, 2, [B]), (3.0, 2.0, [B])])
    ticker = ShapeTicker(shape, clock)
    assert shape.clock is clock and ticker.due(50.0)
    assert ticker.tick(50.0) == ShapeTick(2, 1, None)
    assert ticker.next_at == 51.0 and not ticker.due(50.99) and ticker.due(51.0 - 1e-12)
    assert ticker.tick(51.0) is None  # same as before
    assert ticker.tick(52.0) == ShapeTick(3, 2, [B])
    assert ticker.tick(53.0) is None  # equal numbers, even as floats
    assert ticker.current == ShapeTick(3, 2, [B])
    assert ticker.tick(54.0) is None and ticker.ended and not ticker.due(100.0)


def test_ticker_binds_the_shape_to_its_clock_and_restarts_its_time() -> None:
    clock = FakeClock(start=10.0)
    shape = Script([(1, 1)])
    assert shape.clock is SYSTEM_CLOCK
    ShapeTicker(shape, clock)
    clock.advance(2.5)
    assert shape.get_run_time() == 2.5


# ---- validate and describe ------------------------------------------------------------------------------
def test_validate() -> None:
    assert ShapeModel(Timed(), [A, B]).validate() == []
    assert ShapeModel(Timed()).validate() == []  # classes come from the runner's context

    class NoTick(LoadTestShape):
        pass

    assert ShapeModel(NoTick()).validate() == ["The load shape NoTick does not implement tick()."]
    assert ShapeModel("steps", [], run_time=-1).validate() == [  # type: ignore[arg-type]
        "The load shape must be a LoadTestShape instance, got 'steps'.",
        "There are no user classes to run.",
        "The run time must be a finite number of seconds above 0, got -1.",
    ]
    assert ShapeModel(Timed(), [user_class("Z", 0)]).validate() == [
        "Every user class has weight 0 and no fixed_count, so no user can be started (Z)."
    ]


def test_describe() -> None:
    assert (
        ShapeModel(Timed()).describe()
        == "users and spawn rate from the load shape Timed, re-read every second"
    )
    assert ShapeModel(Timed(), [user_class("Shopper", 3), user_class("Admin")], run_time=600).describe() == (
        "users and spawn rate from the load shape Timed, re-read every second, weights Shopper 3 : Admin 1, "
        "for at most 10m"
    )


# ---- the planner ------------------------------------------------------------------------------------
def run_plan(model: ShapeModel, seconds: float, workers: Any = None) -> list[tuple[float, PlanStep]]:
    """Drive the planner with a StepDriver the way a timer-driven master would."""
    clock = FakeClock(start=0.0)
    driver = StepDriver(
        model.planner(workers or [LocalNode()], PlanContext(clock, user_classes=[A, B])), clock
    )
    driver.start()
    timeline = []
    while (due := driver.next_due()) is not None and due <= seconds:
        clock.advance(due - clock.monotonic())
        timeline.extend((clock.monotonic(), s) for s in driver.pop_due())
    return timeline


def test_stages_and_the_end() -> None:
    timeline = run_plan(ShapeModel(Timed()), 60)
    assert [(t, dict(s.payloads), s.complete, s.end) for t, s in timeline] == [
        (0.0, {"local": {"A": 2, "B": 2}}, False, None),
        (0.0, {}, True, None),
        (10.0, {"local": {"A": 1, "B": 1}}, False, None),
        (10.0, {}, True, None),
        (20.0, {}, False, SHAPE_ENDED),
    ]


def test_one_tick_per_clock_second() -> None:
    shape = Script([(1, 1)] * 5)
    run_plan(ShapeModel(shape), 60)
    assert shape.calls == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_a_changed_tick_abandons_the_unfinished_ramp() -> None:
    # 10 users at 1/s would take 9 s; at 3 s the shape asks for 2 users
    shape = Script([(10, 1), (10, 1), (10, 1), (2, 100)])
    timeline = run_plan(ShapeModel(shape, [A]), 60)
    counts = [(t, s.payloads["local"]["A"]) for t, s in timeline if s.payloads]
    assert counts == [(0.0, 1), (1.0, 2), (2.0, 3), (3.0, 2)]
    assert [t for t, s in timeline if s.complete] == [3.0]
    assert timeline[-1] == (4.0, PlanStep(end=SHAPE_ENDED))


def test_ramp_steps_between_ticks_keep_their_pace() -> None:
    shape = Script([(6, 2.5)] * 3)  # steps of 2 users every 0.8 s, between ticks every second
    timeline = run_plan(ShapeModel(shape, [A]), 60)
    got = [(round(t, 6), s.payloads["local"]["A"]) for t, s in timeline if s.payloads]
    assert got == [(0.0, 2), (0.8, 4), (1.6, 6)]
    assert shape.calls == [0.0, 1.0, 2.0, 3.0]


def test_class_selection_of_a_tick() -> None:
    shape = Script([(2, 100), (4, 100, [B])])
    timeline = run_plan(ShapeModel(shape), 60)
    maps = [dict(s.payloads["local"]) for _, s in timeline if s.payloads]
    assert maps == [{"A": 1, "B": 1}, {"A": 1, "B": 3}]


def test_an_impossible_tick_ends_the_test_with_the_reason() -> None:
    timeline = run_plan(ShapeModel(Script([(2, 1), (-1, 0)])), 60)
    end = timeline[-1][1].end
    assert end is not None and end.startswith("the load shape asked for an impossible load: The user count")
    assert "The spawn rate" in end


def test_targets_follow_the_ticks() -> None:
    clock = FakeClock(start=0.0)
    planner = ShapeModel(Script([(3, 2), (5, 7)]), [A]).planner([LocalNode()], PlanContext(clock))
    assert (planner.target_user_count, planner.spawn_rate) == (0, 0.0)
    next(planner)
    assert (planner.target_user_count, planner.spawn_rate) == (3, 2)


def test_workers_known_before_the_first_tick_and_joining_later() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Worker:
        id: str
        hostname: str = "h"

    clock = FakeClock(start=0.0)
    planner = ShapeModel(Script([(4, 100)] * 3), [A]).planner([Worker("w1")], PlanContext(clock))
    planner.add_worker(Worker("w2", "h2"))
    planner.remove_worker("w1")
    planner.add_worker(Worker("w3", "h3"))
    first = next(planner)
    assert dict(first.payloads) == {"w2": {"A": 2}, "w3": {"A": 2}}
    planner.remove_worker("w3")  # before the ramp's marker: the ramp re-places w3's users
    assert next(planner).is_wakeup  # paced like the ramp: 4 users at 100/s owe 1 s, which is the next tick
    clock.advance(1.0)
    steps = [next(planner), next(planner)]
    assert dict(steps[0].payloads) == {"w2": {"A": 4}} and steps[0].rebalance
    assert steps[1].complete and not steps[1].rebalance


def test_closed_users_take_over_from_the_shape() -> None:
    clock = FakeClock(start=0.0)
    shape = Script([(4, 100)] * 10)
    planner = ShapeModel(shape, [A]).planner([LocalNode()], PlanContext(clock))
    driver = StepDriver(planner, clock)
    driver.start()
    driver.pop_due()
    assert driver.retarget(ClosedUsers([A], 1, 100))
    steps = driver.pop_due()
    assert [dict(s.payloads) for s in steps] == [{"local": {"A": 1}}, {}] and steps[-1].complete
    assert driver.idle
    clock.advance(10)
    assert driver.pop_due() == [] and shape.calls == [0.0]  # the shape no longer ticks


def test_starting_the_shape_again_is_ignored_and_other_models_are_refused() -> None:
    clock = FakeClock(start=0.0)
    model = ShapeModel(Script([(1, 1)]), [A])
    planner = model.planner([LocalNode()], PlanContext(clock))
    assert planner.retarget(model)

    class Other:
        kind = "other"

    assert not planner.retarget(Other())  # type: ignore[arg-type]


def test_a_shape_with_a_planner_before_any_user() -> None:
    clock = FakeClock(start=0.0)
    planner = ShapeModel(Script([]), [A]).planner([LocalNode()], PlanContext(clock))
    assert next(planner) == PlanStep(end=SHAPE_ENDED)
    assert list(planner) == []
