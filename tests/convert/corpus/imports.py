"""Locust imports from every module a locustfile usually touches."""

import locust
from locust import HttpUser, between, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.exception import LocustError, RescheduleTask, StopUser
from locust.user.wait_time import constant


class Web(HttpUser):
    wait_time = between(0.01, 0.02)

    @task
    def index(self):
        self.client.get("/ok")


class Api(FastHttpUser):
    wait_time = constant(0.01)

    @locust.task
    def echo(self):
        self.client.post("/echo", json={"ok": True})


ALL = [Environment, events, LocustError, RescheduleTask, StopUser, locust.events]
