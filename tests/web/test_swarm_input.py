"""Bad input on every /swarm field: HTTP 400 with Locust's body, and nothing that was running changes."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from horde.web.app import WebSettings
from horde.web.swarm import MISSING_MESSAGE, RUN_TIME_MESSAGE, SwarmContext, parse_run_time, parse_swarm
from tests.web.conftest import WebCtx, until

BAD_FIELDS = [
    ({"user_count": "abc", "spawn_rate": "1"}, "user_count must be a whole number >= 0, got 'abc'"),
    ({"user_count": "-1", "spawn_rate": "1"}, "user_count must be a whole number >= 0, got '-1'"),
    ({"user_count": "1.5", "spawn_rate": "1"}, "user_count must be a whole number >= 0, got '1.5'"),
    ({"user_count": "inf", "spawn_rate": "1"}, "user_count must be a whole number >= 0, got 'inf'"),
    ({"user_count": "1", "spawn_rate": "fast"}, "spawn_rate must be a number > 0, got 'fast'"),
    ({"user_count": "1", "spawn_rate": "-2"}, "spawn_rate must be a number > 0, got '-2'"),
    ({"user_count": "1", "spawn_rate": "nan"}, "spawn_rate must be a number > 0, got 'nan'"),
    ({"user_count": "1", "spawn_rate": "0"}, MISSING_MESSAGE),
    ({"user_count": "1"}, MISSING_MESSAGE),
    ({"spawn_rate": "1"}, MISSING_MESSAGE),
    ({"user_count": "", "spawn_rate": ""}, MISSING_MESSAGE),
    ({"user_count": "1", "spawn_rate": "1", "run_time": "abc"}, RUN_TIME_MESSAGE),
    ({"user_count": "1", "spawn_rate": "1", "run_time": "1d"}, RUN_TIME_MESSAGE),
    ({"user_count": "1", "spawn_rate": "1", "run_time": "-5"}, RUN_TIME_MESSAGE),
    ({"user_count": "1", "spawn_rate": "1", "host": "example.com"}, "host must be a URL with a scheme"),
    ({"user_count": "1", "spawn_rate": "1", "host": "http://"}, "host must be a URL with a scheme"),
]


@pytest.mark.parametrize(("form", "message"), BAD_FIELDS, ids=[str(f) for f, _ in BAD_FIELDS])
async def test_bad_field_is_a_400_with_locusts_body_and_starts_nothing(
    web: WebCtx, form: dict[str, str], message: str
) -> None:
    r = await web.client.post("/swarm", data=form)
    assert r.status == 400
    body = await r.json()
    assert set(body) == {"success", "message", "host"}
    assert body["success"] is False
    assert message in body["message"]
    assert web.run.status().state == "ready"
    assert web.env.host == web.target.url  # the host of a rejected form is not applied (Locust applies it)


async def test_every_problem_is_reported_at_once(web: WebCtx) -> None:
    r = await web.client.post("/swarm", data={"user_count": "x", "spawn_rate": "y", "run_time": "z"})
    message = (await r.json())["message"]
    assert "user_count" in message and "spawn_rate" in message and RUN_TIME_MESSAGE in message


async def test_bad_edit_leaves_the_running_test_alone(web: WebCtx) -> None:
    await web.client.post("/swarm", data={"user_count": "2", "spawn_rate": "20"})
    await until(lambda: web.run.status().user_count == 2, what="2 users")
    for form in ({"user_count": "-3", "spawn_rate": "1"}, {"user_count": "9", "spawn_rate": "0"}):
        r = await web.client.post("/swarm", data=form)
        assert r.status == 400
    status = web.run.status()
    assert (status.state, status.target_user_count, status.user_count) == ("running", 2, 2)


async def test_a_start_while_stopping_is_refused(web: WebCtx) -> None:
    from horde.user import User, task

    class Slow(User):
        async def on_stop(self) -> None:
            import asyncio

            await asyncio.sleep(1.0)

        @task
        async def idle(self) -> None:
            import asyncio

            await asyncio.sleep(0.05)

    web.env.user_classes[:] = [Slow]
    web.env.stop_timeout = 2.0
    await web.client.post("/swarm", data={"user_count": "1", "spawn_rate": "10"})
    await until(lambda: web.run.status().user_count == 1, what="1 user")
    await web.client.get("/stop")
    await until(lambda: web.run.status().state in ("stopping", "cleanup"), what="stopping")
    r = await web.client.post("/swarm", data={"user_count": "1", "spawn_rate": "1"})
    assert r.status == 400
    assert "stopping" in (await r.json())["message"]
    await until(lambda: web.run.status().state == "stopped", what="stopped")


async def test_class_picker_rejects_unknown_classes_and_shapes(web_factory: Any) -> None:
    async with web_factory(WebSettings(port=0, class_picker=True)) as web:
        r = await web.client.post(
            "/swarm", data={"user_count": "1", "spawn_rate": "1", "user_classes": ["Browse", "Nope"]}
        )
        assert r.status == 400
        assert "unknown user class(es): Nope; available: Browse" in (await r.json())["message"]
        r = await web.client.post(
            "/swarm", data={"user_count": "1", "spawn_rate": "1", "shape_class": "Ramp"}
        )
        assert r.status == 400
        assert "unknown shape_class 'Ramp'" in (await r.json())["message"]
        r = await web.client.post(
            "/swarm", data={"user_count": "1", "spawn_rate": "5", "user_classes": "Browse"}
        )
        body = await r.json()
        assert body["success"] is True and body["user_classes"] == ["Browse"]
        await web.client.get("/stop")


def test_custom_arguments_are_coerced_like_locust_and_bad_ones_refused() -> None:
    ctx = SwarmContext(
        state="ready",
        user_classes=["A"],
        custom_defaults={
            "flag": False,
            "retries": 3,
            "ratio": 0.5,
            "tags": ["a"],
            "name": None,
            "ids": [1, 2],
        },
    )
    form = {
        "user_count": ["1"],
        "spawn_rate": ["1"],
        "flag": ["true"],
        "retries": ["5"],
        "ratio": ["0.25"],
        "tags": ["x,y"],
        "name": ["42"],
        "ids": ["3", "4"],
        "unknown": ["ignored"],
    }
    req, problems = parse_swarm(form, ctx)
    assert problems == [] and req is not None
    assert req.custom == {
        "flag": True,
        "retries": 5,
        "ratio": 0.25,
        "tags": ["x", "y"],
        "name": "42",
        "ids": [3, 4],
    }
    _, problems = parse_swarm({**form, "retries": ["many"]}, ctx)
    assert problems == ["retries must be a int, got 'many'"]


async def test_custom_arguments_reach_the_parsed_options(web_factory: Any) -> None:
    async with web_factory(WebSettings(port=0, custom_dests=frozenset({"greeting"}))) as web:
        web.env.parsed_options = argparse.Namespace(greeting="hello", users=1)
        r = await web.client.post(
            "/swarm", data={"user_count": "1", "spawn_rate": "5", "greeting": "bonjour", "users": "99"}
        )
        assert r.status == 200
        assert web.env.parsed_options.greeting == "bonjour"
        assert web.env.parsed_options.users == 1  # only declared custom arguments can be set from the form
        await web.client.get("/stop")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("20", 20),
        ("20s", 20),
        ("3m", 180),
        ("2h", 7200),
        ("1h20m", 4800),
        ("3h30m10s", 12610),
        ("", None),
        ("0", None),
    ],
)
def test_run_time_formats(text: str, seconds: int | None) -> None:
    assert parse_run_time(text) == seconds


def test_a_master_without_workers_refuses_to_start() -> None:
    from horde.web.swarm import NO_WORKERS_MESSAGE

    form = {"user_count": ["1"], "spawn_rate": ["1"]}
    ctx = SwarmContext(state="ready", user_classes=["A"], workers_ready=0)
    assert parse_swarm(form, ctx) == (None, [NO_WORKERS_MESSAGE])
    req, problems = parse_swarm(form, SwarmContext(state="ready", user_classes=["A"], workers_ready=2))
    assert problems == [] and req is not None


def test_an_arrival_rate_in_the_form_starts_the_open_model_and_bad_stages_are_refused() -> None:
    from horde.load import ConstantArrivalRate, RampingArrivalRate
    from horde.web.swarm import SwarmContext, parse_swarm

    ctx = SwarmContext(state="ready", user_classes=["Shop"])
    req, problems = parse_swarm({"arrival_rate": ["50/s"], "max_users": ["20"], "run_time": ["1m"]}, ctx)
    assert problems == [] and req is not None
    assert isinstance(req.model, ConstantArrivalRate) and req.run_time == 60
    req, problems = parse_swarm({"stages": ["10s:5/s,20s:50/s"]}, ctx)
    assert problems == [] and isinstance(req.model, RampingArrivalRate)  # type: ignore[union-attr]
    req, problems = parse_swarm({"stages": ["10x:5/s"], "max_users": ["-3"]}, ctx)
    assert req is None and any("10x:5/s" in p for p in problems) and any("max_users" in p for p in problems)
    running = SwarmContext(state="running", user_classes=["Shop"])
    req, problems = parse_swarm({"arrival_rate": ["50"]}, running)
    assert req is None and "stop the running one first" in problems[0]
