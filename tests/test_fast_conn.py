"""FastHttpUser against servers that misbehave, over TLS, and on uvloop.

Every failure here must be recorded as a failed request with a readable message while the user goes
on making requests; none may escape into the user loop.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop
from aiohttp import web

from horde.clients._fast_conn import ProtocolError, ServerDisconnected
from tests.test_fast_http import Recorder, make_env, make_user, raw_server, read_head

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def ok_with(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


@pytest.fixture
def env() -> Any:
    return make_env()


@pytest.fixture
def rec(env: Any) -> Recorder:
    return Recorder(env)


# --- keep-alive connections the server closes ------------------------------------------------------


class OneShotServer:
    """Answers the first request of each connection, then closes it when the second one arrives
    (or right after answering, with ``close_after=True``), without a ``Connection: close`` header."""

    def __init__(self, close_after: bool = False) -> None:
        self.close_after = close_after
        self.connections = 0
        self.requests = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        head = await read_head(reader)
        self.requests += 1
        length = int(head.lower().partition(b"content-length:")[2].split(b"\r\n")[0] or 0)
        if length:
            await reader.readexactly(length)
        writer.write(OK)
        await writer.drain()
        if self.close_after:
            return
        await read_head(reader)  # the next request on this connection: drop it unanswered
        self.requests += 1


async def test_idempotent_request_is_retried_once_when_a_kept_alive_connection_was_closed(
    env: Any, rec: Recorder
) -> None:
    behaviour = OneShotServer()
    server = await raw_server(behaviour)
    u = make_user(env, server.url)
    try:
        for _ in range(3):
            assert (await u.client.get("/")).text == "ok"
        assert rec.failures == [] and len(rec.events) == 3
        assert behaviour.connections == 3  # each reuse attempt was refused, then retried on a new one
    finally:
        await u.teardown()
        server.close()


async def test_non_idempotent_request_is_not_retried(env: Any, rec: Recorder) -> None:
    server = await raw_server(OneShotServer())
    u = make_user(env, server.url)
    try:
        assert (await u.client.post("/", b"first")).ok
        resp = await u.client.post("/", b"second")
        assert isinstance(resp.error, ServerDisconnected)
        assert "closed the connection without sending a response" in str(resp.error)
        assert rec.last["exception"] is resp.error
        assert (await u.client.post("/", b"third")).ok  # the user goes on, on a fresh connection
    finally:
        await u.teardown()
        server.close()


async def test_a_connection_seen_closed_while_idle_is_replaced(env: Any, rec: Recorder) -> None:
    behaviour = OneShotServer(close_after=True)
    server = await raw_server(behaviour)
    u = make_user(env, server.url)
    try:
        for _ in range(3):
            assert (await u.client.post("/", b"x")).ok
            await asyncio.sleep(0.02)  # the close reaches the client before its next request
        assert rec.failures == [] and behaviour.connections == 3
    finally:
        await u.teardown()
        server.close()


# --- malformed and cut-off responses ---------------------------------------------------------------


def per_connection(*replies: bytes, abort: bool = False) -> Any:
    """A server whose n-th connection gets the n-th reply (then the last one forever) and is closed."""
    count = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        reply = replies[min(count, len(replies) - 1)]
        count += 1
        await read_head(reader)
        writer.write(reply)
        await writer.drain()
        if abort:
            writer.transport.abort()

    return handler


@pytest.mark.parametrize(
    ("reply", "error_type", "message"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", ProtocolError, "malformed response from http://127.0.0.1:"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n", ProtocolError, "malformed response"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b",
            ServerDisconnected,
            "middle of the response body",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Le", ServerDisconnected, "middle of the response headers"),
        (b"", ServerDisconnected, "without sending a response"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            ServerDisconnected,
            "middle of the response body",
        ),
    ],
)
async def test_broken_responses_are_failures_and_the_user_goes_on(
    env: Any, rec: Recorder, reply: bytes, error_type: type, message: str
) -> None:
    server = await raw_server(per_connection(reply, OK))
    u = make_user(env, server.url)
    try:
        resp = await u.client.post("/", b"x")  # not idempotent: no retry hides the failure
        assert resp.status_code == 0 and isinstance(resp.error, error_type), resp.error
        assert message in str(resp.error)
        assert rec.last["exception"] is resp.error and rec.last["response_length"] == 0
        assert (await u.client.get("/")).text == "ok"
    finally:
        await u.teardown()
        server.close()


async def test_a_reset_in_the_middle_of_the_body_is_a_failure(env: Any, rec: Recorder) -> None:
    server = await raw_server(
        per_connection(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n0123456789", OK, abort=True)
    )
    u = make_user(env, server.url)
    try:
        resp = await u.client.get("/")
        assert isinstance(resp.error, ServerDisconnected) and "middle of the response body" in str(resp.error)
        assert (await u.client.get("/")).ok
    finally:
        await u.teardown()
        server.close()


async def test_body_delimited_by_closing_the_connection(env: Any, rec: Recorder) -> None:
    server = await raw_server(
        per_connection(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
    )
    u = make_user(env, server.url)
    try:
        for _ in range(2):
            resp = await u.client.get("/")
            assert resp.ok and resp.text == "until the end"
    finally:
        await u.teardown()
        server.close()


async def test_interim_responses_are_skipped(env: Any) -> None:
    reply = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nX-Final: yes\r\nContent-Length: 4\r\n\r\ndone"
    )
    server = await raw_server(per_connection(reply))
    u = make_user(env, server.url)
    try:
        resp = await u.client.get("/")
        assert resp.status_code == 201 and resp.text == "done" and resp.reason == "Created"
        assert resp.headers["X-Final"] == "yes" and "Link" not in resp.headers
    finally:
        await u.teardown()
        server.close()


async def test_an_unsolicited_extra_response_drops_the_connection(env: Any, rec: Recorder) -> None:
    extra = OK + b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 7\r\n\r\ntimeout"
    server = await raw_server(per_connection(extra, OK))
    u = make_user(env, server.url)
    try:
        first = await u.client.get("/")
        assert first.ok and first.text == "ok"
        assert (await u.client.get("/")).ok
        assert rec.failures == []
    finally:
        await u.teardown()
        server.close()


async def test_concurrent_large_bodies_do_not_mix_in_the_shared_read_buffer(env: Any) -> None:
    bodies = [bytes([65 + i]) * (300_000 + i) for i in range(6)]  # larger than the read buffer

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await read_head(reader)
            i = int(head.split(b" ")[1].strip(b"/"))
            body = bodies[i]
            for start in range(0, len(body), 65536):  # chunked, in pieces
                piece = body[start : start + 65536]
                writer.write(
                    b"%x\r\n%s\r\n" % (len(piece), piece)
                    if start
                    else b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + b"%x\r\n%s\r\n" % (len(piece), piece)
                )
                await writer.drain()
            writer.write(b"0\r\n\r\n")

    server = await raw_server(handler)
    users = [make_user(env, server.url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(u.client.get(f"/{i}") for u in users for i in range(6)))
        assert [r.content for r in results] == bodies * 3
    finally:
        for u in users:
            await u.teardown()
        server.close()


# --- connecting --------------------------------------------------------------------------------------


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose accept queue is full, so a new connection attempt hangs (all on loopback)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    yield port
    for s in fillers:
        s.close()
    listener.close()


async def test_connection_timeout(env: Any, rec: Recorder, unanswered_port: int) -> None:
    u = make_user(env, f"http://127.0.0.1:{unanswered_port}", connection_timeout=0.2)
    try:
        started = time.perf_counter()
        resp = await u.client.get("/")
        assert 0.15 < time.perf_counter() - started < 1.0
        assert isinstance(resp.error, TimeoutError)
        assert str(resp.error) == f"could not connect to http://127.0.0.1:{unanswered_port} within 0.2s"
        assert rec.last["exception"] is resp.error
    finally:
        await u.teardown()


# --- TLS ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    if shutil.which("openssl") is None:  # pragma: no cover
        pytest.skip("the openssl command is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def start_tls_site(certificate: tuple[Path, Path], peers: set[Any]) -> tuple[web.AppRunner, str]:
    async def hello(request: web.Request) -> web.Response:
        transport = request.transport
        if transport is not None:
            peers.add(transport.get_extra_info("peername"))
        return web.Response(text="secure hello")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*certificate)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"https://127.0.0.1:{port}"


async def check_tls(certificate: tuple[Path, Path]) -> None:
    env = make_env()
    rec = Recorder(env)
    peers: set[Any] = set()
    runner, url = await start_tls_site(certificate, peers)
    verifying = make_user(env, url)
    insecure = make_user(env, url, insecure=True)
    trusting = make_user(env, url, ssl_context=ssl.create_default_context(cafile=str(certificate[0])))
    try:
        resp = await verifying.client.get("/")
        assert isinstance(resp.error, ssl.SSLCertVerificationError)
        assert "certificate verify failed" in str(resp.error) and rec.last["exception"] is resp.error
        for _ in range(3):
            assert (await insecure.client.get("/")).text == "secure hello"
            assert (await trusting.client.get("/")).text == "secure hello"
        assert len(peers) == 2  # one kept-alive TLS connection per user
    finally:
        for u in (verifying, insecure, trusting):
            await u.teardown()
        await runner.cleanup()


async def test_tls_verifies_by_default_and_insecure_turns_it_off(certificate: tuple[Path, Path]) -> None:
    await check_tls(certificate)


# --- the same on uvloop -----------------------------------------------------------------------------


async def uvloop_scenarios(certificate: tuple[Path, Path]) -> None:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
    env = make_env()
    rec = Recorder(env)
    behaviour = OneShotServer()
    race = await raw_server(behaviour)
    broken = await raw_server(per_connection(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ncut", OK))
    u, v = make_user(env, race.url), make_user(env, broken.url)
    try:
        for _ in range(3):
            assert (await u.client.get("/")).ok
        assert behaviour.connections == 3 and rec.failures == []
        resp = await v.client.post("/", b"x")
        assert isinstance(resp.error, ServerDisconnected)
        assert (await v.client.get("/")).ok
    finally:
        await u.teardown()
        await v.teardown()
        race.close()
        broken.close()
    await check_tls(certificate)


def test_works_on_uvloop(certificate: tuple[Path, Path]) -> None:
    uvloop.run(uvloop_scenarios(certificate))


async def test_the_other_tests_run_on_the_stock_asyncio_loop() -> None:
    assert not isinstance(asyncio.get_running_loop(), uvloop.Loop)


# --- writes queued to the next loop turn -----------------------------------------------------------


class _Wire:
    """A transport stand-in that records what is written to it."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True


def test_requests_of_one_loop_turn_are_written_together_and_never_after_an_abort() -> None:
    from horde.clients._fast_conn import Connection

    loop = asyncio.new_event_loop()
    try:
        conns, wires = [], []
        for _ in range(3):
            conn, wire = Connection(loop, "http://127.0.0.1:1"), _Wire()
            conn.connection_made(wire)  # type: ignore[arg-type]
            conns.append(conn)
            wires.append(wire)
        for i, conn in enumerate(conns):
            conn.send(b"GET /%d" % i, 5.0)
        assert all(w.sent == [] for w in wires)  # queued, not yet written
        conns[1].abort()
        loop.run_until_complete(asyncio.sleep(0))
        assert [w.sent for w in wires] == [[b"GET /0"], [], [b"GET /2"]]
        conns[0].send(b"GET /again", 5.0)  # the next turn schedules its own write
        loop.run_until_complete(asyncio.sleep(0))
        assert wires[0].sent == [b"GET /0", b"GET /again"]
    finally:
        loop.close()


def test_a_loop_closed_with_a_queued_write_leaves_nothing_for_the_next_loop() -> None:
    from horde.clients._fast_conn import Connection

    first = asyncio.new_event_loop()
    conn = Connection(first, "http://127.0.0.1:1")
    conn.connection_made(_Wire())  # type: ignore[arg-type]
    conn.send(b"GET /lost", 5.0)
    first.close()  # the write callback never ran
    second = asyncio.new_event_loop()
    try:
        conn, wire = Connection(second, "http://127.0.0.1:1"), _Wire()
        conn.connection_made(wire)  # type: ignore[arg-type]
        conn.send(b"GET /next", 5.0)
        second.run_until_complete(asyncio.sleep(0))
        assert wire.sent == [b"GET /next"]
    finally:
        second.close()


def test_after_a_turn_with_a_single_request_requests_are_written_at_once_with_a_probe() -> None:
    from horde.clients._fast_conn import _PROBE, Connection

    loop = asyncio.new_event_loop()
    try:
        conn, wire = Connection(loop, "http://127.0.0.1:1"), _Wire()
        conn.connection_made(wire)  # type: ignore[arg-type]
        conn.send(b"first", 5.0)
        loop.run_until_complete(asyncio.sleep(0))  # a turn that carried one request
        for i in range(_PROBE - 1):
            conn.send(b"%d" % i, 5.0)
            assert len(wire.sent) == i + 2  # written at once: nothing to batch with
        conn.send(b"probe", 5.0)
        assert wire.sent[-1] != b"probe"  # queued again, to see whether others share its turn
        other, other_wire = Connection(loop, "http://127.0.0.1:1"), _Wire()
        other.connection_made(other_wire)  # type: ignore[arg-type]
        other.send(b"company", 5.0)
        loop.run_until_complete(asyncio.sleep(0))
        assert wire.sent[-1] == b"probe" and other_wire.sent == [b"company"]
        conn.send(b"batched again", 5.0)  # that turn carried two: requests wait for the turn's end
        assert wire.sent[-1] == b"probe"
    finally:
        loop.close()
