"""A TaskSet whose tasks call helpers that call helpers that call the client."""

from locust import HttpUser, SequentialTaskSet, TaskSet, between, task


class Checkout(SequentialTaskSet):
    def on_start(self):
        self.open_cart()

    def open_cart(self):
        self.post_json("/echo", {"cart": "open"})

    def post_json(self, path, body):
        return self.user.client.post(path, json=body)

    def payload(self):
        return {"item": 1}  # pure: stays a plain def

    @task
    def add(self):
        self.post_json("/echo", self.payload())

    @task
    def done(self):
        self.interrupt()


class Shop(TaskSet):
    @task(3)
    def browse(self):
        self.view("/ok")

    def view(self, path):
        self.client.get(path, name="view")

    tasks_nested = Checkout

    @task
    def checkout(self):
        self.schedule_task(Checkout)


class Shopper(HttpUser):
    wait_time = between(0.01, 0.02)
    tasks = [Shop]

    def on_start(self):
        self.login()

    def login(self):
        self.client.post("/ok", data={"user": "alice"})

    def on_stop(self):
        self.client.post("/ok", name="logout")
