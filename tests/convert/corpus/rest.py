"""FastHttpUser.rest(): JSON in, resp.js out, as a context manager."""

from locust import FastHttpUser, between, task


class Rest(FastHttpUser):
    wait_time = between(0.01, 0.02)

    @task
    def post_json(self):
        with self.rest("POST", "/echo", json={"item": 1}) as resp:
            if resp.js is None:
                pass  # no json: already a failure
            elif resp.js["method"] != "POST":
                resp.failure(f"unexpected method {resp.js['method']}")

    @task
    def via_client(self):
        self.client.get("/ok")
