"""The transport seam between master and workers: what the runners may ask of a link, nothing more.

A *server transport* (the master's end) receives items from any number of workers and sends to one
worker by its identity; a *client transport* (a worker's end) talks to its one master. Implementations:

- :mod:`horde.rpc.zmq` — ZeroMQ ROUTER/DEALER over TCP (production; where CurveZMQ keys will plug in);
- :mod:`horde.rpc.memory` — queues in one event loop, for tests (no sockets, fault injection, drain).

Runners never see frames, identities or sockets. The server hands them one :class:`Inbound` per message
(who sent it, the decoded :class:`~horde.rpc.protocol.Message`, and the *channel* it came on) or a
:class:`BadFrame` when what arrived is not a message; what a message *means* (schemas, state) is the
runners' business. Each worker has two channels to its master: ``main`` for everything, and ``heartbeat``
for heartbeats only, sent from a thread so a busy event loop cannot silence them. Replies (heartbeat
echoes included) all go out on the main channel.

    >>> server = ZmqServer("127.0.0.1", 0)          # or MemoryNetwork().listen()
    >>> item = await server.recv()
    >>> if isinstance(item, Inbound): await server.send(item.sender, Message("ack", {}))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias

from horde.exceptions import HordeError
from horde.rpc.protocol import Message

Channel: TypeAlias = Literal["main", "heartbeat"]
MAIN: Channel = "main"
HEARTBEAT: Channel = "heartbeat"


class RPCError(HordeError, OSError):
    """A transport failure: bind, connect, resolve, send or receive (also an ``OSError``)."""


@dataclass(frozen=True, slots=True)
class Inbound:
    """One decoded message; ``sender`` is the transport identity of the worker, whatever the payload says.

    ``connection`` names the link it came on (ZeroMQ: the routing identity, ``<id>`` or ``<id>#<n>``);
    empty when the transport has one link per worker (the in-memory one). The master accepts messages
    from a worker's current connection only, and a new connection only with the worker's session token.
    """

    sender: str
    message: Message
    channel: Channel = MAIN
    connection: str = ""

    @property
    def link(self) -> str:
        """The connection, or the sender when the transport does not tell them apart."""
        return self.connection or self.sender


@dataclass(frozen=True, slots=True)
class BadFrame:
    """Something arrived that is not a message. ``reason`` is a short category the master counts
    (``"frame count"``, ``"identity"``, ``"undecodable"``); ``detail`` is one line for the log."""

    reason: str
    detail: str


def decode(sender: str, raw: bytes, channel: Channel = MAIN) -> Inbound | BadFrame:
    """The codec step every server transport shares: bytes from ``sender`` → Inbound or BadFrame."""
    try:
        msg = Message.unserialize(raw)
    except ValueError as e:
        return BadFrame("undecodable", f"from {sender}: {e}")
    return Inbound(sender, msg, channel)


class ServerTransport(Protocol):
    """The master's end of every worker link."""

    @property
    def port(self) -> int:
        """The bound port (useful after binding port 0)."""
        ...

    async def recv(self) -> Inbound | BadFrame:
        """The next item from any worker, in arrival order; raises :class:`RPCError` on a transport failure."""
        ...

    async def send(self, identity: str, msg: Message) -> None:
        """Send to one worker; raises :class:`RPCError`. A message to an unknown identity is dropped."""
        ...

    def send_nowait(self, identity: str, msg: Message) -> None:
        """Queue a message without waiting (heartbeat echoes); a failure is logged, never raised."""
        ...

    def has_pending(self) -> bool:
        """True while a received frame waits to be read: the reader is behind, so a worker's silence
        may be the master's own backlog, not the worker's."""
        ...

    #: whether the last ``recv`` found no frame waiting and had to wait for one: everything that had arrived
    #: before that ``recv`` was called had been read (the reader learns it per frame at no cost, where
    #: asking :meth:`has_pending` per frame costs a socket option call)
    waited: bool

    def route(self, identity: str, connection: str) -> None:
        """Send what is meant for worker ``identity`` on ``connection`` from now on (its accepted link)."""
        ...

    def forget(self, identity: str) -> None:
        """The worker is gone: drop its route."""
        ...

    def close(self) -> None: ...


class HeartbeatSender(Protocol):
    """The heartbeat channel of one worker, owned by whoever sends the heartbeats (a thread, or a task).

    ``send`` never blocks and never raises: it returns False when the beat could not be queued (the master
    is away and the queue is full), and the next beat will do.
    """

    def send(self, msg: Message) -> bool: ...

    def close(self) -> None: ...


class ClientTransport(Protocol):
    """A worker's end of its link to the master, under a fixed identity.

    ``generation`` goes up at every :meth:`reset`: a heartbeat channel opened before it belongs to the
    old link (and maybe the master's old address) and is reopened by its owner.
    """

    identity: str
    generation: int

    async def recv(self) -> Message | BadFrame:
        """The next message from the master; raises :class:`RPCError` on a transport failure.

        A :meth:`reset` while this is waiting cancels the wait (the caller reads again, from the new link).
        """
        ...

    async def send(self, msg: Message) -> None:
        """Send to the master; raises :class:`RPCError`."""
        ...

    def reset(self) -> None:
        """Drop the link and everything queued on it, then connect again (same identity)."""
        ...

    def open_heartbeat(self) -> HeartbeatSender:
        """A new heartbeat channel; call it from the thread or task that will send on it."""
        ...

    def close(self, linger: float = 0.0) -> None:
        """Close; with ``linger`` seconds, queued messages still get that long to leave."""
        ...
