"""A local aiohttp target for the client-parity tests, and both user classes as one parameter."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from horde import FastHttpUser, HttpUser, User
from horde.env import Environment


@dataclass
class Target:
    url: str


def make_app() -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        data: dict[str, Any] = {
            "method": request.method,
            "path": request.path_qs,
            "headers": {k: v for k, v in request.headers.items()},
            "cookies": dict(request.cookies),
            "body": body.decode("latin-1"),
            "content_type": request.headers.get("Content-Type", ""),
        }
        if request.content_type.startswith("multipart/"):
            data["form"] = _parse_multipart(request, body)
        return web.json_response(data)

    async def set_cookie(request: web.Request) -> web.Response:
        resp = web.Response(text="set")
        resp.set_cookie("session", "abc")
        resp.set_cookie("theme", "dark")
        return resp

    async def hop(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n == 0:
            return web.Response(text="landed")
        raise web.HTTPFound(f"/hop/{n - 1}")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("s", "1")))
        return web.Response(text="slow")

    async def not_json(request: web.Request) -> web.Response:
        return web.Response(text="<html>nope</html>")

    async def big(request: web.Request) -> web.StreamResponse:
        """``n`` bytes in 64 KiB pieces, chunked (no Content-Length) unless ``length=1``."""
        n = int(request.query["n"])
        resp = web.StreamResponse()
        if request.query.get("length") == "1":
            resp.content_length = n
        await resp.prepare(request)
        piece = b"x" * 65536
        sent = 0
        try:
            while sent < n:
                part = piece[: min(65536, n - sent)]
                await resp.write(part)
                sent += len(part)
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            pass
        return resp

    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        piece = b"y" * 65536
        try:
            while True:
                await resp.write(piece)
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            pass
        return resp

    async def gzipped(request: web.Request) -> web.Response:
        resp = web.Response(body=b"z" * 200_000)
        resp.enable_compression(web.ContentCoding.gzip)
        return resp

    async def to_big(request: web.Request) -> web.Response:
        raise web.HTTPFound("/big?n=100000")

    app = web.Application()
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/to-big", to_big)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/set-cookie", set_cookie)
    app.router.add_get("/hop/{n}", hop)
    app.router.add_route("*", "/slow", slow)
    app.router.add_get("/not-json", not_json)
    app.router.add_get("/big", big)
    app.router.add_get("/endless", endless)
    return app


def _parse_multipart(request: web.Request, body: bytes) -> dict[str, Any]:
    """The parts of a multipart body: name -> {filename, content_type, data}."""
    ctype = request.headers["Content-Type"]
    boundary = ctype.split("boundary=", 1)[1].encode()
    out: dict[str, Any] = {}
    for raw in body.split(b"--" + boundary)[1:]:
        if raw.startswith(b"--"):
            break
        head, _, content = raw.strip(b"\r\n").partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n") if ": " in line)
        disposition = headers.get("Content-Disposition", "")
        params = dict(p.strip().split("=", 1) for p in disposition.split(";")[1:] if "=" in p)
        name = params["name"].strip('"')
        out[name] = {
            "filename": params.get("filename", "").strip('"') or None,
            "content_type": headers.get("Content-Type"),
            "data": content.decode("latin-1"),
        }
    return out


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    runner = web.AppRunner(make_app(), access_log=None, shutdown_timeout=0.5)  # hung handlers end fast
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield Target(f"http://127.0.0.1:{runner.addresses[0][1]}")
    finally:
        await runner.cleanup()


@pytest.fixture(params=["HttpUser", "FastHttpUser"])
def user_base(request: pytest.FixtureRequest) -> type[User]:
    return HttpUser if request.param == "HttpUser" else FastHttpUser


class Recorder:
    def __init__(self, env: Environment) -> None:
        self.events: list[dict[str, Any]] = []
        env.events.request.add_listener(lambda **kw: self.events.append(kw))

    @property
    def last(self) -> dict[str, Any]:
        return self.events[-1]


@dataclass
class Made:
    env: Environment
    user: Any
    rec: Recorder


@pytest.fixture
async def made(user_base: type[User], target: Target) -> AsyncIterator[Made]:
    cls = type("U", (user_base,), {"host": target.url, "tasks": [lambda self: None]})
    env = Environment(user_classes=[cls])
    env.create_local_runner()
    rec = Recorder(env)
    user = cls(env)
    try:
        yield Made(env, user, rec)
    finally:
        await user.teardown()


def body_json(resp: Any) -> Any:
    return json.loads(resp.content)


@pytest.fixture
async def tls_target(tmp_path: Any) -> AsyncIterator[str]:
    """An https target with a self-signed certificate (nobody's CA trusts it)."""
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a self-signed certificate")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(  # noqa: ASYNC221 (a one-off certificate before the server starts)
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key_path),
            "-out",
            str(cert_path),
        ],
        check=True,
        capture_output=True,
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    runner = web.AppRunner(make_app(), access_log=None, shutdown_timeout=0.5)  # hung handlers end fast
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
