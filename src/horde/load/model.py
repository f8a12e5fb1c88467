"""The LoadModel protocol, and the plan steps every model's planner yields.

A *load model* says how much load to generate (a closed number of users, a shape, later an arrival rate).
It validates itself (every problem at once), describes itself in one sentence, and makes a *planner*: an
iterator of :class:`PlanStep` that tells each load-generating process what to run, and when.

The planner is pure (no sleeping, no I/O): the :class:`~horde.load.driver.StepDriver` paces it on a clock
for the local runner and for the master alike, and workers join, leave or vanish through
:meth:`Planner.add_worker` / :meth:`Planner.remove_worker` at any time. What a process does with its payload
is the plan kind's *applier* (see :mod:`horde.load.registry`), so a new model is one new module.

Timing contract: the driver calls ``next(planner)`` once when the plan starts and then at the moment it
applies each step, so a planner may read its clock in ``__next__``; ``delay`` counts from that moment.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from horde.clock import SYSTEM_CLOCK, Clock


@dataclass(frozen=True)
class PlanStep:
    """One step of a plan: what to send to which worker, and how long after the previous step.

    ``payloads`` maps worker ids to that worker's payload for the plan's kind (JSON-ready; workers not
    named get nothing at this step). ``delay`` is seconds after applying the previous step (start to start;
    0 for the first). ``rebalance`` marks steps that only re-place load after workers joined or left.
    Three markers carry no payload of their own:

    * ``complete``: the plan reached its target once the payloads so far are applied (the runner fires
      ``spawning_complete``, or ``rebalanced`` when ``rebalance`` is also set); ``totals`` then holds the
      per-class user totals the plan aims at (empty when the kind has no such notion).
    * ``end``: the model ends the test, with this reason (a shape whose tick returned ``None``).
    * a step with none of these and no payloads is a *wake-up*: the planner wants to be asked again then
      (a shape's next tick). The driver consumes wake-ups itself; nobody else sees them.
    """

    payloads: Mapping[str, Any] = field(default_factory=dict)
    delay: float = 0.0
    rebalance: bool = False
    complete: bool = False
    end: str | None = None
    totals: Mapping[str, int] = field(default_factory=dict)

    @property
    def is_wakeup(self) -> bool:
        return not self.payloads and not self.complete and self.end is None


class Node(Protocol):
    """A load-generating process as a planner sees it: anything with a string ``id``.

    A master's WorkerNode also has ``hostname`` (the UsersDispatcher spreads users over hosts first).
    """

    @property
    def id(self) -> str: ...


@dataclass(frozen=True)
class LocalNode:
    """The one pseudo-worker of a process that runs its own users (the local runner)."""

    id: str = "local"


@dataclass(frozen=True)
class PlanContext:
    """What a runner hands every planner it creates: its clock and its environment's choices.

    ``user_classes`` and ``dispatcher_class`` are the environment's; a model given its own uses those.
    """

    clock: Clock = SYSTEM_CLOCK
    user_classes: Sequence[Any] = ()
    dispatcher_class: type | None = None


@runtime_checkable
class Planner(Protocol):
    """Steps of one running plan; re-planned in place as workers change or the target is edited.

    After ``StopIteration`` the planner may have more steps later (a worker joined and needs users): the
    driver asks again after :meth:`add_worker`, :meth:`remove_worker` and :meth:`retarget`.
    """

    kind: str

    @property
    def target_user_count(self) -> int:
        """Users the plan aims at now (a shape: its current tick; an arrival rate: its user cap)."""
        ...

    @property
    def spawn_rate(self) -> float:
        """Users per second the plan starts or stops them at now (0 where that means nothing)."""
        ...

    def add_worker(self, node: Node) -> None: ...

    def remove_worker(self, worker_id: str) -> None: ...

    def retarget(self, model: LoadModel) -> bool:
        """Take over ``model``'s parameters mid-test (edit users, rate); False if this plan cannot, in
        which case the runner ends the current test and starts ``model`` as a fresh one."""
        ...

    def __iter__(self) -> Iterator[PlanStep]: ...

    def __next__(self) -> PlanStep: ...


@runtime_checkable
class LoadModel(Protocol):
    """How much load to generate. One module per model; see :mod:`horde.load.closed` for the pattern.

    >>> model = ClosedUsers([Shopper, Admin], 100, 10, run_time=300)
    >>> model.validate()
    []
    >>> model.describe()
    '100 users at 10/s, weights Shopper 3 : Admin 1, for 5m'
    """

    kind: str  # the plan kind: names the applier a worker runs, in every spawn message

    def validate(self) -> list[str]:
        """Every problem with this model, each a full sentence; empty when it can run."""
        ...

    def describe(self) -> str:
        """One human sentence the console prints when the test starts."""
        ...

    def planner(self, workers: Iterable[Node], context: PlanContext) -> Planner:
        """A fresh plan over ``workers`` (validate first: a planner may raise on an invalid model)."""
        ...


def format_duration(seconds: float) -> str:
    """``300`` -> ``"5m"``, ``5400`` -> ``"1h30m"``, ``90.5`` -> ``"1m30.5s"``, ``0`` -> ``"0s"``."""
    if seconds < 60:
        return f"{seconds:g}s"
    whole = int(seconds)
    rest = seconds - whole
    hours, minutes, secs = whole // 3600, whole // 60 % 60, whole % 60
    parts = [f"{hours}h"] if hours else []
    if minutes:
        parts.append(f"{minutes}m")
    if secs or rest:
        parts.append(f"{secs + rest:g}s")
    return "".join(parts)


def format_rate(rate: float) -> str:
    """Users (or iterations) per second, without pointless decimals: ``10/s``, ``0.5/s``."""
    return f"{rate:.4g}/s"
