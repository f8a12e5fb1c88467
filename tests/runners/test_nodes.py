"""The master's worker registry."""

from __future__ import annotations

from horde.runners.base import RunnerState
from horde.runners.nodes import WorkerNode, WorkerNodes


def test_indexes_are_stable_across_a_rejoin() -> None:
    nodes = WorkerNodes()
    a = nodes.add("host1_a", 1.0)
    b = nodes.add("host2_b", 1.0)
    assert (a.index, b.index) == (0, 1)
    nodes.remove("host1_a")
    assert nodes.add("host1_a", 2.0).index == 0  # the same worker keeps its slot
    assert nodes.add("host3_c", 2.0).index == 2


def test_views_filter_by_state() -> None:
    nodes = WorkerNodes()
    for name, state in [
        ("r", RunnerState.READY),
        ("s", RunnerState.SPAWNING),
        ("u", RunnerState.RUNNING),
        ("m", RunnerState.MISSING),
    ]:
        nodes.add(name, 0.0).state = state
    assert [n.id for n in nodes.ready] == ["r"]
    assert [n.id for n in nodes.missing] == ["m"]
    assert [n.id for n in nodes.active] == ["r", "s", "u"]
    assert len(nodes) == 4 and "m" in nodes and "x" not in nodes


def test_iteration_is_over_a_snapshot() -> None:
    nodes = WorkerNodes()
    for name in "abc":
        nodes.add(name, 0.0)
    for node in nodes:
        nodes.remove(node.id)  # removing while iterating is safe
    assert len(nodes) == 0


def test_node_counts_and_host() -> None:
    node = WorkerNode(id="box-1_0123abcd", user_classes_count={"A": 2, "B": 3})
    assert node.user_count == 5 and node.host == "box-1"
