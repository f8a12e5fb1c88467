"""Master and workers in one event loop over real ZeroMQ sockets on loopback: fast protocol tests."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import msgpack
import pytest
import zmq
import zmq.asyncio

from horde import User, constant, task
from horde._version import PROTOCOL_VERSION
from horde.env import Environment
from horde.event import Events
from horde.rpc.protocol import Message
from horde.runners.master import MasterRunner
from horde.runners.master.core import STOP_MARGIN
from horde.runners.worker import HeartbeatThread, WorkerRefusedError, WorkerRunner
from tests.runners.cluster import Fired, counting_users

pytestmark = (
    pytest.mark.slow
)  # real sockets and real time (the same scenarios on the fake clock: tests/runners)

HB = 0.1  # heartbeat interval for these tests: a worker is missing after 3 silent intervals


def user_classes(fired: Fired) -> list[type[User]]:
    return counting_users(fired, wait=0.01)


@dataclass
class Cluster:
    master: MasterRunner
    workers: list[WorkerRunner] = field(default_factory=list)
    fired: Fired = field(default_factory=Fired)

    async def add_worker(self, classes: list[type[User]] | None = None, **kwargs: object) -> WorkerRunner:
        """A connected worker running ``classes`` (default: the counting Alpha and Beta users)."""
        env = Environment(events=Events(), user_classes=classes or user_classes(self.fired))
        worker = env.create_worker_runner(
            "127.0.0.1", self.master.server.port, heartbeat_interval=HB, stats_report_interval=0.2, **kwargs
        )
        await worker.connect(timeout=5)
        self.workers.append(worker)
        return worker

    @property
    def port(self) -> int:
        return self.master.server.port


async def wait_until(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def new_master(fired: Fired, port: int = 0, stop_timeout: float = 0.5) -> MasterRunner:
    env = Environment(events=Events(), user_classes=user_classes(fired), stop_timeout=stop_timeout)
    master = env.create_master_runner("127.0.0.1", port, heartbeat_interval=HB, heartbeat_liveness=3)
    master.start_background()
    return master


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    fired = Fired()
    c = Cluster(master=new_master(fired), fired=fired)
    yield c
    for w in c.workers:
        await asyncio.wait_for(w.quit(), 5)
    await asyncio.wait_for(c.master.quit(), 10)


async def test_three_workers_share_users_and_totals_merge_exactly(cluster: Cluster) -> None:
    connected: list[str] = []
    cluster.master.environment.events.worker_connect.add_listener(
        lambda client_id: connected.append(client_id)
    )
    for _ in range(3):
        await cluster.add_worker()
    assert await cluster.master.wait_for_workers(3, 5)
    await asyncio.wait_for(cluster.master.start(6, 1000), 5)
    assert [w.user_count for w in cluster.workers] == [2, 2, 2]
    assert cluster.master.user_count == 6 and cluster.master.state == "running"
    await asyncio.sleep(0.5)
    await asyncio.wait_for(cluster.master.stop(), 5)
    assert cluster.master.state == "stopped"
    assert all(w.user_count == 0 for w in cluster.workers)
    total = cluster.master.environment.stats.total
    assert total.num_requests == cluster.fired.count > 50
    assert cluster.master.environment.stats.get("/alpha", "GET").num_requests > 0
    assert total.max_response_time == 3.0 and total.min_response_time == 1.5


async def test_lost_worker_is_marked_missing_and_its_users_move(cluster: Cluster) -> None:
    for _ in range(3):
        await cluster.add_worker()
    await cluster.master.wait_for_workers(3, 5)
    await asyncio.wait_for(cluster.master.start(9, 1000), 5)
    victim = cluster.workers.pop()
    await victim.users.kill_all()
    victim._heartbeat.stop()  # type: ignore[union-attr]
    await victim._cancel_background()  # silent from now on, like a killed process
    victim.client.close()
    await wait_until(lambda: len(cluster.master.nodes.missing) == 1, timeout=2)
    await wait_until(lambda: sum(w.user_count for w in cluster.workers) == 9, timeout=3)
    assert sorted(w.user_count for w in cluster.workers) == [4, 5]
    assert cluster.master.state == "running"


async def test_garbage_on_the_master_port_is_counted_and_ignored(cluster: Cluster) -> None:
    await cluster.add_worker()
    await asyncio.wait_for(cluster.master.start(2, 1000), 5)
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, b"intruder")
    sock.connect(f"tcp://127.0.0.1:{cluster.port}")
    bad = [
        os.urandom(64),
        msgpack.packb([1, 2]),
        msgpack.packb(["heartbeat", {"state": 3}, None]),
        msgpack.packb(["stats", "not a map", None]),
        msgpack.packb(["no_such_type", {}, None]),
        msgpack.packb(["client_ready", {"version": "x"}, None]),
    ]
    for frame in bad:
        await sock.send(frame)
    await sock.send_multipart([b"a", b"b", b"c"])
    await wait_until(lambda: sum(cluster.master.dropped_messages.values()) >= len(bad), timeout=2)
    # a well-formed message from a stranger is not obeyed: it is asked to register first
    await sock.send(
        Message(
            "stats", {"seq": 1, "stats": {}, "user_classes_count": {}, "exceptions": [], "logs": []}
        ).serialize()
    )
    reply = Message.unserialize(await asyncio.wait_for(sock.recv(), 2))
    assert reply.type == "reregister"
    sock.close(linger=0)
    ctx.term()
    await asyncio.sleep(0.3)
    assert cluster.master.state == "running" and cluster.master.user_count == 2
    await asyncio.wait_for(cluster.master.stop(), 5)
    assert cluster.master.environment.stats.total.num_requests == cluster.fired.count


async def test_incompatible_worker_is_refused_with_both_versions(cluster: Cluster) -> None:
    env = Environment(events=Events(), user_classes=user_classes(cluster.fired))
    worker = env.create_worker_runner("127.0.0.1", cluster.port, protocol_version=PROTOCOL_VERSION + 41)
    with pytest.raises(WorkerRefusedError) as exc:
        await worker.connect(timeout=5)
    assert f"protocol {PROTOCOL_VERSION}" in str(exc.value) and f"protocol {PROTOCOL_VERSION + 41}" in str(
        exc.value
    )
    assert len(cluster.master.nodes) == 0
    await worker.quit()


async def test_duplicate_stats_reports_are_counted_once(cluster: Cluster) -> None:
    worker = await cluster.add_worker()
    await asyncio.wait_for(cluster.master.start(1, 1000), 5)
    worker.environment.stats.record("GET", "/dup", 5.0, 1, None)
    payload = {
        "seq": 10_000,
        "stats": worker.environment.stats.serialize_and_reset(),
        "user_classes_count": worker.user_classes_count,
        "exceptions": [],
        "logs": [],
    }
    for _ in range(3):  # a retried report carries the same sequence number
        await worker.client.send(Message("stats", payload, worker.client_id))
    await wait_until(lambda: cluster.master.environment.stats.get("/dup", "GET").num_requests >= 1)
    await asyncio.sleep(0.2)
    assert cluster.master.environment.stats.get("/dup", "GET").num_requests == 1


async def test_workers_rejoin_a_restarted_master() -> None:
    fired = Fired()
    cluster = Cluster(master=new_master(fired), fired=fired)
    for _ in range(2):
        await cluster.add_worker()
    port = cluster.port
    await asyncio.wait_for(cluster.master.start(4, 1000), 5)
    # the master dies without a word
    await cluster.master._cancel_background()
    cluster.master.server.close()
    second = new_master(fired, port=port)
    try:
        await wait_until(lambda: len(second.nodes) == 2, timeout=5)
        # the new master runs no test, so the leftover users are stopped
        await wait_until(lambda: all(w.user_count == 0 for w in cluster.workers), timeout=5)
        await asyncio.wait_for(second.start(2, 1000), 5)
        assert sorted(w.user_count for w in cluster.workers) == [1, 1]
    finally:
        for w in cluster.workers:
            await asyncio.wait_for(w.quit(), 5)
        await asyncio.wait_for(second.quit(), 10)


async def test_returning_worker_is_fenced_before_it_runs_users_again(cluster: Cluster) -> None:
    for _ in range(2):
        await cluster.add_worker()
    await asyncio.wait_for(cluster.master.start(4, 1000), 5)
    quiet = cluster.workers[1]
    # a network partition: the worker keeps running its users but nothing it sends arrives
    real_send = quiet._send

    async def lost(msg: Message) -> None:
        return None

    quiet._send = lost  # type: ignore[method-assign]
    quiet._heartbeat.stop()  # type: ignore[union-attr]
    await wait_until(lambda: len(cluster.master.nodes.missing) == 1, timeout=2)
    await wait_until(lambda: cluster.workers[0].user_count == 4, timeout=3)
    assert quiet.user_count == 2  # still running: a partition, not a crash
    targets: list[int] = []
    original_apply = quiet._apply

    async def watch_apply(seq: int, kind: str, payload: dict[str, int]) -> None:
        targets.append(sum(payload.values()))
        await original_apply(seq, kind, payload)

    quiet._apply = watch_apply  # type: ignore[method-assign]
    quiet._send = real_send  # type: ignore[method-assign]
    quiet._heartbeat = HeartbeatThread(quiet, HB)
    quiet._heartbeat.start()
    await wait_until(lambda: not cluster.master.nodes.missing, timeout=5)
    await wait_until(
        lambda: sum(w.user_count for w in cluster.workers) == 4 and quiet.user_count > 0, timeout=5
    )
    assert targets[0] == 0  # told its target (zero) before it was given users again
    assert sorted(w.user_count for w in cluster.workers) == [2, 2]


async def test_custom_messages_both_ways(cluster: Cluster) -> None:
    worker = await cluster.add_worker()
    to_master: list[object] = []
    to_worker: list[object] = []
    cluster.master.register_message(
        "from_worker", lambda environment, msg: to_master.append((msg.data, msg.node_id))
    )
    worker.register_message("from_master", lambda environment, msg: to_worker.append(msg.data))
    worker.send_message("from_worker", {"n": 1})
    cluster.master.send_message("from_master", [1, 2])
    await wait_until(lambda: bool(to_master and to_worker))
    assert to_master == [({"n": 1}, worker.client_id)] and to_worker == [[1, 2]]


async def test_last_worker_quitting_stops_the_test(cluster: Cluster) -> None:
    worker = await cluster.add_worker()
    await asyncio.wait_for(cluster.master.start(2, 1000), 5)
    cluster.workers.remove(worker)
    await worker.quit()
    await asyncio.wait_for(cluster.master.wait_stopped(), 5)
    assert cluster.master.state == "stopped"
    assert cluster.master.environment.stats.total.num_requests == cluster.fired.count


async def test_workers_rejoin_a_master_restarted_after_a_long_silence() -> None:
    fired = Fired()
    cluster = Cluster(master=new_master(fired), fired=fired)
    for _ in range(2):
        await cluster.add_worker()
    port = cluster.port
    await cluster.master._cancel_background()
    cluster.master.server.close()
    await asyncio.sleep(1.0)  # several liveness windows: the workers reset their sockets meanwhile
    second = new_master(fired, port=port)
    try:
        await wait_until(lambda: len(second.nodes) == 2, timeout=8)
        await asyncio.wait_for(second.start(2, 1000), 5)
        assert sorted(w.user_count for w in cluster.workers) == [1, 1]
    finally:
        for w in cluster.workers:
            await asyncio.wait_for(w.quit(), 5)
        await asyncio.wait_for(second.quit(), 10)


async def test_slow_master_listener_does_not_make_workers_missing(cluster: Cluster) -> None:
    async def slow_start(environment: Environment) -> None:
        await asyncio.sleep(1.0)  # ten heartbeat intervals

    cluster.master.environment.events.test_start.add_listener(slow_start)
    for _ in range(2):
        await cluster.add_worker()
    await asyncio.wait_for(cluster.master.start(4, 1000), 5)
    assert not cluster.master.nodes.missing
    assert cluster.master.state == "running" and sorted(w.user_count for w in cluster.workers) == [2, 2]


async def test_master_listener_awaiting_quit_does_not_deadlock(cluster: Cluster) -> None:
    master = cluster.master

    async def give_up(**kwargs: object) -> None:
        await master.quit()  # runs inside the master's controller, which carries out the quit

    master.environment.events.spawning_complete.add_listener(give_up)
    await cluster.add_worker()
    master.start(1, 1000)
    await asyncio.wait_for(master.wait_stopped(), 5)
    assert master.state == "stopped"


async def test_stop_test_in_a_worker_stops_the_whole_cluster(cluster: Cluster) -> None:
    from horde import StopTest

    class Quitter(User):
        wait_time = constant(0.05)

        @task
        async def t(self) -> None:
            raise StopTest("the data set is exhausted")

    worker = await cluster.add_worker([Quitter])
    cluster.master.environment.user_classes = [Quitter]
    cluster.master.start(2, 1000)
    # the master's own bound: on a loaded machine the worker may reconnect mid-stop (its master-silence
    # limit here is 3 heartbeats of 0.1 s) and its final report then waits for the stop deadline
    bound = cluster.master.environment.stop_timeout + STOP_MARGIN + 2.0
    await asyncio.wait_for(cluster.master.wait_stopped(), bound)
    assert cluster.master.stop_reason == f"worker {worker.client_id}: the data set is exhausted"


async def test_worker_that_cannot_create_users_stops_the_test(cluster: Cluster) -> None:
    class Broken(User):
        def __init__(self, environment: Environment) -> None:
            super().__init__(environment)
            raise FileNotFoundError("users.csv")

        @task
        async def t(self) -> None: ...

    worker = await cluster.add_worker([Broken])
    cluster.master.environment.user_classes = [Broken]
    cluster.master.start(1, 1000)
    await asyncio.wait_for(cluster.master.wait_stopped(), 5)
    assert cluster.master.stop_reason is not None and "users.csv" in cluster.master.stop_reason
    assert worker.environment.events.unhandled_errors == 1


async def test_non_finite_numbers_are_rejected(cluster: Cluster) -> None:
    worker = await cluster.add_worker()
    bad = {
        "state": "running",
        "current_cpu_usage": float("inf"),
        "current_memory_usage": 1,
        "loop_lag": 0.0,
        "user_count": 0,
    }
    before = sum(cluster.master.dropped_messages.values())
    await worker.client.send(Message("heartbeat", bad, worker.client_id))
    await wait_until(lambda: sum(cluster.master.dropped_messages.values()) > before)
    assert cluster.master.environment.events.unhandled_errors == 0


async def test_reset_stats_drops_reports_measured_before_the_reset() -> None:
    fired = Fired()
    env = Environment(events=Events(), user_classes=user_classes(fired), reset_stats=True)
    master = env.create_master_runner("127.0.0.1", 0, heartbeat_interval=HB)
    master.start_background()
    cluster = Cluster(master=master, fired=fired)
    try:
        worker = await cluster.add_worker()
        worker.environment.stats.record("GET", "/before-reset", 1.0, 1, None)
        await asyncio.wait_for(master.start(2, 1000), 5)
        worker._stats_seq += 1  # a report the worker made before it heard of the reset
        stale = {
            "seq": worker._stats_seq,
            "stats": {"stats": [], "stats_total": {}, "errors": {}},
            "user_classes_count": worker.user_classes_count,
            "exceptions": [],
            "logs": [],
            "stats_generation": 0,
        }
        stale["stats"] = Environment(events=Events(), user_classes=user_classes(fired)).stats.serialize()
        await worker.client.send(Message("stats", stale, worker.client_id))
        await wait_until(lambda: master.dropped_messages["stats from before a reset"] == 1)
        await asyncio.sleep(0.5)
        assert master.environment.stats.get("/before-reset", "GET").num_requests == 0
        assert master.environment.stats.total.num_requests > 0  # reports after the reset are merged
    finally:
        for w in cluster.workers:
            await asyncio.wait_for(w.quit(), 5)
        await asyncio.wait_for(master.quit(), 10)
