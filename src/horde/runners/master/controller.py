"""The master's controller: one task that owns the state machine, the dispatcher and every timer.

It takes commands (start, stop, quit) and worker messages from one ordered queue, and paces ramps,
checks liveness and enforces deadlines with timers on the environment's clock instead of sleeping, so a
fake clock drives all of it in tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from horde.rpc.protocol import Message
from horde.runners.base import RunnerState
from horde.runners.master.core import RAMP_ACK_TIMEOUT, MasterCore
from horde.runners.nodes import WorkerNode

logger = logging.getLogger("horde.runners.master")


class ControllerMixin(MasterCore):
    # ---- the loop ------------------------------------------------------------------------------------
    async def _controller(self) -> None:
        while True:
            item = await self._next_item()
            try:
                if item is None:
                    await self._on_timers()
                elif item[0] == "msg":
                    await self._on_message(item[1])
                else:
                    await self._on_command(item)
                    await self._on_timers()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._handler_failed(item, e)

    async def _next_item(self) -> tuple[Any, ...] | None:
        """The next queued item, or None once the earliest timer is due."""
        try:
            return self._inbox.get_nowait()
        except asyncio.QueueEmpty:
            pass
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
        if self._next_step is not None:
            timers.append(self._next_step_at)
        if self._ramp_acks_deadline is not None:
            timers.append(self._ramp_acks_deadline)
        if self._pending is not None:
            timers.append(self._pending.deadline)
        return min(timers)

    async def _on_timers(self) -> None:
        now = self._now()
        if now >= self._next_liveness_check:
            await self._check_liveness(now)
        while self._next_step is not None and self._now() >= self._next_step_at:
            await self._apply_step()
        if self._ramp_acks_deadline is not None and self._now() >= self._ramp_acks_deadline:
            missing = sorted(self._unconfirmed)
            logger.warning(
                "Ramp complete, but %d worker(s) had not confirmed it: %s", len(missing), ", ".join(missing)
            )
            await self._ramp_complete()
        if self._pending is not None and self._now() >= self._pending.deadline:
            logger.error(
                "No final stats from %d worker(s) after the stop deadline: %s",
                len(self._pending.waiting),
                ", ".join(sorted(self._pending.waiting)),
            )
            await self._finish_pending()

    async def _on_command(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "start":
            _, count, rate, classes, fut = item
            await self._start(count, rate, classes, fut)
        elif kind == "stop":
            await self._begin_stop("stop", item[1])
        elif kind == "quit":
            await self._begin_stop("quit", item[1])

    # ---- ramps ---------------------------------------------------------------------------------------
    async def _start(
        self, count: int, rate: float, classes: list[Any] | None, fut: asyncio.Future[None]
    ) -> None:
        if self._pending is not None:
            fut.set_exception(RuntimeError("the master is stopping; start again once it has stopped"))
            return
        active = sorted(self.nodes.active, key=lambda n: n.id)
        if not active:
            logger.warning("You can't start a distributed test before at least one worker is connected")
            fut.set_result(None)
            return
        env = self.environment
        if not self._testing():
            await self._begin_test()
            self._options_sent.clear()
        self.target_user_count = count
        self.spawn_rate = rate
        if rate / len(active) > 100:
            logger.warning("Spawn rate per worker is above 100 users/s; the ramp may be bursty")
        if self._dispatcher is None:
            self._dispatcher = env.dispatcher_class(active, env.user_classes)
        self._dispatcher.new_dispatch(count, rate, classes)
        self.state = RunnerState.SPAWNING
        self._ramp_waiters.append(fut)
        self._rebalancing = False
        self._begin_steps()
        await self._on_timers()

    def _begin_steps(self) -> None:
        self._steps = iter(self._dispatcher)
        self._ramp_acks_deadline = None
        self._fetch_next_step(first=True)

    def _fetch_next_step(self, first: bool = False) -> None:
        assert self._steps is not None
        step = next(self._steps, None)
        self._next_step = step
        if step is None:
            return
        base = self._now() if first or self._last_step_at is None else self._last_step_at
        self._next_step_at = base + (0.0 if first else step.delay)

    async def _apply_step(self) -> None:
        step = self._next_step
        self._last_step_at = self._now()
        await self._send_targets(step.users)
        self._fetch_next_step()
        if self._next_step is None:
            self._steps = None
            self.target_user_classes_count = _sum_maps(step.users)
            self._ramp_acks_deadline = self._now() + RAMP_ACK_TIMEOUT
            await self._check_ramp_acks()

    async def _send_targets(self, users: dict[str, dict[str, int]]) -> None:
        """Send each worker only the classes whose target changed; unchanged workers get nothing."""
        for worker_id, target in users.items():
            node = self.nodes.get(worker_id)
            if node is None or node.state == RunnerState.MISSING:
                continue
            changed = {name: n for name, n in target.items() if node.target.get(name, 0) != n}
            first = worker_id not in self._options_sent
            if not changed and not first:
                continue
            node.target = {k: v for k, v in target.items() if v}
            await self._send(worker_id, Message("spawn", self._spawn_payload(node, changed, first)))

    def _spawn_payload(self, node: WorkerNode, counts: dict[str, int], first: bool) -> dict[str, Any]:
        env = self.environment
        self._next_spawn_seq(node)
        data: dict[str, Any] = {
            "seq": self._spawn_seq,
            "user_classes_count": counts,
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
        counts = {cls.__name__: target.get(cls.__name__, 0) for cls in self.environment.user_classes}
        data = self._spawn_payload(node, counts, first=False)
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
        await env.events.spawning_complete.fire_async(user_count=count)
        data = {"user_count": count, "stats_generation": self._stats_generation}
        for node in self.nodes.active:
            await self._send(node.id, Message("spawning_complete", data))

    async def _rebalance(self) -> None:
        """Re-place users after a worker joined or left, paced by the current spawn rate."""
        if self._dispatcher is None or not self._testing():
            return
        if self._steps is not None:
            return  # a ramp is in progress: its next steps already account for the change
        # the dispatcher knows workers changed: iterating it again yields the re-placing steps
        self._rebalancing = self.state == RunnerState.RUNNING
        self._begin_steps()
        await self._on_timers()


def _sum_maps(users: dict[str, dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for counts in users.values():
        total.update(counts)
    return {k: v for k, v in total.items() if v}


def _fmt(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no users"


def _plain_options(options: Any) -> dict[str, Any]:
    """The master's options that are plain values (they travel to workers once per test)."""
    if options is None:
        return {}
    plain = (str, int, float, bool, type(None))
    out: dict[str, Any] = {}
    for key, value in vars(options).items():
        if isinstance(value, plain) or (isinstance(value, list) and all(isinstance(v, plain) for v in value)):
            out[key] = value
    return out
