"""The production heartbeat path: a thread on the real clock, sending on the transport's heartbeat channel."""

from __future__ import annotations

import asyncio
import time

import pytest

from horde.env import Environment
from horde.event import Events
from horde.rpc.memory import MemoryNetwork
from horde.rpc.transport import Inbound
from tests.runners.cluster import Fired, counting_users

pytestmark = pytest.mark.slow  # real time (a fraction of a second)


async def test_heartbeats_come_from_a_thread_even_while_the_loop_is_blocked() -> None:
    network = MemoryNetwork()
    server = network.listen()
    env = Environment(events=Events(), user_classes=counting_users(Fired()))
    worker = env.create_worker_runner("memory", 0, connect=network.connect, heartbeat_interval=0.02)
    assert worker.heartbeat_thread  # the real clock: the thread, not the async loop
    worker.start_background()
    worker.connected.set()  # as if the master had answered
    await asyncio.sleep(0.05)
    while server._mailbox.items:
        server._mailbox.items.popleft()
    time.sleep(0.3)  # noqa: ASYNC251 - on purpose: a blocking task, the loop runs nothing meanwhile
    for _ in range(3):
        await asyncio.sleep(0)  # deliver what the thread handed to the loop while it was blocked
    beats = [i for i in server._mailbox.items if isinstance(i, Inbound) and i.channel == "heartbeat"]
    assert len(beats) >= 5  # ~15 intervals passed; an event-loop sender would have sent none
    assert beats[0].message.type == "heartbeat" and beats[0].message.data["state"] == "ready"
    assert beats[-1].message.data["loop_lag"] > 0.1  # and they say the loop is lagging
    await worker.quit()
    assert worker._heartbeat is not None
    worker._heartbeat.join(2)
    assert not worker._heartbeat.is_alive()
