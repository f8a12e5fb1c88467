"""The embedded demo system under test: a small aiohttp shop with a fast, a slow and a flaky endpoint.

Run alone with ``python -m horde.demo.target --port 8089``; ``horde demo`` starts it in a child process
on a free loopback port so the load generator and the target do not share one event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys

from aiohttp import web

ITEMS = [{"id": i, "name": f"item-{i}", "price": round(1 + i * 0.37, 2)} for i in range(100)]


def make_app(failure_rate: float = 0.05, slow_ms: tuple[int, int] = (20, 120)) -> web.Application:
    """The demo target; ``/stats`` tells how many requests it served (tests compare it with horde's count)."""
    served = {"count": 0}

    @web.middleware
    async def count(request: web.Request, handler):
        if request.path != "/stats":
            served["count"] += 1
        return await handler(request)

    async def index(request: web.Request) -> web.Response:
        return web.Response(text="horde demo shop\n")

    async def items(request: web.Request) -> web.Response:
        return web.json_response(ITEMS[:20])

    async def item(request: web.Request) -> web.Response:
        item_id = int(request.match_info["id"])
        if not 0 <= item_id < len(ITEMS):
            raise web.HTTPNotFound(text="no such item")
        return web.json_response(ITEMS[item_id])

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(random.uniform(*slow_ms) / 1000)
        return web.Response(text="done slowly\n")

    async def flaky(request: web.Request) -> web.Response:
        if random.random() < failure_rate:
            raise web.HTTPServiceUnavailable(text="try again later")
        return web.Response(text="lucky\n")

    async def login(request: web.Request) -> web.Response:
        resp = web.json_response({"ok": True})
        resp.set_cookie("session", f"s{random.randrange(1 << 30)}")
        return resp

    async def cart(request: web.Request) -> web.Response:
        if "session" not in request.cookies:
            raise web.HTTPUnauthorized(text="log in first")
        body = await request.json()
        return web.json_response({"added": body.get("id")})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"served": served["count"]})

    app = web.Application(middlewares=[count])
    app.router.add_get("/", index)
    app.router.add_get("/items", items)
    app.router.add_get("/items/{id}", item)
    app.router.add_get("/slow", slow)
    app.router.add_get("/flaky", flaky)
    app.router.add_post("/login", login)
    app.router.add_post("/cart", cart)
    app.router.add_get("/stats", stats)
    return app


async def serve(port: int, host: str = "127.0.0.1") -> None:
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"listening on http://{host}:{bound}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def start_target(port: int = 0) -> tuple[subprocess.Popen[str], str]:
    """Start the target in a child process (so it never shares the load generator's event loop);
    returns the process and its base URL once it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "horde.demo.target", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"the demo target did not start (it said {line!r})")
    return proc, line.removeprefix("listening on ")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="horde's demo system under test (loopback only)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.run(serve(args.port, args.host))
    except ImportError:
        asyncio.run(serve(args.port, args.host))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
