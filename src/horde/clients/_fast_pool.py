"""The connections of one fast-client session: keep-alive reuse, at most ``limit`` open at once.

A user making requests one after another holds a single connection and gets it back from ``take_idle``
with a list pop; ``acquire`` (a coroutine) is only entered when a new connection must be opened or the
user already has ``limit`` requests in flight (``asyncio.gather`` in a task) and must wait for one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from horde.clients._fast_conn import Connection, open_connection


class Pool:
    """Idle connections per origin plus a count of everything open, with FIFO waiting at the limit.

    One per user, so it is lean: slots, and the waiters' deque (about 600 bytes empty) only once a
    request has had to wait for a connection.
    """

    __slots__ = ("_closed", "_connecting", "_open", "_waiters", "idle", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"concurrency must be at least 1, got {limit}")
        self.limit = limit
        self.idle: dict[str, list[Connection]] = {}
        self._open: list[Connection] = []  # a short list: at most `limit`, smaller than a set
        self._connecting = 0
        self._waiters: deque[asyncio.Future[None]] | None = None
        self._closed = False

    @property
    def open_count(self) -> int:
        return len(self._open) + self._connecting

    def take_idle(self, origin: str) -> Connection | None:
        """The most recently used open idle connection to ``origin``, if any (LIFO keeps few warm)."""
        idle = self.idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
            self.discard(conn)
        return None

    async def acquire(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: str,
        host: str,
        port: int,
        ssl: Any,
        connect_timeout: float,
    ) -> Connection:
        """An idle connection to ``origin`` or a new one, waiting while ``limit`` are busy."""
        while True:
            if self._closed:
                raise ConnectionError("the client is closed")
            conn = self.take_idle(origin)
            if conn is not None:
                return conn
            if self.open_count >= self.limit and not self._evict_idle():
                waiter: asyncio.Future[None] = loop.create_future()
                if self._waiters is None:
                    self._waiters = deque()
                self._waiters.append(waiter)
                try:
                    await waiter
                except BaseException:
                    if waiter.done() and not waiter.cancelled():
                        self._wake_one()  # woken but leaving (cancelled): pass the free slot on
                    else:
                        waiter.cancel()
                    raise
                continue
            self._connecting += 1
            try:
                conn = await open_connection(loop, origin, host, port, ssl, connect_timeout)
            except BaseException:
                self._connecting -= 1
                self._wake_one()  # the slot this attempt held is free again
                raise
            self._connecting -= 1
            if self._closed:
                conn.abort()
                raise ConnectionError("the client is closed")
            self._open.append(conn)
            return conn

    def release(self, conn: Connection) -> None:
        """Give a connection back after a complete response: idle if it may carry another request."""
        if conn.keep_alive and not conn.closed and not self._closed:
            idle = self.idle.get(conn.origin)
            if idle is None:
                idle = self.idle[conn.origin] = []
            idle.append(conn)
        else:
            conn.close()
            self._forget(conn)
        if self._waiters:
            self._wake_one()

    def discard(self, conn: Connection, abort: bool = False) -> None:
        """Forget a connection that failed, was cancelled mid-exchange, or was closed by the server."""
        if abort:
            conn.abort()
        elif not conn.closed:
            conn.close()
        self._forget(conn)
        if self._waiters:
            self._wake_one()

    def _forget(self, conn: Connection) -> None:
        try:
            self._open.remove(conn)
        except ValueError:
            pass  # already forgotten

    def _evict_idle(self) -> bool:
        """Close an idle connection to another origin to make room; False when all are busy."""
        for idle in self.idle.values():
            if idle:
                self.discard(idle.pop())
                return True
        return False

    def _wake_one(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        """Close every connection; requests still in flight fail with a connection error."""
        self._closed = True
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self.idle.clear()
        for waiter in self._waiters or ():
            if not waiter.done():
                waiter.set_result(None)
        self._waiters = None
