"""The ZeroMQ transport on loopback: the transport contract, and frames the master must not trust."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import msgpack
import pytest
import zmq
import zmq.asyncio

from horde.rpc.protocol import Message
from horde.rpc.transport import Inbound, RPCError
from horde.rpc.zmq import HEARTBEAT_SUFFIX, ZmqClient, ZmqServer
from tests.rpc import transport_contract as contract


@pytest.fixture
async def server() -> AsyncIterator[ZmqServer]:
    srv = ZmqServer("127.0.0.1", 0)
    yield srv
    srv.close()


@pytest.fixture
async def client(server: ZmqServer) -> AsyncIterator[ZmqClient]:
    cl = ZmqClient("127.0.0.1", server.port, "host_w1")
    yield cl
    cl.close()


async def test_round_trip(server: ZmqServer, client: ZmqClient) -> None:
    await contract.check_round_trip(server, client)


async def test_heartbeat_channel(server: ZmqServer, client: ZmqClient) -> None:
    await contract.check_heartbeat_channel(server, client)


async def test_reset_cancels_a_pending_receive(client: ZmqClient) -> None:
    await contract.check_reset_cancels_a_pending_receive(client)


async def test_unknown_identity(server: ZmqServer) -> None:
    await contract.check_send_to_an_unknown_identity_is_dropped(server)


async def test_a_reconnect_is_a_new_link_the_master_routes_to(server: ZmqServer, client: ZmqClient) -> None:
    await client.send(Message("one"))
    first = await contract.recv(server)
    assert isinstance(first, Inbound) and first.link == client.identity
    client.reset()
    await client.send(Message("two"))
    item = await contract.recv(server)
    assert isinstance(item, Inbound) and item.message.type == "two"
    assert (item.sender, item.connection) == (client.identity, f"{client.identity}#1")
    server.route(client.identity, item.connection)  # the master accepted the new link
    await server.send(client.identity, Message("to the new socket"))
    assert await contract.recv(client) == Message("to the new socket")


async def test_frames_that_are_not_messages(server: ZmqServer) -> None:
    ctx = zmq.asyncio.Context()
    raw = ctx.socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.setsockopt(zmq.IDENTITY, b"\xff\xfe")
    raw.connect(f"tcp://127.0.0.1:{server.port}")
    named = ctx.socket(zmq.DEALER)
    named.setsockopt(zmq.LINGER, 0)
    named.setsockopt(zmq.IDENTITY, b"intruder" + HEARTBEAT_SUFFIX.encode())
    named.connect(f"tcp://127.0.0.1:{server.port}")
    try:
        await raw.send(msgpack.packb(["x", {}, None]))
        assert contract.is_bad(await contract.recv(server), "identity")
        await named.send_multipart([b"a", b"b"])
        assert contract.is_bad(await contract.recv(server), "frame count")
        await named.send(b"\xc1")
        assert contract.is_bad(await contract.recv(server), "undecodable")
        await named.send(Message("heartbeat", {}).serialize())
        item = await contract.recv(server)
        assert isinstance(item, Inbound) and (item.sender, item.channel) == ("intruder", "heartbeat")
    finally:
        raw.close()
        named.close()
        ctx.term()


async def test_undecodable_reply_is_a_bad_frame_for_the_worker(server: ZmqServer, client: ZmqClient) -> None:
    await client.send(Message("hello"))
    await contract.recv(server)
    await server.socket.send_multipart([client.identity.encode(), b"\xc1"])
    assert contract.is_bad(await contract.recv(client), "undecodable")


def test_a_port_in_use_is_a_clear_error(server: ZmqServer) -> None:
    with pytest.raises(RPCError, match="cannot listen"):
        ZmqServer("127.0.0.1", server.port)


def test_an_unknown_master_host_is_a_clear_error() -> None:
    with pytest.raises(RPCError, match="cannot resolve"):
        ZmqClient("no-such-host.invalid", 5557, "w")


async def test_send_after_close_is_an_rpc_error() -> None:
    srv = ZmqServer("127.0.0.1", 0)
    srv.close()
    with pytest.raises(RPCError):
        await asyncio.wait_for(srv.send("w", Message("x")), 5)


def test_an_open_control_port_without_keys_is_one_warning(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    import logging

    from horde.rpc import keys as keymod

    with caplog.at_level(logging.WARNING, logger="horde.rpc.zmq"):
        for host in ("127.0.0.1", "localhost"):
            ZmqServer(host, 0).close()
        assert not caplog.records
        ZmqServer("*", 0).close()
        assert [r.getMessage().split(":")[0] for r in caplog.records] == ["The control port *"]
        caplog.clear()
        keymod.generate(str(tmp_path))
        ZmqServer("*", 0, keys=keymod.server_keys(str(tmp_path), None, None)).close()
        assert not caplog.records
