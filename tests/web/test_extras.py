"""Load shapes through /swarm, HTTPS, the generator-health badge, workers' logs."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from horde.runners.status import WorkerStatus
from horde.shape import LoadTestShape
from horde.web.app import WebSettings, WebUI
from horde.web.server import WebServer
from tests.conftest import CountingServer
from tests.web.conftest import Browse, WebCtx, make_run, until


class TwoUsers(LoadTestShape):
    def tick(self):  # type: ignore[no-untyped-def]
        return (2, 10) if self.get_run_time() < 60 else None


async def test_a_shape_decides_and_the_form_says_so(server: CountingServer) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from horde.env import Environment
    from horde.event import Events
    from horde.session import TestRun

    env = Environment(user_classes=[Browse], shape_class=TwoUsers(), host=server.url, events=Events())
    env.create_local_runner()
    run = TestRun(env)
    await run.open()
    ui = WebUI(run, WebSettings(port=0))
    client: TestClient[Any, Any] = TestClient(TestServer(ui.app))
    await client.start_server()
    try:
        args = ui.template_args()
        assert args["hide_common_options"] is True and args["shape_class"] == "TwoUsers"
        r = await client.post("/swarm", data={"user_count": "0", "spawn_rate": "0"})  # what Locust's UI sends
        body = await r.json()
        assert body == {
            "success": True,
            "message": "Swarming started using shape class 'TwoUsers'",
            "host": server.url,
        }
        await until(lambda: run.status().user_count == 2, what="the shape's 2 users")
        await client.get("/stop")
    finally:
        await client.close()
        await run.close()


def test_health_badge_turns_red_when_a_generator_is_saturated(web: WebCtx) -> None:
    class Status:
        def __init__(self, workers: list[WorkerStatus]) -> None:
            self.workers = workers

    ui = web.server.ui
    calm = ui.health(Status([WorkerStatus("w1", cpu_percent=40.0, loop_lag=0.01)]))
    assert calm["saturated"] is False and calm["workers"] == 1
    hot_cpu = ui.health(Status([WorkerStatus("w1", cpu_percent=40.0), WorkerStatus("w2", cpu_percent=97.0)]))
    assert hot_cpu["saturated"] is True and hot_cpu["cpu_percent"] == 97.0
    laggy = ui.health(Status([WorkerStatus("w1", loop_lag=0.25)]))
    assert laggy["saturated"] is True and laggy["loop_lag"] == 0.25
    gone = ui.health(Status([WorkerStatus("w1", state="missing", cpu_percent=99.0)]))
    assert gone["saturated"] is False  # a missing worker's last reading is not current


async def test_workers_forwarded_logs_are_served(web: WebCtx) -> None:
    web.env.worker_logs["w1"] = [f"line {i}" for i in range(800)]
    body = await (await web.client.get("/logs")).json()
    assert body["workers"]["w1"] == [f"line {i}" for i in range(300, 800)]


OPENSSL_SELF_SIGNED = [
    "openssl",
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=127.0.0.1",
]


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[str, str]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    try:
        subprocess.run(
            [*OPENSSL_SELF_SIGNED, "-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"openssl cannot make a test certificate: {e}")
    return str(cert), str(key)


async def test_tls_serves_https(server: CountingServer, certificate: tuple[str, str]) -> None:
    cert, key = certificate
    run = make_run(server)
    await run.open()
    web = WebServer(run, WebSettings(port=0, tls_cert=cert, tls_key=key))
    try:
        url = await web.start()
        assert url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=cert)
        context.check_hostname = False
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "stats/requests", ssl=context) as r:
                assert r.status == 200
    finally:
        await web.stop()
        await run.close()


async def test_bad_tls_files_are_one_clear_error(server: CountingServer, tmp_path: Path) -> None:
    from horde.web.server import WebServerError

    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate")
    run = make_run(server)
    web = WebServer(run, WebSettings(port=0, tls_cert=str(bogus), tls_key=str(bogus)))
    with pytest.raises(WebServerError, match="cannot use --tls-cert/--tls-key"):
        await web.start()
    await run.close()


def test_task_ratios_follow_weights_and_nest_task_sets() -> None:
    from horde import TaskSet, User, task
    from horde.web import payloads

    class Checkout(TaskSet):
        @task(3)
        async def pay(self) -> None: ...

        @task(1)
        async def cancel(self) -> None: ...

    class Shopper(User):
        tasks = {Checkout: 1}

        @task(3)
        async def browse(self) -> None: ...

    class Admin(User):
        @task
        async def audit(self) -> None: ...

    body = payloads.tasks([Shopper, Admin], {"Shopper": 3, "Admin": 1})
    shopper = body["per_class"]["Shopper"]
    assert shopper["ratio"] == 0.75
    assert shopper["tasks"]["browse"]["ratio"] == 0.75
    assert shopper["tasks"]["Checkout"]["ratio"] == 0.25
    assert shopper["tasks"]["Checkout"]["tasks"] == {"pay": {"ratio": 0.1875}, "cancel": {"ratio": 0.0625}}
    assert body["total"]["Shopper"]["tasks"]["browse"]["ratio"] == 0.75 * 0.75
    assert body["total"]["Admin"] == {"ratio": 0.25, "tasks": {"audit": {"ratio": 0.25}}}


def test_markers_carry_the_sessions_kinds_and_texts() -> None:
    from horde.web import charts

    class Run:
        markers = [
            {"time": 1.0, "kind": "start", "text": "2 users at 1/s"},
            {"time": 5.0, "kind": "edit", "text": "4 users at 2/s"},
            {"time": 9.0, "kind": "stop", "text": ""},
        ]

    assert charts.markers(Run()) == [
        {"t": 1.0, "kind": "start", "label": "Start: 2 users at 1/s"},
        {"t": 5.0, "kind": "edit", "label": "Edit: 4 users at 2/s"},
        {"t": 9.0, "kind": "stop", "label": "Stop"},
    ]
