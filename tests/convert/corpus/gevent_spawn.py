"""gevent.spawn of a helper and a module function, join, joinall and kill."""

import gevent
from locust import HttpUser, between, task


def ping(user, path):
    user.client.get(path, name="ping")


class Spawner(HttpUser):
    wait_time = between(0.01, 0.02)

    def fetch(self, path):
        self.client.get(path)

    @task
    def one(self):
        g = gevent.spawn(self.fetch, "/ok")
        g.join()

    @task
    def many(self):
        greenlets = [gevent.spawn(ping, self, "/ok"), gevent.spawn(ping, self, "/echo")]
        gevent.joinall(greenlets)

    @task
    def cancelled(self):
        g = gevent.spawn(self.fetch, "/slow?s=1")
        g.kill()
