"""Every route and JSON shape, with aiohttp's test client, over a real TestRun and real users."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from horde.web import payloads
from horde.web.app import WebSettings
from tests.web.conftest import Crash, WebCtx, until

FORM = {"user_count": "2", "spawn_rate": "20"}


async def start(web: WebCtx, form: dict[str, str] | None = None) -> dict[str, Any]:
    r = await web.client.post("/swarm", data=form or FORM)
    body = await r.json()
    assert r.status == 200, body
    await until(lambda: web.env.stats.total.num_requests >= 10, what="requests to arrive")

    async def both_entries_served() -> bool:
        # while a test runs /stats/requests answers from the last 1-s tick, which may predate the first failure
        stats = await (await web.client.get("/stats/requests")).json()
        return len(stats["stats"]) == 3 and stats["stats"][-1]["num_failures"] > 0

    await until(both_entries_served, what="both entries in /stats/requests")
    return dict(body)


async def get_json(web: WebCtx, path: str) -> Any:
    r = await web.client.get(path)
    assert r.status == 200, await r.text()
    assert r.content_type == "application/json"
    return await r.json()


async def test_index_serves_the_page_with_template_args_and_the_form_prefill(web_factory: Any) -> None:
    settings = WebSettings(port=0, users=7, spawn_rate=3.5, run_time=90, locustfile="shop.py")
    async with web_factory(settings) as web:
        r = await web.client.get("/")
        assert r.status == 200
        assert r.content_type == "text/html"
        html = await r.text()
        match = re.search(r"window\.templateArgs = (\{.*?\});</script>", html)
        assert match, html[:500]
        args = json.loads(match.group(1))
        assert args["state"] == "ready"
        assert (args["num_users"], args["spawn_rate"], args["run_time"]) == (7, 3.5, 90)
        assert args["host"] == web.target.url
        assert args["locustfile"] == "shop.py"
        assert args["available_user_classes"] == ["Browse"]
        assert args["percentiles_to_statistics"] == [0.95, 0.99]
        assert "./assets/plotly.min.js" in html and "cdn" not in html.lower()


async def test_assets_come_from_the_package_and_plotly_from_its_wheel(web: WebCtx) -> None:
    for name, kind in (
        ("app.js", "text/javascript"),
        ("style.css", "text/css"),
        ("plotly.min.js", "text/javascript"),
    ):
        r = await web.client.get(f"/assets/{name}")
        assert r.status == 200, name
        assert r.headers["Content-Type"].startswith(kind)
    r = await web.client.get("/assets/plotly.min.js")
    assert len(await r.read()) > 1_000_000  # the real bundle, not a stub
    assert (await web.client.get("/assets/../app.py")).status == 404
    assert (await web.client.get("/assets/nothing.js")).status == 404


async def test_ready_state_has_only_the_zeroed_aggregated_row(web: WebCtx) -> None:
    body = await get_json(web, "/stats/requests")
    assert body["state"] == "ready"
    assert [(r["method"], r["name"], r["num_requests"]) for r in body["stats"]] == [("", "Aggregated", 0)]
    assert body["errors"] == []
    assert body["current_rps"] == 0 and body["fail_ratio"] == 0
    assert "workers" not in body and "worker_count" not in body  # a local run, as in Locust


async def test_swarm_starts_the_test_and_stats_fill(web: WebCtx) -> None:
    body = await start(web, {**FORM, "run_time": "1h"})
    assert body == {"success": True, "message": "Swarming started", "host": web.target.url, "run_time": 3600}
    await until(lambda: web.run.status().user_count == 2, what="2 users")
    stats = await get_json(web, "/stats/requests")
    assert stats["state"] in ("spawning", "running")
    assert stats["user_count"] == 2
    names = [(r["method"], r["name"]) for r in stats["stats"]]
    assert names == [("GET", "/fail"), ("GET", "/ok"), ("", "Aggregated")]
    total = stats["stats"][-1]
    assert total["num_requests"] == sum(r["num_requests"] for r in stats["stats"][:-1])
    assert total["num_failures"] > 0 and stats["fail_ratio"] > 0
    assert stats["errors"][0]["name"] == "/fail" and stats["errors"][0]["occurrences"] > 0
    assert web.run.status().run_time == 3600


async def test_swarm_while_running_edits_the_user_count(web: WebCtx) -> None:
    await start(web)
    r = await web.client.post("/swarm", data={"user_count": "4", "spawn_rate": "20"})
    assert (await r.json())["success"] is True
    await until(lambda: web.run.status().user_count == 4, what="4 users")
    history = await get_json(web, "/api/history")
    assert [m["kind"] for m in history["markers"]] == ["start", "edit"]


async def test_stop_answers_as_locust_and_stops(web: WebCtx) -> None:
    await start(web)
    body = await get_json(web, "/stop")
    assert body == {"message": "Test stopped", "success": True}
    await until(lambda: web.run.status().state == "stopped", what="stopped")
    assert (await get_json(web, "/stats/requests"))["state"] == "stopped"  # no stale cache after a stop
    assert await get_json(web, "/stop") == {"message": "Test stopped", "success": True}  # idempotent


async def test_reset_answers_ok_and_zeroes_the_stats(web: WebCtx) -> None:
    await start(web)
    await web.client.get("/stop")
    await until(lambda: web.run.status().state == "stopped", what="stopped")
    r = await web.client.get("/stats/reset")
    assert (r.status, r.content_type, await r.text()) == (200, "text/html", "ok")
    stats = await get_json(web, "/stats/requests")  # not a cached body from before the reset
    assert stats["stats"][-1]["num_requests"] == 0
    assert stats["errors"] == []


async def test_exceptions_and_their_csv(web_factory: Any) -> None:
    async with web_factory(classes=[Crash]) as web:
        await web.client.post("/swarm", data={"user_count": "1", "spawn_rate": "10"})
        await until(lambda: bool(web.run.runner.exceptions), what="an exception")
        body = await get_json(web, "/exceptions")
        assert list(body) == ["exceptions"]
        row = body["exceptions"][0]
        assert set(row) == {"count", "msg", "traceback", "nodes"}
        assert row["count"] >= 1 and "task crashed on purpose" in row["msg"]
        assert "RuntimeError" in row["traceback"] and row["nodes"] == "local"
        r = await web.client.get("/exceptions/csv")
        text = await r.text()
        assert text.startswith("Count,Message,Traceback,Nodes\r\n")
        assert "task crashed on purpose" in text
        status = await get_json(web, "/api/status")
        assert status["totals"]["exceptions"] == 1


async def test_tasks_gives_class_and_task_ratios(web: WebCtx) -> None:
    before = await get_json(web, "/tasks")
    assert before["per_class"]["Browse"]["ratio"] == 0.0  # nothing spawned yet, as in Locust
    await start(web)
    await until(lambda: web.run.status().user_count == 2, what="2 users")
    body = await get_json(web, "/tasks")
    assert body["per_class"] == {
        "Browse": {"ratio": 1.0, "tasks": {"ok": {"ratio": 0.75}, "fail": {"ratio": 0.25}}}
    }
    assert body["total"] == body["per_class"]


@pytest.mark.slow  # waits for the 1-s ticks / the ~10-s current window
async def test_logs_worker_count_status_and_history(web: WebCtx) -> None:
    import logging

    logging.getLogger("horde.test").warning("a line for the Logs tab")
    logs = await get_json(web, "/logs")
    assert set(logs) == {"master", "workers"}
    assert any("WARNING/horde.test: a line for the Logs tab" in line for line in logs["master"])
    assert await get_json(web, "/worker-count") == {"worker_count": 0}
    await start(web)
    status = await get_json(web, "/api/status")
    for key in (
        "state",
        "user_count",
        "target_user_count",
        "spawn_rate",
        "host",
        "workers",
        "version",
        "health",
    ):
        assert key in status, key
    assert status["workers"][0]["id"] == "local"
    assert set(status["health"]) >= {"cpu_percent", "loop_lag", "saturated"}
    await until(lambda: len(web.run.history) >= 2, what="two history points")
    history = await get_json(web, "/api/history")
    assert history["percentiles"] == list(payloads.CHART_PERCENTILES)
    point = history["points"][-1]
    assert set(point) == {"t", "users", "rps", "fps", "avg", "p"}
    assert set(point["p"]) == {str(p) for p in payloads.CHART_PERCENTILES}
    full = await get_json(web, "/api/history/full")
    assert full["total"]["time"] and "entries" in full


@pytest.mark.slow  # waits for the 1-s ticks / the ~10-s current window
async def test_the_push_channel_sends_the_history_then_a_tick_a_second(web: WebCtx) -> None:
    await start(web)
    await until(lambda: len(web.run.history) >= 1, what="a history point")
    async with web.client.get("/api/events") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        events: list[tuple[str, Any]] = []
        event = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 8
        while len([e for e in events if e[0] == "tick"]) < 3 and loop.time() < deadline:
            line = (await asyncio.wait_for(r.content.readline(), 5)).decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event or "message", json.loads(line[6:])))
    kinds = [k for k, _ in events]
    assert kinds[0] == "history" and kinds.count("tick") >= 3
    history = events[0][1]
    assert history["points"] and history["markers"][0]["kind"] == "start"
    tick = events[-1][1]
    assert set(tick) == {"history_id", "status", "stats", "points", "markers"}
    assert tick["history_id"] == history["history_id"]
    assert tick["stats"]["stats"][-1]["name"] == "Aggregated"
    assert tick["status"]["state"] == "running"


async def test_report_is_html_and_a_download_when_asked(web: WebCtx) -> None:
    await start(web)
    r = await web.client.get("/stats/report")
    assert r.status == 200 and r.content_type == "text/html"
    assert "<html" in (await r.text())[:300]
    r = await web.client.get("/stats/report?download=1")
    assert r.status == 200
    assert r.headers["Content-Disposition"].startswith("attachment;filename=")
    assert r.headers["Content-Disposition"].endswith('.html"')


async def test_unknown_paths_and_methods(web: WebCtx) -> None:
    assert (await web.client.get("/nothing")).status == 404
    assert (await web.client.get("/swarm")).status == 405
    assert (await web.client.post("/stats/requests")).status == 405


async def test_metrics_is_served_in_prometheus_format(web: WebCtx) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    resp = await web.client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    families = {f.name for f in text_string_to_metric_families(await resp.text())}
    assert families  # parses, and has horde's families
    assert any(name.startswith("horde_") for name in families)


async def test_swarm_with_an_arrival_rate_runs_the_open_model(web: WebCtx) -> None:
    r = await web.client.post("/swarm", data={"arrival_rate": "20/s", "max_users": "5", "run_time": "1h"})
    assert (await r.json())["success"] is True
    await until(lambda: web.run.env.stats.total.num_requests >= 5, what="arrivals served")
    assert "iterations/s" in (web.run.status().load or "")
    names = {row["name"] for row in (await get_json(web, "/stats/requests"))["stats"]}
    assert any(name.endswith("(from intended start)") for name in names)
