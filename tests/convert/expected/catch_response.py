"""catch_response blocks, chained response access, and a client alias."""

from horde import HttpUser, between, task


class Judge(HttpUser):
    wait_time = between(0.01, 0.02)

    @task
    async def judged(self):
        async with self.client.get("/ok", catch_response=True) as response:
            if response.text != "ok":
                response.failure("unexpected body")
            else:
                response.success()

    @task
    async def chained(self):
        method = (await self.client.post("/echo", json={"a": 1})).json()["method"]
        assert method == "POST"

    @task
    async def aliased(self):
        client = self.client
        await client.get("/ok", name="alias")
