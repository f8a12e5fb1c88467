"""Names horde does not have are kept and flagged."""

from locust import HttpUser, task
from locust.user.inspectuser import print_task_ratio
from locust.util.timespan import parse_timespan


class Plain(HttpUser):
    @task
    def index(self):
        self.client.get("/ok")


if __name__ == "__main__":
    print_task_ratio([Plain], 100, False)
    print(parse_timespan("1m"))
