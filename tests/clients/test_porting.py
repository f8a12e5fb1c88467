"""Porting mistakes are reported at run time (issue 14 items 1, 3 and 6, the client parts)."""

from __future__ import annotations

import gc
import logging
from typing import Any

import pytest

from horde import InterruptTaskSet, RescheduleTask, StopUser, task
from horde.clients.response import MissingAwait
from horde.exceptions import CatchResponseError
from tests.clients.conftest import Made, Target


async def test_a_request_call_never_awaited_is_a_user_error_naming_task_and_url(
    made: Made, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[BaseException] = []
    made.env.events.user_error.add_listener(lambda exception, **_: errors.append(exception))

    async def forgot(self: Any) -> None:
        self.client.get("/echo?forgot=1")  # no await: nothing is sent

    with caplog.at_level(logging.ERROR, logger="horde.clients"):
        await forgot(made.user)
        await forgot(made.user)
        gc.collect()
    assert len(errors) == 2 and all(isinstance(e, MissingAwait) for e in errors)
    msg = str(errors[0])
    assert "GET" in msg and "/echo?forgot=1" in msg and "missing await?" in msg
    assert "forgot" in msg and "test_porting.py:" in msg
    assert made.rec.events == []  # nothing was sent
    # once in the log per place; every time in the run's exception table (the runner counts them)
    assert sum("missing await?" in r.getMessage() for r in caplog.records) == 1
    rows = list(made.env.runner.exceptions.values())  # type: ignore[union-attr]
    assert len(rows) == 1 and rows[0]["count"] == 2 and "missing await?" in rows[0]["msg"]


async def test_awaited_entered_and_gathered_calls_are_not_reported(made: Made) -> None:
    import asyncio

    errors: list[BaseException] = []
    made.env.events.user_error.add_listener(lambda exception, **_: errors.append(exception))
    c = made.user.client
    await c.get("/echo")
    await c.post("/echo", b"x")
    async with c.get("/echo", catch_response=True):
        pass
    async with c.get("/echo"):
        pass
    await asyncio.gather(c.get("/echo"), c.get("/echo", params={"a": 1}))
    gc.collect()
    assert errors == [] and len(made.rec.events) == 6


async def test_sync_with_on_a_request_call_says_async_with(made: Made) -> None:
    errors: list[BaseException] = []
    made.env.events.user_error.add_listener(lambda exception, **_: errors.append(exception))
    with pytest.raises(TypeError, match=r"async with self\.client\.get"):
        with made.user.client.get("/echo", catch_response=True):  # type: ignore[attr-defined]
            pass
    gc.collect()
    assert errors == []  # the TypeError is the report: no second one for "never awaited"


async def test_catch_response_failure_is_recorded_as_its_plain_message(made: Made) -> None:
    async with made.user.client.get("/echo", catch_response=True) as resp:
        resp.failure("sold out")
    exc = made.rec.last["exception"]
    assert repr(exc) == "sold out" and str(exc) == "sold out"
    assert isinstance(exc, CatchResponseError) and type(exc).__name__ == "CatchResponseError"
    assert [e.error for e in made.env.stats.errors.values()] == ["sold out"]


async def test_refused_connections_are_in_short_form(made: Made, free_port_url: str) -> None:
    resp = await made.user.client.get(f"{free_port_url}/x")
    assert repr(resp.error) == "ConnectionRefusedError(111, 'Connection refused')"
    assert [e.error for e in made.env.stats.errors.values()] == [
        "ConnectionRefusedError(111, 'Connection refused')"
    ]


@pytest.mark.parametrize("control", [RescheduleTask, StopUser, InterruptTaskSet])
async def test_control_flow_raised_in_a_request_listener_reaches_the_task(made: Made, control: type) -> None:
    seen_after: list[str] = []

    def listener(name: str, **_: Any) -> None:
        if name == "/echo?stop=1":
            raise control()

    made.env.events.request.add_listener(listener)
    made.env.events.request.add_listener(lambda name, **_: seen_after.append(name))
    with pytest.raises(control):
        await made.user.client.get("/echo?stop=1")
    with pytest.raises(control):
        async with made.user.client.get("/echo?stop=1", catch_response=True):
            pass
    await made.user.client.get("/echo")
    # the request still reached every listener (the stats counted it) before the exception went on
    assert seen_after == ["/echo?stop=1", "/echo?stop=1", "/echo"]
    assert made.env.stats.total.num_requests == 3
    assert made.env.events.unhandled_errors == 0


async def test_reschedule_from_a_listener_takes_effect_in_a_running_user(
    user_base: type, target: Target
) -> None:
    from horde.env import Environment

    ran: list[str] = []

    class U(user_base):  # type: ignore[misc, valid-type]
        host = target.url

        @task
        async def t(self) -> None:
            ran.append("start")
            await self.client.get("/echo?fail=1")
            ran.append("after")  # never reached: the listener rescheduled the task
            raise StopUser()

    env = Environment(user_classes=[U])
    runner = env.create_local_runner()

    def listener(name: str, **_: Any) -> None:
        if len(ran) >= 3:
            raise StopUser()
        raise RescheduleTask()

    env.events.request.add_listener(listener)
    import asyncio

    await asyncio.wait_for(U(env).run(), 10)
    assert ran == ["start", "start", "start"]
    assert runner.exceptions == {}
