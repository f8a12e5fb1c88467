"""A load model defined outside horde runs on a real LocalRunner through the public seams only.

The model below ("3 users per worker", plan kind ``per-worker``) and its applier live in this file. It is
registered with ``register_kind`` and started with ``start_load``: no runner knows about it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from horde import User, constant, task
from horde.clock import FakeClock
from horde.dispatch import canonical_class_counts
from horde.env import Environment
from horde.exceptions import ConfigurationError
from horde.load import (
    LoadHost,
    LoadModel,
    Node,
    PlanContext,
    PlanStep,
    UnknownPlanKind,
    register_kind,
    unregister_kind,
)

KIND = "per-worker"


class PerWorker:
    """``users`` users on every worker, all at once."""

    kind = KIND

    def __init__(self, users: int = 3) -> None:
        self.users = users

    def validate(self) -> list[str]:
        return [] if self.users >= 0 else [f"Users per worker must be 0 or more, got {self.users}."]

    def describe(self) -> str:
        return f"{self.users} users on every worker"

    def planner(self, workers: Iterable[Node], context: PlanContext) -> PerWorkerPlanner:
        return PerWorkerPlanner(self.users, [n.id for n in workers])


class PerWorkerPlanner:
    kind = KIND
    spawn_rate = 0.0

    def __init__(self, users: int, workers: list[str]) -> None:
        self.users = users
        self.workers = workers
        self.unsent = list(workers)
        self.marker_owed = False

    @property
    def target_user_count(self) -> int:
        return self.users * len(self.workers)

    def add_worker(self, node: Node) -> None:
        self.workers.append(node.id)
        self.unsent.append(node.id)

    def remove_worker(self, worker_id: str) -> None:
        self.workers.remove(worker_id)

    def retarget(self, model: LoadModel) -> bool:
        if not isinstance(model, PerWorker):
            return False
        self.users = model.users
        self.unsent = list(self.workers)
        return True

    def __iter__(self) -> Iterator[PlanStep]:
        return self

    def __next__(self) -> PlanStep:
        if self.unsent:
            payloads = {wid: {"users": self.users} for wid in self.unsent}
            self.unsent = []
            self.marker_owed = True
            return PlanStep(payloads)
        if self.marker_owed:
            self.marker_owed = False
            return PlanStep(complete=True)
        raise StopIteration


class PerWorkerApplier:
    """What a process does with a ``per-worker`` payload: run that many users, split by weight."""

    instances: list[PerWorkerApplier] = []

    def __init__(self, host: LoadHost) -> None:
        self.host = host
        self.payloads: list[Any] = []
        self.stopped = False
        PerWorkerApplier.instances.append(self)

    async def apply(self, payload: Any) -> None:
        self.payloads.append(payload)
        env = self.host.environment
        targets = canonical_class_counts(env.user_classes, payload["users"])
        await self.host.users.apply(targets, env.user_classes_by_name(), env.stop_timeout)

    async def stop(self) -> None:
        self.stopped = True


@pytest.fixture(autouse=True)
def per_worker_kind() -> Iterator[None]:
    PerWorkerApplier.instances.clear()
    register_kind(KIND, PerWorkerApplier)
    yield
    unregister_kind(KIND)


class Idle(User):
    wait_time = constant(600)

    @task
    async def rest(self) -> None: ...


class Busy(Idle):
    weight = 2


async def test_a_test_only_model_runs_on_a_local_runner() -> None:
    env = Environment(user_classes=[Idle, Busy], clock=FakeClock())
    completed: list[int] = []
    env.events.spawning_complete.add_listener(lambda user_count: completed.append(user_count))
    runner = env.create_local_runner()
    await runner.start_load(PerWorker(3))
    assert runner.user_count == 3 and runner.user_classes_count == {"Idle": 1, "Busy": 2}
    assert runner.state == "running" and runner.target_user_count == 3 and completed == [3]
    (applier,) = PerWorkerApplier.instances
    assert applier.payloads == [{"users": 3}] and applier.host is runner

    await runner.start_load(PerWorker(6))  # a re-target of the same kind: no new test
    assert runner.user_count == 6 and completed == [3, 6] and len(PerWorkerApplier.instances) == 1

    await runner.stop()
    assert applier.stopped and runner.user_count == 0 and runner.state == "stopped"
    await runner.quit()


async def test_switching_to_another_kind_is_a_fresh_test() -> None:
    env = Environment(user_classes=[Idle], clock=FakeClock())
    fired: list[str] = []
    env.events.test_start.add_listener(lambda environment: fired.append("start"))
    env.events.test_stop.add_listener(lambda environment: fired.append("stop"))
    runner = env.create_local_runner()
    await runner.start(5, 100)
    assert runner.user_count == 5
    await runner.start_load(PerWorker(2))
    assert runner.user_count == 2 and fired == ["start", "stop", "start"]
    (applier,) = PerWorkerApplier.instances
    await runner.start(4, 100)
    assert applier.stopped and runner.user_count == 4
    assert fired == ["start", "stop", "start", "stop", "start"]
    await runner.quit()


async def test_an_invalid_or_unknown_model_fails_at_start() -> None:
    env = Environment(user_classes=[Idle])
    runner = env.create_local_runner()
    with pytest.raises(
        ConfigurationError, match=r"cannot start 'per-worker' load: Users per worker must be 0"
    ):
        runner.start_load(PerWorker(-1))

    class Nameless(PerWorker):
        kind = "nobody-registered-this"

    with pytest.raises(UnknownPlanKind, match="nobody-registered-this"):
        runner.start_load(Nameless())
    assert runner.state == "ready"
    await runner.quit()


def test_the_same_model_plans_for_a_cluster_whose_workers_change() -> None:
    from dataclasses import dataclass

    from horde.load import StepDriver

    @dataclass(frozen=True)
    class Worker:
        id: str

    clock = FakeClock(start=0.0)
    driver = StepDriver(PerWorker(3).planner([Worker("w1"), Worker("w2")], PlanContext(clock)), clock)
    driver.start()
    first = driver.pop_due()
    assert [dict(s.payloads) for s in first] == [{"w1": {"users": 3}, "w2": {"users": 3}}, {}]
    assert first[-1].complete and driver.idle
    driver.add_worker(Worker("w3"))
    assert [dict(s.payloads) for s in driver.pop_due()] == [{"w3": {"users": 3}}, {}]
    assert driver.planner.target_user_count == 9
