"""The ZeroMQ transport: a ROUTER socket on the master, two DEALER sockets per worker.

This module owns everything ZeroMQ: frames (``[identity, payload]`` on the ROUTER), identities, the
socket options, and the heartbeat channel. A worker connects twice under related identities: ``<id>``
for everything and ``<id>|hb`` for heartbeats only (sent from the heartbeat thread on a socket of its
own, so a busy event loop cannot silence them). The master's ROUTER tells the two apart by that suffix
and hands the runners an :class:`~horde.rpc.transport.Inbound` with the channel, never a frame.

The wire stays what it was (``benchmarks/_sim_workers.py`` speaks it without this module): msgpack
``[type, data, node_id]`` payloads, ``ROUTER_HANDOVER`` so a worker that reconnects under the same identity
takes its route over at once, and a 4096 listen backlog for a thousand workers starting together.

Security goes in :func:`_secure_server` / :func:`_secure_client`: they run on every socket before it
binds or connects, which is where CurveZMQ keys (``CURVE_SERVER``/``CURVE_SECRETKEY`` on the master,
``CURVE_SERVERKEY``/``CURVE_PUBLICKEY``/``CURVE_SECRETKEY`` on workers, the heartbeat socket included)
will be set. Today they leave the link unauthenticated.
"""

from __future__ import annotations

import logging
import socket as pysocket
from typing import Any

import zmq
import zmq.asyncio

from horde.rpc.protocol import Message
from horde.rpc.transport import HEARTBEAT, BadFrame, Inbound, RPCError, decode

logger = logging.getLogger(__name__)

__all__ = ["HEARTBEAT_SUFFIX", "RPCError", "ZmqClient", "ZmqHeartbeat", "ZmqServer", "resolve"]

HEARTBEAT_SUFFIX = "|hb"  # appended to a worker's identity on its heartbeat socket (part of the wire)
LISTEN_BACKLOG = 4096  # the default (100) drops connects when hundreds of workers start at once
HEARTBEAT_SNDHWM = 10  # beats queued while the master is away; older ones are worth nothing


def _tune(sock: zmq.Socket[Any]) -> None:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
    sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, 30)


def _secure_server(sock: zmq.Socket[Any]) -> None:
    """Where the master's CurveZMQ keys will be set (before bind). No security yet."""


def _secure_client(sock: zmq.Socket[Any]) -> None:
    """Where a worker's CurveZMQ keys will be set (before connect, on both sockets). No security yet."""


def _endpoint(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"tcp://{host}:{port}"


class ZmqServer:
    """The master's ROUTER socket; ``port`` is the bound port (useful with port 0)."""

    def __init__(self, host: str = "*", port: int = 5557) -> None:
        self.context = zmq.asyncio.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        _tune(self.socket)
        # a worker that reconnects with the same identity takes its route over at once
        self.socket.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.socket.setsockopt(zmq.BACKLOG, LISTEN_BACKLOG)
        if ":" in host:
            self.socket.setsockopt(zmq.IPV6, 1)
        _secure_server(self.socket)
        try:
            if port == 0:
                self._port = self.socket.bind_to_random_port(_endpoint(host, 0).rsplit(":", 1)[0])
            else:
                self.socket.bind(_endpoint(host, port))
                self._port = port
        except zmq.ZMQError as e:
            self.close()
            raise RPCError(f"cannot listen on {host}:{port}: {e.strerror}") from e

    @property
    def port(self) -> int:
        return self._port

    async def recv(self) -> Inbound | BadFrame:
        try:
            frames = await self.socket.recv_multipart(copy=True)
        except zmq.ZMQError as e:
            raise RPCError(f"receive failed: {e.strerror}") from e
        if len(frames) != 2:
            return BadFrame("frame count", f"expected 2 frames, got {len(frames)}")
        try:
            sender = frames[0].decode()
        except UnicodeDecodeError:
            return BadFrame("identity", "undecodable sender identity")
        if sender.endswith(HEARTBEAT_SUFFIX):
            return decode(sender[: -len(HEARTBEAT_SUFFIX)], frames[1], HEARTBEAT)
        return decode(sender, frames[1])

    async def send(self, identity: str, msg: Message) -> None:
        try:
            await self.socket.send_multipart([identity.encode(), msg.serialize()])
        except zmq.ZMQError as e:
            raise RPCError(f"send to {identity} failed: {e.strerror}") from e

    def send_nowait(self, identity: str, msg: Message) -> None:
        fut: Any = self.socket.send_multipart([identity.encode(), msg.serialize()], flags=zmq.NOBLOCK)
        fut.add_done_callback(_log_send_failure)

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()


def _log_send_failure(fut: Any) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        logger.debug("dropped an outgoing message: %s", fut.exception())


class ZmqHeartbeat:
    """A worker's heartbeat socket (identity ``<id>|hb``), with a context of its own so that the
    heartbeat thread that opens it is the only one ever touching it."""

    def __init__(self, endpoint: str, identity: str) -> None:
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.IDENTITY, (identity + HEARTBEAT_SUFFIX).encode())
        self._socket.setsockopt(zmq.SNDHWM, HEARTBEAT_SNDHWM)
        self._socket.setsockopt(zmq.IPV6, 1)
        _secure_client(self._socket)
        self._socket.connect(endpoint)

    def send(self, msg: Message) -> bool:
        try:
            self._socket.send(msg.serialize(), zmq.NOBLOCK)
        except zmq.ZMQError:
            return False  # queue full while the master is away: the next beat will do
        return True

    def close(self) -> None:
        self._socket.close(linger=0)
        self._context.term()


class ZmqClient:
    """A worker's DEALER socket, connected to the master under a fixed identity."""

    def __init__(self, host: str, port: int, identity: str) -> None:
        self.host, self.port, self.identity = host, port, identity
        self.context = zmq.asyncio.Context()
        self._endpoint = _endpoint(resolve(host), port)
        self.socket = self._connect()

    def _connect(self) -> zmq.asyncio.Socket:
        sock = self.context.socket(zmq.DEALER)
        _tune(sock)
        sock.setsockopt(zmq.IDENTITY, self.identity.encode())
        sock.setsockopt(zmq.IPV6, 1)
        _secure_client(sock)
        sock.connect(self._endpoint)
        return sock

    def reset(self) -> None:
        # closing the socket cancels a recv waiting on it: the receiver reads again from the new one
        self.socket.close(linger=0)
        try:
            self._endpoint = _endpoint(resolve(self.host), self.port)  # the master may have moved
        except RPCError as e:
            logger.warning("%s; reconnecting to the last known address", e)
        self.socket = self._connect()

    async def send(self, msg: Message) -> None:
        try:
            await self.socket.send(msg.serialize())
        except zmq.ZMQError as e:
            raise RPCError(f"send failed: {e.strerror}") from e

    async def recv(self) -> Message | BadFrame:
        try:
            raw = await self.socket.recv()
        except zmq.ZMQError as e:
            raise RPCError(f"receive failed: {e.strerror}") from e
        try:
            return Message.unserialize(raw)
        except ValueError as e:
            return BadFrame("undecodable", str(e))

    def open_heartbeat(self) -> ZmqHeartbeat:
        return ZmqHeartbeat(self._endpoint, self.identity)

    def close(self, linger: float = 0.0) -> None:
        self.socket.close(linger=int(linger * 1000))
        self.context.term()


# the names before the transport seam (kept: cheap, and scripts may use them)
Server = ZmqServer
Client = ZmqClient


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
