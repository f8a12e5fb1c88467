"""FastHttpUser against a real aiohttp server: calling forms, HTTP features, accounting.

Failure modes that need a misbehaving server (malformed output, resets, interim responses), TLS and
uvloop live in ``test_fast_conn.py``; the cookie jar and request building in ``test_fast_message.py``.
The helpers here are imported by those modules.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from horde.clients.fast import FastHttpSession, FastHttpUser, FastResponse, TooManyRedirects
from horde.clients.response import HTTPError
from horde.exceptions import ResponseError, StopTest
from horde.user.task import task

# --- helpers shared by the test_fast_* modules -----------------------------------------------------


def make_env() -> Any:
    """A real Environment when it can be built, else the two things a client needs from one."""
    try:
        from horde.env import Environment

        return Environment()
    except ImportError:  # pragma: no cover - only while the environment module is incomplete
        from horde.clock import SYSTEM_CLOCK
        from horde.event import Events

        return SimpleNamespace(events=Events(), clock=SYSTEM_CLOCK, runner=None, catch_exceptions=True)


class Recorder:
    """Collects every ``request`` event fired on an environment."""

    def __init__(self, env: Any) -> None:
        self.events: list[dict[str, Any]] = []
        env.events.request.add_listener(self)

    def __call__(self, **kwargs: Any) -> None:
        self.events.append(kwargs)

    @property
    def last(self) -> dict[str, Any]:
        return self.events[-1]

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["exception"] is not None]


def make_user(env: Any, host: str, **attrs: Any) -> FastHttpUser:
    cls = type("TestUser", (FastHttpUser,), {"host": host, **attrs})
    return cls(env)


@dataclass
class RawServer:
    server: asyncio.Server
    url: str

    def close(self) -> None:
        self.server.close()

    async def wait_closed(self) -> None:
        await self.server.wait_closed()


async def raw_server(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> RawServer:
    """A bare asyncio server on 127.0.0.1 for responses no well-behaved framework would send."""

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(guarded, "127.0.0.1", 0)
    return RawServer(server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


# --- the aiohttp app ---------------------------------------------------------------------------------


@dataclass
class Site:
    url: str
    hits: int = 0
    peers: set[Any] = field(default_factory=set)
    seen: list[web.Request] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)


def build_app(site: Site) -> web.Application:
    @web.middleware
    async def track(request: web.Request, handler: Any) -> web.StreamResponse:
        site.hits += 1
        site.seen.append(request)
        site.bodies.append(await request.read())
        transport = request.transport
        if transport is not None:
            site.peers.add(transport.get_extra_info("peername"))
        return await handler(request)

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query_string,
                "headers": dict(request.headers),
                "body": (await request.read()).decode(),
            }
        )

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="status")

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(5):
            await resp.write(f"part{i};".encode())
        await resp.write_eof()
        return resp

    async def gzipped(request: web.Request) -> web.Response:
        body = gzip.compress(b"hello gzip " * 100)
        return web.Response(body=body, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})

    async def deflated(request: web.Request) -> web.Response:
        return web.Response(body=zlib.compress(b"hello deflate"), headers={"Content-Encoding": "deflate"})

    async def bad_gzip(request: web.Request) -> web.Response:
        return web.Response(body=b"not gzip at all", headers={"Content-Encoding": "gzip"})

    async def redirect(request: web.Request) -> web.Response:
        hops = int(request.match_info["n"])
        target = "/ok" if hops <= 1 else f"/redirect/{hops - 1}"
        return web.Response(status=302, headers={"Location": target})

    async def redirect_loop(request: web.Request) -> web.Response:
        return web.Response(status=301, headers={"Location": "/loop"})

    async def see_other(request: web.Request) -> web.Response:
        return web.Response(status=303, headers={"Location": "/echo"})

    async def keep_method(request: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": "/echo"})

    async def login(request: web.Request) -> web.Response:
        resp = web.Response(status=302, headers={"Location": "/whoami"})
        resp.set_cookie("session", "s3cret", path="/")
        resp.set_cookie("scoped", "only-api", path="/api")
        return resp

    async def whoami(request: web.Request) -> web.Response:
        return web.Response(text=request.cookies.get("session", "anonymous"))

    async def logout(request: web.Request) -> web.Response:
        resp = web.Response(text="bye")
        resp.del_cookie("session", path="/")
        return resp

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("s", "0.5")))
        return web.Response(text="slow")

    async def slow_body(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": "8"})
        await resp.prepare(request)
        await resp.write(b"1234")
        await asyncio.sleep(0.2)
        await resp.write(b"5678")
        await resp.write_eof()
        return resp

    async def close(request: web.Request) -> web.Response:
        return web.Response(text="closing", headers={"Connection": "close"})

    async def auth(request: web.Request) -> web.Response:
        return web.Response(text=request.headers.get("Authorization", "none"))

    app = web.Application(middlewares=[track])
    app.router.add_get("/ok", ok)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/deflate", deflated)
    app.router.add_get("/bad-gzip", bad_gzip)
    app.router.add_get("/redirect/{n}", redirect)
    app.router.add_get("/loop", redirect_loop)
    app.router.add_post("/see-other", see_other)
    app.router.add_post("/keep-method", keep_method)
    app.router.add_get("/login", login)
    app.router.add_get("/whoami", whoami)
    app.router.add_get("/api/whoami", whoami)
    app.router.add_get("/logout", logout)
    app.router.add_get("/slow", slow)
    app.router.add_get("/slow-body", slow_body)
    app.router.add_get("/close", close)
    app.router.add_get("/auth", auth)
    return app


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    site = Site(url="")
    runner = web.AppRunner(build_app(site), access_log=None, handler_cancellation=True)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    site.url = f"http://127.0.0.1:{port}"
    yield site
    await runner.cleanup()


@pytest.fixture
def env() -> Any:
    return make_env()


@pytest.fixture
def rec(env: Any) -> Recorder:
    return Recorder(env)


@pytest.fixture
async def user(env: Any, site: Site) -> AsyncIterator[FastHttpUser]:
    u = make_user(env, site.url)
    yield u
    await u.teardown()


# --- calling forms and the response ------------------------------------------------------------------


async def test_get_returns_a_full_response_and_fires_one_event(
    user: FastHttpUser, rec: Recorder, site: Site
) -> None:
    before = time.time()
    resp = await user.client.get("/ok")
    assert isinstance(resp, FastResponse)
    assert resp.status_code == 200 and resp.ok and bool(resp)
    assert resp.text == "ok" and resp.content == b"ok"
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.headers["Content-Length"] == "2"
    assert resp.url == f"{site.url}/ok" and isinstance(resp.url, str)
    assert resp.reason == "OK"
    assert 0 < resp.elapsed.total_seconds() < 5
    resp.raise_for_status()
    assert len(rec.events) == 1
    ev = rec.last
    assert ev["request_type"] == "GET" and ev["name"] == "/ok"
    assert ev["response_length"] == 2 and ev["exception"] is None and ev["response"] is resp
    assert ev["url"] == resp.url and ev["context"] == {}
    assert 0 < ev["response_time"] == pytest.approx(resp.elapsed.total_seconds() * 1000, abs=0.01)
    assert before <= ev["start_time"] <= time.time()


async def test_every_verb_and_its_body(user: FastHttpUser, site: Site) -> None:
    c = user.client
    assert (await c.post("/echo", b"raw")).json()["body"] == "raw"  # body positionally, as requests
    assert (await c.put("/echo", "text")).json()["method"] == "PUT"
    assert (await c.patch("/echo", data={"a": "1", "b": "x y"})).json()["body"] == "a=1&b=x+y"
    assert (await c.delete("/echo")).json()["method"] == "DELETE"
    assert (await c.options("/echo")).json()["method"] == "OPTIONS"
    assert (await c.request("get", "/echo")).json()["method"] == "GET"
    head = await c.head("/ok")
    assert head.status_code == 200 and head.content == b"" and head.headers["Content-Length"] == "2"
    assert (await c.get("/ok")).text == "ok"  # the connection is still in step after the HEAD
    form = site.seen[2]
    assert form.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert site.seen[0].headers["Content-Length"] == "3"


async def test_json_params_headers_auth_and_name(user: FastHttpUser, rec: Recorder, site: Site) -> None:
    user.client.headers["X-Session"] = "everywhere"
    resp = await user.client.post(
        "/echo?fixed=1",
        json={"k": [1, 2]},
        params={"page": 2, "tag": ["a", "b"]},
        headers={"X-Trace": "abc"},
        auth=("alice", "pw"),
        name="/echo [json]",
    )
    got = resp.json()
    assert json.loads(got["body"]) == {"k": [1, 2]}
    assert got["query"] == "fixed=1&page=2&tag=a&tag=b"
    assert got["headers"]["Content-Type"] == "application/json"
    assert got["headers"]["X-Trace"] == "abc" and got["headers"]["X-Session"] == "everywhere"
    assert got["headers"]["Authorization"] == "Basic YWxpY2U6cHc="
    assert got["headers"]["Accept-Encoding"] == "gzip, deflate"
    assert rec.last["name"] == "/echo [json]" and rec.last["request_type"] == "POST"
    # a per-request None removes a session header; later calls see the session headers again
    got = (await user.client.get("/echo", headers={"X-Session": None})).json()
    assert "X-Session" not in got["headers"]
    assert (await user.client.get("/echo")).json()["headers"]["X-Session"] == "everywhere"


async def test_default_headers_class_attribute(env: Any, site: Site) -> None:
    u = make_user(env, site.url, default_headers={"X-Tenant": "t9", "User-Agent": "probe/1"})
    try:
        got = (await u.client.get("/echo")).json()["headers"]
        assert got["X-Tenant"] == "t9" and got["User-Agent"] == "probe/1"
    finally:
        await u.teardown()


async def test_credentials_in_the_host_url_become_basic_auth(env: Any, site: Site) -> None:
    u = make_user(env, site.url.replace("http://", "http://bob:hunter2@"))
    try:
        assert (await u.client.get("/auth")).text == "Basic Ym9iOmh1bnRlcjI="
    finally:
        await u.teardown()


async def test_status_400_and_up_is_a_failure_with_the_reason(user: FastHttpUser, rec: Recorder) -> None:
    resp = await user.client.get("/status/404")
    assert resp.status_code == 404 and not resp.ok
    assert isinstance(resp.error, HTTPError) and str(resp.error) == "404 Not Found"
    assert rec.last["exception"] is resp.error
    with pytest.raises(HTTPError):
        resp.raise_for_status()
    assert (await user.client.get("/status/302")).ok  # a redirect without Location is just a response


# --- catch_response ------------------------------------------------------------------------------------


async def test_catch_response_lets_the_task_decide(user: FastHttpUser, rec: Recorder) -> None:
    async with user.client.get("/status/500", catch_response=True) as resp:
        assert resp.status_code == 500
        resp.success()
    assert rec.last["exception"] is None
    async with user.client.get("/ok", catch_response=True) as resp:
        resp.failure("body was not what we wanted")
    assert str(rec.last["exception"]) == "body was not what we wanted"
    async with user.client.get("/status/503", catch_response=True):
        pass  # no verdict: the automatic one
    assert isinstance(rec.last["exception"], HTTPError)
    async with user.client.get("/ok", catch_response=True) as resp:
        raise ResponseError("marked failed by raising")
    assert isinstance(rec.last["exception"], ResponseError)
    with pytest.raises(KeyError):
        async with user.client.get("/ok", catch_response=True):
            raise KeyError("task bug")
    assert isinstance(rec.last["exception"], KeyError)
    async with user.client.get("/ok") as resp:  # without catch_response: reported on entry
        assert resp.ok
    assert len(rec.events) == 6
    with pytest.raises(Exception, match="only allowed inside"):
        (await user.client.get("/ok")).success()


async def test_context_is_merged_into_the_event(env: Any, site: Site, rec: Recorder) -> None:
    u = make_user(env, site.url, context=lambda self: {"tenant": "t1"})
    try:
        await u.client.get("/ok", context={"step": 3})
        assert rec.last["context"] == {"tenant": "t1", "step": 3}
        await u.client.get("/ok")
        assert rec.last["context"] == {"tenant": "t1"}
    finally:
        await u.teardown()


async def test_listeners_that_raise_or_are_coroutines_keep_fire_semantics(env: Any, site: Site) -> None:
    names: list[str] = []

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("listener bug")

    async def later(**kwargs: Any) -> None:
        names.append(kwargs["name"])

    env.events.request.add_listener(broken)
    env.events.request.add_listener(later)
    u = make_user(env, site.url)
    try:
        assert (await u.client.get("/ok")).ok  # a broken listener does not break the request
        await asyncio.sleep(0.01)
    finally:
        await u.teardown()
    assert env.events.unhandled_errors == 1 and names == ["/ok"]


async def test_a_lone_request_recorder_is_called_positionally(env: Any, site: Site) -> None:
    from horde.event import RequestRecorder
    from horde.exceptions import StopUser

    calls: list[tuple[Any, ...]] = []
    recorder = env.events.request.add_listener(RequestRecorder(lambda *args: calls.append(args)))
    u = make_user(env, site.url)
    try:
        await u.client.get("/ok")
        await u.client.get("/status/404", name="missing")
        assert [c[:2] + c[3:4] for c in calls] == [("GET", "/ok", 2), ("GET", "missing", 6)]
        assert calls[0][2] > 0 and calls[0][4] is None and isinstance(calls[1][4], HTTPError)
        rec = Recorder(env)  # a second listener: both hear of every request, the recorder the same way
        await u.client.get("/ok")
        assert len(calls) == 3 and calls[2][1] == "/ok" and rec.last["name"] == "/ok"
        env.events.request.remove_listener(rec)

        def broken(*args: Any) -> None:
            raise RuntimeError("recorder bug")

        recorder.record = broken  # what it raises is handled as for any listener
        assert (await u.client.get("/ok")).ok and env.events.unhandled_errors == 1

        def stop(*args: Any) -> None:
            raise StopUser()

        recorder.record = stop  # a control exception goes on to the task, as from any listener
        with pytest.raises(StopUser):
            await u.client.get("/ok")
    finally:
        await u.teardown()


async def test_base_url_can_change_between_requests(user: FastHttpUser, site: Site, rec: Recorder) -> None:
    assert (await user.client.get("/ok")).ok
    user.client.base_url = site.url + "/status"
    assert (await user.client.get("/418")).status_code == 418
    assert rec.last["name"] == "/418" and rec.last["url"] == f"{site.url}/status/418"


# --- connections -----------------------------------------------------------------------------------


async def test_sequential_requests_share_one_connection(user: FastHttpUser, site: Site) -> None:
    for _ in range(20):
        assert (await user.client.get("/ok")).ok
    assert site.hits == 20 and len(site.peers) == 1


async def test_connection_close_from_the_server_reconnects(
    user: FastHttpUser, rec: Recorder, site: Site
) -> None:
    for _ in range(3):
        assert (await user.client.get("/close")).text == "closing"
    assert (await user.client.get("/ok")).ok
    assert rec.failures == [] and len(site.peers) == 4


async def test_concurrency_bounds_parallel_connections(env: Any, site: Site, rec: Recorder) -> None:
    u = make_user(env, site.url, concurrency=2)
    try:
        started = time.perf_counter()
        results = await asyncio.gather(*(u.client.get("/slow?s=0.2") for _ in range(4)))
        took = time.perf_counter() - started
    finally:
        await u.teardown()
    assert all(r.ok for r in results) and len(rec.events) == 4
    assert len(site.peers) == 2  # two connections, each used twice
    assert 0.4 <= took < 1.5


async def test_a_request_cancelled_while_waiting_for_a_connection_frees_its_turn(
    env: Any, site: Site, rec: Recorder
) -> None:
    u = make_user(env, site.url, concurrency=1)
    try:
        first = asyncio.ensure_future(u.client.get("/slow?s=0.2"))
        await asyncio.sleep(0.05)
        queued = asyncio.ensure_future(u.client.get("/ok"))
        later = asyncio.ensure_future(u.client.get("/ok"))
        await asyncio.sleep(0.01)
        queued.cancel()
        assert (await first).ok and (await later).ok
        assert queued.cancelled() and len(rec.events) == 2 and len(site.peers) == 1
    finally:
        await u.teardown()


# --- bodies --------------------------------------------------------------------------------------------


async def test_chunked_gzip_and_deflate_bodies_are_decoded(user: FastHttpUser, rec: Recorder) -> None:
    assert (await user.client.get("/chunked")).text == "part0;part1;part2;part3;part4;"
    resp = await user.client.get("/gzip")
    assert resp.content == b"hello gzip " * 100
    assert rec.last["response_length"] == 1100  # the decoded length
    assert (await user.client.get("/deflate")).content == b"hello deflate"
    bad = await user.client.get("/bad-gzip")
    assert not bad.ok and "could not decode the gzip response body" in str(bad.error)
    assert (await user.client.get("/ok")).ok


async def test_response_time_runs_to_the_last_byte(user: FastHttpUser, rec: Recorder) -> None:
    resp = await user.client.get("/slow-body")
    assert resp.content == b"12345678"
    assert rec.last["response_time"] >= 190


# --- redirects and cookies ---------------------------------------------------------------------------


async def test_redirects_are_followed_and_recorded_once_under_the_first_name(
    user: FastHttpUser, rec: Recorder, site: Site
) -> None:
    resp = await user.client.get("/redirect/3")
    assert resp.status_code == 200 and resp.text == "ok" and resp.url == f"{site.url}/ok"
    assert len(rec.events) == 1 and rec.last["name"] == "/redirect/3" and rec.last["url"] == resp.url
    assert site.hits == 4 and len(site.peers) == 1

    resp = await user.client.get("/redirect/2", allow_redirects=False)
    assert resp.status_code == 302 and resp.ok and resp.headers["Location"] == "/redirect/1"

    resp = await user.client.post("/see-other", {"x": "1"})
    assert resp.json()["method"] == "GET" and resp.json()["body"] == ""
    assert rec.last["request_type"] == "POST"
    resp = await user.client.post("/keep-method", b"payload")
    assert resp.json()["method"] == "POST" and resp.json()["body"] == "payload"

    looping = await user.client.get("/loop")
    assert isinstance(looping.error, TooManyRedirects) and rec.last["exception"] is looping.error


async def test_cookies_from_an_ip_host_are_kept_and_sent_back(user: FastHttpUser, site: Site) -> None:
    assert "127.0.0.1" in site.url
    resp = await user.client.get("/login")  # sets cookies on the redirect, then follows it
    assert resp.text == "s3cret"
    assert user.client.cookies.get("session") == "s3cret"
    assert (await user.client.get("/whoami")).text == "s3cret"
    assert site.seen[-1].headers["Cookie"] == "session=s3cret"  # the /api cookie stays on /api
    await user.client.get("/api/whoami")
    assert site.seen[-1].cookies == {"scoped": "only-api", "session": "s3cret"}
    await user.client.get("/logout")
    assert (await user.client.get("/whoami")).text == "anonymous"


async def test_each_user_has_its_own_cookie_jar(env: Any, site: Site) -> None:
    a, b = make_user(env, site.url), make_user(env, site.url)
    try:
        await a.client.get("/login")
        assert (await a.client.get("/whoami")).text == "s3cret"
        assert (await b.client.get("/whoami")).text == "anonymous"
    finally:
        await a.teardown()
        await b.teardown()


# --- timeouts and transport failures ---------------------------------------------------------------


async def test_network_timeout_fails_the_request_and_the_user_goes_on(
    env: Any, site: Site, rec: Recorder
) -> None:
    u = make_user(env, site.url, network_timeout=0.15)
    try:
        started = time.perf_counter()
        resp = await u.client.get("/slow?s=1")
        assert time.perf_counter() - started < 0.6
        assert resp.status_code == 0 and isinstance(resp.error, TimeoutError)
        assert str(resp.error) == "no complete response within 0.15s"
        assert rec.last["exception"] is resp.error and rec.last["response_length"] == 0
        assert (await u.client.get("/ok")).ok
        resp = await u.client.get("/slow?s=0.3", timeout=1.0)  # per-request timeout wins
        assert resp.ok
        resp = await u.client.get("/slow?s=1", timeout=0.05)
        assert isinstance(resp.error, TimeoutError)
    finally:
        await u.teardown()


async def test_refused_connection_is_a_clear_failure(env: Any, rec: Recorder) -> None:
    server = await raw_server(read_head)  # reserve a port, then free it
    url = server.url
    server.close()
    await server.wait_closed()
    u = make_user(env, url)
    try:
        resp = await u.client.get("/")
        assert resp.status_code == 0 and isinstance(resp.error, ConnectionRefusedError)
        # the short form Locust's error table shows; the URL is on the event
        assert repr(resp.error) == "ConnectionRefusedError(111, 'Connection refused')"
        assert rec.last["url"] == f"{url}/" and rec.last["name"] == "/"
    finally:
        await u.teardown()


async def test_invalid_urls_are_failures_not_crashes(user: FastHttpUser, rec: Recorder) -> None:
    resp = await user.client.get("ftp://example.invalid/file")
    assert isinstance(resp.error, ValueError) and "unsupported URL scheme" in str(resp.error)
    assert rec.last["exception"] is resp.error


# --- the user -------------------------------------------------------------------------------------------


async def test_a_user_without_host_stops_the_test(env: Any) -> None:
    with pytest.raises(StopTest, match="has no host"):
        make_user(env, "")


async def test_cancelling_a_user_mid_request_leaks_nothing(env: Any, site: Site) -> None:
    u = make_user(env, site.url)
    request = asyncio.ensure_future(u.client.get("/slow?s=5"))
    await asyncio.sleep(0.1)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    assert u.client._pool.open_count == 0
    assert (await u.client.get("/ok")).ok  # the session still works
    await u.teardown()
    assert u.client._pool.open_count == 0


async def test_server_count_equals_recorded_count_through_the_user_loop(
    env: Any, site: Site, rec: Recorder
) -> None:
    class Shopper(FastHttpUser):
        host = site.url

        @task(3)
        async def browse(self) -> None:
            await self.client.get("/ok")

        @task
        async def missing(self) -> None:
            await self.client.get("/status/404", name="missing")

    users = [Shopper(env) for _ in range(5)]
    loop = asyncio.get_running_loop()
    tasks = [u.start(loop.create_task) for u in users]
    await asyncio.sleep(0.4)
    for u in users:
        u.stop()  # graceful: a user mid-request finishes it (a waiting one is cancelled)
    await asyncio.gather(*tasks, return_exceptions=True)
    assert len(rec.events) == site.hits > 50
    assert len(rec.failures) == sum(1 for r in site.seen if r.path == "/status/404") > 0
    assert all(isinstance(u.client, FastHttpSession) and u.client._pool.open_count == 0 for u in users)


async def test_accounting_through_the_local_runner(site: Site) -> None:
    from horde.env import Environment

    class Api(FastHttpUser):
        host = site.url

        @task
        async def index(self) -> None:
            await self.client.get("/ok")

    env = Environment(user_classes=[Api], stop_timeout=5)  # a graceful stop: nothing left in flight
    runner = env.create_local_runner()
    runner.start(10, 1000)
    await asyncio.sleep(0.4)
    await runner.quit()
    assert env.stats.total.num_requests == site.hits > 100
    assert env.stats.total.num_failures == 0 and env.events.unhandled_errors == 0


async def test_the_runner_killing_users_mid_request_is_clean(site: Site) -> None:
    from horde.env import Environment

    users: list[FastHttpUser] = []

    class Waiter(FastHttpUser):
        host = site.url

        def __init__(self, environment: Any) -> None:
            super().__init__(environment)
            users.append(self)

        @task
        async def index(self) -> None:
            await self.client.get("/slow?s=5")

    env = Environment(user_classes=[Waiter])
    runner = env.create_local_runner()
    runner.start(5, 1000)
    while site.hits < 5:
        await asyncio.sleep(0.01)
    started = time.perf_counter()
    await runner.quit()  # stop_timeout 0: every user is cancelled in the middle of its request
    assert time.perf_counter() - started < 1.0
    assert env.stats.total.num_requests == 0 and env.events.unhandled_errors == 0
    assert len(users) == 5 and all(u.client._pool.open_count == 0 for u in users)
