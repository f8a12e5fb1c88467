"""The shortcuts that keep a worker removal fast at 1,000 workers give the answers of the slow rules.

* The host-aware order is patched as workers join and leave: it must equal :func:`worker_order` of the
  remaining ids after every change.
* A rebalance skips the doubly balanced solve when :attr:`_Extras.min_moves` shows it must move more users
  than the fewest-moves plan, and skips the fewest-moves plan when the balanced one moves nobody: the plan
  must be the one the full rule picks (solve both, keep the balanced plan unless it moves more users), and
  ``min_moves`` must never exceed the moves of a balanced plan.
* ``user_count`` is kept (not summed again) and rows are updated in place: through joins, losses and
  ramps the kept figures must match every step's map.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from horde.dispatch import (
    UsersDispatcher,
    _count_moves,
    _Extras,
    _fewest_moves,
    _rebalanced,
    _WorkerOrder,
    worker_order,
)

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 30), st.booleans()), min_size=1, max_size=60),
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 30)), max_size=10),
)
def test_worker_order_is_patched_like_it_is_sorted(
    ops: list[tuple[int, int, bool]], start: list[tuple[int, int]]
) -> None:
    ids = {f"h{h}_{n:02x}" for h, n in start}
    order = _WorkerOrder(ids)
    assert order.ids == worker_order(ids)
    for host, n, add in ops:
        join_or_leave(order, ids, host, n, add)
        assert order.ids == worker_order(ids)


def join_or_leave(order: _WorkerOrder, ids: set[str], host: int, n: int, add: bool) -> None:
    """Worker ``h{host}_{n}`` joins (if new), or the ``n``-th known worker leaves; ``ids`` follows."""
    wid = f"h{host}_{n:02x}"
    if add and wid not in ids:
        ids.add(wid)
        order.add(wid)
    elif not add and ids:
        gone = sorted(ids)[n % len(ids)]
        ids.discard(gone)
        order.remove(gone)


@SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 200), st.booleans()), min_size=1, max_size=80),
    st.integers(0, 40),
    st.sampled_from([0, 2, 32]),
)
def test_worker_order_on_crowded_hosts_is_sorted_again_once_stale(
    ops: list[tuple[int, int, bool]], start: int, limit: int
) -> None:
    # many workers per host: changes past the limit mark the order stale instead of moving key by key,
    # and reading ``ids`` only now and then (as a sweep removing many workers does) still gives the order
    ids = {f"h{n % 2}_{n:02x}" for n in range(start)}
    order = _WorkerOrder(ids)
    order._INCREMENTAL_MOVES = limit
    for i, (host, n, add) in enumerate(ops):
        join_or_leave(order, ids, host, n, add)
        if i % 7 == 0:
            assert order.ids == worker_order(ids)
    assert order.ids == worker_order(ids)


def full_rule(rows: list[list[int]], targets: list[int]) -> list[list[int]]:
    """The rebalancing rule worked out in full (what the dispatcher did before the shortcuts)."""
    fewest = _fewest_moves(rows, targets)
    plan = _Extras(rows, targets).solve(quick=fewest is not None)
    if fewest is not None and (plan is None or _count_moves(rows, plan) > fewest[1]):
        plan = fewest[0]
    assert plan is not None
    return plan


def churned(seed: int) -> tuple[list[list[int]], list[int]]:
    """A nearly balanced placement after random joins and losses, and the class totals to re-place.

    The rows are what a rebalance sees: the leavers' rows gone, the joiners' rows all zero.
    """
    rng = random.Random(seed)
    n_rows, n_cols = rng.randint(1, 40), rng.randint(1, 6)
    level = [rng.randint(0, 30) for _ in range(n_cols)]
    rows = [[max(0, v + rng.randint(-2, 2)) for v in level] for _ in range(n_rows)]
    before = [row[:] for row in rows]
    for _ in range(rng.randint(0, 3)):
        if rows and rng.random() < 0.6:
            rows.pop(rng.randrange(len(rows)))
        else:
            rows.insert(rng.randrange(len(rows) + 1), [0] * n_cols)
    if not rows:
        rows = [[0] * n_cols]
    targets = [sum(col) + rng.randint(-3, 3) for col in zip(*before, strict=True)]
    return rows, [max(0, t) for t in targets]


def test_rebalanced_picks_what_the_full_rule_picks() -> None:
    for seed in range(1500):
        rows, targets = churned(seed)
        assert _rebalanced(rows, targets) == full_rule(rows, targets), seed


def test_min_moves_is_a_lower_bound_of_any_balanced_plan() -> None:
    hit = 0
    for seed in range(1500):
        rows, targets = churned(seed)
        bound = _Extras(rows, targets).min_moves
        plan = _Extras(rows, targets).solve()
        assert plan is not None
        assert bound <= _count_moves(rows, plan), seed
        hit += bound > 0
    assert hit > 100  # the bound is not trivially zero on these shapes


class Node:
    def __init__(self, node_id: str) -> None:
        self.id = node_id


def test_kept_totals_and_order_follow_churn() -> None:
    """user_count and worker_ids are kept up to date, not recomputed: they must match the map each step."""
    classes = [type(f"C{i}", (), {"weight": i + 1, "fixed_count": 0}) for i in range(4)]
    rng = random.Random(3)
    d = UsersDispatcher([Node(f"h{i % 3}_{i:02x}") for i in range(12)], classes)
    made = 12
    for _ in range(60):
        roll = rng.random()
        if roll < 0.3:
            d.new_dispatch(rng.randint(0, 400), rng.choice([3.0, 50.0, 1000.0]))
        elif roll < 0.6 and d.worker_ids:
            d.remove_worker(rng.choice(d.worker_ids))
        else:
            made += 1
            d.add_worker(Node(f"h{rng.randrange(4)}_{made:02x}"))
        for step in list(d)[:50]:
            assert step.user_count == sum(map(sum, (row.values() for row in step.users.values())))
        assert d.user_count == sum(sum(row.values()) for row in d.current_users.values())
        assert d.worker_ids == worker_order(d.worker_ids)
