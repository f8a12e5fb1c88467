"""UsersDispatcher: the spec's worked examples, pacing, placement rules, rebalancing and errors.

Class totals are checked against the exact values Locust produces (spec §3.3, §3.4, §3.8, §3.10, §7 D*).
Per-worker placement deliberately differs from Locust's (we spread every class over every worker), so
per-worker maps are only checked where our own rules define them exactly; everywhere else the tests check
the invariants: worker totals within one, each class within one, totals equal to the step target.
"""

from __future__ import annotations

import math

import pytest

from horde.dispatch import DispatchStep, UsersDispatcher, canonical_class_counts, worker_order


class Node:
    def __init__(self, node_id: str) -> None:
        self.id = node_id


def user(name: str, weight: float = 1, fixed_count: int = 0) -> type:
    return type(name, (), {"weight": weight, "fixed_count": fixed_count})


def nodes(*ids: str) -> list[Node]:
    return [Node(i) for i in ids]


def totals(users: dict[str, dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in users.values():
        for name, n in row.items():
            out[name] = out.get(name, 0) + n
    return out


def rows(users: dict[str, dict[str, int]]) -> dict[str, list[int]]:
    return {wid: [row[k] for k in sorted(row)] for wid, row in users.items()}


def assert_balanced(users: dict[str, dict[str, int]]) -> None:
    per_worker = [sum(r.values()) for r in users.values()]
    assert max(per_worker) - min(per_worker) <= 1, users
    for name in next(iter(users.values())):
        column = [r[name] for r in users.values()]
        assert max(column) - min(column) <= 1, (name, users)


def ramp(
    d: UsersDispatcher, target: int, rate: float, classes: list[type] | None = None
) -> list[DispatchStep]:
    d.new_dispatch(target, rate, classes)
    return list(d)


W123 = [user("User1", 1), user("User2", 2), user("User3", 3)]
EQUAL3 = [user("User1"), user("User2"), user("User3")]


# ---- class totals: the divergence-minimising sequence -------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1, [0, 0, 1]),
        (2, [0, 1, 1]),
        (3, [1, 1, 1]),
        (4, [1, 1, 2]),
        (5, [1, 2, 2]),
        (6, [1, 2, 3]),
        (7, [1, 2, 4]),
        (8, [1, 3, 4]),
        (9, [2, 3, 4]),
        (10, [2, 3, 5]),
        (12, [2, 4, 6]),
    ],
)
def test_prefix_counts_for_weights_1_2_3(n: int, expected: list[int]) -> None:
    assert list(canonical_class_counts(W123, n).values()) == expected


def sequence(classes: list[type], n: int) -> str:
    """The order users arrive in, read off the prefix counts (one class name letter per user)."""
    out = []
    prev = canonical_class_counts(classes, 0)
    for i in range(1, n + 1):
        cur = canonical_class_counts(classes, i)
        out.append(next(name for name in cur if cur[name] != prev[name])[-1])
        prev = cur
    return "".join(out)


def test_sequences_from_the_spec() -> None:
    assert sequence([user("A", 5), user("B", 1)], 12) == "AABAAAAABAAA"
    assert sequence([user("A"), user("B"), user("C")], 6) == "ABCABC"
    assert sequence(W123, 12) == "321323321323"
    assert sequence([user("User1", 4), user("User2", 5)], 9) == "212121212"
    positions = [i + 1 for i, c in enumerate(sequence([user("A", 10), user("B", 1)], 50)) if c == "B"]
    assert positions == [5, 17, 28, 39, 50]
    assert sequence([user("A", 100), user("B", 1)], 45).index("B") == 44  # B first appears as user #45


def test_weights_4_5_and_fractional_weights() -> None:  # D5
    assert canonical_class_counts([user("A", 4), user("B", 5)], 9) == {"A": 4, "B": 5}
    assert canonical_class_counts([user("A", 0.8), user("B", 1)], 18) == {"A": 8, "B": 10}


@pytest.mark.parametrize(
    ("spec", "target", "expected"),
    [
        ([("F", 1, 1), ("A", 1, 0), ("B", 1, 0)], 9, {"F": 1, "A": 4, "B": 4}),
        ([("F", 1, 8), ("A", 1, 0), ("B", 1, 0)], 10, {"F": 8, "A": 1, "B": 1}),
        ([("F", 1, 100), ("A", 1, 0), ("B", 1, 0)], 100, {"F": 100, "A": 0, "B": 0}),
        ([("F", 1, 960), ("A", 1, 0), ("B", 1, 0)], 1000, {"F": 960, "A": 20, "B": 20}),
        (
            [("F1", 1, 5), ("F2", 1, 2), ("A", 1, 0), ("B", 1, 0), ("C", 1, 0)],
            10,
            {"F1": 5, "F2": 2, "A": 1, "B": 1, "C": 1},
        ),
        (
            [("F1", 1, 9), ("F2", 1, 1), ("A", 5, 0), ("B", 3, 0), ("C", 2, 0)],
            20,
            {"F1": 9, "F2": 1, "A": 5, "B": 3, "C": 2},
        ),
        (
            [("F1", 1, 250), ("F2", 1, 250), ("A", 3, 0), ("B", 1, 0), ("C", 1, 0)],
            1000,
            {"F1": 250, "F2": 250, "A": 300, "B": 100, "C": 100},
        ),
        (
            [("F1", 1, 1), ("F2", 1, 1), ("F3", 1, 1), ("F4", 1, 1), ("Z", 100, 0)],
            1000,
            {"F1": 1, "F2": 1, "F3": 1, "F4": 1, "Z": 996},
        ),
        (
            [("A", 1, 13), ("B", 1, 26), ("C", 1, 39), ("D", 1, 52), ("E", 1, 1)],
            131,
            {"A": 13, "B": 26, "C": 39, "D": 52, "E": 1},
        ),
    ],
)
def test_fixed_count_table(
    spec: list[tuple[str, float, int]], target: int, expected: dict[str, int]
) -> None:  # §3.4, D19
    classes = [user(*s) for s in spec]
    d = UsersDispatcher(nodes("1"), classes)
    steps = ramp(d, target, 0.5 if target <= 20 else 1000)
    assert totals(steps[-1].users) == expected
    assert canonical_class_counts(classes, target) == expected


def test_only_fixed_classes_stop_short_of_an_unreachable_target() -> None:  # D20
    d = UsersDispatcher(nodes("1"), [user(n, 1, 10) for n in "ABCDE"])
    steps = ramp(d, 100, 7)
    assert [s.user_count for s in steps] == [7, 14, 21, 28, 35, 42, 49, 50]
    assert totals(steps[-1].users) == dict.fromkeys("ABCDE", 10)
    assert not d.dispatch_in_progress


def test_fixed_classes_share_a_target_below_their_sum() -> None:  # D20
    d = UsersDispatcher(nodes("1"), [user("A", 1, 50), user("B", 1, 50)])
    for target, each in [(30, 15), (20, 10), (100, 50)]:
        ramp(d, target, 1000)
        assert d.class_totals() == {"A": each, "B": each}


def test_fixed_then_weighted_down_and_up_is_path_independent() -> None:  # D21 and the §3.10 fixed example
    classes = [user("Fixed", 1, 2), user("UserA", 1), user("UserB", 3)]
    d = UsersDispatcher(nodes("1"), classes)
    for target, expected in [(5, (2, 1, 2)), (2, (2, 0, 0)), (7, (2, 1, 4)), (1, (1, 0, 0)), (7, (2, 1, 4))]:
        ramp(d, target, 1000)
        assert tuple(d.class_totals()[n] for n in ("Fixed", "UserA", "UserB")) == expected


def test_fixed_example_on_two_workers() -> None:  # §3.10: 2 workers, target 7, rate 3
    d = UsersDispatcher(nodes("w1", "w2"), [user("Fixed", 1, 2), user("UserA", 1), user("UserB", 3)])
    steps = ramp(d, 7, 3)
    assert [totals(s.users) for s in steps] == [
        {"Fixed": 2, "UserA": 0, "UserB": 1},
        {"Fixed": 2, "UserA": 1, "UserB": 3},
        {"Fixed": 2, "UserA": 1, "UserB": 4},
    ]
    for s in steps:
        assert_balanced(s.users)
        assert [s.users[w]["Fixed"] for w in ("w1", "w2")] == [1, 1]  # fixed users spread too


def test_down_then_up_gives_the_fresh_ramp_totals() -> None:  # Locust gives 1/3/3 here
    d = UsersDispatcher(nodes("1", "2", "3"), W123)
    for target in (10, 3, 7):
        ramp(d, target, 100)
    assert d.class_totals() == {"User1": 1, "User2": 2, "User3": 4}


def test_alternating_targets_stay_balanced() -> None:  # Locust drifts to {2,2,0} and 14/11
    d = UsersDispatcher(nodes("1", "2", "3"), [user("U")])
    for target in (4, 2, 4, 2, 4):
        ramp(d, target, 100)
    assert sorted(sum(r.values()) for r in d.current_users.values()) == [1, 1, 2]
    d = UsersDispatcher(nodes("1", "2"), [user("U")])
    for target in (10, 1, 10, 17, 8, 25):
        ramp(d, target, 100)
    assert sorted(sum(r.values()) for r in d.current_users.values()) == [12, 13]


def test_two_equal_classes_up_and_down() -> None:  # D12
    d = UsersDispatcher(nodes("1", "2"), [user("A"), user("B")])
    seen = []
    for target in (1, 2, 3, 4, 3, 2, 1, 0):
        steps = ramp(d, target, 1)
        assert_balanced(steps[-1].users)
        seen.append((d.class_totals()["A"], d.class_totals()["B"]))
    assert seen == [(1, 0), (1, 1), (2, 1), (2, 2), (2, 1), (1, 1), (1, 0), (0, 0)]


def test_single_worker_targets() -> None:  # D13
    d = UsersDispatcher(nodes("1"), EQUAL3)
    for target in (1, 11, 10, 0):
        steps = ramp(d, target, 100)
        assert len(steps) == 1 and steps[0].user_count == target


def test_weights_1_2_on_4_workers() -> None:  # D10
    d = UsersDispatcher(nodes("1", "2", "3", "4"), [user("User1", 1), user("User2", 2)])
    steps = ramp(d, 75, 5)
    assert [tuple(totals(s.users).values()) for s in steps[:4]] == [(2, 3), (3, 7), (5, 10), (7, 13)]
    assert totals(steps[-1].users) == {"User1": 25, "User2": 50}
    assert sorted(sum(r.values()) for r in steps[-1].users.values()) == [18, 19, 19, 19]
    for s in steps:
        assert_balanced(s.users)


@pytest.mark.parametrize("factor", [10, 2.5, 0.3, 1 / 23, math.e, math.pi])
@pytest.mark.parametrize("weights", [(1, 2, 3), (5, 1), (1, 1, 1), (4, 5), (0.8, 1), (10, 1, 3, 7)])
def test_weight_scale_invariance(weights: tuple[float, ...], factor: float) -> None:  # D23
    def maps(scale: float) -> list[dict[str, dict[str, int]]]:
        classes = [user(f"U{i}", w * scale) for i, w in enumerate(weights)]
        d = UsersDispatcher(nodes("a_1", "a_2", "b_1"), classes)
        return [s.users for s in ramp(d, 40, 3)] + [s.users for s in ramp(d, 7, 4)]

    assert maps(factor) == maps(1)


def test_lightest_weight_is_the_unit() -> None:
    # Locust feeds raw weights to the score, so 5:1 and (5:1)/23 give different sequences; we do not.
    assert sequence([user("A", 5 / 23), user("B", 1 / 23)], 12) == sequence([user("A", 5), user("B", 1)], 12)


def test_weight_zero_classes_are_never_spawned_but_are_keys() -> None:
    d = UsersDispatcher(nodes("1"), [user("A"), user("Zero", 0)])
    steps = ramp(d, 5, 100)
    assert steps[-1].users == {"1": {"A": 5, "Zero": 0}}


# ---- user-class subsets (shapes) ----------------------------------------------------------------------------


def test_subsets_on_one_worker() -> None:  # §3.8, D22
    a, b, c = EQUAL3
    d = UsersDispatcher(nodes("1"), EQUAL3)
    for target, subset, expected in [
        (3, None, [1, 1, 1]),
        (4, [a], [2, 1, 1]),
        (5, [b], [2, 2, 1]),
        (6, [c], [2, 2, 2]),
    ]:
        ramp(d, target, 100, subset)
        assert list(d.class_totals().values()) == expected
    d = UsersDispatcher(nodes("1"), EQUAL3)
    ramp(d, 10, 100, [b])
    assert list(d.class_totals().values()) == [0, 10, 0]
    ramp(d, 40, 100, [c])
    assert list(d.class_totals().values()) == [0, 10, 30]
    d = UsersDispatcher(nodes("1"), EQUAL3)
    ramp(d, 10, 100, [b])
    ramp(d, 40, 100, EQUAL3)
    assert list(d.class_totals().values()) == [10, 20, 10]


def test_subset_on_three_workers() -> None:  # §3.8
    d = UsersDispatcher(nodes("1", "2", "3"), EQUAL3)
    steps = ramp(d, 60, 100, [EQUAL3[1]])
    assert steps[-1].users == {w: {"User1": 0, "User2": 20, "User3": 0} for w in ("1", "2", "3")}


def test_subset_keeps_until_changed_and_ramp_down_is_last_in_first_out_by_segment() -> None:
    a, b, _ = EQUAL3
    d = UsersDispatcher(nodes("1", "2"), EQUAL3)
    ramp(d, 6, 100)
    ramp(d, 10, 100, [a])  # 2/2/2 + 4 x User1
    ramp(d, 12, 100)  # None keeps [User1]
    assert list(d.class_totals().values()) == [8, 2, 2]
    ramp(d, 5, 100)  # below the subset's start: back to the first segment
    assert list(d.class_totals().values()) == [2, 2, 1]
    ramp(d, 7, 100, [b])
    assert list(d.class_totals().values()) == [2, 4, 1]


def test_subset_accepts_class_names_and_rejects_strangers() -> None:
    d = UsersDispatcher(nodes("1"), EQUAL3)
    ramp(d, 2, 100, ["User3"])
    assert d.class_totals()["User3"] == 2
    with pytest.raises(ValueError, match="'Nope' is not one of"):
        d.new_dispatch(3, 1, [user("Nope")])
    with pytest.raises(ValueError, match="twice"):
        d.new_dispatch(3, 1, ["User1", "User1"])


def test_empty_subset_adds_nothing() -> None:
    d = UsersDispatcher(nodes("1"), EQUAL3)
    ramp(d, 3, 100)
    steps = ramp(d, 10, 100, [])
    assert [s.user_count for s in steps] == [3]


# ---- pacing ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "per_step", "wait"),
    [
        (0.5, 1, 2.0),
        (1, 1, 1.0),
        (2, 2, 1.0),
        (2.4, 2, 2 / 2.4),
        (3, 3, 1.0),
        (4, 4, 1.0),
        (9, 9, 1.0),
        (5000, 5000, 1.0),
    ],
)
def test_pacing(rate: float, per_step: int, wait: float) -> None:  # §3.5, D2, D6
    d = UsersDispatcher(nodes("1", "2", "3"), EQUAL3)
    steps = ramp(d, 9, rate)
    counts = [s.user_count for s in steps]
    assert counts == [min(9, per_step * (i + 1)) for i in range(len(counts))]
    assert steps[0].delay == 0
    assert all(s.delay == pytest.approx(wait) for s in steps[1:])
    assert totals(steps[-1].users) == {"User1": 3, "User2": 3, "User3": 3}
    for s in steps:
        assert_balanced(s.users)
    down = ramp(d, 0, rate)  # D7: ramp-down is paced the same way
    assert [s.user_count for s in down] == [max(0, 9 - per_step * (i + 1)) for i in range(len(down))]
    assert down[0].delay == 0 and all(s.delay == pytest.approx(wait) for s in down[1:])
    assert totals(down[-1].users) == {"User1": 0, "User2": 0, "User3": 0}


def test_rate_2_4_target_7() -> None:  # §3.10
    d = UsersDispatcher(nodes("1"), W123)
    steps = ramp(d, 7, 2.4)
    assert [s.user_count for s in steps] == [2, 4, 6, 7]
    assert sum(s.delay for s in steps) == pytest.approx(2.5)
    assert totals(steps[-1].users) == {"User1": 1, "User2": 2, "User3": 4}


def test_rate_half_adds_one_user_every_two_seconds() -> None:  # §3.10
    d = UsersDispatcher(nodes("w1", "w2", "w3"), W123)
    steps = ramp(d, 4, 0.5)
    assert [s.delay for s in steps] == [0, 2, 2, 2]
    assert [totals(s.users) for s in steps][-1] == {"User1": 1, "User2": 1, "User3": 2}


def test_same_target_yields_the_current_map_once() -> None:  # §3.5, D9
    d = UsersDispatcher(nodes("1", "2", "3"), EQUAL3)
    before = ramp(d, 9, 9)[-1].users
    for rate in (0.5, 1, 9, 100):
        again = ramp(d, 9, rate)
        assert len(again) == 1 and again[0].users == before and again[0].delay == 0


def test_new_dispatch_mid_ramp_restarts_pacing() -> None:
    d = UsersDispatcher(nodes("1"), EQUAL3)
    d.new_dispatch(10, 1)
    next(d), next(d)
    steps = ramp(d, 5, 2)
    assert [s.user_count for s in steps] == [4, 5]
    assert steps[0].delay == 0 and steps[1].delay == 1


def test_worked_example_ramp_then_ramp_down() -> None:  # §3.10 with our placement (see docs/dispatch.md)
    d = UsersDispatcher(nodes("w1", "w2", "w3"), W123)
    steps = ramp(d, 10, 2)
    assert [s.delay for s in steps] == [0, 1, 1, 1, 1]
    assert [list(totals(s.users).values()) for s in steps] == [
        [0, 1, 1],
        [1, 1, 2],
        [1, 2, 3],
        [1, 3, 4],
        [2, 3, 5],
    ]
    assert [rows(s.users) for s in steps] == [
        {"w1": [0, 0, 1], "w2": [0, 1, 0], "w3": [0, 0, 0]},
        {"w1": [0, 0, 1], "w2": [0, 1, 1], "w3": [1, 0, 0]},
        {"w1": [0, 1, 1], "w2": [0, 1, 1], "w3": [1, 0, 1]},
        {"w1": [0, 1, 2], "w2": [0, 1, 1], "w3": [1, 1, 1]},
        {"w1": [0, 1, 2], "w2": [1, 1, 2], "w3": [1, 1, 1]},
    ]
    down = ramp(d, 4, 3)
    assert [s.user_count for s in down] == [7, 4]
    assert [list(totals(s.users).values()) for s in down] == [[1, 2, 4], [1, 1, 2]]
    for s in steps + down:
        assert_balanced(s.users)
        assert s.moves == 0


# ---- placement ---------------------------------------------------------------------------------------------


def test_host_aware_order() -> None:  # §3.2
    ids = ["hostA_1", "hostA_2", "hostA_3", "hostB_1", "hostC_1"]
    assert worker_order(ids) == ["hostA_1", "hostB_1", "hostC_1", "hostA_2", "hostA_3"]
    d = UsersDispatcher(nodes(*reversed(ids)), [user("U")])
    final = ramp(d, 7, 1)[-1].users
    assert {w: r["U"] for w, r in final.items()} == {
        "hostA_1": 2,
        "hostB_1": 2,
        "hostC_1": 1,
        "hostA_2": 1,
        "hostA_3": 1,
    }
    assert list(final) == worker_order(ids)


def test_first_users_spread_over_hosts() -> None:  # D4
    d = UsersDispatcher(
        nodes("hostname1_worker1", "hostname1_worker2", "hostname2_worker1", "hostname2_worker2"), EQUAL3
    )
    first = ramp(d, 6, 2)[0].users
    assert {w for w, r in first.items() if sum(r.values())} == {"hostname1_worker1", "hostname2_worker1"}


def test_every_worker_runs_every_class() -> None:  # Locust puts one class per worker here
    d = UsersDispatcher(nodes("1", "2", "3"), EQUAL3)
    for rate in (0.5, 1, 2, 9):
        d = UsersDispatcher(nodes("1", "2", "3"), EQUAL3)
        final = ramp(d, 9, rate)[-1].users
        assert final == {w: {"User1": 1, "User2": 1, "User3": 1} for w in ("1", "2", "3")}


def test_four_workers_nine_users() -> None:  # D3
    d = UsersDispatcher(nodes("1", "2", "3", "4"), EQUAL3)
    steps = ramp(d, 9, 1)
    assert len(steps) == 9
    for s in steps:
        assert_balanced(s.users)
    assert sum(steps[-1].users["1"].values()) == 3  # the extra user goes to the first worker in order
    assert totals(steps[-1].users) == {"User1": 3, "User2": 3, "User3": 3}


def test_steps_are_fresh_dicts_covering_every_worker_and_class() -> None:
    d = UsersDispatcher(nodes("1", "2"), [user("A"), user("B", 0)])
    d.new_dispatch(3, 1)
    first, second = next(d), next(d)
    assert set(first.users) == {"1", "2"} and all(set(r) == {"A", "B"} for r in first.users.values())
    first.users["1"]["A"] = 99
    assert second.users["1"]["A"] != 99 and d.current_users["1"]["A"] != 99
    assert first.users is not second.users


def test_dispatch_in_progress() -> None:
    d = UsersDispatcher(nodes("1"), [user("A")])
    assert not d.dispatch_in_progress
    d.new_dispatch(2, 1)
    assert not d.dispatch_in_progress
    next(d)
    assert d.dispatch_in_progress
    next(d)
    assert d.dispatch_in_progress
    with pytest.raises(StopIteration):
        next(d)
    assert not d.dispatch_in_progress
    assert list(d) == []  # a finished dispatch stays finished


def test_public_state() -> None:
    d = UsersDispatcher(nodes("b_1", "a_1"), W123)
    ramp(d, 6, 3)
    assert d.user_count == 6 and d.target_user_count == 6 and d.spawn_rate == 3
    assert d.worker_ids == ["a_1", "b_1"]
    assert d.class_totals() == {"User1": 1, "User2": 2, "User3": 3}
    assert totals(d.current_users) == d.class_totals()


# ---- workers joining and leaving ---------------------------------------------------------------------------


def test_remove_worker_mid_ramp_replaces_only_its_users() -> None:  # D14
    d = UsersDispatcher(nodes("1", "2", "3"), EQUAL3)
    d.new_dispatch(9, 3)
    next(d)
    before = next(d).users
    d.remove_worker(Node("2"))
    steps = list(d)
    reb = steps[0]
    assert reb.rebalance and reb.moves == 0 and reb.delay == 1
    assert reb.users == {"1": {"User1": 1, "User2": 1, "User3": 1}, "3": {"User1": 1, "User2": 1, "User3": 1}}
    for wid in ("1", "3"):  # survivors only gained users
        assert all(reb.users[wid][k] >= before[wid][k] for k in before[wid])
    assert totals(steps[-1].users) == {"User1": 3, "User2": 3, "User3": 3}
    assert sorted(sum(r.values()) for r in steps[-1].users.values()) == [4, 5]


def test_remove_worker_at_once_like_locust() -> None:  # D14/D15 with rebalance_rate=0
    d = UsersDispatcher(nodes("1", "2", "3"), EQUAL3, rebalance_rate=0)
    ramp(d, 9, 3)
    d.remove_worker("3")
    steps = ramp(d, 18, 3)
    assert steps[0].rebalance and steps[0].delay == 0 and steps[0].user_count == 9
    assert steps[1].delay == 0 and all(s.delay == 1 for s in steps[2:])  # first normal step immediate too
    assert steps[-1].users == {w: {"User1": 3, "User2": 3, "User3": 3} for w in ("1", "2")}


def test_removed_users_are_replaced_at_the_spawn_rate() -> None:  # D15 with default pacing
    d = UsersDispatcher(nodes("1", "2", "3"), EQUAL3)
    ramp(d, 30, 100)
    d.remove_worker("3")  # 10 users lost
    steps = ramp(d, 36, 3)
    assert [(s.user_count, s.rebalance) for s in steps] == [
        (23, True),
        (26, True),
        (29, True),
        (30, True),
        (33, False),
        (36, False),
    ]
    assert [s.delay for s in steps] == [0, 1, 1, 1, 1, 1]
    assert all(s.moves == 0 for s in steps)
    assert steps[-1].users == {w: {"User1": 6, "User2": 6, "User3": 6} for w in ("1", "2")}


def test_two_workers_removed_leaves_everything_on_the_survivor() -> None:  # D14
    d = UsersDispatcher(nodes("1", "2", "3"), EQUAL3)
    ramp(d, 9, 100)
    d.remove_worker("1")
    d.remove_worker("2")
    steps = list(d)
    assert steps[-1].users == {"3": {"User1": 3, "User2": 3, "User3": 3}}
    assert all(s.moves == 0 for s in steps)


def test_removal_during_ramp_down_counts_toward_it() -> None:  # D14
    d = UsersDispatcher(nodes("1", "2", "3"), EQUAL3)
    ramp(d, 30, 100)
    d.new_dispatch(12, 3)
    next(d)  # 27
    d.remove_worker("1")  # 9 users gone: 18 left, the ramp down to 12 continues from there
    steps = list(d)
    assert [s.user_count for s in steps] == [15, 12]
    assert all(s.moves == 0 for s in steps)
    assert_balanced(steps[-1].users)
    assert totals(steps[-1].users) == {"User1": 4, "User2": 4, "User3": 4}


def test_remove_the_only_worker_then_one_joins() -> None:  # D16
    d = UsersDispatcher(nodes("1"), EQUAL3)
    ramp(d, 6, 100)
    d.remove_worker("1")
    assert list(d) == [] and d.user_count == 0 and d.current_users == {}
    assert ramp(d, 6, 100) == []  # no workers: nothing to place, no crash
    d.add_worker(Node("2"))
    steps = ramp(d, 6, 100)
    assert steps[-1].users == {"2": {"User1": 2, "User2": 2, "User3": 2}}


def test_no_workers_at_all() -> None:
    d = UsersDispatcher([], EQUAL3)
    assert ramp(d, 10, 1) == []
    assert not d.dispatch_in_progress
    d.remove_worker("ghost")  # unknown ids are ignored


def test_fixed_class_keeps_its_count_across_rebalances() -> None:  # D17
    classes = [user("Fixed", 1, 2), user("A"), user("B")]
    d = UsersDispatcher(nodes("1", "2", "3"), classes)
    ramp(d, 9, 100)
    d.remove_worker("2")
    list(d)
    assert d.class_totals()["Fixed"] == 2
    d.add_worker(Node("4"))
    d.add_worker(Node("5"))
    list(d)
    assert d.class_totals() == canonical_class_counts(classes, 9)


def test_add_worker_during_ramp_up_is_filled_by_new_users() -> None:  # D18
    d = UsersDispatcher(nodes("hostname1_worker1", "hostname1_worker2"), EQUAL3)
    d.new_dispatch(11, 3)
    next(d)
    d.add_worker(Node("hostname2_worker1"))
    steps = list(d)
    assert steps[0].rebalance and sum(steps[0].users["hostname2_worker1"].values()) == 1
    assert all(s.moves == 0 for s in steps)
    for s in steps:
        assert_balanced(s.users)
    final = steps[-1].users
    assert {w: sum(r.values()) for w, r in final.items()} == {
        "hostname1_worker1": 4,
        "hostname2_worker1": 4,
        "hostname1_worker2": 3,
    }


def test_add_worker_at_once_moves_the_minimum() -> None:  # D18 with rebalance_rate=0
    d = UsersDispatcher(nodes("hostname1_worker1", "hostname1_worker2"), EQUAL3, rebalance_rate=0)
    d.new_dispatch(11, 3)
    next(d)
    d.add_worker(Node("hostname2_worker1"))
    reb = next(d)
    assert reb.rebalance and reb.delay == 0 and reb.user_count == 3 and reb.moves == 1
    assert_balanced(reb.users)
    assert [s.user_count for s in d] == [6, 9, 11]


def test_add_worker_between_dispatches_moves_only_its_share() -> None:
    d = UsersDispatcher(nodes("1", "2", "3"), W123)
    ramp(d, 60, 100)
    before = d.current_users
    d.add_worker(Node("4"))
    steps = ramp(d, 60, 7)  # the runner re-targets at the last rate; steps are paced at it
    assert all(s.rebalance for s in steps) and [s.delay for s in steps] == [0, 1, 1]
    final = steps[-1].users
    assert sum(final["4"].values()) == 15 and sum(s.moves for s in steps) == 15
    for wid in ("1", "2", "3"):  # healthy workers only lost users
        assert all(final[wid][k] <= before[wid][k] for k in before[wid])
    assert_balanced(final)
    assert totals(final) == totals(before)


def test_iterating_after_a_worker_change_finishes_the_rebalance() -> None:
    d = UsersDispatcher(nodes("1", "2"), EQUAL3)
    ramp(d, 6, 2)
    d.add_worker(Node("3"))
    steps = list(d)  # no new_dispatch: the pending rebalance is produced at the last rate
    assert steps and all(s.rebalance for s in steps)
    assert {w: sum(r.values()) for w, r in steps[-1].users.items()} == {"1": 2, "2": 2, "3": 2}
    assert sum(s.moves for s in steps) == 2
    assert_balanced(steps[-1].users)
    d.add_worker(Node("1"))  # already known: nothing to do
    assert list(d) == []


def test_worker_joining_with_no_users_yields_nothing_extra() -> None:
    d = UsersDispatcher(nodes("1"), EQUAL3)
    d.add_worker(Node("2"))
    assert list(d) == []
    steps = ramp(d, 0, 1)
    assert len(steps) == 1 and steps[0].users == {
        w: dict.fromkeys(("User1", "User2", "User3"), 0) for w in ("1", "2")
    }


# ---- errors ------------------------------------------------------------------------------------------------


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="at least one user class"):
        UsersDispatcher(nodes("1"), [])
    with pytest.raises(ValueError, match="duplicated: A"):
        UsersDispatcher(nodes("1"), [user("A"), type("A", (), {})])
    with pytest.raises(ValueError, match="every class has weight 0"):
        UsersDispatcher(nodes("1"), [user("A", 0), user("B", 0)])
    with pytest.raises(ValueError, match=r"B\.weight"):
        UsersDispatcher(nodes("1"), [user("A"), user("B", -1)])
    with pytest.raises(ValueError, match=r"A\.weight"):
        UsersDispatcher(nodes("1"), [user("A", math.nan)])
    with pytest.raises(ValueError, match="fixed_count"):
        UsersDispatcher(nodes("1"), [user("A", 1, -2)])
    with pytest.raises(ValueError, match="given twice"):
        UsersDispatcher(nodes("1", "1"), [user("A")])
    with pytest.raises(ValueError, match="string `id`"):
        UsersDispatcher([object()], [user("A")])
    with pytest.raises(ValueError, match="rebalance_rate"):
        UsersDispatcher(nodes("1"), [user("A")], rebalance_rate=-1)
    d = UsersDispatcher(nodes("1"), [user("A")])
    with pytest.raises(ValueError, match="target_user_count must be >= 0"):
        d.new_dispatch(-1, 1)
    with pytest.raises(ValueError, match="target_user_count must be an integer"):
        d.new_dispatch(2.5, 1)  # type: ignore[arg-type]
    for rate in (0, -1, math.inf, math.nan, "fast"):
        with pytest.raises(ValueError, match="spawn_rate"):
            d.new_dispatch(1, rate)  # type: ignore[arg-type]


def test_defaults_are_duck_typed() -> None:
    class Plain:  # no weight, no fixed_count: weight 1
        pass

    d = UsersDispatcher(nodes("1"), [Plain, user("Other", 3)])
    ramp(d, 4, 100)
    assert d.class_totals() == {"Other": 3, "Plain": 1}
