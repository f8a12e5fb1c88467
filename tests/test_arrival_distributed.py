"""Arrival rates over a master and workers (in-memory transport, FakeClock): the split, the re-split when a
worker joins, leaves or is lost, and the figures summed on the master."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from horde.clock import FakeClock
from horde.load import StepDriver
from horde.load.arrival import ConstantArrivalRate, RampingArrivalRate, split_payloads
from horde.load.arrival_pool import ArrivalApplier, arrival_stats
from horde.load.arrival_schedule import rate_units
from horde.load.model import PlanContext
from tests.runners.cluster import HB, LIVENESS, MemoryCluster

WINDOW = HB * LIVENESS


@dataclass(frozen=True)
class Node:
    id: str


# ---- the split, pure ------------------------------------------------------------------------------------
def test_split_properties_over_random_clusters() -> None:
    rng = random.Random(11)
    for _ in range(300):
        hosts = [f"host{h}" for h in range(rng.randint(1, 4))]
        ids = [f"{rng.choice(hosts)}_{rng.getrandbits(32):08x}" for _ in range(rng.randint(1, 12))]
        rate = round(rng.uniform(0.001, 5000), rng.randint(0, 3))
        top = rng.randint(len(ids), 500)
        pre = rng.randint(0, top)
        model = ConstantArrivalRate(rate, pre_allocated=pre, max_users=top)
        payloads = split_payloads(model, ids, 0.0)
        units = [p["rate_units"][0] for p in payloads.values()]
        assert sum(units) == rate_units(rate)  # the sum is exactly the target, in rounding units
        assert max(units) - min(units) <= 1  # shares differ by at most one unit
        for key, total in (("max_users", top), ("pre_allocated", pre)):
            shares = [p[key] for p in payloads.values()]
            assert sum(shares) == total and max(shares) - min(shares) <= 1


def test_the_extra_units_go_to_other_hosts_first() -> None:
    ids = ["a_1", "a_2", "b_1"]  # host-aware order: a_1, b_1, a_2
    payloads = split_payloads(ConstantArrivalRate(0.002, max_users=5), ids, 0.0)
    assert {w: p["rate_units"][0] for w, p in payloads.items()} == {"a_1": 1, "b_1": 1, "a_2": 0}
    assert {w: p["max_users"] for w, p in payloads.items()} == {"a_1": 2, "b_1": 2, "a_2": 1}


def test_ramps_split_per_stage_so_every_instant_sums() -> None:
    model = RampingArrivalRate([(10, 100), (10, 7)], max_users=9)
    payloads = split_payloads(model, ["a_1", "b_1", "c_1"], 0.0)
    for i in range(3):  # start rate, stage 1, stage 2
        assert sum(p["rate_units"][i] for p in payloads.values()) == rate_units([0, 100, 7][i])


def test_the_planner_re_splits_at_once_when_workers_change() -> None:
    clock = FakeClock(start=0.0)
    model = ConstantArrivalRate(10, max_users=6)
    driver = StepDriver(model.planner([Node("a_1"), Node("b_1")], PlanContext(clock)), clock)
    driver.start()
    first = driver.pop_due()
    assert [s.complete for s in first] == [False, True] and not first[0].rebalance
    assert {w: p["rate_units"][0] for w, p in first[0].payloads.items()} == {"a_1": 5000, "b_1": 5000}
    assert driver.idle  # nothing to do until the workers change: a join re-splits at once
    clock.advance(4.0)
    driver.add_worker(Node("c_1"), clock.monotonic())
    step, marker = driver.pop_due()
    assert step.rebalance and marker.complete and marker.rebalance
    assert {w: p["rate_units"][0] for w, p in step.payloads.items()} == {
        "a_1": 3334,
        "b_1": 3333,
        "c_1": 3333,
    }
    assert {p["elapsed"] for p in step.payloads.values()} == {4.0}
    driver.remove_worker("a_1", clock.monotonic())
    (step, _) = driver.pop_due()
    assert {w: p["rate_units"][0] for w, p in step.payloads.items()} == {"b_1": 5000, "c_1": 5000}
    assert {w: p["max_users"] for w, p in step.payloads.items()} == {"b_1": 3, "c_1": 3}


# ---- a cluster on the fake clock ------------------------------------------------------------------------------
@pytest.fixture
async def cluster() -> AsyncIterator[MemoryCluster]:
    c = MemoryCluster()
    c.new_master(stop_timeout=0.5)
    arrival_stats(c.master.environment)  # the master sums the workers' figures
    yield c
    await c.close()


def share(worker: object) -> float:
    applier = worker._appliers.get("arrival-rate")  # type: ignore[attr-defined]
    assert isinstance(applier, ArrivalApplier) and applier.pool is not None
    return applier.pool.rate


async def test_the_rate_is_split_re_split_on_loss_and_join_and_summed_on_the_master(
    cluster: MemoryCluster,
) -> None:
    a = await cluster.add_worker()
    b = await cluster.add_worker()
    master = cluster.master
    await cluster.until(master.start_load(ConstantArrivalRate(20, pre_allocated=4, max_users=10)))
    assert share(a) == share(b) == 10
    assert a.user_count == b.user_count == 2  # pre_allocated split
    await cluster.advance(5.0)
    assert cluster.fired.count == pytest.approx(100, abs=4)

    # b is killed: for the liveness window its share is lost, then a takes the whole rate at once
    await b._stop_appliers()  # a killed process makes no more arrivals (here: the same event loop)
    await b.users.kill_all()
    cluster.network.disconnect(b.client_id)
    await b._cancel_background()
    cluster.workers.remove(b)
    before = cluster.fired.count
    await cluster.advance(WINDOW + HB)
    assert [n.id for n in master.nodes.missing] == [b.client_id]
    assert share(a) == 20
    mark = cluster.fired.count
    await cluster.advance(5.0)
    assert cluster.fired.count - mark == pytest.approx(100, abs=3)
    assert mark - before >= 10 * (WINDOW + HB) - 3  # a's own share never stopped

    # a third worker joins: 10/s each again, at once
    c = await cluster.add_worker()
    await cluster.advance(0.5)
    assert share(a) == share(c) == 10
    mark = cluster.fired.count
    await cluster.advance(5.0)
    assert cluster.fired.count - mark == pytest.approx(100, abs=3)

    await cluster.until(master.stop())
    figures = arrival_stats(master.environment).figures()
    # every iteration of a and c reached the master; b's last report (up to 3 s of its share) is missing
    assert cluster.fired.count - 10 * 3 - 2 <= figures["iterations"] <= cluster.fired.count
    assert figures["dropped_iterations"] == 0
    assert set(figures["workers"]) >= {a.client_id, c.client_id}


async def test_dropped_iterations_of_every_worker_are_summed_on_the_master(cluster: MemoryCluster) -> None:
    from horde import User, task

    class Slow(User):
        @task
        async def crawl(self) -> None:
            await self.environment.clock.sleep(1.0)

    a = await cluster.add_worker([Slow])
    b = await cluster.add_worker([Slow])
    cluster.master.environment.user_classes = [Slow]
    master = cluster.master
    await cluster.until(master.start_load(ConstantArrivalRate(10, pre_allocated=2, max_users=2)))
    await cluster.advance(4.0)
    await cluster.until(master.stop())
    figures = arrival_stats(master.environment).figures()
    worker_drops = [arrival_stats(w.environment).dropped_iterations for w in (a, b)]
    assert figures["dropped_iterations"] == sum(worker_drops) > 0
    assert figures["iterations"] == sum(arrival_stats(w.environment).iterations for w in (a, b))
