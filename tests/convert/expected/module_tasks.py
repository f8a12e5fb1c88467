"""@task on module-level functions, listed in a TaskSet; the user parameter is called self."""

from horde import HttpUser, TaskSet, between, task


@task(2)
async def browse(self):
    await self.client.get("/ok")


@task
async def search(self):
    await do_search(self, "shoes")


async def do_search(user, term):
    await user.client.get("/echo", params={"q": term}, name="search")


class Tasks(TaskSet):
    tasks = [browse, search]


class Visitor(HttpUser):
    wait_time = between(0.01, 0.02)
    tasks = [Tasks]
