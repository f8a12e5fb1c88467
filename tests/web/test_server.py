"""The real server (port, TLS-less bind, base path), login and cross-site protection, and the flags."""

from __future__ import annotations

import argparse
import base64
import socket
from typing import Any

import aiohttp
import pytest

from horde.web.app import WebSettings
from horde.web.options import Login, add_web_arguments, check_web_options, parse_login
from horde.web.server import WebServer, WebServerError
from tests.conftest import CountingServer
from tests.web.conftest import WebCtx, make_run, until

ROUTES = [
    ("GET", "/"),
    ("POST", "/swarm"),
    ("GET", "/stop"),
    ("GET", "/stats/reset"),
    ("GET", "/stats/requests"),
    ("GET", "/stats/requests/csv"),
    ("GET", "/stats/requests_full_history/csv"),
    ("GET", "/stats/failures/csv"),
    ("GET", "/stats/report"),
    ("GET", "/exceptions"),
    ("GET", "/exceptions/csv"),
    ("GET", "/tasks"),
    ("GET", "/logs"),
    ("GET", "/worker-count"),
    ("GET", "/api/status"),
    ("GET", "/api/history"),
    ("GET", "/api/history/full"),
    ("GET", "/api/events"),
    ("GET", "/assets/app.js"),
    ("GET", "/assets/plotly.min.js"),
    ("GET", "/nothing"),
]


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def test_login_protects_every_route_and_an_anonymous_request_changes_nothing(web_factory: Any) -> None:
    async with web_factory(WebSettings(port=0, login=Login("admin", "s3cret"))) as web:
        for method, path in ROUTES:
            for headers in (
                {},
                basic("admin", "wrong"),
                basic("other", "s3cret"),
                {"Authorization": "Basic !!"},
            ):
                r = await web.client.request(
                    method, path, headers=headers, data={"user_count": "1", "spawn_rate": "1"}
                )
                assert r.status == 401, (method, path, headers)
                assert r.headers["WWW-Authenticate"].startswith("Basic ")
        assert web.run.status().state == "ready"
        assert web.target.total == 0
        r = await web.client.get("/stats/requests", headers=basic("admin", "s3cret"))
        assert r.status == 200
        r = await web.client.post(
            "/swarm", data={"user_count": "1", "spawn_rate": "5"}, headers=basic("admin", "s3cret")
        )
        assert r.status == 200
        await until(lambda: web.run.status().user_count == 1, what="1 user")
        r = await web.client.get("/stop")
        assert r.status == 401
        assert web.run.status().state == "running"  # the anonymous stop did nothing
        await web.client.get("/stop", headers=basic("admin", "s3cret"))


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/page"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
async def test_cross_site_requests_cannot_change_state(web: WebCtx, headers: dict[str, str]) -> None:
    r = await web.client.post("/swarm", data={"user_count": "1", "spawn_rate": "5"}, headers=headers)
    assert r.status == 403
    assert (await r.json())["success"] is False
    assert web.run.status().state == "ready"
    for path in ("/stop", "/stats/reset"):
        assert (await web.client.get(path, headers=headers)).status == 403
    # reading is allowed, and carries no wildcard CORS header
    r = await web.client.get("/stats/requests", headers=headers)
    assert r.status == 200
    assert "Access-Control-Allow-Origin" not in r.headers


async def test_same_origin_and_scripts_may_change_state(web: WebCtx) -> None:
    origin = f"http://{web.client.host}:{web.client.port}"
    r = await web.client.post(
        "/swarm",
        data={"user_count": "1", "spawn_rate": "5"},
        headers={"Origin": origin, "Sec-Fetch-Site": "same-origin", "Referer": origin + "/?tab=stats"},
    )
    assert r.status == 200
    r = await web.client.get("/stop")  # curl sends no Origin, no Sec-Fetch-*: allowed
    assert r.status == 200


async def test_real_server_binds_serves_and_releases_the_port(server: CountingServer) -> None:
    run = make_run(server)
    await run.open()
    web = WebServer(run, WebSettings(host="127.0.0.1", port=0))
    try:
        url = await web.start()
        assert url == f"http://127.0.0.1:{web.port}/"
        assert "this machine only" in web.startup_line() and url in web.startup_line()
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "stats/requests") as r:
                assert r.status == 200
            async with session.get(url + "api/events") as r:  # a push stream open while the server stops
                await r.content.readline()
                await web.stop()
                assert await r.content.read() is not None
    finally:
        await web.stop()
        await run.close()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", web.port or 0))  # released
        s.listen()


async def test_a_port_in_use_is_one_clear_error(server: CountingServer) -> None:
    run = make_run(server)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        web = WebServer(run, WebSettings(host="127.0.0.1", port=port))
        with pytest.raises(WebServerError) as err:
            await web.start()
    message = str(err.value)
    assert message == (
        f"cannot start the web UI: 127.0.0.1:{port} is already in use (choose another port with -P/--web-port)"
    )
    await web.stop()  # harmless after a failed start
    await run.close()


async def test_base_path_prefixes_every_route(web_factory: Any) -> None:
    async with web_factory(WebSettings(port=0, base_path="/horde")) as web:
        r = await web.client.get("/horde", allow_redirects=False)
        assert r.status == 308 and r.headers["Location"] == "/horde/"
        assert (await web.client.get("/horde/")).status == 200
        assert (await web.client.get("/horde/stats/requests")).status == 200
        assert (await web.client.get("/horde/assets/app.js")).status == 200
        assert (await web.client.get("/stats/requests")).status == 404


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_web_arguments(parser)
    return parser.parse_args(argv)


def test_flags_defaults_and_values() -> None:
    o = parse([])
    assert (o.web_host, o.web_port, o.web_base_path, o.autostart, o.autoquit) == (
        "127.0.0.1",
        8089,
        "",
        None,
        -1,
    )
    o = parse(
        ["--web-host", "0.0.0.0", "-P", "9000", "--web-base-path", "/x/", "--autostart", "--autoquit", "5"]
    )
    assert (o.web_host, o.web_port, o.web_base_path, o.autostart, o.autoquit) == (
        "0.0.0.0",
        9000,
        "/x",
        True,
        5,
    )
    s = WebSettings.from_options(
        argparse.Namespace(**vars(o), users=3, spawn_rate=2.0, run_time=60, host="http://h")
    )
    assert (s.host, s.port, s.base_path, s.users, s.spawn_rate, s.run_time, s.host_prefill) == (
        "0.0.0.0",
        9000,
        "/x",
        3,
        2.0,
        60,
        "http://h",
    )


@pytest.mark.parametrize(
    "argv", [["-P", "http"], ["-P", "70000"], ["--web-base-path", "horde"], ["--autoquit", "x"]]
)
def test_bad_flags_are_argparse_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(argv)
    assert exc.value.code == 2


def test_checks_on_flag_combinations(tmp_path: Any) -> None:
    assert check_web_options(parse([])) is None
    assert (
        check_web_options(parse(["--autoquit", "3"]))
        == "--autoquit is only meaningful together with --autostart"
    )
    assert (
        check_web_options(parse(["--tls-cert", "c.pem"])) == "--tls-cert and --tls-key must be given together"
    )
    assert check_web_options(parse(["--tls-cert", "/no/c.pem", "--tls-key", "/no/k.pem"])) == (
        "--tls-cert: /no/c.pem does not exist"
    )
    assert check_web_options(parse(["--web-login", "nopassword"])) == (
        "--web-login must be USER:PASSWORD with both parts non-empty"
    )


def test_login_from_a_value_or_a_file(tmp_path: Any) -> None:
    assert parse_login("") is None
    assert parse_login("me:pa:ss") == Login("me", "pa:ss")
    secret = tmp_path / "login"
    secret.write_text("ops:hunter2\n")
    assert parse_login(f"@{secret}") == Login("ops", "hunter2")
    with pytest.raises(ValueError, match="cannot read"):
        parse_login(f"@{tmp_path / 'missing'}")
    secret.write_text("broken\n")
    with pytest.raises(ValueError, match=r"USER:PASSWORD .*\(in "):
        parse_login(f"@{secret}")
