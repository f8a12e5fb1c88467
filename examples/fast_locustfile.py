"""A FastHttpUser locustfile: the same calls as HttpUser, several times the requests per core.

horde -f examples/fast_locustfile.py --host http://127.0.0.1:8080 --headless -u 50 -r 50 -t 30s
"""

from horde import FastHttpUser, constant_throughput, task


class ApiClient(FastHttpUser):
    wait_time = constant_throughput(10)  # at most 10 tasks per second per user

    @task(4)
    async def list_items(self):
        await self.client.get("/items")

    @task(1)
    async def one_item(self):
        async with self.client.get("/items/7", name="/items/[id]", catch_response=True) as resp:
            if resp.ok and resp.json().get("id") != 7:
                resp.failure("wrong item returned")
