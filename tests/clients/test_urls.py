"""``resp.url`` is the URL that answered: the request's, with params= added, or the last redirect's;
the same URL string asked for twice (HttpUser parses it once) answers the same."""

from __future__ import annotations

from tests.clients.conftest import Made, Target, body_json


async def test_resp_url_is_the_url_that_answered(made: Made, target: Target) -> None:
    c = made.user.client
    assert (await c.get("/echo")).url == f"{target.url}/echo"
    assert (await c.get("/echo")).url == f"{target.url}/echo"  # the second time from the cache
    with_params = await c.get("/echo", params={"page": "2"})
    assert with_params.url == f"{target.url}/echo?page=2"
    assert body_json(with_params)["path"] == "/echo?page=2"
    assert (await c.get("/hop/1")).url == f"{target.url}/hop/0"
    assert (await c.get(f"{target.url}/echo?a=1")).url == f"{target.url}/echo?a=1"


async def test_an_invalid_url_is_a_failed_request(made: Made) -> None:
    resp = await made.user.client.get("http://[::1/x")
    assert resp.status_code == 0 and resp.error is not None
    assert made.rec.last["exception"] is resp.error
