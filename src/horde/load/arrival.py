"""Open-model load: iterations start at a target rate whatever the response times (plan kind ``"arrival-rate"``).

Two models, as k6 defines them:

* :class:`ConstantArrivalRate` — ``rate`` iterations per second, for ``duration`` seconds (or until stopped).
* :class:`RampingArrivalRate` — from ``start_rate``, each ``(duration, target)`` stage ramps linearly to its
  target (``[(30, 50), (120, 500), (30, 0)]``).

One *arrival* starts one *iteration*: one task (weighted, tags honoured) of a user from a pool that the
worker keeps (``pre_allocated`` users at start, grown up to ``max_users``); the users keep their client,
cookies and ``on_start`` state between iterations and ``wait_time`` does not apply. An arrival that finds
no free user when the pool is at ``max_users`` is dropped and counted (``dropped_iterations``). See
:mod:`horde.load.arrival_pool` for the worker side and ``docs/open-model.md`` for why this matters.

The planner splits the rate (in milli-iterations per second) and both pool limits over the workers in the
host-aware order, so the shares sum exactly to the target and differ by at most one unit, and re-splits at
once when a worker joins, leaves or is lost. Each payload carries the whole schedule, the worker's share
and how far into the schedule the plan is, so a re-split continues the schedule instead of restarting it.

>>> model = ConstantArrivalRate(200, duration=600, pre_allocated=20, max_users=100,
...                             user_classes=[Shopper, Admin])
>>> model.describe()
'200 iterations/s for 10m, pool 20-100 users, Shopper 3 : Admin 1'
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from horde.clock import Clock
from horde.dispatch import worker_order
from horde.exceptions import ConfigurationError
from horde.load.arrival_schedule import (
    RATE_UNIT,
    RateProfile,
    parse_stages,
    rate_units,
    split_units,
)
from horde.load.model import LoadModel, Node, PlanContext, PlanStep, format_duration
from horde.load.registry import register_model

KIND = "arrival-rate"
#: the stop reason when the schedule has run its course (a planned end, like a shape ending)
ARRIVALS_ENDED = "the arrival schedule ended"
DEFAULT_PRE_ALLOCATED = 1


class _ArrivalModel:
    """What both arrival-rate models share: the pool, the classes, validation and the planner."""

    kind = KIND

    def __init__(
        self,
        *,
        pre_allocated: int | None,
        max_users: int | None,
        user_classes: Sequence[Any] | None,
        poisson: bool,
        seed: int | None = None,
    ) -> None:
        self.pre_allocated: Any = DEFAULT_PRE_ALLOCATED if pre_allocated is None else pre_allocated
        self.max_users: Any = self.pre_allocated if max_users is None else max_users
        self.user_classes = list(user_classes) if user_classes is not None else None
        self.poisson = bool(poisson)
        self.seed = seed

    # ---- what subclasses define ---------------------------------------------------------------------
    def profile(self) -> RateProfile:
        raise NotImplementedError

    def _rate_problems(self) -> list[str]:
        raise NotImplementedError

    def _rate_text(self) -> str:
        raise NotImplementedError

    def _wire_schedule(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def duration(self) -> float | None:
        """Seconds the schedule lasts (``None``: until stopped); a session may use it as the run time."""
        raise NotImplementedError

    @property
    def peak_rate(self) -> float:
        raise NotImplementedError

    # ---- LoadModel --------------------------------------------------------------------------------
    def validate(self) -> list[str]:
        problems = self._rate_problems()
        pre, top = self.pre_allocated, self.max_users
        pre_ok = _whole(pre) and pre >= 0
        top_ok = _whole(top) and top >= 1
        if not pre_ok:
            problems.append(f"pre_allocated must be a whole number of users of 0 or more, got {pre!r}.")
        if not top_ok:
            problems.append(f"max_users must be a whole number of users of 1 or more, got {top!r}.")
        if pre_ok and top_ok and pre > top:
            problems.append(f"pre_allocated ({pre}) cannot be more than max_users ({top}).")
        if self.user_classes is not None:
            problems.extend(_class_problems(self.user_classes))
        return problems

    def describe(self) -> str:
        parts = [self._rate_text()]
        pre, top = self.pre_allocated, self.max_users
        parts.append(f"pool {pre} user{'' if top == 1 else 's'}" if pre == top else f"pool {pre}-{top} users")
        if self.poisson:
            parts.append("Poisson arrivals")
        classes = [c for c in self.user_classes or [] if _number(getattr(c, "weight", 1)) > 0]
        if len(classes) > 1:
            parts.append(" : ".join(f"{_name(c)} {_number(getattr(c, 'weight', 1)):g}" for c in classes))
        elif len(classes) == 1:
            parts.append(f"{_name(classes[0])} users")
        return ", ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()!r})"

    def planner(self, workers: Iterable[Node], context: PlanContext) -> ArrivalPlanner:
        return ArrivalPlanner(self, workers, context)

    def payload_base(self) -> dict[str, Any]:
        """The part of every worker's payload that does not depend on the worker."""
        classes = [_name(c) for c in self.user_classes] if self.user_classes is not None else None
        return {
            "schedule": self._wire_schedule(),
            "poisson": self.poisson,
            "classes": classes,
            "seed": self.seed,
        }


class ConstantArrivalRate(_ArrivalModel):
    """``rate`` iterations per second, for ``duration`` seconds (``None``: until the test is stopped).

    >>> ConstantArrivalRate(200, duration=600, pre_allocated=20, max_users=100).describe()
    '200 iterations/s for 10m, pool 20-100 users'
    """

    def __init__(
        self,
        rate: float,
        duration: float | None = None,
        pre_allocated: int | None = None,
        max_users: int | None = None,
        user_classes: Sequence[Any] | None = None,
        poisson: bool = False,
        *,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            pre_allocated=pre_allocated,
            max_users=max_users,
            user_classes=user_classes,
            poisson=poisson,
            seed=seed,
        )
        self.rate: Any = rate
        self._duration: Any = duration

    @property
    def duration(self) -> float | None:
        return None if self._duration is None else float(self._duration)

    @property
    def peak_rate(self) -> float:
        return float(self.rate)

    def profile(self) -> RateProfile:
        return RateProfile.constant(float(self.rate), self.duration)

    def _rate_problems(self) -> list[str]:
        problems = []
        if not _real(self.rate) or not math.isfinite(self.rate) or self.rate <= 0:
            problems.append(
                f"The arrival rate must be a finite number of iterations per second above 0, "
                f"got {self.rate!r}."
            )
        elif rate_units(self.rate) == 0:
            problems.append(f"The arrival rate {self.rate!r}/s is below the smallest unit ({RATE_UNIT:g}/s).")
        d = self._duration
        if d is not None and (not _real(d) or not math.isfinite(d) or d <= 0):
            problems.append(f"The duration must be a finite number of seconds above 0, got {d!r}.")
        return problems

    def _rate_text(self) -> str:
        text = f"{_num(self.rate)} iterations/s"
        if _real(self._duration) and self._duration > 0:
            text += f" for {format_duration(float(self._duration))}"
        return text

    def _wire_schedule(self) -> dict[str, Any]:
        return {"start_rate": float(self.rate), "stages": [], "duration": self.duration}


class RampingArrivalRate(_ArrivalModel):
    """From ``start_rate``, each ``(duration_s, target_rate)`` stage ramps linearly to its target.

    >>> RampingArrivalRate([(30, 50), (120, 500), (30, 0)], max_users=200).describe()
    'from 0 to 50 iterations/s over 30s, to 500 over 2m, to 0 over 30s (3m), pool 1-200 users'
    """

    def __init__(
        self,
        stages: Sequence[tuple[float, float]] | str,
        pre_allocated: int | None = None,
        max_users: int | None = None,
        user_classes: Sequence[Any] | None = None,
        poisson: bool = False,
        *,
        start_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            pre_allocated=pre_allocated,
            max_users=max_users,
            user_classes=user_classes,
            poisson=poisson,
            seed=seed,
        )
        self.stages: list[Any] = parse_stages(stages) if isinstance(stages, str) else list(stages)
        self.start_rate: Any = start_rate

    @property
    def duration(self) -> float | None:
        return sum(float(d) for d, _ in self.stages)

    @property
    def peak_rate(self) -> float:
        return max([float(self.start_rate), *(float(r) for _, r in self.stages)])

    def profile(self) -> RateProfile:
        return RateProfile.stages([(float(d), float(r)) for d, r in self.stages], float(self.start_rate))

    def _rate_problems(self) -> list[str]:
        problems = []
        if not self.stages:
            problems.append("A ramping arrival rate needs at least one (duration, target rate) stage.")
        for i, stage in enumerate(self.stages, 1):
            try:
                duration, target = stage
            except (TypeError, ValueError):
                problems.append(f"Stage {i} must be a (duration, target rate) pair, got {stage!r}.")
                continue
            if not _real(duration) or not math.isfinite(duration) or duration <= 0:
                problems.append(
                    f"Stage {i}: the duration must be a number of seconds above 0, got {duration!r}."
                )
            if not _real(target) or not math.isfinite(target) or target < 0:
                problems.append(f"Stage {i}: the target rate must be a number of 0 or more, got {target!r}.")
        s = self.start_rate
        if not _real(s) or not math.isfinite(s) or s < 0:
            problems.append(
                f"The start rate must be a number of iterations per second of 0 or more, got {s!r}."
            )
        if not problems and self.peak_rate <= 0:
            problems.append("Every stage targets 0 iterations/s: nothing would ever run.")
        return problems

    def _rate_text(self) -> str:
        if not self.stages:
            return "no stages"
        steps = []
        for i, (d, r) in enumerate(self.stages):
            unit = " iterations/s" if i == 0 else ""
            steps.append(f"to {_num(r)}{unit} over {format_duration(float(d))}" if _real(d) else f"to {r!r}")
        total = self.duration if all(_real(d) for d, _ in self.stages) else None
        text = f"from {_num(self.start_rate)} " + ", ".join(steps)
        return text + (f" ({format_duration(total)})" if total else "")

    def _wire_schedule(self) -> dict[str, Any]:
        return {
            "start_rate": float(self.start_rate),
            "stages": [[float(d), float(r)] for d, r in self.stages],
            "duration": self.duration,
        }


ArrivalRateModel = ConstantArrivalRate | RampingArrivalRate


class ArrivalPlanner:
    """Splits the schedule over the workers; a new split (all workers) whenever the workers change.

    Steps: one payload per worker (``rebalance`` after the first), then a ``complete`` marker; idle until the
    workers change or the model is re-targeted. The schedule's end is enforced where the arrivals are made
    (each worker stops the test after its last arrival), so an idle plan keeps re-splitting at once.
    """

    kind = KIND

    def __init__(self, model: _ArrivalModel, workers: Iterable[Node], context: PlanContext) -> None:
        self._model = model
        self._clock: Clock = context.clock
        self._workers: dict[str, Node] = {n.id: n for n in workers}
        self._started_at: float | None = None
        self._dirty = True
        self._first = True
        self._marker_owed = False
        self._rebalance = False
        self._generation = 1
        self.last_split: dict[str, dict[str, Any]] = {}

    @property
    def model(self) -> _ArrivalModel:
        return self._model

    @property
    def target_user_count(self) -> int:
        """The pool's upper limit over the cluster (the most users this plan may run)."""
        return int(self._model.max_users)

    @property
    def spawn_rate(self) -> float:
        return 0.0

    def add_worker(self, node: Node) -> None:
        self._workers[node.id] = node
        self._dirty = True

    def remove_worker(self, worker_id: str) -> None:
        if self._workers.pop(worker_id, None) is not None:
            self._dirty = True

    def retarget(self, model: LoadModel) -> bool:
        if not isinstance(model, _ArrivalModel):
            return False
        self._model = model
        self._started_at = None  # a new schedule starts from its beginning
        self._dirty = True
        self._first = True  # ... and is a new ramp, not a rebalance
        self._generation += 1
        return True

    def __iter__(self) -> Iterator[PlanStep]:
        return self

    def __next__(self) -> PlanStep:
        now = self._clock.monotonic()
        if self._started_at is None:
            self._started_at = now
        if self._dirty and self._workers:
            self._dirty = False
            self.last_split = self.split(now - self._started_at)
            self._rebalance, self._first = not self._first, False
            self._marker_owed = True
            return PlanStep(payloads=dict(self.last_split), rebalance=self._rebalance)
        if self._marker_owed:
            self._marker_owed = False
            return PlanStep(complete=True, rebalance=self._rebalance)
        raise StopIteration

    def split(self, elapsed: float) -> dict[str, dict[str, Any]]:
        """Each worker's payload: its share of every rate and of both pool limits, at ``elapsed``."""
        return split_payloads(self._model, list(self._workers), elapsed, self._generation)


def split_payloads(
    model: _ArrivalModel, worker_ids: Sequence[str], elapsed: float, plan: int = 1
) -> dict[str, dict[str, Any]]:
    """The per-worker payloads of ``model`` over ``worker_ids`` (host-aware order decides the extra units).

    ``plan`` numbers the schedule (a re-targeted model is a new one): a worker restarts its schedule at
    ``elapsed`` for a new plan number and continues its own for a re-split of the same plan.
    """
    order = worker_order(worker_ids)
    base = model.payload_base()
    schedule = base["schedule"]
    rates = [schedule["start_rate"], *(r for _, r in schedule["stages"])]
    shares = [split_units(rate_units(r), order) for r in rates]
    pre = split_units(int(model.pre_allocated), order)
    top = split_units(int(model.max_users), order)
    out: dict[str, dict[str, Any]] = {}
    for index, wid in enumerate(order):
        own = [s[wid] * RATE_UNIT for s in shares]
        out[wid] = {
            **base,
            "schedule": {
                "start_rate": own[0],
                "stages": [[d, r] for (d, _), r in zip(schedule["stages"], own[1:], strict=True)],
                "duration": schedule["duration"],
            },
            "rate_units": [s[wid] for s in shares],
            "pre_allocated": pre[wid],
            "max_users": top[wid],
            "elapsed": elapsed,
            "plan": plan,
            "worker_index": index,
            "workers": len(order),
        }
    return out


def profile_from_wire(schedule: dict[str, Any]) -> RateProfile:
    """The RateProfile a payload's ``schedule`` describes."""
    stages = [(float(d), float(r)) for d, r in schedule.get("stages", [])]
    start = float(schedule.get("start_rate", 0.0))
    if not stages:
        duration = schedule.get("duration")
        return RateProfile.constant(start, None if duration is None else float(duration))
    return RateProfile.stages(stages, start)


# ---- front ends ----------------------------------------------------------------------------------------


def model_from_options(options: Any, user_classes: Sequence[Any] | None = None) -> ArrivalRateModel | None:
    """The arrival-rate model the options ask for, or ``None`` when they ask for none (closed users).

    Reads ``arrival_rate`` (float or ``"200/s"``), ``stages`` (``"30s:50/s,2m:500/s"`` or pairs),
    ``max_users``, ``pre_allocated``, ``poisson`` and ``run_time`` (the duration of a constant rate) from an
    argparse Namespace or any object with those attributes (missing ones count as unset). Raises
    ConfigurationError naming every problem at once (stage syntax included).
    """
    rate = getattr(options, "arrival_rate", None)
    stages = getattr(options, "stages", None)
    if rate is None and not stages:
        return None
    problems: list[str] = []
    if rate is not None and stages:
        problems.append("Give either --arrival-rate or --stages, not both.")
    pre = _int_option(getattr(options, "pre_allocated", None), "--pre-allocated", problems)
    top = _int_option(getattr(options, "max_users", None), "--max-users", problems)
    poisson = bool(getattr(options, "poisson", False))
    run_time = getattr(options, "run_time", None)
    model: ArrivalRateModel | None = None
    if stages:
        try:
            parsed = parse_stages(stages) if isinstance(stages, str) else [tuple(s) for s in stages]
            model = RampingArrivalRate(parsed, pre, top, user_classes, poisson)
        except ConfigurationError as e:
            problems.append(str(e))
    elif rate is not None:
        from horde.load.arrival_schedule import parse_rate

        try:
            value = parse_rate(rate)
        except ValueError as e:
            problems.append(f"Invalid --arrival-rate: {e}.")
        else:
            duration = float(run_time) if run_time else None
            model = ConstantArrivalRate(value, duration, pre, top, user_classes, poisson)
    if model is not None and not problems:
        problems.extend(model.validate())
    if problems:
        raise ConfigurationError(" ".join(problems))
    return model


def _int_option(value: Any, flag: str, problems: list[str]) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        problems.append(f"{flag} must be a whole number, got {value!r}.")
        return None
    if isinstance(value, float) and not value.is_integer():
        problems.append(f"{flag} must be a whole number, got {value!r}.")
        return None
    return number


# ---- helpers -------------------------------------------------------------------------------------------


def _class_problems(classes: Sequence[Any]) -> list[str]:
    if not classes:
        return ["There are no user classes to run."]
    names = [_name(c) for c in classes]
    problems = []
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        problems.append(f"User class names must be unique; {', '.join(dupes)} appear more than once.")
    weights = [getattr(c, "weight", 1) for c in classes]
    for name, w in zip(names, weights, strict=True):
        if not _real(w) or not math.isfinite(w) or w < 0:
            problems.append(f"{name}.weight must be a finite number of 0 or more, got {w!r}.")
    if all(_real(w) and w == 0 for w in weights):
        problems.append(
            f"Every user class has weight 0, so no arrival can pick one ({', '.join(names)}); "
            "fixed_count does not apply to arrival rates."
        )
    return problems


def _name(cls: Any) -> str:
    return str(getattr(cls, "__name__", cls))


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> float:
    return float(value) if _real(value) else 0.0


def _num(value: Any) -> str:
    return f"{value:g}" if _real(value) else repr(value)


register_model("constant-arrival-rate", ConstantArrivalRate)
register_model("ramping-arrival-rate", RampingArrivalRate)


# the worker side registers the plan kind; importing the models is enough for a process to apply them
from horde.load import arrival_pool as _arrival_pool  # noqa: E402,F401
