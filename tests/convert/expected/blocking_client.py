"""What cannot be converted safely: requests in a task and in a listener, gevent.monkey, an RLock."""

from gevent import monkey

# horde convert: gevent.monkey patches the standard library for gevent; horde runs on asyncio: remove it
monkey.patch_all()

import requests
from gevent.lock import RLock
from horde import HttpUser, events, task

session = requests.Session()
# horde convert: `gevent.lock.RLock`: asyncio has no re-entrant lock: use asyncio.Lock() (with `async with`) if it is never re-entered
lock = RLock()
TOKEN = requests.get("http://127.0.0.1:1/token").text if False else "static"


@events.test_stop.add_listener
def report(environment, **kwargs):
    # horde convert: `requests.post` blocks the event loop (every user waits): use self.client or an asyncio library, or `await asyncio.to_thread(requests.post, ...)`
    requests.post("http://127.0.0.1:1/report", json={"n": environment.stats.total.num_requests})


class Blocking(HttpUser):
    @task
    async def third_party(self):
        # horde convert: `session.get` blocks the event loop (every user waits): use self.client or an asyncio library, or `await asyncio.to_thread(session.get, ...)`
        session.get("http://127.0.0.1:1/other")
        await self.client.get("/ok")

    @task
    async def hook_it(self):
        with lock:
            await self.client.get("/ok")
