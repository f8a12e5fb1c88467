"""Shared fixtures: a real aiohttp server on 127.0.0.1 that counts what it receives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web


@dataclass
class CountingServer:
    url: str
    hits: dict[str, int] = field(default_factory=dict)
    connections: set[int] = field(default_factory=set)

    @property
    def total(self) -> int:
        return sum(self.hits.values())


def make_counting_app(server: CountingServer) -> web.Application:
    @web.middleware
    async def count(request: web.Request, handler):  # type: ignore[no-untyped-def]
        server.hits[request.path] = server.hits.get(request.path, 0) + 1
        transport = request.transport
        if transport is not None:
            server.connections.add(id(transport))
        return await handler(request)

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="nope")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("s", "0.05")))
        return web.Response(text="slow")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/ok")

    async def set_cookie(request: web.Request) -> web.Response:
        resp = web.Response(text="cookie set")
        resp.set_cookie("session", "abc")
        return resp

    async def needs_cookie(request: web.Request) -> web.Response:
        if request.cookies.get("session") != "abc":
            return web.Response(status=401, text="no session")
        return web.Response(text="welcome")

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {
                "method": request.method,
                "query": dict(request.query),
                "body": body.decode(),
                "content_type": request.content_type,
                "auth": request.headers.get("Authorization"),
                "x": request.headers.get("X-Test"),
            }
        )

    app = web.Application(middlewares=[count])
    app.router.add_route("*", "/ok", ok)
    app.router.add_get("/fail", fail)
    app.router.add_get("/missing", missing)
    app.router.add_get("/slow", slow)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/set-cookie", set_cookie)
    app.router.add_get("/needs-cookie", needs_cookie)
    app.router.add_route("*", "/echo", echo)
    return app


@pytest.fixture
async def server() -> AsyncIterator[CountingServer]:
    srv = CountingServer(url="")
    runner = web.AppRunner(make_counting_app(srv), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    srv.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield srv
    finally:
        await runner.cleanup()


@pytest.fixture
def free_port_url() -> str:
    """A loopback URL where nothing listens (connections are refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def _fresh_process_events() -> Iterator[None]:
    """An Environment built without ``events=`` listens on the process-wide ``horde.events`` (as in
    Locust); give every test a clean set so one test's runner never hears another test's requests."""
    from horde.event import events

    yield
    for name in events.HOOKS:
        getattr(events, name).handlers.clear()
    events.unhandled_errors = 0
