"""The users one process runs: starting them, counting them, and stopping them within stop_timeout."""

from __future__ import annotations

import asyncio
import logging
from itertools import islice
from typing import TYPE_CHECKING

from horde.runners import gc_policy
from horde.user.users import User

if TYPE_CHECKING:
    from horde.env import Environment

logger = logging.getLogger(__name__)

#: Users created per event-loop turn while a ramp step starts many at once.
SPAWN_CHUNK = 200


class UserGroup:
    """Owns every user task of a runner; nothing else starts or cancels them.

    Users asked to stop leave the active counts at once (so the next ramp step plans without them) but
    stay owned here until their task has really ended, so quitting can still wait for or kill them.
    """

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        # per class, its active users in start order, keyed by id() (a User subclass may define __eq__):
        # a user ending leaves it in O(1) (a list's remove scanned every user: 40,000 -> 20,000 took 5 s)
        self._active: dict[str, dict[int, User]] = {}
        self._tasks: dict[asyncio.Task[None], User] = {}
        self.force_stopped = 0  # users killed at the stop_timeout deadline (reported at the end)

    @property
    def count(self) -> int:
        return sum(len(users) for users in self._active.values())

    def counts(self) -> dict[str, int]:
        """Active users per class name (users being stopped are not counted)."""
        return {name: len(users) for name, users in self._active.items() if users}

    @property
    def running_tasks(self) -> int:
        return len(self._tasks)

    def spawn(self, user_class: type[User], count: int) -> None:
        loop = asyncio.get_running_loop()
        bucket = self._active.setdefault(user_class.__name__, {})
        name = f"user:{user_class.__name__}"  # built once: per-user copies cost memory at 100k users
        ended = self._ended
        for _ in range(count):
            user = user_class(self.environment)
            if not hasattr(user, "environment"):
                raise AssertionError(
                    f"{user_class.__name__}.__init__ did not call super().__init__(environment): "
                    "a User needs its environment"
                )
            task = loop.create_task(user.run(), name=name)
            user._task = task
            self._tasks[task] = user
            bucket[id(user)] = user
            task.add_done_callback(ended)
        gc_policy.settle()  # what these users allocated is long-lived: full collections skip it

    def _ended(self, task: asyncio.Task[None]) -> None:
        user = self._tasks.pop(task, None)
        if user is None:
            return
        gc_policy.release(len(self._tasks))  # the users' reference cycles must become collectable
        bucket = self._active.get(type(user).__name__)
        if bucket:
            bucket.pop(id(user), None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("user task of %s crashed: %r", type(user).__name__, task.exception())

    async def apply(
        self, targets: dict[str, int], classes: dict[str, type[User]], stop_timeout: float
    ) -> None:
        """Start and stop users until each class runs ``targets[name]`` (absent classes: 0).

        New users start first, then surplus ones stop (which may wait up to stop_timeout). If creating
        a user raises, the surplus is still stopped before the exception propagates.
        """
        current = self.counts()
        surplus = {name: n - targets.get(name, 0) for name, n in current.items() if n > targets.get(name, 0)}
        try:
            for name, n in targets.items():
                missing = n - current.get(name, 0)
                while missing > 0:
                    # a few hundred at a time, letting the loop turn in between: thousands of users
                    # created in one loop turn all run their first steps (on_start, the first connect) at
                    # once, which stalls the loop (ramp lag at 10k users 1.4 s -> 0.2 s) and holds their
                    # peak allocations together (FastHttpUser 8.8 -> 6.9 KiB per idle user)
                    chunk = min(missing, SPAWN_CHUNK)
                    self.spawn(classes[name], chunk)
                    missing -= chunk
                    if missing:
                        await asyncio.sleep(0)
        finally:
            if surplus:
                await self.stop(surplus, stop_timeout)

    async def stop(
        self, counts: dict[str, int], stop_timeout: float, caller: asyncio.Task | None = None
    ) -> None:
        """Stop ``counts[class]`` users of each class, newest first, sharing one stop_timeout deadline."""
        chosen: list[User] = []
        for name, n in counts.items():
            bucket = self._active.get(name)
            if n <= 0 or not bucket:
                continue
            newest = list(islice(reversed(bucket.values()), n))
            for user in newest:
                del bucket[id(user)]
            chosen.extend(newest)
        await self._stop_users(chosen, stop_timeout, caller)

    async def stop_all(self, stop_timeout: float, caller: asyncio.Task | None = None) -> None:
        chosen = [u for u in self._tasks.values()]
        self._active.clear()
        await self._stop_users(chosen, stop_timeout, caller)

    async def _stop_users(self, users: list[User], stop_timeout: float, caller: asyncio.Task | None) -> None:
        waiting: list[asyncio.Task[None]] = []
        for user in users:
            task = user._task
            if task is None or task.done():
                continue
            if caller is not None and task is caller:
                task.cancel()  # the user that asked to stop: cancel it, never wait on ourselves
                continue
            user.stop(force=stop_timeout <= 0)
            waiting.append(task)
        if not waiting:
            return
        deadline = None
        if stop_timeout > 0:
            # the deadline is armed on the loop, not kept by this coroutine: if whoever awaits this
            # stop is cancelled (a new ramp step, a new spawn message), the users still get stopped
            deadline = asyncio.get_running_loop().call_later(
                stop_timeout, self._deadline, waiting, stop_timeout
            )
        await asyncio.wait(waiting)  # unlike gather, being cancelled here does not cancel the users
        if deadline is not None:
            deadline.cancel()

    def _deadline(self, tasks: list[asyncio.Task[None]], stop_timeout: float) -> None:
        pending = [t for t in tasks if not t.done()]
        if not pending:
            return
        self.force_stopped += len(pending)
        logger.info(
            "%d user(s) had not finished their task %s s after the stop request; stopping them now",
            len(pending),
            f"{stop_timeout:g}",
        )
        for task in pending:
            task.cancel()

    async def kill_all(self) -> None:
        """Cancel every user task at once and wait for them (their on_stop still runs)."""
        tasks = list(self._tasks)
        self._active.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
