"""HttpUser on aiohttp against a real server: accounting, failures, catch_response, cookies, redirects."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from horde import HttpUser, StopUser, User, constant, task
from horde.clients.response import HTTPError
from horde.env import Environment
from tests.conftest import CountingServer


class Recorder:
    def __init__(self, env: Environment) -> None:
        self.events: list[dict[str, Any]] = []
        env.events.request.add_listener(lambda **kw: self.events.append(kw))


async def run_once(user_cls: type[User], host: str) -> tuple[Environment, Recorder]:
    user_cls.host = host
    env = Environment(user_classes=[user_cls])
    env.create_local_runner()  # its request listener records the stats
    rec = Recorder(env)
    await asyncio.wait_for(user_cls(env).run(), 10)
    return env, rec


async def test_success_failure_and_response_interface(server: CountingServer) -> None:
    seen: dict[str, Any] = {}

    class U(HttpUser):
        @task
        async def go(self) -> None:
            resp = await self.client.get("/ok")
            seen.update(
                status=resp.status_code, ok=resp.ok, text=resp.text, url=resp.url, content=resp.content
            )
            seen["elapsed"] = resp.elapsed.total_seconds()
            bad = await self.client.get("/fail")
            seen["bad_ok"] = bad.ok
            with pytest.raises(HTTPError):
                bad.raise_for_status()
            js = await self.client.post("/echo", "raw-body", params={"q": "1"}, headers={"X-Test": "yes"})
            seen["echo"] = js.json()
            raise StopUser()

    env, rec = await run_once(U, server.url)
    assert seen["status"] == 200 and seen["ok"] and seen["text"] == "ok" and seen["content"] == b"ok"
    assert isinstance(seen["url"], str) and seen["url"].endswith("/ok")
    assert seen["elapsed"] > 0 and seen["bad_ok"] is False
    assert (
        seen["echo"]["body"] == "raw-body"
        and seen["echo"]["query"] == {"q": "1"}
        and seen["echo"]["x"] == "yes"
    )
    assert [e["name"] for e in rec.events] == ["/ok", "/fail", "/echo"]
    ok, fail, _ = rec.events
    assert ok["exception"] is None and ok["response_length"] == 2 and ok["response_time"] > 0
    assert isinstance(fail["exception"], HTTPError) and "500" in str(fail["exception"])
    assert env.stats.total.num_requests == 3 and env.stats.total.num_failures == 1


async def test_name_groups_urls_and_json_and_auth(server: CountingServer) -> None:
    seen: dict[str, Any] = {}

    class U(HttpUser):
        @task
        async def go(self) -> None:
            for i in range(3):
                await self.client.get(f"/ok?id={i}", name="/ok?id=[id]")
            resp = await self.client.put("/echo", json={"a": 1}, auth=("user", "pw"))
            seen.update(resp.json())
            raise StopUser()

    env, _rec = await run_once(U, server.url)
    assert env.stats.get("/ok?id=[id]", "GET").num_requests == 3
    assert seen["method"] == "PUT" and seen["body"] == '{"a": 1}' and seen["auth"].startswith("Basic ")


async def test_catch_response_lets_the_task_decide(server: CountingServer) -> None:
    class U(HttpUser):
        @task
        async def go(self) -> None:
            async with self.client.get("/ok", catch_response=True) as resp:
                resp.failure("wrong content")
            async with self.client.get("/missing", catch_response=True) as resp:
                if resp.status_code == 404:
                    resp.success()
            async with self.client.get("/fail", catch_response=True):
                pass  # no verdict: the automatic classification applies
            async with self.client.get("/ok") as resp:
                assert resp.ok
            raise StopUser()

    env, rec = await run_once(U, server.url)
    outcomes = [(e["name"], e["exception"] is None) for e in rec.events]
    assert outcomes == [("/ok", False), ("/missing", True), ("/fail", False), ("/ok", True)]
    assert "wrong content" in str(rec.events[0]["exception"])
    assert env.stats.total.num_requests == 4


async def test_exception_inside_catch_block_counts_the_request_once(server: CountingServer) -> None:
    class U(HttpUser):
        @task
        async def go(self) -> None:
            try:
                async with self.client.get("/ok", catch_response=True):
                    raise KeyError("parsing failed")
            except KeyError:
                pass
            raise StopUser()

    _env, rec = await run_once(U, server.url)
    assert len(rec.events) == 1 and isinstance(rec.events[0]["exception"], KeyError)


async def test_redirect_recorded_once_under_original_name(server: CountingServer) -> None:
    class U(HttpUser):
        @task
        async def go(self) -> None:
            resp = await self.client.get("/redirect")
            assert resp.url.endswith("/ok")
            raise StopUser()

    _env, rec = await run_once(U, server.url)
    assert [e["name"] for e in rec.events] == ["/redirect"]
    assert server.hits == {"/redirect": 1, "/ok": 1}


async def test_cookies_from_ip_hosts_are_kept_per_user(server: CountingServer) -> None:
    results: list[int] = []

    class U(HttpUser):
        @task
        async def go(self) -> None:
            await self.client.get("/set-cookie")
            results.append((await self.client.get("/needs-cookie")).status_code)
            raise StopUser()

    class Fresh(HttpUser):
        @task
        async def go(self) -> None:
            results.append((await self.client.get("/needs-cookie")).status_code)
            raise StopUser()

    await run_once(U, server.url)
    await run_once(Fresh, server.url)
    assert results == [200, 401]


async def test_connection_refused_is_a_failure_and_the_user_goes_on(free_port_url: str) -> None:
    attempts = 0

    class U(HttpUser):
        @task
        async def go(self) -> None:
            nonlocal attempts
            attempts += 1
            resp = await self.client.get("/ok")
            assert resp.status_code == 0 and not resp.ok
            if attempts == 3:
                raise StopUser()

    env, _rec = await run_once(U, free_port_url)
    assert attempts == 3 and env.stats.total.num_failures == 3
    (error,) = env.stats.errors.values()
    assert error.occurrences == 3 and "Connect" in error.error


async def test_timeout_is_a_failure_with_a_clear_message(server: CountingServer) -> None:
    class U(HttpUser):
        @task
        async def go(self) -> None:
            await self.client.get("/slow?s=1", timeout=0.05)
            raise StopUser()

    _env, rec = await run_once(U, server.url)
    assert "timeout" in str(rec.events[0]["exception"]).lower()


async def test_http_user_without_host_stops_the_test_naming_the_class() -> None:
    class NoHost(HttpUser):
        @task
        async def go(self) -> None: ...

    env = Environment(user_classes=[NoHost])
    runner = env.create_local_runner()
    runner.start(1, 1)
    await asyncio.wait_for(runner.wait_stopped(), 2)
    assert runner.stop_reason is not None and "NoHost has no host" in runner.stop_reason
    await runner.quit()


async def test_horde_totals_equal_server_count(server: CountingServer) -> None:
    class Shopper(HttpUser):
        host = server.url
        wait_time = constant(0.01)

        @task(3)
        async def ok(self) -> None:
            await self.client.get("/ok")

        @task(1)
        async def slow(self) -> None:
            await self.client.get("/slow?s=0.02")

        @task(1)
        async def fail(self) -> None:
            await self.client.get("/fail")

    env = Environment(user_classes=[Shopper], stop_timeout=1)
    runner = env.create_local_runner()
    await runner.start(20, 1000)
    await asyncio.sleep(0.5)
    await runner.quit()
    assert server.total > 100
    assert env.stats.total.num_requests == server.total
    assert env.stats.total.num_failures == server.hits.get("/fail", 0)
    for path in ("/ok", "/fail"):
        assert env.stats.get(path, "GET").num_requests == server.hits[path]


async def test_stopping_inside_a_catch_block_is_not_a_failure(server: CountingServer) -> None:
    class Judge(HttpUser):
        host = server.url

        @task
        async def go(self) -> None:
            async with self.client.get("/ok", catch_response=True):
                await asyncio.sleep(10)  # stopped here, with stop_timeout 0

    env = Environment(user_classes=[Judge])
    runner = env.create_local_runner()
    await runner.start(3, 1000)
    await asyncio.sleep(0.3)
    await runner.quit()
    assert env.stats.total.num_requests == 3 and env.stats.total.num_failures == 0


async def test_request_context_merges_user_context_and_call_context(server: CountingServer) -> None:
    class Tagged(HttpUser):
        def context(self) -> dict[str, Any]:
            return {"tenant": "acme"}

        @task
        async def go(self) -> None:
            await self.client.get("/ok", context={"step": 1})
            raise StopUser()

    class Plain(HttpUser):
        @task
        async def go(self) -> None:
            await self.client.get("/ok")
            raise StopUser()

    _, tagged = await run_once(Tagged, server.url)
    _, plain = await run_once(Plain, server.url)
    assert tagged.events[0]["context"] == {"tenant": "acme", "step": 1}
    assert plain.events[0]["context"] == {}
