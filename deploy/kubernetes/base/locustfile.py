"""An example locustfile: shoppers who browse, look at items and sometimes buy (horde's demo shop).

Replace it with yours (overlays/example shows how); the host is HORDE_HOST in kustomization.yaml."""

import random

from horde import HttpUser, between, task


class Shopper(HttpUser):
    wait_time = between(0.5, 1.5)

    async def on_start(self):
        await self.client.post("/login", json={"user": "demo"})

    @task(5)
    async def browse(self):
        await self.client.get("/items")

    @task(3)
    async def view_item(self):
        await self.client.get(f"/items/{random.randrange(100)}", name="/items/[id]")

    @task(2)
    async def slow_search(self):
        await self.client.get("/slow")

    @task(1)
    async def flaky_recommendations(self):
        await self.client.get("/flaky")

    @task(1)
    async def add_to_cart(self):
        async with self.client.post("/cart", json={"id": random.randrange(100)}, catch_response=True) as resp:
            if resp.ok and resp.json().get("added") is None:
                resp.failure("the cart did not confirm the item")
