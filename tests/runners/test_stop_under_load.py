"""A master whose workers never stop talking still stops within its stop timeout (issue 13 item 6).

At 5,000 workers the master's socket always had another frame ready: its reader never had to wait, so the
controller — and with it the quit command and the stop deadline — never ran, and the process ignored SIGTERM.
Here the in-memory transport is made to behave the same way: every heartbeat the master reads puts the next
one in its mailbox, so ``recv`` never waits. The quit must still finish at its deadline (the workers never
acknowledge it), on the fake clock, while the flood goes on.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from horde._version import PROTOCOL_VERSION, __version__
from horde.rpc.protocol import Message
from horde.rpc.transport import HEARTBEAT
from horde.runners.master.core import STOP_MARGIN
from tests.runners.cluster import MemoryCluster

WORKERS = 200
STOP_TIMEOUT = 0.5
FLOOD = 200_000  # frames the flood may add in all; the old master read them all before it looked at quit


async def test_quit_finishes_at_its_deadline_while_workers_flood_the_master() -> None:
    cluster = MemoryCluster()
    master = cluster.new_master(stop_timeout=STOP_TIMEOUT)
    server = cluster.network.server
    assert server is not None
    ids = [f"flood_{i:04d}" for i in range(WORKERS)]
    ready = {"version": __version__, "protocol": PROTOCOL_VERSION, "user_classes_count": {}}
    for wid in ids:  # stand-in workers: nothing reads what the master sends them, nobody answers quit
        server.inject(wid, Message("client_ready", ready, wid).serialize())
    await cluster.settle()
    assert master.worker_count == WORKERS

    beat = {"state": "running", "current_cpu_usage": 1.0, "current_memory_usage": 1, "loop_lag": 0.0}
    frames = {
        wid: (
            Message("heartbeat", {**beat, "user_count": 0}, wid).serialize(),
            Message("spawning", {"seq": 0}, wid).serialize(),
        )
        for wid in ids
    }
    left = [FLOOD]
    turn = itertools.cycle(ids)

    def next_frames(**_: Any) -> None:
        """Each heartbeat read puts the next ones in the mailbox: the reader never finds it empty."""
        if left[0] <= 0:
            return
        left[0] -= 2
        wid = next(turn)
        hb, spawning = frames[wid]
        server.inject(wid, hb, HEARTBEAT)
        server.inject(wid, spawning)  # and the controller always has a message queued

    master.environment.events.heartbeat_sent.add_listener(next_frames)
    started = master.start(WORKERS * 2, 10_000)  # spawn messages nobody confirms: the ramp never ends
    next_frames()

    quitting = asyncio.ensure_future(master.quit())
    began = cluster.clock.monotonic()
    while not quitting.done() and left[0] > 0:
        cluster.clock.advance(0.05)
        await asyncio.sleep(0)
    took = cluster.clock.monotonic() - began

    assert quitting.done(), "the master read the whole flood before it would stop"
    assert left[0] > 0, "the quit finished only once the flood was over"
    assert took <= STOP_TIMEOUT + STOP_MARGIN + 1.0, f"quit took {took:.2f} s of the clock"
    assert started.done()  # whoever awaited the ramp is released by the stop
    await quitting


async def _one_worker(worker_id: str) -> tuple[MemoryCluster, Any, Any]:
    """A master on the in-memory network with one stand-in worker registered (nothing answers for it)."""
    cluster = MemoryCluster()
    master = cluster.new_master()
    server = cluster.network.server
    assert server is not None
    ready = {"version": __version__, "protocol": PROTOCOL_VERSION, "user_classes_count": {}}
    server.inject(worker_id, Message("client_ready", ready, worker_id).serialize())
    await cluster.settle()
    return cluster, master, server


async def test_a_master_behind_on_reading_declares_no_one_missing() -> None:
    """Frames waiting to be read may be the heartbeats that prove workers alive: silence counts only up
    to the moment the reader had read everything."""
    cluster, master, server = await _one_worker("w1")
    beat = {"state": "ready", "current_cpu_usage": 1.0, "current_memory_usage": 1, "loop_lag": 0.0}
    cluster.clock.advance(10.0)  # the worker's heartbeat is sent now, but the reader has not run yet
    server.inject("w1", Message("heartbeat", {**beat, "user_count": 0}, "w1").serialize(), HEARTBEAT)
    now = cluster.clock.monotonic()
    await master._check_liveness(now)
    assert not master.nodes.missing
    assert master._next_liveness_check > now
    await cluster.settle()  # the reader reads it: the worker was alive all along
    await master._check_liveness(cluster.clock.monotonic())
    assert not master.nodes.missing
    await cluster.until(master.quit())


async def test_the_reader_stops_reading_while_the_controller_is_behind(monkeypatch: Any) -> None:
    """A full inbox leaves frames in the transport instead of the master's heap; none is lost."""
    import horde.runners.master.runner as runner_module

    monkeypatch.setattr(runner_module, "INBOX_LIMIT", 300)
    cluster, master, server = await _one_worker("w1")
    queued: list[int] = []
    put = master._inbox.put_nowait

    def counting_put(item: Any) -> None:
        put(item)
        queued.append(master._inbox.qsize())

    monkeypatch.setattr(master._inbox, "put_nowait", counting_put)
    for seq in range(5_000):  # far more than the controller handles between two reads
        server.inject("w1", Message("spawning", {"seq": seq}, "w1").serialize())
    await cluster.settle()
    assert len(queued) == 5_000 and master._inbox.empty()  # every message was read and handled
    assert max(queued) < 300 + runner_module.READ_BATCH
    assert master.inbox_full_pauses > 0
    await cluster.until(master.quit())


async def test_a_master_that_stays_behind_but_reads_still_notices_a_gone_worker(monkeypatch: Any) -> None:
    """Behind for good (frames always waiting) but reading: silence counts after two windows, not never."""
    cluster, master, _server = await _one_worker("gone")
    window = master.heartbeat_interval * master.heartbeat_liveness
    monkeypatch.setattr(master.transport, "has_pending", lambda: True)  # never caught up from here on
    caught_up = master._caught_up
    for silent, declared in ((1.5 * window, False), (2 * window + 0.1, True)):
        cluster.clock.advance(silent - (cluster.clock.monotonic() - caught_up))
        now = cluster.clock.monotonic()
        master._last_read = now  # the reader keeps reading other workers' frames
        await master._check_liveness(now)
        assert bool(master.nodes.missing) is declared, f"silent {silent:.1f} s"
    await cluster.until(master.quit())
