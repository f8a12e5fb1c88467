"""Tasks declared as a list and as a dict, with module-level task functions taking the user."""

from horde import HttpUser, TaskSet, between


async def index(l):
    await l.client.get("/ok")


async def echo(user):
    await user.client.post("/echo", {"page": "stats"})


class Browse(TaskSet):
    tasks = {index: 2, echo: 1}


class ListUser(HttpUser):
    wait_time = between(0.01, 0.02)
    tasks = [index, echo]


class DictUser(HttpUser):
    wait_time = between(0.01, 0.02)
    tasks = {Browse: 1}
