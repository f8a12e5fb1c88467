"""Both clients take the same calls (issue 14 item 4): every keyword on HttpUser and FastHttpUser."""

from __future__ import annotations

import io
import time

import pytest

from horde.clients import HttpSession, RequestInfo
from horde.env import Environment
from tests.clients.conftest import Made, Target, body_json


async def test_per_request_cookies_are_sent_and_not_kept(made: Made) -> None:
    c = made.user.client
    resp = await c.get("/echo", cookies={"a": "1", "b": "2"})
    assert body_json(resp)["cookies"] == {"a": "1", "b": "2"}
    again = await c.get("/echo")
    assert body_json(again)["cookies"] == {}


async def test_per_request_cookies_join_the_jar_and_win_over_it(made: Made) -> None:
    c = made.user.client
    await c.get("/set-cookie")
    resp = await c.get("/echo", cookies={"theme": "light", "x": "1"})
    assert body_json(resp)["cookies"] == {"session": "abc", "theme": "light", "x": "1"}


async def test_resp_cookies_are_what_the_response_set(made: Made) -> None:
    resp = await made.user.client.get("/set-cookie")
    assert resp.cookies == {"session": "abc", "theme": "dark"}
    assert (await made.user.client.get("/echo")).cookies == {}


async def test_history_lists_the_redirects(made: Made) -> None:
    resp = await made.user.client.get("/hop/2")
    assert resp.text == "landed"
    assert [(h.status_code, h.url.rsplit("/", 2)[-2:]) for h in resp.history] == [
        (302, ["hop", "2"]),
        (302, ["hop", "1"]),
    ]
    assert (await made.user.client.get("/hop/0")).history == []
    assert len(made.rec.events) == 2  # a redirected request is still one request


async def test_resp_request_is_what_was_sent(made: Made) -> None:
    resp = await made.user.client.post("/echo", b"payload", headers={"X-Test": "yes"})
    req = resp.request
    assert isinstance(req, RequestInfo)
    assert req.method == "POST" and req.url.endswith("/echo") and req.path_url == "/echo"
    assert req.headers["X-Test"] == "yes"
    assert req.body == b"payload"
    js = await made.user.client.post("/echo", json={"a": 1})
    assert js.request is not None and js.request.body is not None
    assert b'"a"' in js.request.body


@pytest.mark.parametrize("form", ["tuple", "fileobj", "bytes"])
async def test_files_send_a_multipart_form(made: Made, form: str) -> None:
    files = {
        "tuple": {"f": ("name.txt", b"data", "text/plain")},
        "fileobj": {"f": io.BytesIO(b"data")},
        "bytes": {"f": b"data"},
    }[form]
    resp = await made.user.client.post("/echo", data={"field": "v"}, files=files)
    got = body_json(resp)
    assert got["content_type"].startswith("multipart/form-data; boundary=")
    assert got["form"]["field"]["data"] == "v"
    part = got["form"]["f"]
    assert part["data"] == "data"
    if form == "tuple":
        assert part["filename"] == "name.txt" and part["content_type"] == "text/plain"
    else:
        assert part["filename"] == "f" and part["content_type"] == "application/octet-stream"


async def test_verify_false_is_accepted_per_request_and_per_session(made: Made) -> None:
    # no TLS target here: the keyword and the attribute must be taken, and plain HTTP still works
    resp = await made.user.client.get("/echo", verify=False)
    assert resp.ok
    made.user.client.verify = False
    assert made.user.client.verify is False
    assert (await made.user.client.get("/echo")).ok


async def test_verify_false_skips_certificate_checks(made: Made, tls_target: str) -> None:
    c = made.user.client
    bad = await c.get(f"{tls_target}/echo")
    assert not bad.ok and "CERTIFICATE_VERIFY_FAILED" in repr(bad.error)
    good = await c.get(f"{tls_target}/echo", verify=False)
    assert good.ok, good.error
    again = await c.get(f"{tls_target}/echo")  # an unverified connection is not reused for this
    assert not again.ok


async def test_rename_request_records_every_request_inside_under_the_name(made: Made) -> None:
    c = made.user.client
    with c.rename_request("/item/[id]"):
        await c.get("/echo?id=1")
        await c.post("/echo?id=2", b"x", name="ignored")
        with c.rename_request("/inner"):
            await c.get("/echo?id=3")
        await c.get("/echo?id=4")
    await c.get("/echo?id=5")
    async with c.rename_request("/async"):
        await c.get("/echo")
    assert [e["name"] for e in made.rec.events] == [
        "/item/[id]",
        "/item/[id]",
        "/inner",
        "/item/[id]",
        "/echo?id=5",
        "/async",
    ]


async def test_a_shorter_timeout_applies_on_a_reused_connection(made: Made) -> None:
    c = made.user.client
    assert (await c.get("/echo")).ok  # the keep-alive connection, with the default 60 s deadline
    t0 = time.perf_counter()
    resp = await c.get("/slow?s=3", timeout=0.3)
    took = time.perf_counter() - t0
    assert not resp.ok and isinstance(resp.error, TimeoutError), resp.error
    assert took < 1.5


async def test_locust_constructor_of_http_session(made: Made, target: Target) -> None:
    env: Environment = made.env
    session = HttpSession(target.url, request_event=env.events.request, user=made.user)
    try:
        resp = await session.get("/echo", name="second")
        assert resp.ok and made.rec.last["name"] == "second"
        positional = HttpSession(target.url, env.events.request, made.user)
        await positional.get("/echo")
        await positional.close()
        no_user = HttpSession(target.url, env.events.request, None)
        await no_user.get("/echo", name="no user")
        await no_user.close()
        assert [e["name"] for e in made.rec.events[-2:]] == ["/echo", "no user"]
    finally:
        await session.close()
