"""The fast client's connection copies each response head out of the read buffer instead of taking header
callbacks from the parser: whatever the reads look like, it must read what the parser read."""

from __future__ import annotations

import asyncio
import gzip
from itertools import pairwise
from typing import Any

import httptools
import pytest

from horde.clients._fast_conn import Connection, head_pairs, head_reason

HEADS = [
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 0",
    b"HTTP/1.1 200 OK",
    b"HTTP/1.1 200",
    b"HTTP/1.1 200 ",
    b"HTTP/1.1 404 Not Found Here\r\nX:  a b  \r\nY:\t\tq\t\r\nZ:\r\nz:\r\nX: again",
    b"HTTP/1.0 302 Found\r\nLocation: /next\r\nSet-Cookie: a=1\r\nset-cookie: b=2; Path=/",
    b"HTTP/1.1 200 OK\r\nCONTENT-ENCODING:  GZip \r\nX-Long: " + b"v" * 3000,
]


class _Collect:
    def __init__(self) -> None:
        self.pairs: list[tuple[bytes, bytes]] = []
        self.reason = b""

    def on_status(self, reason: bytes) -> None:
        self.reason = reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.pairs.append((name, value))


@pytest.mark.parametrize("head", HEADS)
def test_pairs_and_reason_are_the_parsers_own(head: bytes) -> None:
    seen = _Collect()
    httptools.HttpResponseParser(seen).feed_data(head + b"\r\n\r\n")
    assert head_pairs(head) == seen.pairs
    assert head_reason(head) == seen.reason


class _Transport:
    def __init__(self) -> None:
        self.closing = False

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True

    close = abort


def _exchange(loop: asyncio.AbstractEventLoop, conn: Connection, reads: list[bytes]) -> Any:
    waiter = conn.send(b"GET / HTTP/1.1\r\n\r\n", 60.0)
    for data in reads:
        conn.get_buffer(len(data))[: len(data)] = data
        conn.buffer_updated(len(data))
    assert waiter.done()
    return waiter.result()


GZIPPED = gzip.compress(b"hello")
# response, its head as the connection must keep it, Content-Encoding, Set-Cookie seen, body
RESPONSES: dict[str, tuple[bytes, bytes, bytes | None, bool, bytes]] = {
    "plain": (
        b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 2",
        None,
        False,
        b"ok",
    ),
    "encoded, cookies": (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nset-COOKIE: a=1\r\nContent-Encoding: GZIP \r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(GZIPPED), GZIPPED),
        b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nset-COOKIE: a=1\r\nContent-Encoding: GZIP \r\n"
        b"Content-Length: %d" % len(GZIPPED),
        b"gzip",
        True,
        GZIPPED,
    ),
    "interim first": (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nSet-Cookie: early=1\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked",
        None,
        False,
        b"ok",
    ),
}


@pytest.mark.parametrize("kind", list(RESPONSES))
def test_a_response_cut_anywhere_into_reads_is_read_as_a_whole(kind: str) -> None:
    response, head, encoding, cookies, body = RESPONSES[kind]
    loop = asyncio.new_event_loop()
    try:
        conn = Connection(loop, "http://x:80")
        conn.connection_made(_Transport())  # type: ignore[arg-type]
        cuts = [[i] for i in range(1, len(response))]
        cuts += [[i, j] for i in range(1, len(response), 7) for j in range(i + 1, len(response), 5)]
        for points in [[], *cuts]:
            edges = [0, *points, len(response)]
            reads = [response[a:b] for a, b in pairwise(edges)]
            status = _exchange(loop, conn, reads)
            assert (status, conn.raw_head, conn.content_encoding, conn.has_cookies) == (
                int(head.split(b" ")[1]),
                head,
                encoding,
                cookies,
            ), points
            assert conn.content == body and conn.body == [], points
            assert not conn.closed
    finally:
        loop.close()


def test_a_head_like_the_last_one_is_told_apart_from_it() -> None:
    # the connection recognises a repeat of the last head without searching it: every near miss of
    # that shortcut must still be read in full
    base = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Id: 1234567"
    heads = [
        (base, None, False),
        (base + b"\r\nX-More: 1", None, False),  # the last head, then another line
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: 1234", None, True),  # same length
        (base, None, False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Id: 12", None, False),  # a prefix of the last
        (base + b"8", None, False),  # the last head, then more of its last line
        (base.replace(b"X-Id", b"x-iD"), None, False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Encoding: br", b"br", False),
        (base, None, False),
    ]
    loop = asyncio.new_event_loop()
    try:
        conn = Connection(loop, "http://x:80")
        conn.connection_made(_Transport())  # type: ignore[arg-type]
        for _ in range(2):
            for head, encoding, cookies in heads:
                assert _exchange(loop, conn, [head + b"\r\n\r\nok"]) == 200
                assert (conn.raw_head, conn.content_encoding, conn.has_cookies) == (head, encoding, cookies)
                assert conn.content == b"ok" and conn.body == []
    finally:
        loop.close()
