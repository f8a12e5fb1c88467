"""load.closed: ClosedUsers validates and describes itself; its planner is the UsersDispatcher plus markers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pytest

from horde.clock import FakeClock
from horde.dispatch import UsersDispatcher
from horde.load import ClosedUsers, LocalNode, PlanContext, PlanStep, ShapeModel, UsersApplier
from horde.shape import LoadTestShape


def user_class(name: str, weight: Any = 1, fixed_count: Any = 0) -> type:
    return type(name, (), {"weight": weight, "fixed_count": fixed_count})


Shopper = user_class("Shopper", 3)
Admin = user_class("Admin", 1)
Boss = user_class("Boss", 1, fixed_count=2)


@dataclass(frozen=True)
class Worker:
    id: str
    hostname: str = "h"


def context() -> PlanContext:
    return PlanContext(clock=FakeClock())


def drain(planner: Any) -> list[PlanStep]:
    return list(planner)


# ---- validate ----------------------------------------------------------------------------------------
def test_a_sound_model_has_no_problems() -> None:
    assert ClosedUsers([Shopper, Admin], 100, 10, run_time=300).validate() == []
    assert ClosedUsers([Shopper], 0, 0.1).validate() == []
    assert ClosedUsers([Shopper, Admin], 5, 1, classes=["Admin"]).validate() == []
    assert ClosedUsers([Shopper, Admin], 5, 1, classes=[Admin]).validate() == []
    assert ClosedUsers([Shopper], 10.0, 1).validate() == []  # a whole float is a count
    assert ClosedUsers([Shopper], 10.0, 1).user_count == 10


def test_every_problem_is_reported_at_once() -> None:
    problems = ClosedUsers([Shopper], -1, float("nan"), classes=["Ghost"], run_time=-5).validate()
    assert problems == [
        "The user count must be a whole number of 0 or more, got -1.",
        "The spawn rate must be a finite number of users per second above 0, got nan.",
        "The run time must be a finite number of seconds above 0, got -5.",
        "The class selection names Ghost, not among the user classes (Shopper).",
    ]
    assert all(p[0].isupper() and p.endswith(".") for p in problems)


@pytest.mark.parametrize(
    ("count", "wrong"),
    [(-1, True), (float("nan"), True), (2.5, True), (True, True), ("3", True), (None, True), (0, False)],
)
def test_user_count_problems(count: Any, wrong: bool) -> None:
    problems = ClosedUsers([Shopper], count, 1).validate()
    assert bool(problems) is wrong
    if wrong:
        assert problems == [f"The user count must be a whole number of 0 or more, got {count!r}."]


@pytest.mark.parametrize("rate", [0, -1, float("nan"), float("inf"), "fast", None, False])
def test_spawn_rate_problems(rate: Any) -> None:
    assert ClosedUsers([Shopper], 1, rate).validate() == [
        f"The spawn rate must be a finite number of users per second above 0, got {rate!r}."
    ]


def test_class_problems() -> None:
    assert ClosedUsers([], 1, 1).validate() == ["There are no user classes to run."]
    zero_a, zero_b = user_class("A", 0), user_class("B", 0)
    assert ClosedUsers([zero_a, zero_b], 1, 1).validate() == [
        "Every user class has weight 0 and no fixed_count, so no user can be started (A, B)."
    ]
    bad = [user_class("W", float("nan")), user_class("N", -1), user_class("F", 1, fixed_count=-2)]
    assert ClosedUsers(bad, 1, 1).validate() == [
        "W.weight must be a finite number of 0 or more, got nan.",
        "N.weight must be a finite number of 0 or more, got -1.",
        "F.fixed_count must be a whole number of 0 or more, got -2.",
    ]
    assert ClosedUsers([Shopper, user_class("Shopper")], 1, 1).validate() == [
        "User class names must be unique; Shopper appear more than once."
    ]


def test_selection_problems() -> None:
    zero = user_class("Zero", 0)
    model = ClosedUsers([Shopper, zero], 1, 1, classes=["Zero", "Ghost", "Zero", "Spook"])
    assert model.validate() == [
        "The class selection names Ghost, Spook, not among the user classes (Shopper, Zero).",
        "The class selection lists Zero more than once.",
    ]
    assert ClosedUsers([Shopper, zero], 1, 1, classes=[zero]).validate() == [
        "No selected class can be started: Zero all have weight 0 and no fixed_count."
    ]
    assert ClosedUsers([Shopper], 1, 1, classes=[]).validate() == []  # new users from no class: ramps down


def test_all_problems_of_every_kind_together() -> None:
    problems = ClosedUsers([user_class("Z", 0)], -3, 0, classes=["Q"], run_time=float("nan")).validate()
    assert len(problems) == 5


# ---- describe ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "text"),
    [
        (
            ClosedUsers([Shopper, Admin], 100, 10, run_time=300),
            "100 users at 10/s, weights Shopper 3 : Admin 1, for 5m",
        ),
        (ClosedUsers([Shopper], 100, 10), "100 Shopper users at 10/s"),
        (ClosedUsers([Shopper], 1, 0.5, run_time=90), "1 Shopper user at 0.5/s, for 1m30s"),
        (
            ClosedUsers([Shopper, Admin, Boss], 1, 2),
            "1 user at 2/s, weights Shopper 3 : Admin 1, fixed Boss 2",
        ),
        (ClosedUsers([Boss], 2, 2), "2 users at 2/s, fixed Boss 2"),
        (
            ClosedUsers([Shopper, Admin], 4, 1, classes=[Admin]),
            "4 users at 1/s, weights Shopper 3 : Admin 1, new users from Admin only",
        ),
        (
            ClosedUsers([Shopper, user_class("Light", 0.5)], 3, 1),
            "3 users at 1/s, weights Shopper 3 : Light 0.5",
        ),
    ],
)
def test_describe(model: ClosedUsers, text: str) -> None:
    assert model.describe() == text
    assert repr(model) == f"ClosedUsers({text!r})"


def test_describe_never_raises_on_an_invalid_model() -> None:
    assert ClosedUsers([], -1, float("nan")).describe() == "-1 users at nan/s"
    assert ClosedUsers([user_class("W", "x")], 1, "fast").describe() == "1 W user at 'fast'"


# ---- planning ----------------------------------------------------------------------------------------
def test_ramp_steps_then_one_complete_marker() -> None:
    planner = ClosedUsers([Shopper, Admin], 4, 2).planner([LocalNode()], context())
    assert planner.kind == "users" and planner.target_user_count == 4 and planner.spawn_rate == 2
    steps = drain(planner)
    assert [s.delay for s in steps] == [0.0, 1.0, 0.0]
    assert [dict(s.payloads) for s in steps[:2]] == [
        {"local": {"Admin": 1, "Shopper": 1}},
        {"local": {"Admin": 1, "Shopper": 3}},
    ]
    marker = steps[-1]
    assert marker.complete and not marker.rebalance and not marker.payloads
    assert dict(marker.totals) == {"Admin": 1, "Shopper": 3}
    assert drain(planner) == []  # nothing more until something changes


def test_the_planner_is_the_dispatcher_s_plan() -> None:
    workers = [Worker("w1"), Worker("w2", "other")]
    planner = ClosedUsers([Shopper, Admin], 10, 3).planner(workers, context())
    dispatcher = UsersDispatcher(workers, [Shopper, Admin])
    dispatcher.new_dispatch(10, 3)
    expected = [(s.users, s.delay, s.rebalance) for s in dispatcher]
    got = [(dict(s.payloads), s.delay, s.rebalance) for s in drain(planner) if not s.complete]
    assert got == expected
    assert planner.dispatcher.user_count == 10


def test_retarget_takes_closed_users_only() -> None:
    planner = ClosedUsers([Shopper], 10, 1).planner([LocalNode()], context())
    next(planner)
    assert planner.retarget(ClosedUsers([Shopper], 3, 100))
    assert planner.target_user_count == 3 and planner.spawn_rate == 100
    steps = drain(planner)
    assert dict(steps[0].payloads) == {"local": {"Shopper": 3}} and steps[-1].complete

    class Flat(LoadTestShape):
        def tick(self):  # type: ignore[no-untyped-def]
            return (1, 1)

    assert not planner.retarget(ShapeModel(Flat()))


def test_retarget_mid_ramp_abandons_it_and_completes_once() -> None:
    planner = ClosedUsers([Shopper], 10, 1).planner([LocalNode()], context())
    next(planner)
    next(planner)
    planner.retarget(ClosedUsers([Shopper], 1, 5))
    steps = drain(planner)
    assert [s.complete for s in steps] == [False, True]
    assert dict(steps[0].payloads) == {"local": {"Shopper": 1}}


def test_a_joining_worker_gets_a_rebalance_and_a_rebalance_marker() -> None:
    planner = ClosedUsers([Shopper], 4, 100).planner([Worker("w1")], context())
    drain(planner)
    planner.add_worker(Worker("w2", "h2"))
    steps = drain(planner)
    assert all(s.rebalance for s in steps) and steps[-1].complete
    assert dict(steps[-2].payloads) == {"w1": {"Shopper": 2}, "w2": {"Shopper": 2}}
    planner.add_worker(Worker("w2", "h2"))  # known already: nothing to do
    assert drain(planner) == []


def test_a_lost_worker_s_users_are_replaced() -> None:
    planner = ClosedUsers([Shopper], 4, 100).planner([Worker("w1"), Worker("w2", "h2")], context())
    drain(planner)
    planner.remove_worker("w2")
    steps = drain(planner)
    assert dict(steps[-2].payloads) == {"w1": {"Shopper": 4}} and steps[-1].complete and steps[-1].rebalance
    planner.remove_worker("nobody")
    assert drain(planner) == []


def test_a_ramp_folding_in_a_worker_change_is_not_a_rebalance() -> None:
    planner = ClosedUsers([Shopper], 6, 2).planner([Worker("w1")], context())
    next(planner)
    planner.add_worker(Worker("w2", "h2"))
    steps = drain(planner)
    assert steps[-1].complete and not steps[-1].rebalance


def test_the_context_supplies_classes_and_the_dispatcher() -> None:
    made: list[Any] = []

    class Recording(UsersDispatcher):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            made.append(args)
            super().__init__(*args, **kwargs)

    planner = ClosedUsers([], 2, 1).planner(
        [LocalNode()], PlanContext(FakeClock(), user_classes=[Admin], dispatcher_class=Recording)
    )
    assert len(made) == 1 and made[0][1] == [Admin]
    assert dict(next(planner).payloads) == {"local": {"Admin": 1}}
    own = ClosedUsers([Shopper], 1, 1, dispatcher_class=UsersDispatcher).planner(
        [LocalNode()], PlanContext(FakeClock(), dispatcher_class=Recording)
    )
    assert len(made) == 1 and isinstance(own.dispatcher, UsersDispatcher)


def test_a_very_high_rate_per_process_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="horde.load.closed"):
        ClosedUsers([Shopper], 1000, 150).planner([LocalNode()], context())
    assert "spawn rate is very high" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="horde.load.closed"):
        ClosedUsers([Shopper], 1000, 150).planner([Worker("a"), Worker("b")], context())
    assert caplog.text == ""  # 75 per process


# ---- the "users" applier -------------------------------------------------------------------------------
async def test_users_applier_hands_the_payload_to_the_user_group() -> None:
    calls: list[Any] = []

    class Env:
        stop_timeout = 2.5

        def user_classes_by_name(self) -> dict[str, type]:
            return {"Shopper": Shopper}

    class Users:
        count = 0

        def counts(self) -> dict[str, int]:
            return {}

        async def apply(self, targets: dict[str, int], classes: dict[str, type], stop_timeout: float) -> None:
            calls.append((targets, classes, stop_timeout))

    class Host:
        environment = Env()
        users = Users()

    applier = UsersApplier(Host())  # type: ignore[arg-type]
    await applier.apply({"Shopper": 4})
    await applier.stop()
    assert calls == [({"Shopper": 4}, {"Shopper": Shopper}, 2.5)]
