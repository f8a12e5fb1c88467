"""StepDriver: paces any planner's steps on a clock, for the local runner and the master alike.

The core is pure and never sleeps: :meth:`StepDriver.next_due` says when the next step is due (``None``:
nothing to do until the plan changes) and :meth:`StepDriver.pop_due` returns the steps due by ``now``. A
timer-driven caller (the master's controller) arms a timer for ``next_due()`` and calls ``pop_due`` when it
fires; an awaiting caller (the local runner) uses :meth:`StepDriver.run`.

Pacing is start to start: a step's delay counts from the moment the previous step was popped (applied),
so time spent applying a step (users finishing their task within stop_timeout) is absorbed by the next
delay instead of adding to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from horde.load.model import Node, Planner, PlanStep

if TYPE_CHECKING:
    from horde.clock import Clock
    from horde.load.model import LoadModel

_EPSILON = 1e-9  # a step due "now" is not missed by float rounding of the sleep that led here
MAX_STEPS_PER_POP = 100_000  # a planner yielding zero-delay steps for ever is a bug, not a plan


class StepDriver:
    """Holds the planner's next step and when it is due.

    >>> driver = StepDriver(model.planner([LocalNode()], PlanContext(clock)), clock)
    >>> driver.start()
    >>> driver.next_due()          # when to call pop_due (None: the plan is idle)
    >>> for step in driver.pop_due(clock.monotonic()):
    ...     send(step.payloads)
    """

    def __init__(self, planner: Planner, clock: Clock) -> None:
        self.planner = planner
        self.clock = clock
        self._held: PlanStep | None = None
        self._due: float | None = None
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    @property
    def idle(self) -> bool:
        """True when no step is pending: the plan is done until workers change or it is re-targeted."""
        return self._held is None

    def start(self, now: float | None = None) -> None:
        """Fetch the plan's first step (due at ``now``); a second call does nothing."""
        if self._started:
            return
        self._started = True
        self._fetch(self._now(now))

    def next_due(self) -> float | None:
        """Clock time (``clock.monotonic()``) the next step is due at; None when idle."""
        return self._due if self._held is not None else None

    def pop_due(self, now: float | None = None) -> list[PlanStep]:
        """The steps due by ``now``, in order, to apply now; fetches the next ones as it goes.

        Wake-up steps (no payloads, no marker) are consumed here and never returned.
        """
        now = self._now(now)
        due: list[PlanStep] = []
        for _ in range(MAX_STEPS_PER_POP):
            if self._held is None or self._due is None or self._due > now + _EPSILON:
                return due
            step, self._held = self._held, None
            self._fetch(now)  # the planner is asked at the moment this step is applied
            if not step.is_wakeup:
                due.append(step)
        raise RuntimeError(f"{type(self.planner).__name__} yielded over {MAX_STEPS_PER_POP} steps at once")

    # ---- changes while the plan runs ---------------------------------------------------------------
    def add_worker(self, node: Node, now: float | None = None) -> None:
        """A worker joined; an idle plan is asked again (it may now have users to move there)."""
        self.planner.add_worker(node)
        self._resume(now)

    def remove_worker(self, worker_id: str, now: float | None = None) -> None:
        """A worker left or was lost; the pending step no longer addresses it."""
        self.planner.remove_worker(worker_id)
        held = self._held
        if held is not None and worker_id in held.payloads:
            payloads = {wid: p for wid, p in held.payloads.items() if wid != worker_id}
            self._held = replace(held, payloads=payloads)
        self._resume(now)

    def remove_workers(self, worker_ids: Iterable[str], now: float | None = None) -> None:
        """Several workers left at once (a rack went down): :meth:`remove_worker` for each, with the
        pending step trimmed in one pass. Trimming it once per worker copied the step's payloads for every
        lost worker: 300 lost of 5,000 blocked a master's loop for 400 ms."""
        gone = set(worker_ids)
        for worker_id in gone:
            self.planner.remove_worker(worker_id)
        held = self._held
        if held is not None and not gone.isdisjoint(held.payloads):
            payloads = {wid: p for wid, p in held.payloads.items() if wid not in gone}
            self._held = replace(held, payloads=payloads)
        self._resume(now)

    def retarget(self, model: LoadModel, now: float | None = None) -> bool:
        """Hand ``model`` to the running plan; its next step replaces the pending one (an unfinished
        ramp is abandoned). False if the plan cannot take this model (start a fresh test instead)."""
        if not self.planner.retarget(model):
            return False
        self._held = None
        if self._started:
            self._fetch(self._now(now))
        return True

    def _resume(self, now: float | None) -> None:
        if self._started and self._held is None:
            self._fetch(self._now(now))

    # ---- awaiting callers --------------------------------------------------------------------------
    async def run(self, apply: Callable[[PlanStep], Awaitable[None]]) -> None:
        """Start if needed, then sleep until each step is due and ``await apply(step)``; returns when idle.

        Cancel the task running this to abandon the plan (for example to re-target it).
        """
        self.start()
        while (due := self.next_due()) is not None:
            wait = due - self.clock.monotonic()
            if wait > _EPSILON:
                await self.clock.sleep(wait)
                continue
            for step in self.pop_due():
                await apply(step)

    # ---- internals -----------------------------------------------------------------------------------
    def _now(self, now: float | None) -> float:
        return self.clock.monotonic() if now is None else now

    def _fetch(self, base: float) -> None:
        step = next(self.planner, None)
        if step is None:
            self._held = self._due = None
            return
        self._held, self._due = step, base + max(0.0, step.delay)
