"""``rest()`` as in Locust: JSON headers, ``resp.js``, catch_response verdicts, exceptions as failures."""

from __future__ import annotations

import pytest

from horde import RescheduleTask
from tests.clients.conftest import Made


async def test_rest_sends_json_and_parses_the_reply(made: Made) -> None:
    async with made.user.rest("POST", "/echo", json={"item": 1}) as resp:
        assert resp.js["method"] == "POST"
        assert resp.js["headers"]["Content-Type"] == "application/json"
        assert resp.js["headers"]["Accept"] == "application/json"
        assert resp.js["body"] == '{"item":1}' or resp.js["body"] == '{"item": 1}'
    assert made.rec.last["exception"] is None and made.rec.last["name"] == "/echo"


async def test_extra_headers_join_the_json_ones(made: Made) -> None:
    async with made.user.rest("GET", "/echo", headers={"X-Test": "1"}, name="named") as resp:
        assert resp.js["headers"]["X-Test"] == "1" and resp.js["headers"]["Accept"] == "application/json"
    assert made.rec.last["name"] == "named"


async def test_a_body_that_is_not_json_is_a_failure_and_js_is_none(made: Made) -> None:
    async with made.user.rest("GET", "/not-json") as resp:
        assert resp.js is None
    assert str(made.rec.last["exception"]).startswith("Could not parse response as JSON. <html>nope</html>")


async def test_failure_and_success_decide(made: Made) -> None:
    async with made.user.rest("GET", "/echo") as resp:
        resp.failure("sold out")
    assert repr(made.rec.last["exception"]) == "sold out"
    async with made.user.rest("GET", "/not-json") as resp:
        resp.success()
    assert made.rec.last["exception"] is None


async def test_an_exception_in_the_block_fails_the_request_with_its_message(made: Made) -> None:
    async with made.user.rest("GET", "/echo") as resp:
        resp.js["missing"]
    err = str(made.rec.last["exception"])
    assert err.startswith("KeyError: 'missing' at test_rest.py:"), err
    async with made.user.rest("GET", "/echo") as resp:
        if resp.js["method"] != "POST":  # an assert, without pytest's rewriting of its message
            raise AssertionError("wrong method")
    assert str(made.rec.last["exception"]) == "wrong method"
    assert len(made.rec.events) == 2


async def test_control_flow_passes_through(made: Made) -> None:
    with pytest.raises(RescheduleTask):
        async with made.user.rest("GET", "/echo"):
            raise RescheduleTask()
    assert made.rec.last["exception"] is None


async def test_sync_with_says_async_with(made: Made) -> None:
    with pytest.raises(TypeError, match=r"async with self\.rest"):
        with made.user.rest("GET", "/echo"):  # type: ignore[attr-defined]
            pass
