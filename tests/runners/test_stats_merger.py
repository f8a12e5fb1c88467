"""The stats merger child process: its sums equal merging each report, resets and bad reports behave, and
the master takes over when the child dies. These start a real child process."""

from __future__ import annotations

import asyncio
import copy
import logging
import random
from typing import Any

import msgpack
import pytest

from horde.runners.master.merger import BATCH_DELAY, StatsMerger, merger_mode
from horde.stats import RequestStats
from horde.stats.compact import encode_and_reset, merge_report

pytestmark = pytest.mark.slow  # a child process per test


def reports(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` worker reports as the master receives them (after a msgpack round trip)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        stats = RequestStats(use_response_times_cache=False)
        for _ in range(rng.randrange(1, 40)):
            failed = rng.random() < 0.1
            stats.record(
                rng.choice(["GET", "POST"]),
                f"/p{rng.randrange(5)}",
                rng.lognormvariate(3, 1),
                rng.randrange(500),
                RuntimeError(f"e{i % 3}") if failed else None,
            )
        packed = msgpack.packb(encode_and_reset(stats), use_bin_type=True)
        out.append(msgpack.unpackb(packed, strict_map_key=False))
    return out


def numbers(stats: RequestStats) -> dict[str, Any]:
    """What must agree: everything but the start times (the child's entries start when it first saw them)."""
    data = copy.deepcopy(stats.serialize())
    for entry in [*data["stats"], data["stats_total"]]:
        entry.pop("start_time")
    data["stats"].sort(key=lambda e: (e["method"], e["name"]))
    for row in data["errors"].values():
        row.pop("first_seen", None)
        row.pop("last_seen", None)
    return data


async def started(
    stats: RequestStats,
    refused: list[tuple[str, str]] | None = None,
    push_interval: float = 0.25,
    lost: list[int] | None = None,
) -> StatsMerger:
    merger = StatsMerger(
        stats,
        lambda node, why: (refused if refused is not None else []).append((node, why)),
        push_interval,
        on_lost=(lost.append if lost is not None else None),
    )
    merger.start()
    for _ in range(400):
        if merger.ready:
            return merger
        await asyncio.sleep(0.025)
    await merger.close()
    raise AssertionError("the stats merger did not become ready within 10 s")


async def test_the_childs_sums_equal_merging_every_report_in_the_master() -> None:
    batch = reports(60)
    direct = RequestStats()
    for payload in batch:
        merge_report(direct, payload)
    master = RequestStats()
    merger = await started(master)
    try:
        assert all(merger.submit(f"w{i % 4}", payload) for i, payload in enumerate(batch))
        assert await merger.flush()
    finally:
        await merger.close()
    assert merger.returned == merger.handed == 60
    assert master.num_requests == direct.num_requests > 60
    assert numbers(master) == numbers(direct)


async def test_sums_arrive_without_a_flush_within_a_push_interval() -> None:
    master = RequestStats()
    merger = await started(master)
    try:
        merger.submit("w1", reports(1)[0])
        for _ in range(100):
            if master.num_requests:
                break
            await asyncio.sleep(0.02)
    finally:
        await merger.close()
    assert master.num_requests == reports(1)[0]["stats_total"][4]


async def test_a_malformed_report_is_refused_by_the_child_and_the_rest_still_counts() -> None:
    refused: list[tuple[str, str]] = []
    good = reports(2)
    bad = copy.deepcopy(good[0])
    bad["stats"][0][4] = -5  # a negative request count
    master = RequestStats()
    merger = await started(master, refused)
    try:
        merger.submit("w1", good[0])
        merger.submit("w2", bad)
        merger.submit("w3", good[1])
        assert await merger.flush()
    finally:
        await merger.close()
    assert [node for node, _ in refused] == ["w2"]
    assert "non-negative" in refused[0][1]
    assert master.num_requests == good[0]["stats_total"][4] + good[1]["stats_total"][4]


async def test_a_reset_drops_what_the_child_held_before_it() -> None:
    before, after = reports(5, seed=1), reports(3, seed=2)
    master = RequestStats()
    merger = await started(master)
    try:
        for payload in before:
            merger.submit("w1", payload)
        master.reset_all()
        merger.reset()
        for payload in after:
            merger.submit("w1", payload)
        assert await merger.flush()
    finally:
        await merger.close()
    assert master.num_requests == sum(p["stats_total"][4] for p in after)


async def test_when_the_child_dies_the_master_merges_itself_and_says_what_was_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    master = RequestStats()
    lost: list[int] = []
    merger = await started(master, push_interval=60.0, lost=lost)  # it holds what it gets
    try:
        assert all(merger.submit("w1", payload) for payload in reports(3))
        await asyncio.sleep(BATCH_DELAY * 5)  # the batch has gone out to the child
        assert merger._proc is not None
        merger._proc.kill()
        for _ in range(100):
            if merger.failed:
                break
            await asyncio.sleep(0.05)
        assert merger.failed and not merger.active
        assert not merger.submit("w1", reports(1)[0])  # the caller merges it
        assert not await merger.flush()  # what it held is gone
    finally:
        await merger.close()
    assert lost == [3] and merger.lost == 3
    assert any(
        r.levelno == logging.ERROR
        and "stats merger process exited" in r.getMessage()
        and "3 worker report" in r.getMessage()
        for r in caplog.records
    )


async def test_a_reset_made_while_the_child_starts_reaches_it() -> None:
    """The master's epoch moves on a reset before the child is ready; the child must start at it, or
    every sum it sends would be dropped as older than the reset."""
    master = RequestStats()
    merger = StatsMerger(master, lambda node, why: None)
    merger.reset()  # before start: nothing to send it yet
    merger.start()
    merger.reset()  # while it starts
    try:
        for _ in range(400):
            if merger.ready:
                break
            await asyncio.sleep(0.025)
        payload = reports(1)[0]
        assert merger.submit("w1", payload)
        assert await merger.flush()
    finally:
        await merger.close()
    assert master.num_requests == payload["stats_total"][4]


def test_the_switch_reads_on_off_and_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, mode in (("1", "on"), ("on", "on"), ("0", "off"), ("off", "off"), ("", "auto"), ("x", "auto")):
        monkeypatch.setenv("HORDE_STATS_MERGER", value)
        assert merger_mode() == mode


async def test_a_flush_is_answered_after_reports_kept_coming_while_sums_arrived() -> None:
    """Sends and sums interleave for a while (as under 5,000 workers), then the stop flushes: every
    report is accounted for and merged once. (This did not reproduce the swallowed wake-up that made the
    asyncio-socket version hang in a 5,000-worker run; it checks the accounting under a stream of sends.)"""
    batch = reports(8)
    master = RequestStats()
    merger = await started(master)
    sent = 0
    try:
        for round_ in range(40):
            for _ in range(25):  # long runs of sends with no yield, while the child's sums come in
                for payload in batch:
                    sent += merger.submit(f"w{round_}", payload)
            await asyncio.sleep(0.005)
        assert await merger.flush(timeout=10.0)
    finally:
        await merger.close()
    assert sent == 40 * 25 * len(batch)
    assert merger.returned == merger.handed == sent - merger.local  # what it could not take was merged here
    assert master.num_requests == 40 * 25 * sum(p["stats_total"][4] for p in batch)


async def test_a_flush_gives_up_on_a_child_that_stopped_answering() -> None:
    import os
    import signal

    master = RequestStats()
    lost: list[int] = []
    merger = await started(master, lost=lost)
    try:
        assert merger._proc is not None
        os.kill(merger._proc.pid, signal.SIGSTOP)  # alive, but doing nothing
        assert merger.submit("w1", reports(1)[0])
        began = asyncio.get_running_loop().time()
        assert not await merger.flush(stall=1.0)
        assert asyncio.get_running_loop().time() - began < 5.0
        assert merger.failed and lost == [1]
        assert not merger.submit("w1", reports(1)[0])  # from now on the master merges itself
    finally:
        await merger.close()
