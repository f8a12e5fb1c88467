"""ShapeModel: a LoadTestShape's ``tick()`` decides users and spawn rate, once per clock second.

Each tick that returns something new re-targets a closed-users plan (``ClosedUsers`` with the tick's user
count, spawn rate and optional class selection), abandoning the part of a ramp not yet done; a tick that
returns ``None`` ends the test with the reason ``"the load shape ended"``. The plan kind is ``"users"``:
workers apply a shape's payloads exactly as a plain ramp's. Time is the planner's clock (the runner's
``env.clock``), so tests drive shapes with a FakeClock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from horde.clock import Clock
from horde.load.closed import KIND, ClosedPlanner, ClosedUsers
from horde.load.model import LoadModel, Node, PlanContext, PlanStep, format_duration
from horde.load.registry import register_model
from horde.shape import LoadTestShape

logger = logging.getLogger(__name__)

SHAPE_ENDED = "the load shape ended"
TICK_INTERVAL = 1.0
_EPSILON = 1e-9  # a tick due "now" is not missed by float rounding of the sleep that led here


@dataclass(frozen=True)
class ShapeTick:
    """What one tick asks for (only produced when it differs from the previous tick)."""

    user_count: int
    spawn_rate: float
    classes: list[Any] | None = None


class ShapeTicker:
    """The tick loop's pure core: when the next tick is due, and what it changes.

    >>> ticker = ShapeTicker(shape, clock)
    >>> ticker.due(clock.monotonic())      # the first tick is due at once
    True
    >>> change = ticker.tick(clock.monotonic())   # a ShapeTick, or None if nothing changed
    """

    def __init__(self, shape: LoadTestShape, clock: Clock) -> None:
        shape.clock = clock  # the shape's run time is the runner's clock, whatever it was built with
        shape.reset_time()
        self.shape = shape
        self.next_at: float | None = None  # None: the first tick is due at once
        self.ended = False
        self.current: ShapeTick | None = None
        self._last: tuple[Any, ...] | None = None

    def due(self, now: float) -> bool:
        return not self.ended and (self.next_at is None or now >= self.next_at - _EPSILON)

    def tick(self, now: float) -> ShapeTick | None:
        """Run one tick; returns the change it asks for, or None (no change, or the shape ended:
        see :attr:`ended`). The next tick is due one second after this one."""
        self.next_at = now + TICK_INTERVAL
        result = self.shape.tick()
        if result is None:
            self.ended = True
            logger.info("Shape test stopping")
            return None
        key = tuple(result)
        if key == self._last:
            return None
        self._last = key
        user_count, spawn_rate, *rest = result
        classes = rest[0] if rest else None
        self.current = ShapeTick(user_count, spawn_rate, list(classes) if classes is not None else None)
        logger.info("Shape test updating to %s users at %.2f spawn rate", user_count, spawn_rate)
        return self.current


class ShapeModel:
    """The environment's LoadTestShape as a load model.

    >>> runner.start_load(ShapeModel(Stages(), env.user_classes))
    """

    kind = KIND

    def __init__(
        self,
        shape: LoadTestShape,
        user_classes: Sequence[Any] | None = None,
        run_time: float | None = None,
        *,
        dispatcher_class: type | None = None,
    ) -> None:
        self.shape = shape
        self.user_classes = list(user_classes) if user_classes is not None else None
        self.run_time = run_time
        self.dispatcher_class = dispatcher_class

    def __repr__(self) -> str:
        return f"ShapeModel({self.describe()!r})"

    def validate(self) -> list[str]:
        problems = []
        if not isinstance(self.shape, LoadTestShape):
            problems.append(f"The load shape must be a LoadTestShape instance, got {self.shape!r}.")
        elif type(self.shape).tick is LoadTestShape.tick:
            problems.append(f"The load shape {type(self.shape).__name__} does not implement tick().")
        if self.user_classes is not None:
            # what the ticks will plan with must be runnable; the ticks' own numbers are checked as they come
            probe = ClosedUsers(self.user_classes, 0, 1.0, run_time=self.run_time)
            problems.extend(probe.validate())
        return problems

    def describe(self) -> str:
        name = type(self.shape).__name__
        text = f"users and spawn rate from the load shape {name}, re-read every second"
        classes = self.user_classes or []
        if len(classes) > 1:
            weights = " : ".join(f"{c.__name__} {getattr(c, 'weight', 1):g}" for c in classes)
            text += f", weights {weights}"
        if self.run_time:
            text += f", for at most {format_duration(float(self.run_time))}"
        return text

    def planner(self, workers: Iterable[Node], context: PlanContext) -> ShapePlanner:
        return ShapePlanner(self, workers, context)


class ShapePlanner:
    """Interleaves the shape's ticks with the steps of the closed-users plan they re-target.

    The closed plan is created at the first tick that asks for users. Between its steps the planner yields
    wake-ups so that the driver asks it again at each tick. A ``ClosedUsers`` retarget (a user editing the
    count mid-test) hands the plan over: the shape stops ticking. Starting the same shape again while it runs
    is ignored.
    """

    kind = KIND

    def __init__(self, model: ShapeModel, workers: Iterable[Node], context: PlanContext) -> None:
        self._model = model
        self._clock = context.clock
        self._context = context
        self._workers: dict[str, Node] = {n.id: n for n in workers}
        self._classes = model.user_classes if model.user_classes is not None else list(context.user_classes)
        self.ticker = ShapeTicker(model.shape, context.clock)
        self._inner: ClosedPlanner | None = None
        self._held: PlanStep | None = None  # the closed plan's next step, due at _held_due
        self._held_due = 0.0
        self._last_inner_at: float | None = None
        self._yielded_inner = False
        self._ticking = True
        self._ended = False

    @property
    def target_user_count(self) -> int:
        return self._inner.target_user_count if self._inner is not None else 0

    @property
    def spawn_rate(self) -> float:
        return self._inner.spawn_rate if self._inner is not None else 0.0

    def add_worker(self, node: Node) -> None:
        self._workers[node.id] = node
        if self._inner is not None:
            self._inner.add_worker(node)

    def remove_worker(self, worker_id: str) -> None:
        self._workers.pop(worker_id, None)
        if self._inner is not None:
            self._inner.remove_worker(worker_id)

    def retarget(self, model: LoadModel) -> bool:
        if isinstance(model, ShapeModel):
            logger.info("A shape test is already running; ignoring the new start")
            return True
        if not isinstance(model, ClosedUsers):
            return False
        if self._inner is None:
            self._inner = model.planner(self._workers.values(), self._context)
        else:
            self._inner.retarget(model)
        self._ticking = False
        self._held = None
        return True

    def __iter__(self) -> Iterator[PlanStep]:
        return self

    def __next__(self) -> PlanStep:
        if self._ended:
            raise StopIteration
        now = self._clock.monotonic()
        if self._yielded_inner:  # the driver applies the step it fetched last now: pace from here
            self._last_inner_at, self._yielded_inner = now, False
        if self._ticking and self.ticker.due(now):
            end = self._tick(now)
            if end is not None:
                return end
        if self._held is None and self._inner is not None:
            step = next(self._inner, None)
            if step is not None:
                base = self._last_inner_at if self._last_inner_at is not None else now
                self._held, self._held_due = step, base + step.delay
        next_tick = self.ticker.next_at if self._ticking else None
        # a ramp step due with the next tick waits for it: the tick may abandon the ramp
        if self._held is not None and (next_tick is None or self._held_due < next_tick - _EPSILON):
            step, self._held = self._held, None
            self._yielded_inner = True
            return replace(step, delay=max(0.0, self._held_due - now))
        if next_tick is None:
            raise StopIteration  # handed over and nothing left to do (until workers change)
        return PlanStep(delay=max(0.0, next_tick - now))  # wake me at the next tick

    def _tick(self, now: float) -> PlanStep | None:
        change = self.ticker.tick(now)
        if self.ticker.ended:
            self._ended = True
            return PlanStep(end=SHAPE_ENDED)
        if change is None:
            return None
        model = ClosedUsers(
            self._classes,
            change.user_count,
            change.spawn_rate,
            change.classes,
            dispatcher_class=self._model.dispatcher_class,
        )
        problems = model.validate()
        if problems:
            self._ended = True
            return PlanStep(end=f"the load shape asked for an impossible load: {' '.join(problems)}")
        if self._inner is None:
            self._inner = model.planner(self._workers.values(), self._context)
        else:
            self._inner.retarget(model)
        self._held, self._last_inner_at = None, None  # the unfinished ramp is abandoned
        return None


register_model("shape", ShapeModel)
