"""Tasks declared as a list and as a dict, with module-level task functions taking the user."""

from locust import HttpUser, TaskSet, between


def index(l):
    l.client.get("/ok")


def echo(user):
    user.client.post("/echo", {"page": "stats"})


class Browse(TaskSet):
    tasks = {index: 2, echo: 1}


class ListUser(HttpUser):
    wait_time = between(0.01, 0.02)
    tasks = [index, echo]


class DictUser(HttpUser):
    wait_time = between(0.01, 0.02)
    tasks = {Browse: 1}
