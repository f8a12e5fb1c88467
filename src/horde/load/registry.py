"""Plan kinds and load models by name: what a process does with a payload, and how to build a model.

Each model's module registers itself when imported (k6's ``executors.go`` init pattern), so adding a model
means adding a module, never editing a runner::

    register_kind("users", UsersApplier)        # worker side: what a "users" payload means
    register_model("users", ClosedUsers)        # by name, for front ends building a model from options

A runner that runs users (local, worker) keeps one applier per plan kind; a spawn message names the kind,
and ``applier_factory(kind)(runner)`` is what applies its payloads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from horde.exceptions import ConfigurationError

if TYPE_CHECKING:
    from horde.env import Environment
    from horde.load.model import LoadModel
    from horde.user.users import User


class UserPool(Protocol):
    """The users of one process (a runner's UserGroup), as appliers drive them."""

    @property
    def count(self) -> int: ...

    def counts(self) -> dict[str, int]: ...

    async def apply(
        self, targets: dict[str, int], classes: dict[str, type[User]], stop_timeout: float
    ) -> None: ...


class LoadHost(Protocol):
    """The process an applier acts on: a runner that runs users (LocalRunner, WorkerRunner)."""

    @property
    def environment(self) -> Environment: ...

    @property
    def users(self) -> UserPool: ...


class Applier(Protocol):
    """Applies one plan kind's payloads in one process; made once per kind per test.

    ``apply`` is given each payload addressed to this process, in order (a newer one may cancel an older
    one still being applied: appliers must tolerate cancellation). ``stop`` ends whatever the applier runs
    of its own (pacing tasks of an arrival rate); the runner stops the users themselves.
    """

    async def apply(self, payload: Any) -> None: ...

    async def stop(self) -> None: ...


ApplierFactory = Callable[[LoadHost], Applier]
ModelFactory = Callable[..., "LoadModel"]


class UnknownPlanKind(ConfigurationError):
    """A spawn message or a model named a plan kind nobody registered."""


class Registry:
    """Plan kind -> applier factory, and model name -> model factory."""

    def __init__(self) -> None:
        self._kinds: dict[str, ApplierFactory] = {}
        self._models: dict[str, ModelFactory] = {}

    # ---- plan kinds (worker side) --------------------------------------------------------------------
    def register_kind(self, kind: str, factory: ApplierFactory, *, replace: bool = False) -> None:
        """Say what a process does with a ``kind`` payload; registering a kind twice is an error."""
        _check_name("plan kind", kind)
        if kind in self._kinds and not replace and self._kinds[kind] is not factory:
            raise ConfigurationError(f"plan kind {kind!r} is already registered")
        self._kinds[kind] = factory

    def unregister_kind(self, kind: str) -> None:
        self._kinds.pop(kind, None)

    def applier_factory(self, kind: str) -> ApplierFactory:
        try:
            return self._kinds[kind]
        except KeyError:
            known = ", ".join(sorted(self._kinds)) or "none"
            raise UnknownPlanKind(f"no applier for plan kind {kind!r} (known kinds: {known})") from None

    def kinds(self) -> Mapping[str, ApplierFactory]:
        return dict(self._kinds)

    # ---- models (by name, for front ends) ------------------------------------------------------------
    def register_model(self, name: str, factory: ModelFactory, *, replace: bool = False) -> None:
        """Make ``create_model(name, **options)`` build a model; registering a name twice is an error."""
        _check_name("load model", name)
        if name in self._models and not replace and self._models[name] is not factory:
            raise ConfigurationError(f"load model {name!r} is already registered")
        self._models[name] = factory

    def unregister_model(self, name: str) -> None:
        self._models.pop(name, None)

    def create_model(self, name: str, /, **options: Any) -> LoadModel:
        try:
            factory = self._models[name]
        except KeyError:
            known = ", ".join(sorted(self._models)) or "none"
            raise ConfigurationError(f"unknown load model {name!r} (known models: {known})") from None
        return factory(**options)

    def models(self) -> Mapping[str, ModelFactory]:
        return dict(self._models)


def _check_name(what: str, name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"a {what} name must be a non-empty string, got {name!r}")


#: The process-wide registry every runner uses; each model module registers itself here on import.
REGISTRY = Registry()

register_kind = REGISTRY.register_kind
unregister_kind = REGISTRY.unregister_kind
applier_factory = REGISTRY.applier_factory
register_model = REGISTRY.register_model
unregister_model = REGISTRY.unregister_model
create_model = REGISTRY.create_model
