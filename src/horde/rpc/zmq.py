"""The ZeroMQ transport: a ROUTER socket on the master, two DEALER sockets per worker.

This module owns everything ZeroMQ: frames (``[identity, payload]`` on the ROUTER), identities, the
socket options, and the heartbeat channel. A worker connects twice under related identities: ``<id>``
for everything and ``<id>|hb`` for heartbeats only (sent from the heartbeat thread on a socket of its
own, so a busy event loop cannot silence them). The master's ROUTER tells the two apart by that suffix
and hands the runners an :class:`~horde.rpc.transport.Inbound` with the channel, never a frame.

The wire stays what it was (``benchmarks/_sim_workers.py`` speaks it without this module): msgpack
``[type, data, node_id]`` payloads and a 4096 listen backlog for a thousand workers starting together.

**Connections.** Each link a worker opens has a routing identity of its own: ``<id>`` for the first,
``<id>#<n>`` after its n-th reset (and ``…|hb`` for the heartbeat socket of that link). The server hands
the runners the worker id as ``sender`` and the routing identity as ``connection``; it sends to the
connection of each worker that :meth:`ZmqServer.route` last set. ``ROUTER_HANDOVER`` is *off*: a
second peer claiming a routing identity that is connected is ignored by ZeroMQ, and a peer claiming a
worker id under a new connection reaches the master, which accepts it only with the worker's session
token (a real reconnect) and refuses it otherwise (a takeover). Nobody can silently take a route over.

**Limits.** Every socket refuses a message over :data:`MAX_MESSAGE_BYTES` (``MAXMSGSIZE``: the peer is
disconnected), so a flood of huge frames costs a reconnect, not the master's memory.

**Security.** :func:`_secure_server` / :func:`_secure_client` run on every socket before it binds or
connects, the heartbeat socket included: with keys (:mod:`horde.rpc.keys`) they switch CurveZMQ on
(``CURVE_SERVER`` + the master's secret key; ``CURVE_SERVERKEY`` + the worker's keypair), and a ZAP
authenticator thread on the master's context admits only the authorised worker public keys. A peer
without an authorised key never completes the handshake: nothing it sends reaches the runners. Without
keys, a master listening on anything but loopback logs one warning that its control port is open.
"""

from __future__ import annotations

import ipaddress
import logging
import socket as pysocket
import threading
import time
from typing import TYPE_CHECKING, Any, cast

import zmq
import zmq.asyncio

from horde.rpc.protocol import Message
from horde.rpc.transport import HEARTBEAT, MAIN, BadFrame, Channel, Inbound, RPCError, decode

if TYPE_CHECKING:
    from horde.rpc.keys import ClientKeys, ServerKeys

logger = logging.getLogger(__name__)

__all__ = [
    "HEARTBEAT_SUFFIX",
    "MAX_MESSAGE_BYTES",
    "RPCError",
    "ZmqClient",
    "ZmqHeartbeat",
    "ZmqServer",
    "resolve",
]

HEARTBEAT_SUFFIX = "|hb"  # appended to a worker's identity on its heartbeat socket (part of the wire)
CONNECTION_SEPARATOR = "#"  # <id>#<n>: the n-th link of a worker (after n resets)
LISTEN_BACKLOG = 4096  # the default (100) drops connects when hundreds of workers start at once
HEARTBEAT_SNDHWM = 10  # beats queued while the master is away; older ones are worth nothing
# the largest message any socket accepts: a shipped locustfile bundle (10 MiB of files, see
# horde.rpc.bundle) plus its framing, or a stats report of thousands of entries, fit with room to spare
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
ZAP_DOMAIN = b"horde"
DENIED_LOG_INTERVAL = 10.0  # seconds between "refused a connection with an unknown key" lines
MAX_KNOWN_LINKS = 100_000  # parsed routing identities kept (two per worker link)


def _tune(sock: zmq.Socket[Any]) -> None:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
    sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, 30)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)


class _AuthorisedKeys:
    """The ZAP credentials provider: allows the authorised worker keys, logs refusals (rate-limited)."""

    def __init__(self, keys: frozenset[bytes]) -> None:
        self.keys = keys
        self.denied = 0
        self._last_log = float("-inf")
        self._lock = threading.Lock()

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.keys:
            return True
        with self._lock:
            self.denied += 1
            now = time.monotonic()
            if now - self._last_log >= DENIED_LOG_INTERVAL:
                self._last_log = now
                logger.warning(
                    "Refused a connection with an unauthorised CurveZMQ key (%d refused so far)", self.denied
                )
        return False


def _secure_server(sock: zmq.Socket[Any], keys: ServerKeys | None) -> None:
    """CurveZMQ on the master's socket (before bind), when it has keys."""
    if keys is None:
        return
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN)


def _secure_client(sock: zmq.Socket[Any], keys: ClientKeys | None) -> None:
    """CurveZMQ on a worker's socket (before connect; the heartbeat socket too), when it has keys."""
    if keys is None:
        return
    sock.setsockopt(zmq.CURVE_SERVERKEY, keys.server_public)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)


def _endpoint(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"tcp://{host}:{port}"


def is_loopback(host: str) -> bool:
    """True for an interface only this machine can reach (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def split_connection(routing_id: str) -> str:
    """The worker id of a routing identity (``<id>`` or ``<id>#<n>``)."""
    worker, sep, generation = routing_id.rpartition(CONNECTION_SEPARATOR)
    return worker if sep and generation.isdigit() else routing_id


class ZmqServer:
    """The master's ROUTER socket; ``port`` is the bound port (useful with port 0).

    ``keys`` (:func:`horde.rpc.keys.server_keys`) switches CurveZMQ on, with a ZAP authenticator that
    admits only the authorised worker keys.
    """

    def __init__(self, host: str = "*", port: int = 5557, keys: ServerKeys | None = None) -> None:
        self.context = zmq.asyncio.Context()
        self.keys = keys
        self._auth: Any = None
        self.authorised: _AuthorisedKeys | None = None
        self._routes: dict[str, str] = {}  # worker id -> the routing identity of its current connection
        # routing identity -> (worker id, channel, connection): parsed once per link, not once per frame
        self._links: dict[bytes, tuple[str, Channel, str]] = {}
        self.waited = False
        self._queued_sends = 0  # sends waiting in pyzmq's queue; while any wait, new ones queue behind them
        self._last_msg: Message | None = None  # the last message sent with send_nowait, and its bytes:
        self._last_raw = b""  # a master echoes one heartbeat reply object to every worker
        if keys is not None:
            self._start_authenticator(keys)
        self.socket = self.context.socket(zmq.ROUTER)
        _tune(self.socket)
        # no handover: a second peer claiming a connected routing identity is ignored, never given the route
        self.socket.setsockopt(zmq.ROUTER_HANDOVER, 0)
        self.socket.setsockopt(zmq.BACKLOG, LISTEN_BACKLOG)
        if ":" in host:
            self.socket.setsockopt(zmq.IPV6, 1)
        _secure_server(self.socket, keys)
        try:
            if port == 0:
                self._port = self.socket.bind_to_random_port(_endpoint(host, 0).rsplit(":", 1)[0])
            else:
                self.socket.bind(_endpoint(host, port))
                self._port = port
        except zmq.ZMQError as e:
            self.close()
            raise RPCError(f"cannot listen on {host}:{port}: {e.strerror}") from e
        # the same socket without asyncio's futures: frames already queued are taken (and replies sent)
        # with plain non-blocking calls, and only an empty socket costs a future and a wait
        self._sync: zmq.Socket[bytes] = zmq.Socket.shadow(self.socket.underlying)
        if keys is None and not is_loopback(host):
            logger.warning(
                "The control port %s:%d is open: anyone who can reach it can join as a worker, read the "
                "options and change the results. Use --keys DIR (horde keys generate) to allow only your workers",
                "*" if host in ("*", "0.0.0.0", "::") else host,
                self._port,
            )
        elif keys is not None:
            logger.info("CurveZMQ on: %d authorised worker key(s) from %s", len(keys.authorized), keys.source)

    def _start_authenticator(self, keys: ServerKeys) -> None:
        from zmq.auth.thread import ThreadAuthenticator

        # a thread, not a task: handshakes go on while the event loop is busy
        self._auth = ThreadAuthenticator(self.context, log=logging.getLogger("horde.rpc.zap"))
        self._auth.start()
        self.authorised = _AuthorisedKeys(keys.authorized)
        self._auth.configure_curve_callback(domain=ZAP_DOMAIN.decode(), credentials_provider=self.authorised)

    @property
    def port(self) -> int:
        return self._port

    async def recv(self) -> Inbound | BadFrame:
        try:
            frames = self._recv_now()
            self.waited = False
        except zmq.Again:
            self.waited = True
            try:
                frames = await self.socket.recv_multipart(copy=True)
            except zmq.ZMQError as e:
                raise RPCError(f"receive failed: {e.strerror}") from e
        except zmq.ZMQError as e:
            raise RPCError(f"receive failed: {e.strerror}") from e
        if len(frames) != 2:
            return BadFrame("frame count", f"expected 2 frames, got {len(frames)}")
        link = self._links.get(frames[0])
        if link is None:
            try:
                link = _parse_link(frames[0])
            except UnicodeDecodeError:
                return BadFrame("identity", "undecodable sender identity")
            if len(self._links) >= MAX_KNOWN_LINKS:
                self._links.clear()  # identities of links long gone; the live ones are parsed again
            self._links[frames[0]] = link
        sender, channel, routing = link
        item = decode(sender, frames[1], channel)
        if routing != sender and isinstance(item, Inbound):
            return Inbound(sender, item.message, channel, routing)
        return item

    def _recv_now(self) -> list[bytes]:
        """One waiting message without a future (zmq.Again if none): its parts, read part by part.

        recv_multipart asks RCVMORE after every part; a ROUTER message has at least two (the identity,
        then the payload), so only the payload's flag needs asking. Thousands a second at 5,000 workers.
        """
        sync = self._sync
        frames = [sync.recv(zmq.NOBLOCK), sync.recv(zmq.NOBLOCK)]
        while sync.get(zmq.RCVMORE):  # more parts than a message has: read them, recv() refuses the frame
            frames.append(sync.recv(zmq.NOBLOCK))
        return frames

    def has_pending(self) -> bool:
        try:
            return bool(cast(int, self._sync.get(zmq.EVENTS)) & zmq.POLLIN)
        except zmq.ZMQError:
            return False

    def route(self, identity: str, connection: str) -> None:
        """From now on, messages to worker ``identity`` go to ``connection`` (its accepted link)."""
        if connection == identity:
            self._routes.pop(identity, None)
        else:
            self._routes[identity] = connection

    def forget(self, identity: str) -> None:
        self._routes.pop(identity, None)

    def _target(self, identity: str) -> bytes:
        return self._routes.get(identity, identity).encode()

    def _send_frames(self, frames: list[bytes]) -> Any:
        """Send now if the socket takes it (a ROUTER nearly always does), else queue it in pyzmq: the
        returned future, or None when it went out. Nothing overtakes a queued send."""
        if not self._queued_sends:
            try:
                sync = self._sync  # two direct sends: send_multipart re-checks every part's type first
                sync.send(frames[0], _SNDMORE_NOBLOCK)
                sync.send(frames[1], zmq.NOBLOCK)
                return None
            except zmq.Again:
                pass
        self._queued_sends += 1
        fut: Any = self.socket.send_multipart(frames)
        fut.add_done_callback(self._unqueue)
        return fut

    def _unqueue(self, fut: Any) -> None:
        self._queued_sends -= 1

    async def send(self, identity: str, msg: Message) -> None:
        try:
            fut = self._send_frames([self._target(identity), msg.serialize()])
            if fut is not None:
                await fut
        except zmq.ZMQError as e:
            raise RPCError(f"send to {identity} failed: {e.strerror}") from e

    def send_nowait(self, identity: str, msg: Message) -> None:
        if msg is not self._last_msg:
            self._last_msg, self._last_raw = msg, msg.serialize()
        try:
            fut = self._send_frames([self._target(identity), self._last_raw])
        except zmq.ZMQError as e:
            logger.debug("dropped an outgoing message: %s", e)
            return
        if fut is not None:
            fut.add_done_callback(_log_send_failure)

    def close(self) -> None:
        self.socket.close(linger=0)
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        self.context.term()


_SNDMORE_NOBLOCK = zmq.SNDMORE | zmq.NOBLOCK


def _parse_link(identity: bytes) -> tuple[str, Channel, str]:
    """``(worker id, channel, connection)`` of a routing identity (``<id>[#<n>][|hb]``)."""
    routing = identity.decode()
    channel: Channel = MAIN
    if routing.endswith(HEARTBEAT_SUFFIX):
        routing, channel = routing[: -len(HEARTBEAT_SUFFIX)], HEARTBEAT
    return split_connection(routing), channel, routing


def _log_send_failure(fut: Any) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        logger.debug("dropped an outgoing message: %s", fut.exception())


class ZmqHeartbeat:
    """A worker's heartbeat socket (identity ``<connection>|hb``), with a context of its own so that the
    heartbeat thread that opens it is the only one ever touching it."""

    def __init__(self, endpoint: str, identity: str, keys: ClientKeys | None = None) -> None:
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self._socket.setsockopt(zmq.IDENTITY, (identity + HEARTBEAT_SUFFIX).encode())
        self._socket.setsockopt(zmq.SNDHWM, HEARTBEAT_SNDHWM)
        self._socket.setsockopt(zmq.IPV6, 1)
        _secure_client(self._socket, keys)
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
    """A worker's DEALER socket, connected to the master under a fixed identity.

    ``generation`` counts resets: each new link has the routing identity ``<identity>#<generation>``
    (the first is plain ``<identity>``), and the master's name is looked up again at every reset, so a
    master that came back at a new address under the same DNS name is followed (the heartbeat channel
    reopens on the new link too: see :meth:`open_heartbeat`).
    """

    def __init__(self, host: str, port: int, identity: str, keys: ClientKeys | None = None) -> None:
        self.host, self.port, self.identity = host, port, identity
        self.keys = keys
        self.generation = 0
        self.context = zmq.asyncio.Context()
        self._endpoint = _endpoint(resolve(host), port)
        self.socket = self._connect()

    @property
    def connection(self) -> str:
        """The routing identity of the current link."""
        return (
            self.identity
            if not self.generation
            else f"{self.identity}{CONNECTION_SEPARATOR}{self.generation}"
        )

    @property
    def endpoint(self) -> str:
        return self._endpoint

    def _connect(self) -> zmq.asyncio.Socket:
        sock = self.context.socket(zmq.DEALER)
        _tune(sock)
        sock.setsockopt(zmq.IDENTITY, self.connection.encode())
        sock.setsockopt(zmq.IPV6, 1)
        _secure_client(sock, self.keys)
        sock.connect(self._endpoint)
        return sock

    def reset(self) -> None:
        # closing the socket cancels a recv waiting on it: the receiver reads again from the new one
        self.socket.close(linger=0)
        try:
            endpoint = _endpoint(resolve(self.host), self.port)  # the master may have moved
            if endpoint != self._endpoint:
                logger.info("Master %s now resolves to %s", self.host, endpoint)
            self._endpoint = endpoint
        except RPCError as e:
            logger.warning("%s; reconnecting to the last known address", e)
        self.generation += 1
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
        """A heartbeat socket on the current link (address and identity); reopen it after a reset."""
        return ZmqHeartbeat(self._endpoint, self.connection, self.keys)

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
