"""One keep-alive HTTP/1.1 connection of the fast client: an asyncio ``BufferedProtocol`` fed to httptools.

Why it is shaped like this (measured, see PERF-NOTES and docs/fast-http.md):

- A ``BufferedProtocol`` lets the loop read straight into one reused buffer instead of allocating a
  fresh one per read, and the task that owns the request writes it, so the read callback only parses
  and completes a future.
- Every connection of a thread shares one read buffer: the loop calls ``get_buffer``, reads, and calls
  ``buffer_updated`` without running anything in between, and whatever outlives ``buffer_updated`` is
  copied out of it, so no connection ever sees another's bytes.
- The parser is given no ``on_status`` or ``on_header`` callback: a call from the parser into Python per
  header line cost more than the rest of the parsing (0.85 µs of 6.5 µs per request with nginx's five
  headers, measured in-process). ``on_headers_complete`` instead copies the response head (status line
  and header lines) out of the read buffer as one ``bytes``, found together with the only two headers
  the client itself needs (Content-Encoding, Set-Cookie) by one case-insensitive regular-expression
  search; splitting it into header pairs and the reason phrase is left to whoever reads them
  (``head_pairs``, ``head_reason``), which most requests never do. llhttp insists on CRLF line ends
  and no folded lines, so the first blank line ends the head, and the pairs are the parser's own.
  Most servers send the same head response after response (nginx's changes with its Date, once a
  second), so the last head without a header of interest is kept: a read that starts with exactly
  that head and a blank line after it is recognised by one copy and one comparison, without the
  search (in-process: ~0.2 µs instead of ~0.45 µs per response; a head that differs costs a few
  byte tests more).
- Requests are written together: ``send`` queues the bytes and the first ``send`` of a loop turn
  schedules one callback that writes every queued request, back to back, early in the next turn. The
  server then gets a burst of requests per wake-up instead of one per wake-up, which is where a
  loopback write spends its kernel time (waking the server). Measured with ``benchmarks/throughput.py``
  (nginx, 50 users): about 1 µs less system time and 0.5 µs less user time per request. The price is
  one loop turn between ``send`` and the write (the request's timer is running), which a busy loop
  takes anyway. A completed response moves that callback behind the wake-up of its task, so the
  requests of the tasks one read phase wakes are written in the same turn as they are made, not
  after one more poll of the loop (``--before-src`` run, nginx, 50 users: 7 % more requests per
  second, 4 % less CPU per request). When a turn carries a single request there is nothing to batch
  and the extra turn only costs CPU (a lone user: ~7 µs more per request, 45 -> 52 µs), so after such
  a turn requests are written at once, and one in ``_PROBE`` is queued again to see whether others
  now share its turn.
- Body chunks go straight from the parser into the connection's one ``body`` list (the parser is
  handed that list's ``append``: no Python call per chunk), and a completed response's chunks are
  joined into ``content`` at once, so that bytes of an unsolicited extra response that follow in the
  same read never reach it. The list is emptied, never replaced.
- Read timeouts cost nothing per request: each request stores its deadline, and one timer per
  connection, armed only when none is pending, checks it and re-arms itself for the current deadline
  when it fires early. A connection sending back-to-back requests touches the timer heap about once
  per timeout period instead of twice per request.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl as _ssl
import threading
import weakref
from time import perf_counter
from types import SimpleNamespace
from typing import Any

from httptools import HttpParserError, HttpResponseParser

_READ_BUFFER_SIZE = 256 * 1024
_INF = float("inf")
DEFAULT_MAX_BODY = 64 * 1024 * 1024  # as horde.clients.response.DEFAULT_MAX_BODY (this layer imports nothing)
_STREAM_HIGH_WATER = 1024 * 1024  # a streamed body buffered beyond this pauses reading from the socket
STREAM: Any = "stream"  # ``_head_only`` value of a stream=True exchange: the waiter resolves at the headers
_local = threading.local()
# the end of the head, or (group 1) a header the client reads itself: whichever comes first
_HEAD_SCAN = re.compile(rb"\r\n(?:((?i:content-encoding|set-cookie)):|\r\n)").search
# The last head found without a header of interest, shared by every connection (any such head will do:
# a read that starts with it and a blank line is that head, see on_headers_complete).
_last_head = b""


def head_pairs(head: bytes) -> list[tuple[bytes, bytes]]:
    """The ``(name, value)`` pairs of a response head, as llhttp reports them (value without leading
    whitespace: the parser keeps trailing whitespace, so this does too)."""
    pairs = []
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        pairs.append((name, value.lstrip(b" \t")))
    return pairs


def head_reason(head: bytes) -> bytes:
    """The reason phrase of a response head's status line (b"" when there is none)."""
    parts = head.split(b"\r\n", 1)[0].split(b" ", 2)
    return parts[2] if len(parts) == 3 else b""


class _WriteQueue:
    """The requests of one loop waiting for their write (see ``Connection.send``).

    ``direct`` counts down the requests still to be written at once, without waiting for the next
    turn: set after a write callback found a single request, since with one connection busy there is
    nothing to batch and the extra turn only costs CPU; every ``_PROBE``-th request is queued again to
    see whether others now share its turn.
    """

    __slots__ = ("direct", "handle", "items")

    def __init__(self) -> None:
        self.items: list[tuple[Connection, bytes]] = []
        self.direct = 0
        self.handle: asyncio.Handle | None = None  # the pending _flush_writes callback


_PROBE = 32
_write_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _WriteQueue] = weakref.WeakKeyDictionary()


def _write_queue(loop: asyncio.AbstractEventLoop) -> _WriteQueue:
    """The write queue of ``loop``: one per loop, so that a loop closed with writes still queued leaves
    nothing behind for the next one."""
    queue = _write_queues.get(loop)
    if queue is None:
        queue = _write_queues[loop] = _WriteQueue()
    return queue


def _flush_writes(queue: _WriteQueue) -> None:
    """Write every queued request, back to back (a loop callback, scheduled by the first ``send`` of a
    turn or by the last response completed before it)."""
    queue.handle = None
    items = queue.items
    if not items:
        return  # scheduled by responses whose tasks sent nothing (or wrote at once)
    queue.direct = _PROBE - 1 if len(items) == 1 else 0
    try:
        for conn, data in items:
            # closed or aborted since (both set ``closed`` before they close the transport, as does
            # connection_lost): its exchange has ended already. An attribute, not is_closing(): a
            # method call less per request
            if not conn.closed:
                try:
                    conn.transport.write(data)  # type: ignore[union-attr]
                except Exception:  # never expected (a transport closing on its own); fails that request
                    conn.transport.abort()  # type: ignore[union-attr]
    finally:
        items.clear()


def _shared_buffer() -> memoryview:
    shared: memoryview | None = getattr(_local, "buffer", None)
    if shared is None:
        shared = _local.buffer = memoryview(bytearray(_READ_BUFFER_SIZE))
    return shared


class ProtocolError(ConnectionError):
    """The server sent something that is not a valid HTTP/1.1 response."""


class ServerDisconnected(ConnectionError):
    """The server closed the connection before the response was complete."""


class BodyTooLarge(ValueError):
    """The response body passed the connection's ``max_body`` (the session turns it into a clear failure)."""


class _HeadersOnly(Exception):
    """Raised from ``on_headers_complete`` to stop parsing a response that has no body (HEAD)."""


class Connection(asyncio.BufferedProtocol):
    """A client connection that carries one request/response exchange at a time.

    ``send`` queues a request for writing (see the module docstring) and returns a future completed
    with the status code when the last byte of the response has arrived (``done_at`` holds that
    moment), or failed with a ``ConnectionError`` (``TimeoutError`` for the read timeout). The response
    is left on the connection (``raw_head``, ``content``, ``content_encoding``, ``has_cookies``; a
    streamed body's chunks in ``body``) for the session to take before the next ``send``.
    """

    __slots__ = (
        "_budget",
        "_deadline",
        "_head_only",
        "_head_start",
        "_headers_done",
        "_nbytes",
        "_parser",
        "_partial",
        "_paused",
        "_reader",
        "_stream_end",
        "_stream_error",
        "_timeout",
        "_timer",
        "_timer_at",
        "_view",
        "_waiter",
        "_writes",
        "body",
        "closed",
        "content",
        "content_encoding",
        "done_at",
        "has_cookies",
        "keep_alive",
        "loop",
        "max_body",
        "origin",
        "raw_head",
        "received",
        "reused",
        "transport",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: str) -> None:
        self.loop = loop
        self.origin = origin  # "scheme://host:port": the pool's key
        self.transport: asyncio.Transport | None = None
        self._view = _shared_buffer()
        self._writes = _write_queue(loop)
        self.body: list[bytes] = []  # chunks of the body being received (see the module docstring)
        self._parser = self._new_parser()
        self._waiter: asyncio.Future[int] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = _INF  # when the pending timer fires (inf: none pending)
        self._deadline = 0.0
        self.max_body = DEFAULT_MAX_BODY
        self._budget = DEFAULT_MAX_BODY  # bytes of body still allowed for the current response
        self._reader: asyncio.Future[None] | None = None  # a stream reader waiting for body bytes
        self._stream_end = False
        self._stream_error: BaseException | None = None
        self._paused = False
        self._timeout = 0.0
        self._head_only = False
        self._headers_done = False
        self._nbytes = 0  # size of the read being parsed
        # the bytes of this exchange read before the current read, while a head is still incomplete (None
        # when the head being parsed started at the start of the current read, the usual case), and
        # where in those bytes plus the current read that head starts
        self._partial: bytes | None = None
        self._head_start = 0
        self.closed = False
        self.reused = False  # a response has completed on it before: a keep-alive reuse
        self.received = False  # any byte of the current response arrived
        self.keep_alive = True
        self.raw_head = b""  # status line and header lines of the response, CRLF-separated
        self.content = b""  # the body of the completed response
        self.content_encoding: bytes | None = None
        self.has_cookies = False
        self.done_at = 0.0

    # --- the session's side ------------------------------------------------------------------------

    def send(self, data: bytes, timeout: float, head_only: bool = False) -> asyncio.Future[int]:
        """Queue one request for the write at the start of the next loop turn; the future resolves to the
        status code once the response is complete."""
        loop = self.loop
        waiter: asyncio.Future[int] = loop.create_future()
        self._waiter = waiter
        self.received = False
        self._headers_done = False
        self._head_only = head_only
        self._partial = None
        self._head_start = 0
        self.raw_head = b""
        self.content = b""
        if self.body:
            self.body.clear()  # what an unsolicited extra response left
        self.content_encoding = None
        self.has_cookies = False
        self._budget = self.max_body
        self._timeout = timeout
        self._deadline = deadline = loop.time() + timeout
        if deadline < self._timer_at:  # no timer pending, or one set for a later deadline
            if self._timer is not None:
                self._timer.cancel()  # a shorter timeout= than the last request's
            self._timer = loop.call_at(deadline, self._check_deadline)
            self._timer_at = deadline
        queue = self._writes
        items = queue.items
        if not items:
            if queue.direct:  # one request per turn lately: nothing to batch it with
                queue.direct -= 1
                self.transport.write(data)  # type: ignore[union-attr]
                return waiter
            if queue.handle is None:  # the first request of this turn: one callback for all
                queue.handle = loop.call_soon(_flush_writes, queue)
        items.append((self, data))
        return waiter

    def abort(self) -> None:
        """Drop the connection now (cancelled or failed exchange: the stream is in an unknown state)."""
        self.closed = True
        self._waiter = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = _INF
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        """Close gracefully; a request still in flight fails (the session is shutting down)."""
        waiter = self._waiter
        self._waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError("the client was closed while the request was in flight"))
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = _INF
        if self.transport is not None:
            self.transport.close()

    # --- asyncio protocol callbacks ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        if self._waiter is None:
            # bytes while no request is outstanding: a server's farewell (408) or garbage; either way
            # the stream can no longer be trusted to line up with our next request
            self.abort()
            return
        self.received = True
        self._nbytes = nbytes
        # the body limit costs one subtraction per read: the budget counts bytes read (head and framing
        # included, an upper bound of the body); past it, _feed_counted feeds this read with exact counts
        self._budget -= nbytes
        if self._budget < 0:
            self._feed_counted(nbytes)
        else:
            try:
                self._parser.feed_data(self._view[:nbytes])
            except HttpParserError as e:
                self._parser_error(e)
        if not self._headers_done and self._waiter is not None:
            # a head still incomplete at the end of the read: keep what has come of it (the buffer is
            # shared and reused), on_headers_complete finds it again
            self._partial = (self._partial or b"") + self._view[:nbytes].tobytes()

    def _parser_error(self, e: HttpParserError) -> None:
        if self._head_only is True and self._headers_done:
            # stopped on purpose after the head of a HEAD response; the parser is in error state now
            parser = self._parser
            self._parser = self._new_parser()
            self._complete(parser.get_status_code(), parser.should_keep_alive())
            return
        self._fail(ProtocolError(f"malformed response from {self.origin}: {_parser_reason(e)}"))

    def eof_received(self) -> bool:
        return False  # let the transport close; connection_lost decides what the EOF means

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = _INF
        waiter = self._waiter
        if waiter is None or waiter.done():
            if waiter is not None and self._head_only is STREAM:
                if self._headers_done and self._ends_at_eof():
                    self._complete(self._parser.get_status_code(), False)
                else:
                    self._waiter = None
                    self._stream_error = ServerDisconnected(
                        "the server closed the connection in the middle of the response body"
                    )
                    self._wake_reader()
            return
        if self._headers_done and self._ends_at_eof():
            self._complete(
                self._parser.get_status_code(), False
            )  # a body delimited by the end of the connection
            return
        if not self.received:
            what = "the server closed the connection without sending a response"
        elif not self._headers_done:
            what = "the server closed the connection in the middle of the response headers"
        else:
            what = "the server closed the connection in the middle of the response body"
        self._waiter = None
        waiter.set_exception(ServerDisconnected(what + (f" ({exc})" if exc else "")))

    # --- httptools parser callbacks ----------------------------------------------------------------

    def on_headers_complete(self) -> None:
        global _last_head
        self._headers_done = True
        if self._waiter is not None:  # not the head of an unsolicited extra response
            if self._partial is None:
                # the head began at the start of this read (the usual case): copy it out of the buffer
                view = self._view
                last = _last_head
                n = len(last)
                # The parser accepted this head, so a CR is followed by LF, and a CR that starts a line
                # starts the blank line: CR at n and n + 2 after the bytes of a known head ends it at n.
                if (
                    0 < n <= self._nbytes - 4
                    and view[n] == 13
                    and view[n + 2] == 13
                    and view[:n].tobytes() == last
                ):
                    self.raw_head = last
                else:
                    m = _HEAD_SCAN(view, 0, self._nbytes)
                    if m is not None and m.lastindex is None:  # the end came first: no header of interest
                        self.raw_head = _last_head = view[: m.start()].tobytes()
                    else:
                        self._take_head()
            else:
                self._take_head()
        if self._head_only:
            status = self._parser.get_status_code()
            if self._head_only is STREAM:
                if status >= 200 or status == 101:
                    self._start_stream(status)
                return
            if status >= 200 or status == 101:
                raise _HeadersOnly()

    def on_message_complete(self) -> None:
        parser = self._parser
        status = parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # an interim response (100 Continue, 103 Early Hints): the real one follows, after its head
            self._headers_done = False
            self._head_start += len(self.raw_head) + 4
            if self._partial is None:
                self._partial = b""  # the next head does not start at the start of the read
            self.raw_head = b""
            self.content_encoding = None
            self.has_cookies = False
            self.body.clear()
            return
        waiter = self._waiter
        if waiter is not None:
            # _complete, written out for the common case (one call less per response)
            self.done_at = perf_counter()
            try:
                waiter.set_result(status)
            except asyncio.InvalidStateError:  # cancelled, or a stream's (resolved at its headers)
                self._complete(status, parser.should_keep_alive())
                return
            body = self.body
            self.content = body[0] if len(body) == 1 else b"".join(body)
            body.clear()
            self._waiter = None
            self.keep_alive = parser.should_keep_alive()
            self.reused = True
            # the write callback goes after the wake-up of the task this response completes, so that
            # it runs in the same turn as the tasks woken by this read phase, after their requests
            queue = self._writes
            handle = queue.handle
            if handle is not None:
                handle.cancel()
            queue.handle = self.loop.call_soon(_flush_writes, queue)
            return
        self._complete(status, parser.should_keep_alive())

    # --- internals ---------------------------------------------------------------------------------

    def _new_parser(self) -> HttpResponseParser:
        """A parser calling this connection back at the end of a head and of a message, and appending
        body chunks to ``body`` itself (httptools reads the callbacks once, here)."""
        callbacks = SimpleNamespace(
            on_headers_complete=self.on_headers_complete,
            on_message_complete=self.on_message_complete,
            on_body=self.body.append,
        )
        return HttpResponseParser(callbacks)

    def _take_content(self) -> None:
        body = self.body
        self.content = body[0] if len(body) == 1 else b"".join(body)
        body.clear()

    def _take_head(self) -> None:
        """Take the complete head out of what this exchange has read, and note the headers of interest
        (the slow path of ``on_headers_complete``: a head over several reads, after an interim response,
        or with Content-Encoding or Set-Cookie)."""
        data = (self._partial or b"") + self._view[: self._nbytes].tobytes()
        start = self._head_start
        end = data.find(b"\r\n\r\n", start)
        head = self.raw_head = data[start:end] if end >= 0 else data[start:]
        for name, value in head_pairs(head):
            n = len(name)
            if n == 16 and name.lower() == b"content-encoding":
                self.content_encoding = value.lower().strip()  # the last one counts
            elif n == 10 and name.lower() == b"set-cookie":
                self.has_cookies = True

    def _complete(self, status: int, keep_alive: bool) -> None:
        waiter = self._waiter
        if waiter is None:
            self.abort()  # a second response to one request: the stream is out of step
            return
        self._waiter = None
        self.done_at = perf_counter()
        self.keep_alive = keep_alive
        self.reused = True
        if self._head_only is not STREAM:  # a stream's reader takes the chunks itself
            self._take_content()
        if not waiter.done():
            waiter.set_result(status)
        elif self._head_only is STREAM:
            self._stream_end = True
            self._wake_reader()

    def _ends_at_eof(self) -> bool:
        """A response without Content-Length or chunked framing ends when the server closes."""
        for name, _ in head_pairs(self.raw_head):
            low = name.lower()
            if low == b"content-length" or low == b"transfer-encoding":
                return False
        return True

    def _fail(self, exc: BaseException) -> None:
        waiter = self._waiter
        self.abort()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        elif self._head_only is STREAM:
            self._stream_error = exc
            self._wake_reader()

    def _feed(self, nbytes: int) -> None:
        try:
            self._parser.feed_data(self._view[:nbytes])
        except HttpParserError as e:
            self._parser_error(e)

    def _feed_counted(self, nbytes: int) -> None:
        """Feed a read that may take the body past ``max_body`` (or, streaming, wake the reader and apply
        back-pressure): the slow path of ``buffer_updated``.

        The read is fed with a stand-in waiter, so that a body over the limit fails the request even
        when the same read completes the response; otherwise what happened to the stand-in (completion,
        an error) is passed on to the real waiter.
        """
        if self._head_only is STREAM and self._headers_done:
            self._feed(nbytes)
            if self._waiter is not None:  # still streaming (the end of the body wakes the reader itself)
                self._budget = 0  # every read comes here
                self._wake_reader()
                if sum(len(c) for c in self.body) > _STREAM_HIGH_WATER and not self._paused:
                    self._paused = True
                    self.transport.pause_reading()  # type: ignore[union-attr]
            return
        real = self._waiter
        assert real is not None
        probe: asyncio.Future[int] = self.loop.create_future()
        self._waiter = probe
        self._feed(nbytes)
        exact = len(self.content) + sum(len(c) for c in self.body)  # content: completed by this read
        if exact > self.max_body:
            self._waiter = None
            self.abort()
            if not real.done():
                real.set_exception(BodyTooLarge(f"response body larger than {self.max_body} bytes"))
            return
        if self._waiter is probe:
            self._waiter = real
        if probe.done():
            error = probe.exception()
            if real.done():
                pass
            elif error is not None:
                real.set_exception(error)
            else:
                real.set_result(probe.result())
        if self._waiter is real and self._head_only is not STREAM:
            self._budget = self.max_body - exact

    # --- stream=True -------------------------------------------------------------------------------

    def _start_stream(self, status: int) -> None:
        """The headers of a streamed response are in: hand the status over, keep the body coming."""
        self._stream_end = False
        self._stream_error = None
        self._budget = 0
        self.done_at = perf_counter()  # a streamed response's time is the time to its headers
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(status)

    def _wake_reader(self) -> None:
        reader = self._reader
        if reader is not None:
            self._reader = None
            if not reader.done():
                reader.set_result(None)

    async def read_stream(self) -> bytes:
        """The next bytes of a streamed body (b"" at its end); raises what ended the body early."""
        while True:
            body = self.body
            if body:
                chunk = body[0] if len(body) == 1 else b"".join(body)
                body.clear()
                if self._paused and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                return chunk
            if self._stream_error is not None:
                raise self._stream_error
            if self._stream_end:
                return b""
            if self.closed:
                raise ServerDisconnected(
                    "the server closed the connection in the middle of the response body"
                )
            reader = self._reader = self.loop.create_future()
            await reader

    def _check_deadline(self) -> None:
        self._timer = None
        self._timer_at = _INF
        waiter = self._waiter
        if waiter is None or self.closed:
            return  # idle: the next send arms a new timer
        if self.loop.time() < self._deadline:
            self._timer = self.loop.call_at(self._deadline, self._check_deadline)
            self._timer_at = self._deadline
            return
        self._fail(TimeoutError(f"no complete response within {self._timeout:g}s"))


def _parser_reason(e: HttpParserError) -> str:
    text = str(e) or type(e).__name__
    return text.replace("HPE_", "").strip()


async def open_connection(
    loop: asyncio.AbstractEventLoop,
    origin: str,
    host: str,
    port: int,
    ssl: Any,
    timeout: float,
) -> Connection:
    """Connect to ``host:port`` (TLS when ``ssl`` is a context) within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            _, conn = await loop.create_connection(
                lambda: Connection(loop, origin),
                host,
                port,
                ssl=ssl,
                server_hostname=host if ssl is not None else None,
            )
    except TimeoutError:
        raise TimeoutError(f"could not connect to {origin} within {timeout:g}s") from None
    except ConnectionRefusedError as e:
        # the short form of the error table, as Locust shows it: ConnectionRefusedError(111, 'Connection refused')
        raise ConnectionRefusedError(
            e.errno, os.strerror(e.errno) if e.errno else "Connection refused"
        ) from None
    except OSError as e:
        if isinstance(e, (_ssl.SSLError, ConnectionError)):
            raise
        raise ConnectionError(f"could not connect to {origin}: {e.strerror or e}") from None
    return conn
