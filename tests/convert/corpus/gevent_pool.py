"""Concurrent requests inside one task with a gevent pool (Locust's documented recipe)."""

from gevent.pool import Pool
from locust import HttpUser, between, task


class Fanout(HttpUser):
    wait_time = between(0.01, 0.02)

    @task
    def fan_out(self):
        def concurrent_request(url):
            self.client.get(url)

        pool = Pool()
        urls = ["/ok", "/echo", "/ok?page=2"]
        for url in urls:
            pool.spawn(concurrent_request, url)
        pool.join()
        self.client.get("/ok", name="after")
