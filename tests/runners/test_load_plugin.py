"""A new load model is a new module and a new plan kind, not a runner edit: the proof.

``PerWorker`` below holds a constant number of users on *every* worker (3 by default), whatever the
number of workers: a model the runners have never heard of, with its own plan kind and applier, plugged in
through the public seams only (``LoadModel``, ``PlanStep``, ``register_kind``), and run on a master with
workers over the in-memory transport, all on a FakeClock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import pytest

from horde.load import LoadHost, LoadModel, Node, PlanContext, PlanStep, register_kind, unregister_kind
from tests.runners.cluster import HB, LIVENESS, MemoryCluster

KIND = "test-per-worker"


class PerWorker:
    """``users`` users of ``user_class`` on each worker."""

    kind = KIND

    def __init__(self, user_class: type, users: int = 3) -> None:
        self.user_class = user_class
        self.users = users

    def validate(self) -> list[str]:
        problems = []
        if not isinstance(self.users, int) or self.users < 0:
            problems.append(f"users per worker must be a whole number of 0 or more, got {self.users!r}.")
        if not isinstance(self.user_class, type):
            problems.append(f"the user class must be a class, got {self.user_class!r}.")
        return problems

    def describe(self) -> str:
        return f"{self.users} {self.user_class.__name__} users on every worker"

    def planner(self, workers: Iterable[Node], context: PlanContext) -> PerWorkerPlanner:
        return PerWorkerPlanner(self, workers)


class PerWorkerPlanner:
    kind = KIND

    def __init__(self, model: PerWorker, workers: Iterable[Node]) -> None:
        self.model = model
        self.workers = {n.id for n in workers}
        self.told: set[str] = set()
        self.complete_due = False

    @property
    def target_user_count(self) -> int:
        return self.model.users * len(self.workers)

    @property
    def spawn_rate(self) -> float:
        return 0.0

    def add_worker(self, node: Node) -> None:
        self.workers.add(node.id)

    def remove_worker(self, worker_id: str) -> None:
        self.workers.discard(worker_id)
        self.told.discard(worker_id)

    def retarget(self, model: LoadModel) -> bool:
        if not isinstance(model, PerWorker):
            return False
        self.model, self.told = model, set()
        return True

    def __iter__(self) -> Iterator[PlanStep]:
        return self

    def __next__(self) -> PlanStep:
        new = sorted(self.workers - self.told)
        if new:
            self.told.update(new)
            self.complete_due = True
            payload = {"class": self.model.user_class.__name__, "users": self.model.users}
            return PlanStep(payloads={w: payload for w in new})
        if self.complete_due:
            self.complete_due = False
            totals = {self.model.user_class.__name__: self.target_user_count}
            return PlanStep(complete=True, totals=totals)
        raise StopIteration


class PerWorkerApplier:
    """The worker side of the kind: run exactly ``users`` users of ``class``."""

    applied: list[tuple[str, Any]] = []
    stopped: list[str] = []

    def __init__(self, host: LoadHost) -> None:
        self.host = host

    async def apply(self, payload: Any) -> None:
        env = self.host.environment
        worker_id = getattr(self.host, "node_id", "?")
        PerWorkerApplier.applied.append((worker_id, payload))
        await self.host.users.apply(
            {payload["class"]: payload["users"]}, env.user_classes_by_name(), env.stop_timeout
        )

    async def stop(self) -> None:
        PerWorkerApplier.stopped.append(getattr(self.host, "node_id", "?"))


@pytest.fixture
async def cluster() -> AsyncIterator[MemoryCluster]:
    register_kind(KIND, PerWorkerApplier)
    PerWorkerApplier.applied, PerWorkerApplier.stopped = [], []
    c = MemoryCluster()
    c.new_master()
    try:
        yield c
        await c.close()
    finally:
        unregister_kind(KIND)


async def test_a_test_only_model_runs_on_a_master_with_two_workers(cluster: MemoryCluster) -> None:
    master = cluster.master
    first, second = await cluster.add_worker(), await cluster.add_worker()
    alpha = master.environment.user_classes[0]
    model = PerWorker(alpha, users=3)
    assert model.describe() == "3 Alpha users on every worker"
    await cluster.until(master.start_load(model))
    assert cluster.users() == [3, 3] and master.user_count == 6
    assert master.state == "running" and master.target_user_count == 6
    assert master.target_user_classes_count == {"Alpha": 6}
    spawns = [m.data for _, m in cluster.network.server.sent if m.type == "spawn"]  # type: ignore[union-attr]
    assert [s["kind"] for s in spawns] == [KIND, KIND]
    assert all(s["payload"] == {"class": "Alpha", "users": 3} for s in spawns)
    assert sorted(w for w, _ in PerWorkerApplier.applied) == sorted([first.client_id, second.client_id])
    assert all(w.worker_state == "running" for w in cluster.workers)

    third = await cluster.add_worker()  # the model's own rule: every worker gets its 3, newcomers too
    await cluster.advance(HB)
    assert cluster.users() == [3, 3, 3] and master.target_user_count == 9

    cluster.network.disconnect(third.client_id)
    await third._cancel_background()
    cluster.workers.remove(third)
    await cluster.advance(HB * LIVENESS + 2 * HB)
    assert [n.id for n in master.nodes.missing] == [third.client_id]
    assert cluster.users() == [3, 3]  # nothing to re-place: each survivor already runs its 3

    await cluster.until(master.stop())
    assert cluster.users() == [0, 0] and master.state == "stopped"
    assert sorted(PerWorkerApplier.stopped) == sorted([first.client_id, second.client_id])
    lost = third.environment.stats.total.num_requests  # measured by the killed worker, never reported
    assert master.environment.stats.total.num_requests == cluster.fired.count - lost > 0


async def test_retargeting_the_running_model_and_switching_models(cluster: MemoryCluster) -> None:
    master = cluster.master
    for _ in range(2):
        await cluster.add_worker()
    alpha, beta = master.environment.user_classes
    await cluster.until(master.start_load(PerWorker(alpha, users=3)))
    await cluster.until(master.start_load(PerWorker(beta, users=1)))  # same kind: re-targeted in place
    assert [w.user_classes_count for w in cluster.workers] == [{"Beta": 1}, {"Beta": 1}]
    await cluster.until(master.start(4, 100))  # another kind: the test is stopped, a fresh one starts
    assert sorted(cluster.users()) == [2, 2]
    assert sorted(PerWorkerApplier.stopped) == sorted(w.client_id for w in cluster.workers)


async def test_a_returning_worker_is_fenced_then_given_its_share_again(cluster: MemoryCluster) -> None:
    master = cluster.master
    await cluster.add_worker()
    quiet = await cluster.add_worker()
    await cluster.until(master.start_load(PerWorker(master.environment.user_classes[0], users=3)))
    cluster.network.partition(quiet.client_id, from_master=False)
    await cluster.advance(HB * LIVENESS + HB)
    assert [n.id for n in master.nodes.missing] == [quiet.client_id]
    assert cluster.users() == [3, 3]  # a partition: it still runs them, the master no longer counts them
    PerWorkerApplier.stopped.clear()
    cluster.network.heal(quiet.client_id)
    await cluster.advance(2 * HB)
    assert not master.nodes.missing and cluster.users() == [3, 3]
    assert PerWorkerApplier.stopped == [quiet.client_id]  # the fence stopped its plan kind first
    to_quiet = [m.data for i, m in cluster.network.server.sent if i == quiet.client_id and m.type == "spawn"]  # type: ignore[union-attr]
    assert to_quiet[-2]["fence"] and to_quiet[-1]["kind"] == KIND
    assert master.user_count == 6


async def test_an_invalid_model_is_refused_with_every_problem(cluster: MemoryCluster) -> None:
    from horde.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError) as exc:
        cluster.master.start_load(PerWorker("Alpha", users=-1))  # type: ignore[arg-type]
    assert "users per worker" in str(exc.value) and "must be a class" in str(exc.value)


async def test_a_worker_that_does_not_know_the_plan_kind_stops_the_test() -> None:
    c = MemoryCluster()
    master = c.new_master()
    await c.add_worker()
    master.start_load(PerWorker(master.environment.user_classes[0]))  # kind not registered anywhere
    await c.until(master.wait_stopped())
    assert master.stop_reason is not None and KIND in master.stop_reason
    await c.close()
