"""A MarkovTaskSet: its @transition methods are tasks, whether or not they make a request."""

from horde import HttpUser, between
from horde.user import MarkovTaskSet, transition, transitions


class Journey(MarkovTaskSet):
    @transition("browse")
    async def landing(self):
        await self.client.get("/ok", name="landing")

    @transitions({"landing": 1, "think": 2})
    async def browse(self):
        await self.client.get("/echo", name="browse")

    @transition("browse")
    async def think(self):
        pass  # no request: still a task, still async


class MarkovUser(HttpUser):
    wait_time = between(0.01, 0.02)
    tasks = [Journey]
