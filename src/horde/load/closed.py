"""ClosedUsers: a fixed number of users, ramped at a spawn rate (plan kind ``"users"``).

The planning is the UsersDispatcher's (pure, untouched); this module wraps it as a LoadModel. A payload is
one process's absolute target ``{class_name: count}``; the ``"users"`` applier starts and stops that
process's users until it runs exactly that.

>>> model = ClosedUsers([Shopper, Admin], user_count=100, spawn_rate=10, run_time=300)
>>> model.describe()
'100 users at 10/s, weights Shopper 3 : Admin 1, for 5m'
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from horde.dispatch import UsersDispatcher
from horde.load.model import LoadModel, Node, PlanContext, PlanStep, format_duration, format_rate
from horde.load.registry import LoadHost, register_kind, register_model

logger = logging.getLogger(__name__)

KIND = "users"
HIGH_RATE_PER_WORKER = 100.0  # users/s per process above which the start of a ramp gets bursty


class ClosedUsers:
    """``user_count`` users of ``user_classes`` (by weight and fixed_count), started at ``spawn_rate``/s.

    ``classes`` restricts which classes *new* users come from (a shape's third tick element): names or
    classes among ``user_classes``; ``None`` keeps the running plan's selection (initially all).
    ``run_time`` (seconds) only feeds :meth:`describe`; the run session owns the timer.
    """

    kind = KIND

    def __init__(
        self,
        user_classes: Sequence[Any],
        user_count: int,
        spawn_rate: float,
        classes: Sequence[Any] | None = None,
        run_time: float | None = None,
        *,
        dispatcher_class: type | None = None,
    ) -> None:
        self.user_classes = list(user_classes)
        # a whole float (a shape returning 10.0) is a count; anything else is reported by validate()
        count: Any = user_count
        if isinstance(count, float) and count.is_integer():
            count = int(count)
        self.user_count: int = count
        self.spawn_rate = spawn_rate
        self.classes = list(classes) if classes is not None else None
        self.run_time = run_time
        self.dispatcher_class = dispatcher_class

    def __repr__(self) -> str:
        return f"ClosedUsers({self.describe()!r})"

    # ---- validation ------------------------------------------------------------------------------------
    def validate(self) -> list[str]:
        problems = [*self._class_problems(), *self._number_problems(), *self._selection_problems()]
        return problems

    def _class_problems(self) -> list[str]:
        if not self.user_classes:
            return ["There are no user classes to run."]
        problems = []
        names = [_name(c) for c in self.user_classes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(f"User class names must be unique; {', '.join(dupes)} appear more than once.")
        valid = True
        for cls, name in zip(self.user_classes, names, strict=True):
            weight, fixed = getattr(cls, "weight", 1), getattr(cls, "fixed_count", 0)
            if not _is_number(weight) or not math.isfinite(weight) or weight < 0:
                problems.append(f"{name}.weight must be a finite number of 0 or more, got {weight!r}.")
                valid = False
            if isinstance(fixed, bool) or not isinstance(fixed, int) or fixed < 0:
                problems.append(f"{name}.fixed_count must be a whole number of 0 or more, got {fixed!r}.")
                valid = False
        if valid and not any(_can_start(c) for c in self.user_classes):
            problems.append(
                "Every user class has weight 0 and no fixed_count, so no user can be started "
                f"({', '.join(names)})."
            )
        return problems

    def _number_problems(self) -> list[str]:
        problems = []
        count = self.user_count
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            problems.append(f"The user count must be a whole number of 0 or more, got {count!r}.")
        rate = self.spawn_rate
        if not _is_number(rate) or not math.isfinite(rate) or rate <= 0:
            problems.append(
                f"The spawn rate must be a finite number of users per second above 0, got {rate!r}."
            )
        run_time = self.run_time
        if run_time is not None and (
            not _is_number(run_time) or not math.isfinite(run_time) or run_time <= 0
        ):
            problems.append(f"The run time must be a finite number of seconds above 0, got {run_time!r}.")
        return problems

    def _selection_problems(self) -> list[str]:
        if self.classes is None:
            return []
        known = {_name(c): c for c in self.user_classes}
        names = [c if isinstance(c, str) else _name(c) for c in self.classes]
        problems = []
        unknown = [n for n in names if n not in known]
        if unknown:
            problems.append(
                f"The class selection names {', '.join(map(str, unknown))}, not among the user classes "
                f"({', '.join(known) or 'none'})."
            )
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(f"The class selection lists {', '.join(dupes)} more than once.")
        chosen = [known[n] for n in names if n in known]
        if chosen and not unknown and not any(_can_start(c) for c in chosen):
            problems.append(
                f"No selected class can be started: {', '.join(names)} all have weight 0 and no fixed_count."
            )
        return problems

    # ---- description -----------------------------------------------------------------------------------
    def describe(self) -> str:
        count = self.user_count
        rate = format_rate(self.spawn_rate) if _is_number(self.spawn_rate) else repr(self.spawn_rate)
        weighted = [c for c in self.user_classes if _number(getattr(c, "fixed_count", 0)) <= 0]
        fixed = [c for c in self.user_classes if _number(getattr(c, "fixed_count", 0)) > 0]
        if len(self.user_classes) == 1 and weighted:
            noun = f"{_name(weighted[0])} user" + ("" if count == 1 else "s")
            parts = [f"{count} {noun} at {rate}"]
        else:
            parts = [f"{count} user{'' if count == 1 else 's'} at {rate}"]
            if weighted:
                weights = " : ".join(f"{_name(c)} {_fmt_num(getattr(c, 'weight', 1))}" for c in weighted)
                parts.append(f"weights {weights}")
            if fixed:
                parts.append("fixed " + ", ".join(f"{_name(c)} {c.fixed_count}" for c in fixed))
        if self.classes is not None:
            chosen = [c if isinstance(c, str) else _name(c) for c in self.classes]
            parts.append(f"new users from {', '.join(chosen) or 'no class'} only")
        if _is_number(self.run_time) and self.run_time:
            parts.append(f"for {format_duration(float(self.run_time))}")
        return ", ".join(parts)

    # ---- planning --------------------------------------------------------------------------------------
    def planner(self, workers: Iterable[Node], context: PlanContext) -> ClosedPlanner:
        return ClosedPlanner(self, workers, context)


class ClosedPlanner:
    """The UsersDispatcher as a Planner: its steps, then a ``complete`` marker per finished ramp."""

    kind = KIND

    def __init__(self, model: ClosedUsers, workers: Iterable[Node], context: PlanContext) -> None:
        nodes = list(workers)
        factory = model.dispatcher_class or context.dispatcher_class or UsersDispatcher
        self._dispatcher: UsersDispatcher = factory(nodes, model.user_classes or list(context.user_classes))
        self._workers = len(nodes)
        self._since_marker = False  # steps were yielded since the last complete marker
        self._only_rebalance = True  # ... and all of them only re-placed users
        self._dispatch(model)

    @property
    def dispatcher(self) -> UsersDispatcher:
        """The dispatcher behind this plan (read its public views; do not iterate it)."""
        return self._dispatcher

    @property
    def target_user_count(self) -> int:
        return self._dispatcher.target_user_count

    @property
    def spawn_rate(self) -> float:
        return self._dispatcher.spawn_rate or 0.0

    def _dispatch(self, model: ClosedUsers) -> None:
        self._dispatcher.new_dispatch(int(model.user_count), float(model.spawn_rate), model.classes)
        self._since_marker = False
        self._only_rebalance = True
        if float(model.spawn_rate) / max(1, self._workers) > HIGH_RATE_PER_WORKER:
            logger.warning(
                "The spawn rate is very high (above %g users/s per process): users may start in bursts and "
                "the first seconds of the test may not reflect steady load",
                HIGH_RATE_PER_WORKER,
            )

    def retarget(self, model: LoadModel) -> bool:
        if not isinstance(model, ClosedUsers):
            return False
        self._dispatch(model)
        return True

    def add_worker(self, node: Node) -> None:
        if node.id not in self._dispatcher.worker_ids:
            self._workers += 1
        self._dispatcher.add_worker(node)

    def remove_worker(self, worker_id: str) -> None:
        if worker_id in self._dispatcher.worker_ids:
            self._workers -= 1
        self._dispatcher.remove_worker(worker_id)

    def __iter__(self) -> Iterator[PlanStep]:
        return self

    def __next__(self) -> PlanStep:
        step = next(self._dispatcher, None)
        if step is not None:
            self._since_marker = True
            self._only_rebalance = self._only_rebalance and step.rebalance
            return PlanStep(payloads=step.users, delay=step.delay, rebalance=step.rebalance)
        if not self._since_marker:
            raise StopIteration
        rebalance = self._only_rebalance
        self._since_marker, self._only_rebalance = False, True
        return PlanStep(complete=True, rebalance=rebalance, totals=self._dispatcher.class_totals())


class UsersApplier:
    """The ``"users"`` kind in one process: run exactly ``{class_name: count}`` users."""

    def __init__(self, host: LoadHost) -> None:
        self.host = host

    async def apply(self, payload: Any) -> None:
        env = self.host.environment
        await self.host.users.apply(dict(payload), env.user_classes_by_name(), env.stop_timeout)

    async def stop(self) -> None:
        """Nothing of its own to stop: the runner stops the users."""


def _name(cls: Any) -> str:
    return str(getattr(cls, "__name__", cls))


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _number(value: Any) -> float:
    return float(value) if _is_number(value) else 0.0


def _can_start(cls: Any) -> bool:
    return _number(getattr(cls, "weight", 1)) > 0 or _number(getattr(cls, "fixed_count", 0)) > 0


def _fmt_num(value: Any) -> str:
    return f"{value:g}" if _is_number(value) else repr(value)


register_kind(KIND, UsersApplier)
register_model(KIND, ClosedUsers)
