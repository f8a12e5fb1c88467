"""What cannot be converted safely: requests in a task and in a listener, gevent.monkey, an RLock."""

from gevent import monkey

monkey.patch_all()

import requests
from gevent.lock import RLock
from locust import HttpUser, events, task

session = requests.Session()
lock = RLock()
TOKEN = requests.get("http://127.0.0.1:1/token").text if False else "static"


@events.test_stop.add_listener
def report(environment, **kwargs):
    requests.post("http://127.0.0.1:1/report", json={"n": environment.stats.total.num_requests})


class Blocking(HttpUser):
    @task
    def third_party(self):
        session.get("http://127.0.0.1:1/other")
        self.client.get("/ok")

    @task
    def hook_it(self):
        with lock:
            self.client.get("/ok")
