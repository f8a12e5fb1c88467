"""@task on module-level functions, listed in a TaskSet; the user parameter is called self."""

from locust import HttpUser, TaskSet, between, task


@task(2)
def browse(self):
    self.client.get("/ok")


@task
def search(self):
    do_search(self, "shoes")


def do_search(user, term):
    user.client.get("/echo", params={"q": term}, name="search")


class Tasks(TaskSet):
    tasks = [browse, search]


class Visitor(HttpUser):
    wait_time = between(0.01, 0.02)
    tasks = [Tasks]
