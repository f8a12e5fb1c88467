"""gevent locks and events shared between users."""

from gevent.event import Event
from gevent.lock import BoundedSemaphore, Semaphore
from locust import HttpUser, between, events, task

one_at_a_time = Semaphore()
two_at_a_time = BoundedSemaphore(2)
ready = Event()


@events.test_start.add_listener
def open_gate(environment, **kwargs):
    ready.set()


class Locked(HttpUser):
    wait_time = between(0.01, 0.02)

    def on_start(self):
        ready.wait()

    @task
    def critical(self):
        with one_at_a_time:
            self.client.get("/ok", name="one")

    @task
    def bounded(self):
        two_at_a_time.acquire()
        try:
            self.client.get("/ok", name="two")
        finally:
            two_at_a_time.release()
