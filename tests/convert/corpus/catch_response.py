"""catch_response blocks, chained response access, and a client alias."""

from locust import HttpUser, between, task


class Judge(HttpUser):
    wait_time = between(0.01, 0.02)

    @task
    def judged(self):
        with self.client.get("/ok", catch_response=True) as response:
            if response.text != "ok":
                response.failure("unexpected body")
            else:
                response.success()

    @task
    def chained(self):
        method = self.client.post("/echo", json={"a": 1}).json()["method"]
        assert method == "POST"

    @task
    def aliased(self):
        client = self.client
        client.get("/ok", name="alias")
