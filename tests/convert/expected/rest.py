"""FastHttpUser.rest(): JSON in, resp.js out, as a context manager."""

from horde import FastHttpUser, between, task


class Rest(FastHttpUser):
    wait_time = between(0.01, 0.02)

    @task
    async def post_json(self):
        async with self.rest("POST", "/echo", json={"item": 1}) as resp:
            if resp.js is None:
                pass  # no json: already a failure
            elif resp.js["method"] != "POST":
                resp.failure(f"unexpected method {resp.js['method']}")

    @task
    async def via_client(self):
        await self.client.get("/ok")
