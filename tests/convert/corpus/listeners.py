"""Event listeners: a request listener, a test_start hook that waits, and a background checker."""

import time

import gevent
from locust import HttpUser, between, events, task
from locust.runners import WorkerRunner

seen = []


@events.request.add_listener
def on_request(request_type, name, response_time, response_length, exception, **kwargs):
    seen.append(name)


def checker(environment):
    while environment.runner is not None and environment.runner.state != "stopped":
        time.sleep(0.05)
        if environment.stats.total.fail_ratio > 0.5:
            environment.runner.quit()
            return


@events.test_start.add_listener
def on_test_start(environment, **kwargs):
    time.sleep(0.01)  # give the target a moment
    if not isinstance(environment.runner, WorkerRunner):
        gevent.spawn(checker, environment)


class Listened(HttpUser):
    wait_time = between(0.01, 0.02)

    @task
    def index(self):
        self.client.get("/ok")
