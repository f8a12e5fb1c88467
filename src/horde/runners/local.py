"""LocalRunner: one process runs every user; any load model's plan is paced by the StepDriver here.

The plan has one pseudo-worker, ``local``. Each step's payload for it goes to the applier of the plan's
kind (for ``"users"``: ``UserGroup.apply``), so a new load model runs here without a change to this file.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from horde.exceptions import StopTest
from horde.load import ClosedUsers, LoadModel, LocalNode, Planner, PlanStep, StepDriver
from horde.rpc.protocol import Message
from horde.runners.base import LOCAL_NODE_ID, RunnerState, UserRunner, _caller

logger = logging.getLogger(__name__)

__all__ = ["LOCAL_NODE_ID", "LocalNode", "LocalRunner"]


class LocalRunner(UserRunner):
    """Runs users in this process.

    >>> runner = env.create_local_runner()
    >>> runner.start(100, spawn_rate=10)   # returns at once; the ramp runs in the background
    >>> runner.start_load(ShapeModel(MyShape(), env.user_classes))   # or any LoadModel
    >>> await runner.quit()
    """

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._driver: StepDriver | None = None  # the running plan (None between tests)
        self._ramp_task: asyncio.Task[None] | None = None  # paces the driver; replaced at each start
        self._begin_task: asyncio.Task[None] | None = None  # the fresh test's start, shared by its ramps
        self._ramp_at_stop: asyncio.Task[None] | None = None

    def start(
        self, user_count: int, spawn_rate: float, user_classes: list[Any] | None = None
    ) -> asyncio.Future[None]:
        """Ramp (up or down) to ``user_count`` at ``spawn_rate`` users/s; cancels an unfinished ramp.

        ``user_classes`` restricts which classes new users come from. The awaitable resolves when the ramp
        is complete (or superseded, or the test stops).
        """
        env = self.environment
        return self.start_load(
            ClosedUsers(
                env.user_classes, user_count, spawn_rate, user_classes, dispatcher_class=env.dispatcher_class
            )
        )

    # ---- starting a model ------------------------------------------------------------------------------
    def _start_model(self, model: LoadModel) -> asyncio.Future[None]:
        self.load_registry.applier_factory(model.kind)  # an unknown plan kind fails here, not mid-ramp
        self.start_background()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        previous = self._ramp_task
        if previous is not None and not previous.done():
            previous.cancel()  # an unfinished ramp is abandoned
        stopping = self._stop_task is not None and not self._stop_task.done()
        driver = self._driver if not stopping else None
        if driver is not None and driver.retarget(model):
            planner: Planner | None = None  # the running plan took the new target
            self._note_targets(driver.planner)
        else:
            if driver is not None:  # a different kind of plan: end this test, start a fresh one
                self._request_stop(_caller())
            planner = model.planner([LocalNode(self.node_id)], self.plan_context())
            self._note_targets(planner)
        self._ramp_task = loop.create_task(self._ramp(previous, planner, waiter), name="ramp")
        return waiter

    def _note_targets(self, planner: Planner) -> None:
        self.target_user_count = planner.target_user_count
        self.spawn_rate = planner.spawn_rate

    async def _ramp(
        self, previous: asyncio.Task[None] | None, planner: Planner | None, waiter: asyncio.Future[None]
    ) -> None:
        try:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            if self._stop_task is not None and not self._stop_task.done():
                await asyncio.shield(self._stop_task)  # a start during a stop waits for it
            if planner is not None:
                await self._begin_fresh_test()
                self._driver = StepDriver(planner, self.environment.clock)
            assert self._driver is not None
            await self._driver.run(lambda step: self._apply_step(step, waiter))
        except asyncio.CancelledError:
            raise
        except StopTest as e:
            logger.error("%s", e)
            self.stop_test(str(e))
        except Exception as e:
            self.environment.events.unhandled_errors += 1
            logger.exception("the ramp failed: %s", e)
            self.stop_test(f"the ramp failed: {e!r}")
        finally:
            if not waiter.done():
                waiter.set_result(None)

    async def _begin_fresh_test(self) -> None:
        # one begin per test, shared (and shielded) so a start superseding the first one mid-way does not
        # fire test_start twice
        if self._begin_task is None:
            self._begin_task = asyncio.get_running_loop().create_task(self._begin(), name="test-start")
        await asyncio.shield(self._begin_task)

    async def _begin(self) -> None:
        await self._begin_test()
        self._check_tasks_defined()

    async def _apply_step(self, step: PlanStep, waiter: asyncio.Future[None]) -> None:
        assert self._driver is not None
        if step.end is not None:
            logger.info("Test stopping: %s", step.end)
            self.stop_test(step.end)
            return
        payload = step.payloads.get(self.node_id)
        if payload is not None:
            if not step.rebalance:
                self.state = RunnerState.SPAWNING
            await self.apply_payload(self._driver.planner.kind, payload)
        self._note_targets(self._driver.planner)
        if step.complete:
            await self._plan_complete(step)
            if not waiter.done():
                waiter.set_result(None)

    async def _plan_complete(self, step: PlanStep) -> None:
        env = self.environment
        self.target_user_classes_count = self.users.counts()
        if step.rebalance:
            await env.events.rebalanced.fire_async(user_count=self.user_count)
            return
        logger.info(
            "Ramp complete: %s (%d total users)", _fmt_counts(self.target_user_classes_count), self.user_count
        )
        await env.events.spawning_complete.fire_async(user_count=self.user_count)

    # ---- stopping ----------------------------------------------------------------------------------
    def _request_stop(self, caller: asyncio.Task[Any] | None) -> asyncio.Task[None]:
        if self._stop_task is None or self._stop_task.done():
            # the ramp this stop ends is the one running now; a start made during the stop waits for it
            self._ramp_at_stop, self._ramp_task = self._ramp_task, None
        return super()._request_stop(caller)

    async def _stop(self, caller: asyncio.Task[Any] | None) -> None:
        ramp, self._ramp_at_stop = self._ramp_at_stop, None
        idle = ramp is None and self._driver is None and self.users.running_tasks == 0
        if self.state == RunnerState.STOPPED or (self.state == RunnerState.READY and idle):
            return  # nothing to stop; a never-started runner fires no stop events (Locust's does)
        env = self.environment
        await env.events.test_stopping.fire_async(environment=env)
        self.final_user_classes_count = self.users.counts()
        self.state = RunnerState.CLEANUP
        for task in (ramp, self._begin_task):
            if task is not None and not task.done():
                task.cancel()
                if task is not caller:
                    await asyncio.gather(task, return_exceptions=True)
        await self._cancel_shape(caller)
        await self._stop_appliers()
        await self.users.stop_all(env.stop_timeout, caller)
        self._driver = self._begin_task = None
        self.state = RunnerState.STOPPED
        for line in self.monitor.summary_warnings():
            logger.warning(line)
        self._stopped.set()
        await env.events.test_stop.fire_async(environment=env)

    def send_message(self, msg_type: str, data: Any = None, client_id: str | None = None) -> None:
        """Deliver a custom message to this process's own handler (as a worker would receive it)."""
        if not self._handle_custom(Message(msg_type, data, self.node_id)):
            logger.warning("Unknown message type received: %r", msg_type)


def _fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}: {n}" for name, n in sorted(counts.items())) or "no users"
