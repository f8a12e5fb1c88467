"""The ZeroMQ transport: a ROUTER socket on the master, a DEALER socket per worker.

Only bytes in and out live here; decoding, validation and everything a message means belong to the
runners. The transport identity of a ROUTER frame is what says who sent it.
"""

from __future__ import annotations

import logging
import socket as pysocket
from typing import Any

import zmq
import zmq.asyncio

from horde.rpc.protocol import Message

logger = logging.getLogger(__name__)


class RPCError(Exception):
    """A transport failure (bind, connect, send or receive)."""


def _tune(sock: zmq.Socket) -> None:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
    sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, 30)


def _endpoint(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"tcp://{host}:{port}"


class Server:
    """The master's ROUTER socket; ``port`` is the bound port (useful with port 0)."""

    def __init__(self, host: str = "*", port: int = 5557) -> None:
        self.context = zmq.asyncio.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        _tune(self.socket)
        # a worker that reconnects with the same identity takes its route over at once
        self.socket.setsockopt(zmq.ROUTER_HANDOVER, 1)
        # the default backlog (100) drops connects when hundreds of workers start at once
        self.socket.setsockopt(zmq.BACKLOG, 4096)
        if ":" in host:
            self.socket.setsockopt(zmq.IPV6, 1)
        try:
            if port == 0:
                self.port = self.socket.bind_to_random_port(_endpoint(host, 0).rsplit(":", 1)[0])
            else:
                self.socket.bind(_endpoint(host, port))
                self.port = port
        except zmq.ZMQError as e:
            self.close()
            raise RPCError(f"cannot listen on {host}:{port}: {e.strerror}") from e

    async def recv_frames(self) -> list[bytes]:
        try:
            return await self.socket.recv_multipart(copy=True)
        except zmq.ZMQError as e:
            raise RPCError(f"receive failed: {e.strerror}") from e

    async def send_to(self, identity: str, msg: Message) -> None:
        try:
            await self.socket.send_multipart([identity.encode(), msg.serialize()])
        except zmq.ZMQError as e:
            raise RPCError(f"send to {identity} failed: {e.strerror}") from e

    def send_nowait(self, identity: str, msg: Message) -> None:
        """Queue a message without waiting (the reader answers heartbeats this way); a failure is
        logged, never raised."""
        fut: Any = self.socket.send_multipart([identity.encode(), msg.serialize()], flags=zmq.NOBLOCK)
        fut.add_done_callback(_log_send_failure)

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()


def _log_send_failure(fut: Any) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        logger.debug("dropped an outgoing message: %s", fut.exception())


class Client:
    """A worker's DEALER socket, connected to the master under a fixed identity."""

    def __init__(self, host: str, port: int, identity: str) -> None:
        self.host, self.port, self.identity = host, port, identity
        self.context = zmq.asyncio.Context()
        self.socket = self._connect()

    def _connect(self) -> zmq.asyncio.Socket:
        sock = self.context.socket(zmq.DEALER)
        _tune(sock)
        sock.setsockopt(zmq.IDENTITY, self.identity.encode())
        sock.setsockopt(zmq.IPV6, 1)
        sock.connect(_endpoint(resolve(self.host), self.port))
        return sock

    def reset(self) -> None:
        """Drop the connection and everything queued on it, then connect again."""
        self.socket.close(linger=0)
        self.socket = self._connect()

    async def send(self, msg: Message) -> None:
        try:
            await self.socket.send(msg.serialize())
        except zmq.ZMQError as e:
            raise RPCError(f"send failed: {e.strerror}") from e

    async def recv(self) -> Message:
        """The next message; raises ValueError for a frame that is not a message."""
        try:
            raw = await self.socket.recv()
        except zmq.ZMQError as e:
            raise RPCError(f"receive failed: {e.strerror}") from e
        return Message.unserialize(raw)

    def close(self, linger: float = 0.0) -> None:
        """Close; with ``linger`` seconds, queued frames still get that long to leave."""
        self.socket.close(linger=int(linger * 1000))
        self.context.term()


def resolve(host: str) -> str:
    """ZeroMQ connects to addresses; look names up once here so errors name the host."""
    try:
        infos = pysocket.getaddrinfo(host, None, type=pysocket.SOCK_STREAM)
    except OSError as e:
        raise RPCError(f"cannot resolve master host {host!r}: {e}") from e
    families = {info[0] for info in infos}
    addr = (
        next((i[4][0] for i in infos if i[0] == pysocket.AF_INET), None)
        if pysocket.AF_INET in families
        else None
    )
    return str(addr if addr is not None else infos[0][4][0])
