"""time.sleep, gevent.sleep and a bare imported sleep."""

import time
from time import sleep

import gevent
from locust import HttpUser, task


class Sleeper(HttpUser):
    @task
    def nap(self):
        self.client.get("/ok")
        time.sleep(0.01)

    @task
    def yield_(self):
        gevent.sleep()
        self.client.get("/ok")

    @task
    def bare(self):
        sleep(0.01)
        self.pause()

    def pause(self):
        gevent.sleep(0.005)

    def stamp(self):
        return time.time()  # time stays imported for this
