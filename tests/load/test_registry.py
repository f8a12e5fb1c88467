"""load.registry: plan kinds map to appliers, model names to factories; the built-ins register on import."""

from __future__ import annotations

from typing import Any

import pytest

from horde.exceptions import ConfigurationError
from horde.load import REGISTRY, ClosedUsers, Registry, ShapeModel, UnknownPlanKind, UsersApplier
from horde.load.registry import LoadHost


class Recorder:
    def __init__(self, host: LoadHost) -> None:
        self.host = host
        self.payloads: list[Any] = []

    async def apply(self, payload: Any) -> None:
        self.payloads.append(payload)

    async def stop(self) -> None:
        pass


def test_built_in_models_register_themselves() -> None:
    assert REGISTRY.applier_factory("users") is UsersApplier
    assert REGISTRY.models()["users"] is ClosedUsers
    assert REGISTRY.models()["shape"] is ShapeModel


def test_register_and_find_a_kind() -> None:
    registry = Registry()
    registry.register_kind("recorded", Recorder)
    assert registry.applier_factory("recorded") is Recorder
    assert set(registry.kinds()) == {"recorded"}
    registry.register_kind("recorded", Recorder)  # the same factory again: harmless (a module re-imported)
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.register_kind("recorded", UsersApplier)
    registry.register_kind("recorded", UsersApplier, replace=True)
    assert registry.applier_factory("recorded") is UsersApplier
    registry.unregister_kind("recorded")
    registry.unregister_kind("recorded")  # unknown: ignored
    assert registry.kinds() == {}


def test_unknown_kind_names_the_known_ones() -> None:
    registry = Registry()
    registry.register_kind("b", Recorder)
    registry.register_kind("a", Recorder)
    with pytest.raises(UnknownPlanKind, match=r"'zzz' \(known kinds: a, b\)") as info:
        registry.applier_factory("zzz")
    assert isinstance(info.value, ConfigurationError) and isinstance(info.value, ValueError)
    with pytest.raises(UnknownPlanKind, match="known kinds: none"):
        Registry().applier_factory("users")


def test_models_by_name() -> None:
    class Shopper:
        weight = 1

    registry = Registry()
    registry.register_model("users", ClosedUsers)
    model = registry.create_model("users", user_classes=[Shopper], user_count=3, spawn_rate=1)
    assert isinstance(model, ClosedUsers) and model.describe() == "3 Shopper users at 1/s"
    with pytest.raises(ConfigurationError, match=r"unknown load model 'ramp' \(known models: users\)"):
        registry.create_model("ramp")
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.register_model("users", ShapeModel)
    registry.unregister_model("users")
    assert registry.models() == {}


@pytest.mark.parametrize("name", ["", None, 3])
def test_names_must_be_non_empty_strings(name: Any) -> None:
    registry = Registry()
    with pytest.raises(ConfigurationError, match="non-empty string"):
        registry.register_kind(name, Recorder)
    with pytest.raises(ConfigurationError, match="non-empty string"):
        registry.register_model(name, ClosedUsers)
