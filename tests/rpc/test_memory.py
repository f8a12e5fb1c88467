"""The in-memory transport: the transport contract, plus the faults and the drain tests rely on."""

from __future__ import annotations

import asyncio
import threading

import pytest

from horde.rpc.memory import MemoryNetwork
from horde.rpc.protocol import Message
from horde.rpc.transport import BadFrame, Inbound, RPCError
from tests.rpc import transport_contract as contract


@pytest.fixture
def network() -> MemoryNetwork:
    return MemoryNetwork()


async def test_round_trip(network: MemoryNetwork) -> None:
    await contract.check_round_trip(network.listen(), network.connect("w1"))


async def test_heartbeat_channel(network: MemoryNetwork) -> None:
    await contract.check_heartbeat_channel(network.listen(), network.connect("w1"))


async def test_reset_cancels_a_pending_receive(network: MemoryNetwork) -> None:
    network.listen()
    await contract.check_reset_cancels_a_pending_receive(network.connect("w1"))


async def test_unknown_identity(network: MemoryNetwork) -> None:
    await contract.check_send_to_an_unknown_identity_is_dropped(network.listen())
    assert network.dropped == 2


async def test_messages_go_through_the_codec(network: MemoryNetwork) -> None:
    server, client = network.listen(), network.connect("w1")
    await client.send(Message("x", {"t": (1, 2)}))
    item = await server.recv()
    assert isinstance(item, Inbound) and item.message.data == {"t": [1, 2]}  # msgpack has no tuples
    with pytest.raises(TypeError):
        await client.send(Message("x", {"s": {1, 2}}))  # not encodable, as on a real socket


async def test_injected_garbage_becomes_bad_frames(network: MemoryNetwork) -> None:
    server = network.listen()
    server.inject("intruder", b"\xc1")
    server.inject_bad_frame("frame count", "expected 2 frames, got 3")
    first, second = await server.recv(), await server.recv()
    assert isinstance(first, BadFrame) and first.reason == "undecodable" and "intruder" in first.detail
    assert second == BadFrame("frame count", "expected 2 frames, got 3")


async def test_partition_loses_messages_until_healed(network: MemoryNetwork) -> None:
    server, client = network.listen(), network.connect("w1")
    network.partition("w1", from_master=False)
    await client.send(Message("lost"))
    assert client.open_heartbeat().send(Message("heartbeat"))  # queued, as a socket would, then lost
    await server.send("w1", Message("arrives"))
    assert await client.recv() == Message("arrives")
    network.heal("w1")
    await client.send(Message("kept"))
    item = await server.recv()
    assert isinstance(item, Inbound) and item.message.type == "kept"
    assert network.dropped == 2


async def test_disconnect_is_a_dead_peer(network: MemoryNetwork) -> None:
    server, client = network.listen(), network.connect("w1")
    network.disconnect("w1")
    with pytest.raises(RPCError):
        await client.send(Message("x"))
    with pytest.raises(RPCError):
        await client.recv()
    await server.send("w1", Message("x"))  # dropped, as a ROUTER drops it
    assert not client.open_heartbeat().send(Message("heartbeat"))


async def test_a_restarted_master_replaces_the_closed_one(network: MemoryNetwork) -> None:
    first = network.listen()
    client = network.connect("w1")
    first.close()
    with pytest.raises(RPCError):
        await first.recv()
    await client.send(Message("lost"))
    second = network.listen()
    await client.send(Message("hello"))
    item = await second.recv()
    assert isinstance(item, Inbound) and item.message.type == "hello"


async def test_heartbeats_from_a_thread_arrive_on_the_loop(network: MemoryNetwork) -> None:
    server, client = network.listen(), network.connect("w1")
    channel = client.open_heartbeat()
    thread = threading.Thread(target=channel.send, args=(Message("heartbeat"),))
    thread.start()
    thread.join()
    item = await asyncio.wait_for(server.recv(), 5)
    assert isinstance(item, Inbound) and item.channel == "heartbeat"


async def test_drain_waits_for_every_exchange_to_finish(network: MemoryNetwork) -> None:
    server, client = network.listen(), network.connect("w1")
    answered: list[str] = []

    async def echo() -> None:
        while True:
            item = await server.recv()
            assert isinstance(item, Inbound)
            await server.send(item.sender, Message("re:" + item.message.type))

    async def listen() -> None:
        while True:
            msg = await client.recv()
            assert isinstance(msg, Message)
            answered.append(msg.type)
            if len(answered) < 5:
                await client.send(Message(f"m{len(answered)}"))

    tasks = [asyncio.ensure_future(echo()), asyncio.ensure_future(listen())]
    await client.send(Message("m0"))
    await network.drain()
    assert answered == ["re:m0", "re:m1", "re:m2", "re:m3", "re:m4"]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_drain_ignores_a_mailbox_nobody_reads(network: MemoryNetwork) -> None:
    server = network.listen()
    network.connect("w1")
    await server.send("w1", Message("unread"))
    await network.drain()  # returns: nobody will ever read it
