"""Fixtures: a real TestRun (real LocalRunner, real users) against the counting server, behind the web UI.

Users wait 50 ms between requests, so a test with a few users makes a few dozen requests a second on
loopback: enough to fill tables and charts, light on the shared machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from horde import HttpUser, constant, task
from horde.env import Environment
from horde.event import Events
from horde.session import TestRun
from horde.web.app import WebSettings
from horde.web.server import WebServer
from tests.conftest import CountingServer


class Browse(HttpUser):
    wait_time = constant(0.05)

    @task(3)
    async def ok(self) -> None:
        await self.client.get("/ok")

    @task(1)
    async def fail(self) -> None:
        await self.client.get("/fail")


class Crash(HttpUser):
    """Raises in its task: fills the exceptions table."""

    wait_time = constant(0.2)

    @task
    async def boom(self) -> None:
        raise RuntimeError("task crashed on purpose")


async def until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` (sync or async) every 50 ms until it is truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class WebCtx:
    run: TestRun
    server: WebServer
    client: TestClient[Any, Any]
    target: CountingServer

    @property
    def env(self) -> Environment:
        return self.run.env


def make_run(target: CountingServer, classes: list[type[Any]] | None = None, **env_kw: Any) -> TestRun:
    env = Environment(user_classes=classes or [Browse], host=target.url, events=Events(), **env_kw)
    env.create_local_runner()
    return TestRun(env, locustfile="locustfile.py")


async def open_ctx(
    target: CountingServer, settings: WebSettings | None = None, classes: list[type[Any]] | None = None
) -> WebCtx:
    run = make_run(target, classes)
    await run.open()
    server = WebServer(run, settings or WebSettings(port=0))
    client: TestClient[Any, Any] = TestClient(TestServer(server.app))
    await client.start_server()
    server.logs.attach()
    server.ui.start_ticker()
    return WebCtx(run, server, client, target)


async def close_ctx(ctx: WebCtx) -> None:
    ctx.server.logs.detach()
    await ctx.server.ui.stop_ticker()
    await ctx.client.close()
    await ctx.run.close()


@pytest.fixture
async def web(server: CountingServer) -> AsyncIterator[WebCtx]:
    ctx = await open_ctx(server)
    try:
        yield ctx
    finally:
        await close_ctx(ctx)


@pytest.fixture
def web_factory(server: CountingServer) -> Callable[..., Any]:
    """``async with web_factory(settings=...) as ctx`` for tests that need their own settings."""
    import contextlib

    @contextlib.asynccontextmanager
    async def factory(settings: WebSettings | None = None, classes: list[type[Any]] | None = None):  # type: ignore[no-untyped-def]
        ctx = await open_ctx(server, settings, classes)
        try:
            yield ctx
        finally:
            await close_ctx(ctx)

    return factory
