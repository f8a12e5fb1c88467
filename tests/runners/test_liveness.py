"""The pure liveness sweep: nodes and a time in; lost, forgotten and the next due time out."""

from __future__ import annotations

import pytest

from horde.runners.base import RunnerState
from horde.runners.master.liveness import MIN_GAP, PAST_DEADLINE, sweep
from horde.runners.nodes import WorkerNode

WINDOW, INTERVAL, FORGET = 3.0, 1.0, 60.0


def node(
    name: str, last_seen: float, state: RunnerState = RunnerState.RUNNING, missing_since: float | None = None
) -> WorkerNode:
    return WorkerNode(id=name, state=state, last_seen=last_seen, missing_since=missing_since)


def run(nodes: list[WorkerNode], now: float):  # type: ignore[no-untyped-def]
    return sweep(nodes, now, WINDOW, INTERVAL, FORGET)


def test_nobody_lost_and_next_sweep_one_interval_away() -> None:
    result = run([node("a", 100.0), node("b", 100.5)], now=100.5)
    assert result.lost == [] and result.forgotten == []
    assert result.next_due == pytest.approx(101.5 + PAST_DEADLINE)


def test_a_worker_is_lost_only_strictly_after_its_window() -> None:
    a = node("a", 100.0)
    assert run([a], now=103.0).lost == []  # exactly at the deadline: not yet
    assert run([a], now=103.0001).lost == [a]


def test_next_sweep_is_due_just_after_the_nearest_deadline() -> None:
    result = run([node("a", 100.0), node("b", 97.4)], now=100.2)  # b's window ends at 100.4
    assert result.next_due == pytest.approx(100.4 + PAST_DEADLINE)


def test_every_loss_is_found_in_one_sweep() -> None:
    nodes = [node(str(i), 90.0 + i * 0.1) for i in range(50)] + [node("alive", 99.9)]
    result = run(nodes, now=100.0)
    assert len(result.lost) == 50 and all(n.id != "alive" for n in result.lost)


def test_missing_workers_are_not_lost_again_and_are_forgotten_after_a_minute() -> None:
    m = node("m", 0.0, RunnerState.MISSING, missing_since=40.0)
    assert run([m], now=100.0) == run([m], now=100.0)  # pure: same input, same answer
    assert run([m], now=100.0).lost == [] and run([m], now=100.0).forgotten == []
    assert run([m], now=100.1).forgotten == [m]


def test_a_missing_worker_without_a_time_is_kept() -> None:
    assert run([node("m", 0.0, RunnerState.MISSING)], now=1e9).forgotten == []


def test_a_clock_that_does_not_move_cannot_make_the_sweep_spin() -> None:
    result = run([node("a", 100.0 - WINDOW)], now=100.0)  # its deadline is now
    assert result.next_due >= 100.0 + MIN_GAP


def test_no_workers() -> None:
    result = run([], now=5.0)
    assert result.lost == result.forgotten == [] and result.next_due == pytest.approx(6.0 + PAST_DEADLINE)
