"""A TaskSet whose tasks call helpers that call helpers that call the client."""

from horde import HttpUser, SequentialTaskSet, TaskSet, between, task


class Checkout(SequentialTaskSet):
    async def on_start(self):
        await self.open_cart()

    async def open_cart(self):
        await self.post_json("/echo", {"cart": "open"})

    async def post_json(self, path, body):
        return await self.user.client.post(path, json=body)

    def payload(self):
        return {"item": 1}  # pure: stays a plain def

    @task
    async def add(self):
        await self.post_json("/echo", self.payload())

    @task
    async def done(self):
        self.interrupt()


class Shop(TaskSet):
    @task(3)
    async def browse(self):
        await self.view("/ok")

    async def view(self, path):
        await self.client.get(path, name="view")

    tasks_nested = Checkout

    @task
    async def checkout(self):
        self.schedule_task(Checkout)


class Shopper(HttpUser):
    wait_time = between(0.01, 0.02)
    tasks = [Shop]

    async def on_start(self):
        await self.login()

    async def login(self):
        await self.client.post("/ok", data={"user": "alice"})

    async def on_stop(self):
        await self.client.post("/ok", name="logout")
