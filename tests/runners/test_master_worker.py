"""Master and workers over the in-memory transport on a FakeClock: liveness, rejoin, fencing, garbage,
reports — every scenario without a socket or a sleep."""

from __future__ import annotations

import math

import msgpack
import pytest

from horde import StopTest, User, constant, task
from horde._version import PROTOCOL_VERSION
from horde.env import Environment
from horde.rpc.protocol import Message
from horde.runners.worker import WorkerRefusedError
from tests.runners.cluster import HB, LIVENESS, MemoryCluster

WINDOW = HB * LIVENESS


async def test_three_workers_share_users_and_totals_merge_exactly(cluster: MemoryCluster) -> None:
    connected: list[str] = []
    cluster.master.environment.events.worker_connect.add_listener(
        lambda client_id: connected.append(client_id)
    )
    for _ in range(3):
        await cluster.add_worker()
    assert await cluster.until(cluster.master.wait_for_workers(3, 5))
    assert connected == [w.client_id for w in cluster.workers]
    await cluster.until(cluster.master.start(6, 1000))
    assert cluster.users() == [2, 2, 2]
    assert cluster.master.user_count == 6 and cluster.master.state == "running"
    await cluster.advance(10.0)
    await cluster.until(cluster.master.stop())
    assert cluster.master.state == "stopped" and cluster.users() == [0, 0, 0]
    total = cluster.master.environment.stats.total
    assert total.num_requests == cluster.fired.count >= 6 * 19  # a request per user every 0.5 s of 10 s
    assert total.max_response_time == 3.0 and total.min_response_time == 1.5


async def test_a_silent_worker_is_missing_exactly_after_the_window(cluster: MemoryCluster) -> None:
    for _ in range(3):
        await cluster.add_worker()
    await cluster.until(cluster.master.start(9, 1000))
    victim = cluster.workers.pop()
    await victim.users.kill_all()
    cluster.network.disconnect(victim.client_id)  # a killed process: nothing more in or out
    await victim._cancel_background()
    await cluster.advance(WINDOW - 0.2)
    assert not cluster.master.nodes.missing  # still inside the window: nothing happened
    assert cluster.users() == [3, 3]
    await cluster.advance(HB)
    assert [n.id for n in cluster.master.nodes.missing] == [victim.client_id]
    await cluster.advance(1.0)
    assert sorted(cluster.users()) == [4, 5] and cluster.master.state == "running"


async def test_a_missing_worker_is_forgotten_after_a_minute(cluster: MemoryCluster) -> None:
    await cluster.add_worker()
    victim = cluster.workers.pop()
    cluster.network.disconnect(victim.client_id)
    await victim._cancel_background()
    await cluster.advance(WINDOW + HB)
    assert len(cluster.master.nodes.missing) == 1
    await cluster.advance(58.0, step=0.5)
    assert len(cluster.master.nodes.missing) == 1  # kept for a minute, in case it comes back
    await cluster.advance(3 * HB, step=0.5)
    assert len(cluster.master.nodes) == 0


async def test_garbage_is_counted_and_ignored_and_strangers_must_register(cluster: MemoryCluster) -> None:
    await cluster.add_worker()
    await cluster.until(cluster.master.start(2, 1000))
    server = cluster.network.server
    assert server is not None
    bad = [
        b"\xc1not msgpack",
        msgpack.packb([1, 2]),
        msgpack.packb(["heartbeat", {"state": 3}, None]),
        msgpack.packb(["stats", "not a map", None]),
        msgpack.packb(["no_such_type", {}, None]),
        msgpack.packb(["client_ready", {"version": "x"}, None]),
    ]
    for raw in bad:
        server.inject("intruder", raw)
    server.inject_bad_frame("frame count", "expected 2 frames, got 3")
    await cluster.settle()
    assert sum(cluster.master.dropped_messages.values()) == len(bad) + 1
    assert cluster.master.dropped_messages["frame count"] == 1
    # a well-formed message from a stranger is not obeyed: it is asked to register first
    stranger = cluster.network.connect("stranger")
    stats = {"seq": 1, "stats": {}, "user_classes_count": {}, "exceptions": [], "logs": []}
    await stranger.send(Message("stats", stats))
    await cluster.settle()
    reply = await stranger.recv()
    assert isinstance(reply, Message) and reply.type == "reregister"
    assert cluster.master.state == "running" and cluster.master.user_count == 2
    assert "stranger" not in cluster.master.nodes


async def test_only_heartbeats_travel_on_the_heartbeat_channel(cluster: MemoryCluster) -> None:
    worker = await cluster.add_worker()
    server = cluster.network.server
    assert server is not None
    server.inject(worker.client_id, Message("stop_test", {"reason": "x"}).serialize(), channel="heartbeat")
    await cluster.settle()
    assert cluster.master.dropped_messages["invalid"] == 1


async def test_incompatible_worker_is_refused_with_both_versions(cluster: MemoryCluster) -> None:
    worker = cluster.new_worker(protocol_version=PROTOCOL_VERSION + 41)
    with pytest.raises(WorkerRefusedError) as exc:
        await cluster.until(worker.connect(timeout=5))
    assert f"protocol {PROTOCOL_VERSION}" in str(exc.value)
    assert f"protocol {PROTOCOL_VERSION + 41}" in str(exc.value)
    assert len(cluster.master.nodes) == 0


async def test_connect_times_out_on_the_clock_when_nobody_answers() -> None:
    c = MemoryCluster()
    worker = c.new_worker()
    with pytest.raises(TimeoutError):
        await c.until(worker.connect(timeout=3.0), limit=5.0)
    assert c.clock.monotonic() - 1000.0 == pytest.approx(3.0, abs=0.11)
    await c.until(worker.quit())


async def test_duplicate_stats_reports_are_counted_once(cluster: MemoryCluster) -> None:
    worker = await cluster.add_worker()
    await cluster.until(cluster.master.start(1, 1000))
    worker.environment.stats.record("GET", "/dup", 5.0, 1, None)
    payload = {
        "seq": 10_000,
        "stats": worker.environment.stats.serialize_and_reset(),
        "user_classes_count": worker.user_classes_count,
        "exceptions": [],
        "logs": [],
    }
    for _ in range(3):  # a retried report carries the same sequence number
        await worker.transport.send(Message("stats", payload, worker.client_id))
    await cluster.settle()
    assert cluster.master.environment.stats.get("/dup", "GET").num_requests == 1
    assert cluster.master.dropped_messages["duplicate stats"] == 2


async def test_workers_rejoin_a_restarted_master() -> None:
    c = MemoryCluster()
    first = c.new_master()
    for _ in range(2):
        await c.add_worker()
    await c.until(first.start(4, 1000))
    await first._cancel_background()  # the master dies without a word
    first.transport.close()
    second = c.new_master()
    await c.advance(WINDOW + 2 * HB)  # the workers notice the silence and register again
    assert len(second.nodes) == 2
    assert c.users() == [0, 0]  # the new master runs no test, so the leftover users were stopped
    await c.until(second.start(2, 1000))
    assert c.users() == [1, 1]
    await c.close()


async def test_a_repeated_introduction_with_leftover_users_stops_them(cluster: MemoryCluster) -> None:
    # a worker retrying client_ready while a new master started: the retries arrive after the first
    worker = await cluster.add_worker()
    worker.users.spawn(worker.environment.user_classes[0], 1)
    for _ in range(2):
        await worker.transport.send(worker._ready_message())
    await cluster.advance(2 * HB)
    to_worker = [m.type for ident, m in cluster.network.server.sent if ident == worker.client_id]  # type: ignore[union-attr]
    assert "spawn" not in to_worker and "stop" in to_worker
    assert worker.user_count == 0 and [n.id for n in cluster.master.nodes.ready] == [worker.client_id]


async def test_worker_gives_up_after_master_timeout() -> None:
    c = MemoryCluster()
    master = c.new_master()
    worker = await c.add_worker(master_timeout=10.0)
    await master._cancel_background()
    master.transport.close()
    await c.advance(WINDOW + 2 * HB)
    assert not worker.connected.is_set() and worker.exit_code is None
    await c.advance(10.0)
    assert worker._quit_event.is_set() and worker.exit_code == 1
    await c.until(worker.quit())


async def test_returning_worker_is_fenced_before_it_runs_users_again(cluster: MemoryCluster) -> None:
    for _ in range(2):
        await cluster.add_worker()
    await cluster.until(cluster.master.start(4, 1000))
    quiet = cluster.workers[1]
    # a partition: the worker keeps running its users, but nothing it sends arrives
    cluster.network.partition(quiet.client_id, from_master=False)
    await cluster.advance(WINDOW + HB)
    assert [n.id for n in cluster.master.nodes.missing] == [quiet.client_id]
    await cluster.advance(0.5)
    assert cluster.workers[0].user_count == 4 and quiet.user_count == 2  # a partition, not a crash
    sent_before = len(cluster.network.server.sent)  # type: ignore[union-attr]
    cluster.network.heal(quiet.client_id)
    await cluster.advance(2 * HB)
    assert not cluster.master.nodes.missing
    to_quiet = [m for ident, m in cluster.network.server.sent[sent_before:] if ident == quiet.client_id]  # type: ignore[union-attr]
    spawns = [m.data for m in to_quiet if m.type == "spawn"]
    assert spawns[0]["fence"] is True and sum(spawns[0]["user_classes_count"].values()) == 0
    assert sorted(cluster.users()) == [2, 2]


async def test_custom_messages_both_ways(cluster: MemoryCluster) -> None:
    worker = await cluster.add_worker()
    to_master: list[object] = []
    to_worker: list[object] = []
    cluster.master.register_message(
        "from_worker", lambda environment, msg: to_master.append((msg.data, msg.node_id))
    )
    worker.register_message("from_master", lambda environment, msg: to_worker.append(msg.data))
    worker.send_message("from_worker", {"n": 1})
    cluster.master.send_message("from_master", [1, 2])
    await cluster.settle()
    assert to_master == [({"n": 1}, worker.client_id)] and to_worker == [[1, 2]]


async def test_last_worker_quitting_stops_the_test(cluster: MemoryCluster) -> None:
    worker = await cluster.add_worker()
    await cluster.until(cluster.master.start(2, 1000))
    await cluster.advance(2.0)
    cluster.workers.remove(worker)
    await cluster.until(worker.quit())
    await cluster.until(cluster.master.wait_stopped())
    assert cluster.master.state == "stopped"
    assert cluster.master.environment.stats.total.num_requests == cluster.fired.count > 0


async def test_slow_master_listener_does_not_make_workers_missing(cluster: MemoryCluster) -> None:
    clock = cluster.clock

    async def slow_start(environment: Environment) -> None:
        await clock.sleep(10 * HB)  # ten heartbeat intervals inside the controller

    cluster.master.environment.events.test_start.add_listener(slow_start)
    for _ in range(2):
        await cluster.add_worker()
    await cluster.until(cluster.master.start(4, 1000))
    assert clock.monotonic() - 1000.0 >= 10 * HB
    assert not cluster.master.nodes.missing
    assert cluster.master.state == "running" and sorted(cluster.users()) == [2, 2]


async def test_master_listener_awaiting_quit_does_not_deadlock(cluster: MemoryCluster) -> None:
    master = cluster.master

    async def give_up(**kwargs: object) -> None:
        await master.quit()  # runs inside the master's controller, which carries out the quit

    master.environment.events.spawning_complete.add_listener(give_up)
    await cluster.add_worker()
    master.start(1, 1000)
    await cluster.until(master.wait_stopped())
    assert master.state == "stopped"


async def test_stop_test_in_a_worker_stops_the_whole_cluster(cluster: MemoryCluster) -> None:
    class Quitter(User):
        wait_time = constant(0.05)

        @task
        async def t(self) -> None:
            raise StopTest("the data set is exhausted")

    worker = await cluster.add_worker([Quitter])
    cluster.master.environment.user_classes = [Quitter]
    cluster.master.start(2, 1000)
    await cluster.until(cluster.master.wait_stopped())
    # the reason names the worker: a test a worker ended is not a plain success (the session exits 1)
    assert cluster.master.stop_reason == f"worker {worker.client_id}: the data set is exhausted"


async def test_worker_that_cannot_create_users_stops_the_test(cluster: MemoryCluster) -> None:
    class Broken(User):
        def __init__(self, environment: Environment) -> None:
            super().__init__(environment)
            raise FileNotFoundError("users.csv")

        @task
        async def t(self) -> None: ...

    worker = await cluster.add_worker([Broken])
    cluster.master.environment.user_classes = [Broken]
    cluster.master.start(1, 1000)
    await cluster.until(cluster.master.wait_stopped())
    assert cluster.master.stop_reason is not None and "users.csv" in cluster.master.stop_reason
    assert worker.environment.events.unhandled_errors == 1


async def test_non_finite_numbers_are_rejected(cluster: MemoryCluster) -> None:
    worker = await cluster.add_worker()
    bad = {
        "state": "running",
        "current_cpu_usage": math.inf,
        "current_memory_usage": 1,
        "loop_lag": 0.0,
        "user_count": 0,
    }
    await worker.transport.send(Message("heartbeat", bad, worker.client_id))
    await cluster.settle()
    assert cluster.master.dropped_messages["invalid"] == 1
    assert cluster.master.environment.events.unhandled_errors == 0


async def test_reset_stats_drops_reports_measured_before_the_reset() -> None:
    c = MemoryCluster()
    master = c.new_master(reset_stats=True)
    worker = await c.add_worker()
    worker.environment.stats.record("GET", "/before-reset", 1.0, 1, None)
    await c.until(master.start(2, 1000))
    worker._stats_seq += 1  # a report the worker made before it heard of the reset
    stale = {
        "seq": worker._stats_seq,
        "stats": Environment(events=worker.environment.events, user_classes=[]).stats.serialize(),
        "user_classes_count": worker.user_classes_count,
        "exceptions": [],
        "logs": [],
        "stats_generation": 0,
    }
    await worker.transport.send(Message("stats", stale, worker.client_id))
    await c.advance(2 * 3.0)
    assert master.dropped_messages["stats from before a reset"] == 1
    assert master.environment.stats.get("/before-reset", "GET").num_requests == 0
    assert master.environment.stats.total.num_requests > 0  # reports after the reset are merged
    await c.close()


async def test_wait_for_workers_runs_on_the_clock(cluster: MemoryCluster) -> None:
    assert await cluster.until(cluster.master.wait_for_workers(1, max_wait=4.0)) is False
    waiting = cluster.master.wait_for_workers(2, max_wait=30.0)
    for _ in range(2):
        await cluster.add_worker()
    assert await cluster.until(waiting, limit=1.0) is True


async def test_hurry_tells_stopping_workers_to_stop_now() -> None:
    class Stubborn(User):
        wait_time = constant(0)

        @task
        async def t(self) -> None:
            await self.environment.clock.sleep(1000)  # a task that would outlast any stop_timeout

    c = MemoryCluster()
    master = c.new_master([Stubborn], stop_timeout=600)
    worker = await c.add_worker([Stubborn])
    await c.until(master.start(2, 1000))
    stopping = master.stop()
    await c.advance(1.0)
    assert worker.user_count == 0 and worker.users.running_tasks == 2  # still finishing their task
    master.hurry()
    await c.until(stopping, limit=2.0)
    assert worker.users.running_tasks == 0 and master.state == "stopped"
    await c.close()


async def test_hurry_before_the_stop_makes_the_stop_immediate() -> None:
    class Stubborn(User):
        wait_time = constant(0)

        @task
        async def t(self) -> None:
            await self.environment.clock.sleep(1000)

    c = MemoryCluster()
    master = c.new_master([Stubborn], stop_timeout=600)
    worker = await c.add_worker([Stubborn])
    await c.until(master.start(2, 1000))
    master.hurry()  # e.g. a second Ctrl-C arriving before the first one's stop was carried out
    await c.until(master.stop(), limit=1.0)
    assert worker.users.running_tasks == 0 and master.state == "stopped"
    assert not master.nodes.missing and master.nodes.all[0].state == "ready"
    await c.close()


async def test_worker_statuses_are_rows_of_the_workers(cluster: MemoryCluster) -> None:
    first = await cluster.add_worker()
    second = await cluster.add_worker()
    await cluster.until(cluster.master.start(3, 1000))
    await cluster.advance(HB)
    rows = cluster.master.worker_statuses()
    assert [r.id for r in rows] == [first.client_id, second.client_id]
    assert [r.index for r in rows] == [0, 1]
    assert sorted(r.user_count for r in rows) == [1, 2]
    assert all(r.state == "running" and r.last_heartbeat is not None for r in rows)
    assert list(cluster.master.clients) == [first.client_id, second.client_id]
    assert cluster.master.worker_count == 2
    await cluster.until(cluster.master.stop())
    assert sorted(r.user_count for r in cluster.master.worker_statuses(final=True)) == [1, 2]


async def test_a_shape_drives_the_cluster_on_the_clock_and_ends_the_test() -> None:
    from horde.shape import LoadTestShape

    class Steps(LoadTestShape):
        def tick(self):  # type: ignore[no-untyped-def]
            t = self.get_run_time()
            if t < 5:
                return (4, 100)
            if t < 10:
                return (2, 100)
            return None

    c = MemoryCluster()
    master = c.new_master(shape_class=Steps())
    for _ in range(2):
        await c.add_worker()
    master.start_shape()
    await c.advance(2.0)
    assert c.users() == [2, 2] and master.target_user_count == 4
    await c.advance(5.0)
    assert c.users() == [1, 1] and master.target_user_count == 2
    await c.advance(4.0)
    assert master.state == "stopped" and master.stop_reason == "the load shape ended"
    assert c.users() == [0, 0]
    await c.close()


async def test_workers_lost_together_are_re_placed_in_one_step(cluster: MemoryCluster) -> None:
    for _ in range(10):
        await cluster.add_worker()
    await cluster.until(cluster.master.start(100, 10_000))
    victims = cluster.workers[-3:]
    survivors = cluster.workers[:-3]
    server = cluster.network.server
    assert server is not None
    for victim in victims:  # a rack going down: all silent at the same moment
        cluster.network.disconnect(victim.client_id)
        await victim._cancel_background()
        cluster.workers.remove(victim)
    sent_before = len(server.sent)
    await cluster.advance(WINDOW + 2 * HB)
    assert len(cluster.master.nodes.missing) == 3
    assert sum(w.user_count for w in survivors) == 100
    spawns: dict[str, int] = {}
    for ident, msg in server.sent[sent_before:]:
        if msg.type == "spawn":
            spawns[ident] = spawns.get(ident, 0) + 1
    assert set(spawns) <= {w.client_id for w in survivors}
    assert set(spawns.values()) == {1}  # one re-plan for the three losses, not one per loss
