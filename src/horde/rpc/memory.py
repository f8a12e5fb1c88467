"""An in-memory transport: a master and its workers in one event loop, no sockets (for tests).

Semantics follow the ZeroMQ transport where the runners can tell: every message goes through the real
codec (so a payload msgpack cannot carry fails here too), a message to an unknown or disconnected identity
is dropped silently (a ROUTER does the same), a worker's heartbeat channel arrives as channel
``"heartbeat"``, and :meth:`MemoryClient.reset` cancels a pending receive. On top, what a test needs:

- :meth:`MemoryNetwork.partition` / :meth:`heal` — a client's messages stop arriving (either way);
- :meth:`MemoryNetwork.disconnect` — a client vanishes as a killed process would;
- :meth:`MemoryServer.inject` / :meth:`inject_bad_frame` — garbage on the master's port;
- :meth:`MemoryNetwork.drain` — run the loop until every message has been handled and nothing else is
  ready to run, so "nothing happened" can be asserted without sleeping.

    >>> network = MemoryNetwork()
    >>> master = env.create_master_runner(transport=network.listen())
    >>> worker = worker_env.create_worker_runner("memory", 0, connect=network.connect)
    >>> await worker.connect(); await network.drain()
"""

from __future__ import annotations

import asyncio
import collections
import threading
from typing import Any

from horde.rpc.protocol import Message
from horde.rpc.transport import HEARTBEAT, MAIN, BadFrame, Channel, Inbound, RPCError, decode


class _Mailbox:
    """A FIFO whose waiting reader can be cancelled from outside (as closing a socket does)."""

    def __init__(self) -> None:
        self.items: collections.deque[Any] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self.reading = False  # a reader has called get() at least once (it will come back for more)

    def put(self, item: Any) -> None:
        self.items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        self.reading = True
        while not self.items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.items.popleft()

    def interrupt(self, exc: BaseException | None = None) -> None:
        """Wake the waiting reader with CancelledError (or ``exc``)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.cancel()
            else:
                waiter.set_exception(exc)


class MemoryNetwork:
    """One master's listening address and the clients connected to it."""

    def __init__(self) -> None:
        self.server: MemoryServer | None = None
        self.clients: dict[str, MemoryClient] = {}
        self._blocked_in: set[str] = set()  # clients whose messages do not reach the master
        self._blocked_out: set[str] = set()  # clients the master's messages do not reach
        self.delivered = 0  # messages handed to a receiver (both ways)
        self.dropped = 0  # messages lost to a partition, a disconnect or a missing peer

    # ---- endpoints -----------------------------------------------------------------------------------
    def listen(self, port: int = 0) -> MemoryServer:
        """The master's end; a second listen replaces a closed (or dead) server, as a restarted master."""
        self.server = MemoryServer(self, port or 1)
        return self.server

    def connect(self, identity: str) -> MemoryClient:
        """A worker's end (pass ``network.connect`` as the worker's ``connect=``)."""
        client = MemoryClient(self, identity)
        self.clients[identity] = client
        return client

    # ---- faults --------------------------------------------------------------------------------------
    def partition(self, identity: str, *, to_master: bool = True, from_master: bool = True) -> None:
        """Lose messages between ``identity`` and the master (heartbeats included) until :meth:`heal`."""
        if to_master:
            self._blocked_in.add(identity)
        if from_master:
            self._blocked_out.add(identity)

    def heal(self, identity: str) -> None:
        self._blocked_in.discard(identity)
        self._blocked_out.discard(identity)

    def disconnect(self, identity: str) -> None:
        """The client is gone for good (a killed process): nothing more to or from it."""
        client = self.clients.pop(identity, None)
        if client is not None:
            client.closed = True
            client._mailbox.interrupt(RPCError("disconnected"))

    # ---- delivery ------------------------------------------------------------------------------------
    def _to_master(self, identity: str, msg: Message, channel: Channel) -> None:
        raw = msg.serialize()
        server = self.server
        if identity in self._blocked_in or server is None or server.closed:
            self.dropped += 1
            return
        self.delivered += 1
        server._mailbox.put(decode(identity, raw, channel))

    def _to_client(self, identity: str, msg: Message) -> None:
        raw = msg.serialize()
        client = self.clients.get(identity)
        if client is None or client.closed or identity in self._blocked_out:
            self.dropped += 1
            return
        self.delivered += 1
        client._mailbox.put(raw)

    def pending(self) -> int:
        """Messages delivered to a receiver that is waiting for them but has not run yet.

        A mailbox nobody reads (a test's stand-in client that never calls ``recv``) does not count.
        """
        boxes = [c._mailbox for c in self.clients.values()]
        if self.server is not None:
            boxes.append(self.server._mailbox)
        return sum(len(box.items) for box in boxes if box.reading)

    async def drain(self, max_rounds: int = 100_000) -> None:
        """Return once every delivered message has been read and the loop has nothing else ready to run.

        After this, whatever is still to happen waits for time to pass (a clock) or for outside I/O: a
        test can assert that something did *not* happen without sleeping. On an event loop that does not
        expose its ready queue (or one kept busy by users that never wait), 200 quiet rounds stand for
        "nothing ready".
        """
        loop = asyncio.get_running_loop()
        quiet = 0
        for _ in range(max_rounds):
            await asyncio.sleep(0)
            if self.pending():
                quiet = 0
                continue
            quiet += 1
            ready = getattr(loop, "_ready", None)
            if (ready is not None and not ready) or quiet >= 200:
                return
        raise RuntimeError(f"the network did not settle within {max_rounds} loop rounds")


class MemoryServer:
    """The master's end of a :class:`MemoryNetwork`."""

    def __init__(self, network: MemoryNetwork, port: int) -> None:
        self.network = network
        self._port = port
        self._mailbox = _Mailbox()
        self.waited = False
        self.closed = False
        self.sent: list[tuple[str, Message]] = []  # every message the master sent, for assertions

    @property
    def port(self) -> int:
        return self._port

    async def recv(self) -> Inbound | BadFrame:
        if self.closed:
            raise RPCError("the server is closed")
        self.waited = not self._mailbox.items
        item: Inbound | BadFrame = await self._mailbox.get()
        return item

    async def send(self, identity: str, msg: Message) -> None:
        if self.closed:
            raise RPCError(f"send to {identity} failed: the server is closed")
        self.sent.append((identity, msg))
        self.network._to_client(identity, msg)

    def send_nowait(self, identity: str, msg: Message) -> None:
        if not self.closed:
            self.sent.append((identity, msg))
            self.network._to_client(identity, msg)

    def has_pending(self) -> bool:
        return bool(self._mailbox.items)

    def route(self, identity: str, connection: str) -> None:
        """One link per worker here: nothing to route."""

    def forget(self, identity: str) -> None:
        pass

    def inject(self, sender: str, raw: bytes, channel: Channel = MAIN) -> None:
        """Bytes arriving from ``sender`` as if from a socket (decoded by the shared codec)."""
        self._mailbox.put(decode(sender, raw, channel))

    def inject_bad_frame(self, reason: str, detail: str = "injected") -> None:
        """A frame the transport itself rejects (wrong frame count, undecodable identity, …)."""
        self._mailbox.put(BadFrame(reason, detail))

    def close(self) -> None:
        self.closed = True
        self._mailbox.interrupt(RPCError("the server is closed"))


class MemoryHeartbeat:
    """A worker's heartbeat channel; usable from a thread (delivery hops onto the network's loop)."""

    def __init__(self, client: MemoryClient) -> None:
        self._client = client
        self.closed = False

    def send(self, msg: Message) -> bool:
        client = self._client
        if self.closed or client.closed:
            return False
        loop, loop_thread = client._loop, client._loop_thread
        if loop is None or threading.get_ident() == loop_thread:
            client.network._to_master(client.identity, msg, HEARTBEAT)
        else:
            try:
                loop.call_soon_threadsafe(client.network._to_master, client.identity, msg, HEARTBEAT)
            except RuntimeError:
                return False  # the loop is closed
        return True

    def close(self) -> None:
        self.closed = True


class MemoryClient:
    """A worker's end of a :class:`MemoryNetwork`."""

    def __init__(self, network: MemoryNetwork, identity: str) -> None:
        self.network = network
        self.identity = identity
        self._mailbox = _Mailbox()
        self.closed = False
        self.resets = 0
        self.generation = 0
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop (and its thread) it is used from
        self._loop_thread: int | None = None
        self._bind()

    def _bind(self) -> None:
        if self._loop is None and _in_loop():
            self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()

    async def recv(self) -> Message | BadFrame:
        self._bind()
        if self.closed:
            raise RPCError("receive failed: the client is closed")
        raw: bytes = await self._mailbox.get()
        try:
            return Message.unserialize(raw)
        except ValueError as e:
            return BadFrame("undecodable", str(e))

    async def send(self, msg: Message) -> None:
        self._bind()
        if self.closed:
            raise RPCError("send failed: the client is closed")
        self.network._to_master(self.identity, msg, MAIN)

    def reset(self) -> None:
        self.resets += 1
        self.generation += 1
        self._mailbox.items.clear()
        self._mailbox.interrupt()

    def open_heartbeat(self) -> MemoryHeartbeat:
        return MemoryHeartbeat(self)

    def close(self, linger: float = 0.0) -> None:
        self.closed = True
        self._mailbox.interrupt(RPCError("the client is closed"))
        if self.network.clients.get(self.identity) is self:
            del self.network.clients[self.identity]


def _in_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
