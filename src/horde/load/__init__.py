"""Load models as plug-ins: how much load to generate, planned per worker and paced by one driver.

    model.py     the LoadModel and Planner protocols, PlanStep, PlanContext
    closed.py    ClosedUsers: N users at a spawn rate (plan kind "users", wraps the UsersDispatcher)
    shape.py     ShapeModel: a LoadTestShape's tick() once per second re-targets closed users
    driver.py    StepDriver: paces any planner on a clock (pure core for timers, run() for awaiting)
    registry.py  plan kind -> applier (what a process does with a payload), model name -> factory

A new model is a new module that defines a LoadModel and its Planner, and registers its plan kind's applier
with :func:`register_kind` (and its name with :func:`register_model`) when imported; no runner changes::

    class PerWorker:                                   # the model: validates and describes itself
        kind = "per-worker"
        def validate(self): return [] if self.users >= 0 else ["Users per worker must be 0 or more."]
        def describe(self): return f"{self.users} users on every worker"
        def planner(self, workers, context): return PerWorkerPlanner(self.users, workers)

    class PerWorkerPlanner:                            # pure: yields PlanStep({worker_id: payload}, delay)
        ...                                            # add_worker / remove_worker / retarget / __next__

    class PerWorkerApplier:                            # in each process: what a payload means
        def __init__(self, host): self.host = host
        async def apply(self, payload): await self.host.users.apply(...)
        async def stop(self): ...

    register_kind("per-worker", PerWorkerApplier)
    await runner.start_load(PerWorker(3))              # LocalRunner, or a master and its workers

``tests/load/test_custom_model.py`` is that model in full, run on a real LocalRunner.
"""

# the open model registers its plan kind ("arrival-rate") on import, so every process knows it
from horde.load.arrival import (
    ARRIVALS_ENDED,
    ConstantArrivalRate,
    RampingArrivalRate,
    model_from_options,
)
from horde.load.arrival_pool import INTENDED_SUFFIX, arrival_stats
from horde.load.closed import ClosedPlanner, ClosedUsers, UsersApplier
from horde.load.driver import StepDriver
from horde.load.model import (
    LoadModel,
    LocalNode,
    Node,
    PlanContext,
    Planner,
    PlanStep,
    format_duration,
    format_rate,
)
from horde.load.registry import (
    REGISTRY,
    Applier,
    ApplierFactory,
    LoadHost,
    Registry,
    UnknownPlanKind,
    applier_factory,
    create_model,
    register_kind,
    register_model,
    unregister_kind,
    unregister_model,
)
from horde.load.shape import SHAPE_ENDED, ShapeModel, ShapePlanner, ShapeTick, ShapeTicker

__all__ = [
    "ARRIVALS_ENDED",
    "INTENDED_SUFFIX",
    "REGISTRY",
    "SHAPE_ENDED",
    "Applier",
    "ApplierFactory",
    "ClosedPlanner",
    "ClosedUsers",
    "ConstantArrivalRate",
    "LoadHost",
    "LoadModel",
    "LocalNode",
    "Node",
    "PlanContext",
    "PlanStep",
    "Planner",
    "RampingArrivalRate",
    "Registry",
    "ShapeModel",
    "ShapePlanner",
    "ShapeTick",
    "ShapeTicker",
    "StepDriver",
    "UnknownPlanKind",
    "UsersApplier",
    "applier_factory",
    "arrival_stats",
    "create_model",
    "format_duration",
    "format_rate",
    "model_from_options",
    "register_kind",
    "register_model",
    "unregister_kind",
    "unregister_model",
]
