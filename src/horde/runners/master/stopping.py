"""The stop/quit handshake: tell every reachable worker, wait for each one's final stats, or a deadline.

A stop (or quit) is one :class:`Pending`: the workers still to acknowledge, a deadline on the clock
(``stop_timeout`` plus a margin for the final report) and the futures of everyone waiting. A quit asked
for during a stop turns that stop into a quit; a worker lost meanwhile counts as acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace

from horde.rpc.protocol import Message
from horde.runners.base import RunnerState
from horde.runners.master.core import STOP_MARGIN, MasterCore

logger = logging.getLogger("horde.runners.master")


@dataclass
class Pending:
    """A stop or quit waiting for workers' acknowledgements."""

    kind: str
    waiting: set[str]
    deadline: float
    futures: list[asyncio.Future[None]] = field(default_factory=list)


class StoppingMixin(MasterCore):
    async def _begin_stop(self, kind: str, fut: asyncio.Future[None]) -> None:
        if self._pending is not None:
            if kind == "quit" and self._pending.kind == "stop":
                self._pending.kind = "quit"  # the stop turns into a quit once workers acknowledge it
            self._pending.futures.append(fut)
            return
        if self.state in (RunnerState.READY, RunnerState.STOPPED) and kind == "stop":
            fut.set_result(None)
            return
        was_testing = self.state not in (RunnerState.READY, RunnerState.STOPPED)
        if was_testing:
            await self.environment.events.test_stopping.fire_async(environment=self.environment)
            self.final_user_classes_count = self.user_classes_count
            self._final_nodes = [replace(n) for n in self.nodes]
        self.state = RunnerState.STOPPING
        self._abandon_ramp()
        reachable = [n for n in self.nodes if n.state != RunnerState.MISSING]
        self._pending = Pending(
            kind=kind,
            waiting={n.id for n in reachable},
            deadline=self._now() + self.environment.stop_timeout + STOP_MARGIN,
            futures=[fut],
        )
        self._pending_was_testing = was_testing
        data = {"now": True} if self._hurried else {}  # after a hurry, no stop waits for running tasks
        for node in reachable:
            await self._send(node.id, Message(kind, data))
        for node in self.nodes.missing:
            await self._send(node.id, Message(kind, data))  # in case it is alive after all
        if not self._pending.waiting:
            await self._finish_pending()

    def _abandon_ramp(self) -> None:
        """Forget the ramp in progress; whoever awaited it is released (the test is stopping)."""
        self._driver = None
        self._ramp_acks_deadline = None
        waiters, self._ramp_waiters = self._ramp_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _finish_pending(self) -> None:
        pending, self._pending = self._pending, None
        assert pending is not None
        if self._merger is not None:
            await self._merger.flush()  # every report received so far is in the numbers from here on
        if pending.kind == "quit":
            for node in self.nodes:
                self.nodes.remove(node.id)
            self._changed()
        self.state = RunnerState.STOPPED
        if self._pending_was_testing:
            for line in self.monitor.summary_warnings():
                logger.warning(line)
            self._stopped.set()
            await self.environment.events.test_stop.fire_async(environment=self.environment)
        for fut in pending.futures:
            if not fut.done():
                fut.set_result(None)

    def hurry(self) -> None:
        """Stop without waiting for running tasks: workers kill their users and report at once."""
        self.environment.stop_timeout = 0
        self._hurried = True
        pending = self._pending
        if pending is None:
            return
        pending.deadline = min(pending.deadline, self._now() + 1.0)
        self._command(("timers",))  # the controller may be waiting for the old deadline
        for node_id in pending.waiting:
            self.transport.send_nowait(node_id, Message(pending.kind, {"now": True}))

    def _acknowledged(self, node_id: str) -> None:
        if self._pending is not None:
            self._pending.waiting.discard(node_id)
