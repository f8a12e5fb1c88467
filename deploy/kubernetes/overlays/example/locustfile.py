"""Your locustfile goes here (this one requests the home page of HORDE_HOST once a second per user)."""

from horde import HttpUser, constant, task


class Visitor(HttpUser):
    wait_time = constant(1)

    @task
    async def home(self):
        await self.client.get("/")
