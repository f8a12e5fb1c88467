"""A MarkovTaskSet: its @transition methods are tasks, whether or not they make a request."""

from locust import HttpUser, between
from locust.user.markov_taskset import MarkovTaskSet, transition, transitions


class Journey(MarkovTaskSet):
    @transition("browse")
    def landing(self):
        self.client.get("/ok", name="landing")

    @transitions({"landing": 1, "think": 2})
    def browse(self):
        self.client.get("/echo", name="browse")

    @transition("browse")
    def think(self):
        pass  # no request: still a task, still async


class MarkovUser(HttpUser):
    wait_time = between(0.01, 0.02)
    tasks = [Journey]
