"""Bounded resources (issue 15 item 2): body size limits, stream=True, a total-time cap, on both clients."""

from __future__ import annotations

import asyncio
import time

import pytest

from horde import FastHttpUser, HttpUser
from horde.clients.response import DEFAULT_MAX_BODY, BodyTooLarge
from horde.env import Environment
from tests.clients.conftest import Made, Recorder, Target


async def test_a_body_over_max_body_is_a_clear_failure(made: Made) -> None:
    c = made.user.client
    resp = await c.get("/big?n=300000", max_body=100_000)
    assert not resp.ok and isinstance(resp.error, BodyTooLarge), resp.error
    assert "larger than 100000 bytes" in str(resp.error) and "max_body" in str(resp.error)
    assert made.rec.last["exception"] is resp.error
    # with a Content-Length over the limit it fails at the headers
    resp = await c.get("/big?n=300000&length=1", max_body=100_000)
    assert isinstance(resp.error, BodyTooLarge)
    # under the limit all is well, and the client is still usable
    ok = await c.get("/big?n=300000", max_body=300_000)
    assert ok.ok and len(ok.content) == 300_000


@pytest.mark.parametrize("length", ["", "&length=1"])
async def test_the_limit_is_exact(made: Made, length: str) -> None:
    c = made.user.client
    assert (await c.get(f"/big?n=300000{length}", max_body=300_000)).ok
    over = await c.get(f"/big?n=300001{length}", max_body=300_000)
    assert isinstance(over.error, BodyTooLarge)
    small = await c.get(f"/big?n=101{length}", max_body=100)  # head and body in one read
    assert isinstance(small.error, BodyTooLarge)
    assert (await c.get(f"/big?n=100{length}", max_body=100)).ok


async def test_the_limit_applies_to_the_decoded_body(made: Made) -> None:
    c = made.user.client
    assert (await c.get("/gzip")).content == b"z" * 200_000  # 200 kB that travel as a few hundred bytes
    bomb = await c.get("/gzip", max_body=100_000)
    assert isinstance(bomb.error, BodyTooLarge), bomb.error


async def test_max_body_size_on_the_class(user_base: type, target: Target) -> None:
    cls = type(
        "Small", (user_base,), {"host": target.url, "max_body_size": 1 << 16, "tasks": [lambda s: None]}
    )
    env = Environment(user_classes=[cls])
    Recorder(env)
    user = cls(env)
    try:
        resp = await user.client.get("/big?n=200000")
        assert isinstance(resp.error, BodyTooLarge) and "64 KiB" in str(resp.error)
        assert (await user.client.get("/big?n=1000")).ok
    finally:
        await user.teardown()


def test_the_default_limit_is_64_mib() -> None:
    assert DEFAULT_MAX_BODY == 64 * 1024 * 1024
    assert HttpUser.max_body_size == FastHttpUser.max_body_size == DEFAULT_MAX_BODY


async def test_stream_reads_the_body_incrementally(made: Made) -> None:
    c = made.user.client
    resp = await c.get("/big?n=1000000", stream=True)
    assert resp.ok and resp.content == b""
    # recorded at its headers: the response time is the time to the headers
    assert made.rec.last["response_length"] == 0
    total = 0
    biggest = 0
    async for chunk in resp.iter_content(65536):
        total += len(chunk)
        biggest = max(biggest, len(chunk))
    assert total == 1_000_000 and biggest <= 65536
    after = await c.get("/echo")  # the connection went back to the pool (or was closed) cleanly
    assert after.ok


async def test_stream_read_and_close(made: Made) -> None:
    c = made.user.client
    resp = await c.get("/big?n=200000", stream=True)
    assert len(await resp.read()) == 200_000 and len(resp.content) == 200_000
    endless = await c.get("/endless", stream=True)
    got = 0
    async for chunk in endless.iter_content(None):
        got += len(chunk)
        if got > 1_000_000:
            break
    endless.close()
    assert (await c.get("/echo")).ok


async def test_stream_decodes_gzip_and_follows_redirects(made: Made) -> None:
    c = made.user.client
    resp = await c.get("/gzip", stream=True)
    assert b"".join([chunk async for chunk in resp.iter_content(None)]) == b"z" * 200_000
    hop = await c.get("/to-big", stream=True)
    assert [h.status_code for h in hop.history] == [302]
    assert len(await hop.read()) == 100_000
    assert (await c.get("/echo")).ok


async def test_stream_with_catch_response(made: Made) -> None:
    async with made.user.client.get("/big?n=5000", stream=True, catch_response=True) as resp:
        data = b"".join([c async for c in resp.iter_content(1000)])
        if len(data) != 5000:
            resp.failure("short body")
    assert made.rec.last["exception"] is None


async def test_the_timeout_caps_the_whole_response(made: Made) -> None:
    t0 = time.perf_counter()
    resp = await made.user.client.get("/endless", timeout=0.5)
    took = time.perf_counter() - t0
    # a body that never ends fails at the cap (or at the size limit, whichever comes first)
    assert not resp.ok and isinstance(resp.error, TimeoutError | BodyTooLarge), resp.error
    assert took < 3


async def test_http_user_has_a_default_read_timeout() -> None:
    assert HttpUser.network_timeout == FastHttpUser.network_timeout == 60.0
    assert HttpUser.connection_timeout == FastHttpUser.connection_timeout == 60.0


async def test_http_user_network_timeout_on_the_class(target: Target) -> None:
    cls = type("Quick", (HttpUser,), {"host": target.url, "network_timeout": 0.3, "tasks": [lambda s: None]})
    env = Environment(user_classes=[cls])
    user = cls(env)
    try:
        t0 = time.perf_counter()
        resp = await user.client.get("/slow?s=3")
        assert isinstance(resp.error, TimeoutError) and time.perf_counter() - t0 < 2
    finally:
        await user.teardown()


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/big?n=1073741824", "/endless"])
async def test_a_1_gib_body_and_an_endless_body_stay_bounded(made: Made, path: str) -> None:
    """RSS grows by less than 100 MiB (the 64 MiB of the default limit, then buffers) for a 1 GiB or an endless body: not buffered (the 64 MiB limit
    fails it), and streamed it is read in pieces; each case is cut off after a few seconds."""
    pytest.importorskip("psutil")
    c = made.user.client
    before = _rss()
    peak = before
    resp = await c.get(path, timeout=20)
    peak = max(peak, _rss())
    assert isinstance(resp.error, BodyTooLarge), resp.error
    streamed = await c.get(path, stream=True, timeout=20)
    got = 0
    deadline = time.monotonic() + 3
    async for chunk in streamed.iter_content(65536):
        got += len(chunk)
        if got % (16 << 20) < 65536:
            peak = max(peak, _rss())
        if time.monotonic() > deadline:
            break
    streamed.close()
    peak = max(peak, _rss())
    assert got > 10 << 20
    print(f"{path}: streamed {got >> 20} MiB, RSS grew by {(peak - before) >> 20} MiB")
    assert peak - before < 100 << 20, f"RSS grew by {(peak - before) >> 20} MiB"


async def test_a_stream_left_unread_does_not_leak_the_connection(made: Made) -> None:
    c = made.user.client
    for _ in range(15):  # more than FastHttpUser's concurrency of 10
        resp = await c.get("/endless", stream=True)
        del resp
        made.rec.events.clear()  # the recorder would keep the responses (and their connections) alive
    await asyncio.sleep(0)
    after = await asyncio.wait_for(c.get("/echo"), 5)
    assert after.ok, after.error


async def test_http_user_network_timeout_with_requests_in_parallel(target: Target) -> None:
    cls = type("Par", (HttpUser,), {"host": target.url, "network_timeout": 0.4, "tasks": [lambda s: None]})
    env = Environment(user_classes=[cls])
    user = cls(env)
    try:
        t0 = time.perf_counter()
        slow, fast, slower = await asyncio.gather(
            user.client.get("/slow?s=3"), user.client.get("/echo"), user.client.get("/slow?s=5")
        )
        assert isinstance(slow.error, TimeoutError) and "0.4s" in str(slow.error)
        assert isinstance(slower.error, TimeoutError) and fast.ok
        assert time.perf_counter() - t0 < 2
        await asyncio.sleep(0.01)  # the task was not left cancelled
        timed = await user.client.get("/slow?s=3")  # in the user's own task
        assert isinstance(timed.error, TimeoutError)
        assert (await user.client.get("/echo")).ok
    finally:
        await user.teardown()
