"""The converted corpus runs: each file is imported and its users run against a real local server."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from horde import User
from horde.convert import convert_source
from horde.env import Environment

HERE = Path(__file__).parent
RUNNABLE = [
    "imports",
    "tasks_collections",
    "taskset_helpers",
    "catch_response",
    "sleeps",
    "gevent_spawn",
    "gevent_pool",
    "gevent_lock",
    "rest",
    "module_tasks",
    "listeners",
    "custom_client",
    "markov",
]


def load_converted(name: str, tmp_path: Path) -> ModuleType:
    code = convert_source((HERE / "corpus" / f"{name}.py").read_text()).code
    path = tmp_path / f"converted_{name}.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location(f"converted_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


def user_classes(module: ModuleType) -> list[type[User]]:
    return [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, User) and v.__module__ == module.__name__ and not v.abstract
    ]


@pytest.mark.parametrize("name", RUNNABLE)
async def test_converted_locustfile_runs_against_a_local_target(name: str, server, tmp_path: Path) -> None:
    module = load_converted(name, tmp_path)
    classes = user_classes(module)
    assert classes
    env = Environment(user_classes=classes, host=server.url)
    runner = env.create_local_runner()
    await runner.start(2 * len(classes), 100)
    deadline = asyncio.get_running_loop().time() + 3
    while env.stats.total.num_requests < 20 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    await runner.quit()
    assert env.stats.total.num_requests > 0
    assert runner.exceptions == {}, [row["msg"] for row in runner.exceptions.values()]
    if name != "custom_client":
        assert server.total > 0
    assert env.stats.total.num_failures == 0, env.stats.errors
