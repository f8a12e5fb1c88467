"""UsersDispatcher invariants over random histories (hypothesis), and how rare moves are.

Every history mixes targets, spawn rates, workers joining and leaving (1-50 workers, several hosts) and
classes with random weights and fixed counts. After every step and at the end of every dispatch the
invariants of docs/dispatch.md are checked; see the individual tests for which one each asserts.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from horde.dispatch import DispatchStep, UsersDispatcher, canonical_class_counts

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Node:
    def __init__(self, node_id: str) -> None:
        self.id = node_id


def user(name: str, weight: float = 1, fixed_count: int = 0) -> type:
    return type(name, (), {"weight": weight, "fixed_count": fixed_count})


Users = dict[str, dict[str, int]]


def spreads(users: Users) -> tuple[int, int]:
    """(spread of worker totals, largest spread of one class over workers)."""
    per_worker = [sum(r.values()) for r in users.values()]
    names = next(iter(users.values()))
    per_class = max(max(r[n] for r in users.values()) - min(r[n] for r in users.values()) for n in names)
    return max(per_worker) - min(per_worker), per_class


def class_totals(users: Users) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in users.values():
        for name, n in row.items():
            out[name] = out.get(name, 0) + n
    return out


def flows(before: Users, after: Users) -> tuple[int, int, int]:
    """(starts, stops, moves) between two maps over the workers present in both (joiners start from 0)."""
    starts = stops = 0
    per_class: dict[str, list[int]] = {}
    for wid, row in after.items():
        old = before.get(wid)
        if old is None:
            if wid in before:
                continue
            old = dict.fromkeys(row, 0)
        for name, n in row.items():
            d = n - old[name]
            pc = per_class.setdefault(name, [0, 0])
            if d > 0:
                starts += d
                pc[0] += d
            elif d < 0:
                stops -= d
                pc[1] -= d
    return starts, stops, sum(min(a, b) for a, b in per_class.values())


@st.composite
def classes_st(draw: st.DrawFn) -> list[type]:
    size = draw(st.integers(min_value=1, max_value=6))
    out = [
        user(
            f"C{i}",
            draw(st.sampled_from([1, 1, 2, 3, 5, 10, 0.5, 1.5, 0])),
            draw(st.sampled_from([0, 0, 0, 0, 1, 2, 4])),
        )
        for i in range(size)
    ]
    if not any(c.weight > 0 for c in out):
        out.append(user("Weighted", 1))
    return out


@st.composite
def worker_ids_st(draw: st.DrawFn, max_workers: int = 50) -> list[str]:
    hosts = draw(st.integers(min_value=1, max_value=5))
    count = draw(st.integers(min_value=1, max_value=max_workers))
    return [f"host{draw(st.integers(0, hosts - 1))}_{i:04x}" for i in range(count)]


RATES = st.sampled_from([0.5, 1, 2, 2.4, 3, 7, 25, 1000])


@dataclass
class Checker:
    """Runs dispatches and asserts the per-step invariants; counts moves for the rarity figures."""

    d: UsersDispatcher
    classes: list[type]
    users: Users = field(default_factory=dict)
    ramp_moves: int = 0
    ramp_users: int = 0

    def run(self, target: int, rate: float) -> list[DispatchStep]:
        self.d.new_dispatch(target, rate)
        k = max(1, math.floor(rate))
        # Pacing model: a paced step owes the next one a pause of (its budget / its rate); a rebalance done
        # at once (rebalance_rate=0) takes no pause and leaves what was owed for the next step.
        rr = self.d.rebalance_rate
        rebalance_budget = None if rr == 0 else max(1, math.floor(rr or rate))
        owed = 0.0
        steps = []
        for step in self.d:
            steps.append(step)
            users = step.users
            assert set(users) == set(self.d.worker_ids)
            assert step.user_count == sum(map(sum, (r.values() for r in users.values())))
            starts, stops, moves = flows(self.users, users)
            assert moves == step.moves
            if not step.rebalance:
                assert step.delay == owed
                owed = k / rate
                # a ramp step starts (or stops) at most k users beyond its moves, and lands on the canonical
                # class totals for its own total, with worker totals within one
                assert min(starts, stops) == moves
                assert max(starts, stops) - moves <= k
                assert class_totals(users) == canonical_class_counts(self.classes, step.user_count)
                assert spreads(users)[0] <= 1
                if self.users and self.users.keys() == users.keys() and spreads(self.users)[1] <= 1:
                    assert spreads(users)[1] <= 1  # each class within one, unless a rebalance relaxed it
                self.ramp_moves += moves
                self.ramp_users += abs(starts - stops)
            elif rebalance_budget is None:
                assert step.delay == 0
            else:
                assert step.delay == owed
                owed = rebalance_budget / (rr or rate)
                assert starts <= rebalance_budget and stops <= rebalance_budget  # rebalances are paced too
            self.users = users
        # at the end of every dispatch: balanced, canonical class totals, target reached (or unreachable)
        if self.d.worker_ids:
            final = self.d.current_users
            assert spreads(final)[0] <= 1
            total = sum(map(sum, (r.values() for r in final.values())))
            assert self.d.class_totals() == canonical_class_counts(self.classes, total)
            if total != target:
                assert (
                    total < target and canonical_class_counts(self.classes, target) == self.d.class_totals()
                )
        return steps


@pytest.mark.slow  # hypothesis over many random histories: seconds of CPU
@settings(SETTINGS, max_examples=100)
@given(
    classes_st(),
    worker_ids_st(),
    st.lists(st.tuples(st.integers(0, 150), RATES), min_size=1, max_size=8),
)
def test_ramps_are_exact_balanced_and_path_independent(
    classes: list[type], ids: list[str], plan: list[tuple[int, float]]
) -> None:
    d = UsersDispatcher([Node(i) for i in ids], classes)
    checker = Checker(d, classes)
    for target, rate in plan:
        checker.run(target, rate)
        assert spreads(d.current_users)[1] <= 1  # no worker changes: every class within one, always


@pytest.mark.slow  # hypothesis over many random histories: seconds of CPU
@settings(SETTINGS, max_examples=200)
@given(
    classes_st(),
    worker_ids_st(max_workers=30),
    st.lists(
        st.tuples(
            st.integers(0, 80),
            RATES,
            st.sampled_from(["none", "none", "add", "remove", "both"]),
            st.integers(0, 10_000),
        ),
        min_size=1,
        max_size=8,
    ),
    st.sampled_from([None, None, 0, 5]),
)
def test_worker_churn_keeps_totals_exact_and_balanced(
    classes: list[type], ids: list[str], plan: list[tuple[int, float, str, int]], rebalance_rate: float | None
) -> None:
    d = UsersDispatcher([Node(i) for i in ids], classes, rebalance_rate=rebalance_rate)
    checker = Checker(d, classes)
    fresh = 0
    for target, rate, change, pick in plan:
        if change in ("remove", "both") and d.worker_ids:
            d.remove_worker(d.worker_ids[pick % len(d.worker_ids)])
        if change in ("add", "both"):
            fresh += 1
            d.add_worker(Node(f"host{pick % 4}_new{fresh:03d}"))
        checker.run(target, rate)


@SETTINGS
@given(classes_st(), worker_ids_st(), st.integers(1, 400), st.integers(1, 5), RATES)
def test_losing_workers_only_replaces_their_users(
    classes: list[type], ids: list[str], total: int, lost: int, rate: float
) -> None:
    d = UsersDispatcher([Node(i) for i in ids], classes)
    d.new_dispatch(total, 1000)
    list(d)
    reached = d.user_count
    before = d.current_users
    for wid in d.worker_ids[:lost]:
        d.remove_worker(wid)
    if not d.worker_ids:
        return
    d.new_dispatch(total, rate)  # what the runner does after a worker loss
    previous = {w: r for w, r in before.items() if w in d.worker_ids}
    for step in d:
        assert step.rebalance and step.moves == 0
        for wid, row in step.users.items():  # survivors never lose a user
            assert all(row[n] >= previous[wid][n] for n in row)
        previous = step.users
    assert d.user_count == reached
    assert spreads(d.current_users)[0] <= 1
    assert d.class_totals() == class_totals(before)


@SETTINGS
@given(classes_st(), worker_ids_st(max_workers=30), st.integers(1, 400), st.integers(1, 4), RATES)
def test_joining_workers_receive_just_their_share(
    classes: list[type], ids: list[str], total: int, joined: int, rate: float
) -> None:
    d = UsersDispatcher([Node(i) for i in ids], classes)
    d.new_dispatch(total, 1000)
    list(d)
    before = d.current_users
    new = [f"zzz{i}_new" for i in range(joined)]
    for wid in new:
        d.add_worker(Node(wid))
    d.new_dispatch(d.user_count, rate)
    steps = list(d)
    final = d.current_users
    assert spreads(final)[0] <= 1
    assert d.class_totals() == class_totals(before)
    # every user that moved went to a newcomer, and newcomers got exactly what balance requires
    assert sum(s.moves for s in steps) == sum(sum(final[w].values()) for w in new)
    for wid in before:
        assert all(final[wid][n] <= before[wid][n] for n in final[wid])
    assert sum(sum(final[w].values()) for w in new) == sum(
        sum(r.values()) - sum(final[w].values()) for w, r in before.items()
    )


@pytest.mark.slow  # a large population of random ramps: seconds of CPU
def test_moves_are_rare() -> None:
    """Stop-one-start-one moves in ramps without worker changes, over a fixed random population.

    Measured when this test was written: 61 moves for 34,813 users started or stopped (0.18 %) in this
    population; by rate, about 0.3 % at rate 1, 0.15-0.3 % at rates 2-7 and 0.02 % at high rates (whole
    rounds planned in one step). The bound leaves room for harmless changes in tie-breaking.
    """
    rng = random.Random(20240601)
    moves = users = 0
    for _ in range(120):
        classes = [
            user(f"C{i}", rng.choice([1, 1, 2, 3, 0.5, 5, 10]), rng.choice([0, 0, 0, 1, 3]))
            for i in range(rng.randint(1, 6))
        ]
        ids = [f"h{rng.randrange(3)}_{i:03x}" for i in range(rng.randint(1, 12))]
        checker = Checker(UsersDispatcher([Node(i) for i in ids], classes), classes)
        for _ in range(8):
            checker.run(rng.randint(0, 120), rng.choice([1, 2, 3, 7, 50]))
        moves += checker.ramp_moves
        users += checker.ramp_users
    assert users > 20_000
    assert moves / users < 0.006, (moves, users)


def test_large_ramp_up_and_down() -> None:  # D11: 100k users, 50 classes, 1000 workers, rate 5000
    rng = random.Random(11)
    classes = [
        user(f"U{i:02d}", rng.randint(1, 10), rng.randint(1, 20) if i % 3 == 0 else 0) for i in range(50)
    ]
    d = UsersDispatcher([Node(f"host{i % 50:02d}_{i:04x}") for i in range(1000)], classes)
    for target in (100_000, 0):
        d.new_dispatch(target, 5000)
        slowest = 0.0
        started = time.perf_counter()
        for step in d:
            slowest = max(slowest, time.perf_counter() - started)
            assert max(spreads(step.users)) <= 1
            assert class_totals(step.users) == canonical_class_counts(classes, step.user_count)
            assert step.moves == 0
            started = time.perf_counter()
        assert d.user_count == target
        assert slowest < 1.0  # ~0.1 s on the development machine; the spec asks for <= 0.2 s
