"""What every transport must do, run against both implementations (see test_memory, test_zmq)."""

from __future__ import annotations

import asyncio
from typing import Any

from horde.rpc.protocol import Message
from horde.rpc.transport import BadFrame, ClientTransport, Inbound, ServerTransport

TIMEOUT = 5.0


async def recv(end: Any) -> Any:
    return await asyncio.wait_for(end.recv(), TIMEOUT)


async def check_round_trip(server: ServerTransport, client: ClientTransport) -> None:
    await client.send(Message("client_ready", {"n": 1}, client.identity))
    item = await recv(server)
    assert item == Inbound(client.identity, Message("client_ready", {"n": 1}, client.identity), "main")
    await server.send(client.identity, Message("ack", {"index": 0}))
    assert await recv(client) == Message("ack", {"index": 0})
    server.send_nowait(client.identity, Message("heartbeat", {}))
    assert await recv(client) == Message("heartbeat", {})


async def check_heartbeat_channel(server: ServerTransport, client: ClientTransport) -> None:
    channel = client.open_heartbeat()
    try:
        assert channel.send(Message("heartbeat", {"state": "ready"}, client.identity))
        item = await recv(server)
        assert isinstance(item, Inbound)
        assert (item.sender, item.channel, item.message.type) == (client.identity, "heartbeat", "heartbeat")
    finally:
        channel.close()


async def check_reset_cancels_a_pending_receive(client: ClientTransport) -> None:
    reading = asyncio.ensure_future(client.recv())
    await asyncio.sleep(0.05)
    client.reset()
    try:
        await asyncio.wait_for(reading, TIMEOUT)
    except asyncio.CancelledError:
        pass
    else:  # pragma: no cover - the contract says the read is cancelled
        raise AssertionError("a reset must cancel a pending receive")


async def check_send_to_an_unknown_identity_is_dropped(server: ServerTransport) -> None:
    await server.send("nobody", Message("ack", {}))
    server.send_nowait("nobody", Message("ack", {}))


def is_bad(item: Any, reason: str) -> bool:
    return isinstance(item, BadFrame) and item.reason == reason
