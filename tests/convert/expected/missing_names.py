"""Names horde does not have are kept and flagged."""

from horde import HttpUser, task
# horde convert: horde has no print_task_ratio in horde.user.inspectuser (no such module): remove it or port what it does
from horde.user.inspectuser import print_task_ratio
# horde convert: horde has no parse_timespan in horde.util.timespan (no such module): remove it or port what it does
from horde.util.timespan import parse_timespan


class Plain(HttpUser):
    @task
    async def index(self):
        await self.client.get("/ok")


if __name__ == "__main__":
    print_task_ratio([Plain], 100, False)
    print(parse_timespan("1m"))
