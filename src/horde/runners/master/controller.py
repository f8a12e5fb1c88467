"""The master's controller: one task that owns the state machine, the dispatcher and every timer.

It takes commands (start, stop, quit) and worker messages from one ordered queue, and paces plans,
checks liveness and enforces deadlines with timers on the environment's clock instead of sleeping, so a
fake clock drives all of it in tests. A plan is any load model's planner, paced by the load package's
StepDriver: the controller arms a timer for ``driver.next_due()`` and sends what ``pop_due`` returns as
spawn messages naming the plan kind; nothing here knows what a kind means except how ``"users"``
travels on the wire.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from horde.load import LoadModel, Planner, PlanStep, StepDriver
from horde.load.closed import KIND as USERS
from horde.rpc.protocol import Message
from horde.runners.base import RunnerState
from horde.runners.master.core import RAMP_ACK_TIMEOUT, MasterCore
from horde.runners.nodes import WorkerNode

logger = logging.getLogger("horde.runners.master")

CONTROL_BATCH = 32  # queued items handled before the controller lets other tasks (the reader) run
SEND_BATCH = 512  # workers a plan step goes through before the controller lets the reader run


class ControllerMixin(MasterCore):
    # ---- the loop ------------------------------------------------------------------------------------
    async def _controller(self) -> None:
        handled = 0
        while True:
            handled += 1
            if handled >= CONTROL_BATCH:
                # a backlog is handled without waiting on anything, so let the reader answer heartbeats
                # between batches instead of after the whole backlog
                handled = 0
                await asyncio.sleep(0)
            item = await self._next_item()
            try:
                if item is None:
                    await self._on_timers()
                elif item[0] == "msg":
                    await self._on_message(item[1], item[2] if len(item) > 2 else None)
                else:
                    await self._on_command(item)
                    await self._on_timers()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._handler_failed(item, e)

    async def _next_item(self) -> tuple[Any, ...] | None:
        """The next command, else the next queued message, or None once the earliest timer is due.

        A due timer (a stop deadline, the liveness sweep, a ramp step) goes before the next queued message,
        then at least one message is taken before timers may go first again: neither starves the other.
        """
        if self._commands:
            return self._commands.popleft()
        if not self._inbox.empty():
            if self._timers_first and self._now() >= self._next_timer():
                self._timers_first = False
                return None
            self._timers_first = True
            return self._inbox.get_nowait()
        delay = max(0.0, self._next_timer() - self._now())
        if self._real_time:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can return an item and swallow our
            # cancellation, leaving quit waiting for this task for ever
            try:
                async with asyncio.timeout(delay):
                    return await self._inbox.get()
            except TimeoutError:
                return None
        return await self._inbox_or_clock(delay)

    async def _inbox_or_clock(self, delay: float) -> tuple[Any, ...] | None:
        getter = asyncio.ensure_future(self._inbox.get())
        sleeper = asyncio.ensure_future(self._clock.sleep(delay))
        try:
            await asyncio.wait((getter, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            if not getter.done():
                getter.cancel()  # an item not yet taken stays in the queue
        if getter.done() and not getter.cancelled():
            return getter.result()
        return None

    def _handler_failed(self, item: tuple[Any, ...] | None, e: Exception) -> None:
        if item is not None and item[0] == "msg":
            self._drop("handler error", f"{item[1].type!r} from {item[1].node_id}: {e!r}")
        else:
            self.environment.events.unhandled_errors += 1
            logger.exception("master controller failed to handle %r", item[:2] if item else "a timer")

    def _next_timer(self) -> float:
        timers = [self._next_liveness_check]
        due = self._driver.next_due() if self._driver is not None else None
        if due is not None:
            timers.append(due)
        if self._ramp_acks_deadline is not None:
            timers.append(self._ramp_acks_deadline)
        if self._pending is not None:
            timers.append(self._pending.deadline)
        return min(timers)

    async def _on_timers(self) -> None:
        now = self._now()
        if now >= self._next_liveness_check:
            await self._check_liveness(now)
        await self._apply_due_steps()
        if self._ramp_acks_deadline is not None and self._now() >= self._ramp_acks_deadline:
            logger.warning(
                "Ramp complete, but %d worker(s) had not confirmed it: %s",
                len(self._unconfirmed),
                _some(self._unconfirmed),
            )
            await self._ramp_complete()
        if self._pending is not None and self._now() >= self._pending.deadline:
            logger.error(
                "No final stats from %d worker(s) after the stop deadline: %s",
                len(self._pending.waiting),
                _some(self._pending.waiting),
            )
            await self._finish_pending()

    async def _on_command(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "start":
            _, model, fut = item
            await self._start(model, fut)
        elif kind == "stop":
            await self._begin_stop("stop", item[1])
        elif kind == "quit":
            await self._begin_stop("quit", item[1])

    # ---- plans -------------------------------------------------------------------------------------
    async def _start(self, model: LoadModel, fut: asyncio.Future[None]) -> None:
        if self._pending is not None:
            fut.set_exception(RuntimeError("the master is stopping; start again once it has stopped"))
            return
        active = sorted(self.nodes.active, key=lambda n: n.id)
        if not active:
            logger.warning("You can't start a distributed test before at least one worker is connected")
            fut.set_result(None)
            return
        driver = self._driver if self._testing() else None
        if driver is not None and not driver.retarget(model, self._now()):
            await self._restart_with(model, fut)  # another kind of plan: end this test first
            return
        if driver is None:
            driver = await self._fresh_plan(model, active)
        self._note_targets(driver.planner)
        self.state = RunnerState.SPAWNING
        self._ramp_waiters.append(fut)
        self._ramp_acks_deadline = None
        await self._on_timers()

    async def _fresh_plan(self, model: LoadModel, active: list[WorkerNode]) -> StepDriver:
        """A new test: test_start, then the model's planner over the active workers, paced on the clock."""
        await self._begin_test()
        self._reset_merged()
        self._options_sent.clear()
        planner = model.planner(active, self.plan_context())
        if len(active) and planner.spawn_rate / len(active) > 100:
            logger.warning("Spawn rate per worker is above 100 users/s; the ramp may be bursty")
        self._driver = StepDriver(planner, self._clock)
        self._driver.start(self._now())
        return self._driver

    async def _restart_with(self, model: LoadModel, fut: asyncio.Future[None]) -> None:
        stopped: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        stopped.add_done_callback(lambda _: self._command(("start", model, fut)))
        await self._begin_stop("stop", stopped)

    def _note_targets(self, planner: Planner) -> None:
        self.target_user_count = planner.target_user_count
        self.spawn_rate = planner.spawn_rate

    async def _apply_due_steps(self) -> None:
        driver = self._driver
        if driver is None:
            return
        for step in driver.pop_due(self._now()):
            if self._driver is not driver:
                return  # an earlier step ended the plan
            await self._apply_step(driver, step)

    async def _apply_step(self, driver: StepDriver, step: PlanStep) -> None:
        if step.end is not None:
            logger.info("Test stopping: %s", step.end)
            self.stop_test(step.end)
            return
        if step.payloads:
            await self._send_payloads(driver.planner.kind, step.payloads)
        self._note_targets(driver.planner)
        if step.complete:
            self.target_user_classes_count = dict(step.totals)
            self._rebalancing = step.rebalance
            self._ramp_acks_deadline = self._now() + RAMP_ACK_TIMEOUT
            await self._check_ramp_acks()

    async def _send_payloads(self, kind: str, payloads: Mapping[str, Any]) -> None:
        for i, (worker_id, payload) in enumerate(payloads.items(), 1):
            if not i % SEND_BATCH:
                await asyncio.sleep(0)  # a re-plan over thousands of workers: let heartbeats be answered
            node = self.nodes.get(worker_id)
            if node is None or node.state == RunnerState.MISSING:
                continue
            if kind == USERS:
                # a re-plan hands over the whole map; most workers keep their target (no call for those)
                if payload == node.target and worker_id in self._options_sent:
                    continue
                await self._send_users(node, payload)
            else:
                data = self._spawn_payload(node, kind, worker_id not in self._options_sent)
                data["payload"] = payload
                await self._send(worker_id, Message("spawn", data))

    async def _send_users(self, node: WorkerNode, target: dict[str, int]) -> None:
        """Send a worker only the classes whose target changed; an unchanged worker gets nothing.

        The ``"users"`` kind travels as these per-class changes in ``user_classes_count`` (the spawn
        message of protocol 1, which benchmarks/_sim_workers.py speaks); the worker rebuilds the
        absolute payload before its applier sees it.
        """
        changed = {name: n for name, n in target.items() if node.target.get(name, 0) != n}
        first = node.id not in self._options_sent
        if not changed and not first:
            return
        node.target = {k: v for k, v in target.items() if v}
        data = self._spawn_payload(node, USERS, first)
        data["user_classes_count"] = changed
        await self._send(node.id, Message("spawn", data))

    def _spawn_payload(self, node: WorkerNode, kind: str, first: bool) -> dict[str, Any]:
        env = self.environment
        self._next_spawn_seq(node)
        data: dict[str, Any] = {
            "seq": self._spawn_seq,
            "kind": kind,
            "host": env.host or "",
            "stop_timeout": env.stop_timeout,
        }
        if first:
            self._options_sent.add(node.id)
            data["options"] = _plain_options(env.parsed_options)
        return data

    def _next_spawn_seq(self, node: WorkerNode) -> None:
        """Number the next spawn message to ``node``; it stays unconfirmed until the worker applies it."""
        self._spawn_seq += 1
        node.spawn_seq_sent = self._spawn_seq
        self._unconfirmed.add(node.id)

    async def _send_full_target(self, node: WorkerNode, target: dict[str, int]) -> None:
        """Tell a worker its whole target (every class), e.g. to fence a worker that was missing."""
        node.target = {k: v for k, v in target.items() if v}
        data = self._spawn_payload(node, USERS, first=False)
        data["user_classes_count"] = {
            c.__name__: target.get(c.__name__, 0) for c in self.environment.user_classes
        }
        data["fence"] = True  # apply completely before any later spawn: no users beyond this target
        await self._send(node.id, Message("spawn", data))

    async def _check_ramp_acks(self) -> None:
        # a set of workers yet to confirm, not a scan of all workers per acknowledgement (O(N²) a ramp)
        if self._ramp_acks_deadline is not None and not self._unconfirmed:
            await self._ramp_complete()

    async def _ramp_complete(self) -> None:
        self._ramp_acks_deadline = None
        count = sum(self.target_user_classes_count.values())
        if self._rebalancing:
            self._rebalancing = False
            logger.info("Rebalance complete: %d users over %d workers", count, len(self.nodes.active))
            await self.environment.events.rebalanced.fire_async(user_count=count)
        else:
            await self._spawning_complete(count)
        waiters, self._ramp_waiters = self._ramp_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def _spawning_complete(self, count: int) -> None:
        env = self.environment
        logger.info("All users spawned: %s (%d total users)", _fmt(self.target_user_classes_count), count)
        if env.reset_stats:
            # reports measured before the workers hear of this reset must not be merged after it
            self._stats_generation += 1
            self._reset_merged()
        await env.events.spawning_complete.fire_async(user_count=count)
        data = {"user_count": count, "stats_generation": self._stats_generation}
        for node in self.nodes.active:
            await self._send(node.id, Message("spawning_complete", data))

    async def _rebalance(self) -> None:
        """Workers joined or left: the plan re-places users (paced by its rate) from its next step."""
        if self._driver is None or not self._testing():
            return
        await self._on_timers()


LOGGED_IDS = 10  # worker ids named in one log line; at 5,000 workers a full list is a 200 kB line


def _some(ids: set[str]) -> str:
    """The first few ids (sorted), and how many more."""
    shown = sorted(ids)[:LOGGED_IDS]
    more = len(ids) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


def _fmt(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no users"


# where the master's keys are is nobody else's business (and a worker has its own)
PRIVATE_OPTIONS = frozenset({"keys", "master_key", "worker_key", "authorized_workers"})


def _plain_options(options: Any) -> dict[str, Any]:
    """The master's options that are plain values (they travel to workers once per test), key paths left out."""
    if options is None:
        return {}
    plain = (str, int, float, bool, type(None))
    out: dict[str, Any] = {}
    for key, value in vars(options).items():
        if key in PRIVATE_OPTIONS:
            continue
        if isinstance(value, plain) or (isinstance(value, list) and all(isinstance(v, plain) for v in value)):
            out[key] = value
    return out
